/**
 * planHost: one row per rule of what a host gets before any connection (Postfix's
 * policy_create() and dane_init(), RFC 7672 section 2.2, smtp_tls_wrappermode, the tlsfallback
 * proposal, Exim's hosts_require_tls), with every field that matters written out.
 */
import { describe, expect, it } from 'vitest';
import { planHost, verifyLevelOf, type HostSettings, type HostTarget } from '../lib/plan/host.js';
import { fallbackFor, parseFallbackLevels } from '../lib/policy/index.js';
import type { TlsaLookup } from '../lib/plan/dane.js';
import { LEVELS, type Level, type Policy } from '../lib/types.js';

const EE = { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 7) };
const PKIX = { usage: 1, selector: 1, matchingType: 1, data: Buffer.alloc(32, 9) };
const TLSA = {
  usable: { status: 'secure', records: [EE], baseDomain: 'mx1.example.net', name: '_25._tcp.mx1.example.net' },
  unusable: { status: 'secure', records: [PKIX], baseDomain: 'mx1.example.net', name: '_25._tcp.mx1.example.net' },
  none: { status: 'none', why: '_25._tcp.mx1.example.net has no TLSA records (NXDOMAIN, DNSSEC-secure)' },
  failed: { status: 'failed', reason: 'DNS lookup of TLSA for _25._tcp.mx1.example.net failed: SERVFAIL from 127.0.0.1:53' },
} satisfies Record<string, TlsaLookup>;

const target = (extra: Partial<HostTarget> = {}): HostTarget => ({
  host: 'mx1.example.net',
  address: '192.0.2.1',
  port: 25,
  mxSecure: true,
  implicitTls: false,
  viaMx: true,
  canonical: 'mx1.example.net',
  ...extra,
});
const fallbackMap = parseFallbackLevels('verify=encrypt, secure=may, dane=encrypt');
const settings = (extra: Partial<HostSettings> = {}): HostSettings => ({
  nexthop: 'example.net',
  insecureMxPolicy: 'dane',
  digest: 'sha256',
  fallbackFor: (p) => fallbackFor(p, fallbackMap),
  files: () => ({}),
  rules: { strict: false },
  ...extra,
});
const policy = (level: Level, extra: Partial<Policy> = {}): Policy => ({ level, source: 'test', ...extra });
const WHERE = 'mx1.example.net[192.0.2.1]:25';

describe('planHost: DANE decides the level per host (RFC 7672 section 2.2, dane_init)', () => {
  const rows: Array<{
    name: string;
    level: 'dane' | 'dane-only';
    tlsa: keyof typeof TLSA;
    target?: Partial<HostTarget>;
    policy?: Partial<Policy>;
    want: Record<string, unknown>;
  }> = [
    {
      name: 'usable secure TLSA: enforced, Verified',
      level: 'dane',
      tlsa: 'usable',
      want: { level: 'dane', trust: 'Verified', sni: 'mx1.example.net', ca: [], names: ['mx1.example.net'], refused: undefined, fallback: 'encrypt' },
    },
    {
      name: 'usable TLSA, dane-only',
      level: 'dane-only',
      tlsa: 'usable',
      want: { level: 'dane-only', trust: 'Verified', sni: 'mx1.example.net', refused: undefined },
    },
    {
      name: 'insecure MX, policy dane: enforced, a match is Trusted',
      level: 'dane',
      tlsa: 'usable',
      target: { mxSecure: false },
      want: { level: 'dane', trust: 'Trusted' },
    },
    { name: 'no secure TLSA: may', level: 'dane', tlsa: 'none', want: { level: 'may', dane: undefined, refused: undefined, fallback: undefined } },
    {
      name: 'no secure TLSA under hostsRequireTls: encrypt',
      level: 'dane',
      tlsa: 'none',
      policy: { requireTls: true },
      want: { level: 'encrypt', dane: undefined },
    },
    { name: 'only unusable records: encrypt', level: 'dane', tlsa: 'unusable', want: { level: 'encrypt', dane: undefined, fallback: undefined } },
    {
      name: 'failed lookup: refused, never a downgrade',
      level: 'dane',
      tlsa: 'failed',
      want: {
        refused: /SERVFAIL from 127\.0\.0\.1:53; mx1\.example\.net\[192\.0\.2\.1\]:25 is not tried at level dane without its TLSA records/,
        key: undefined,
        refusedType: 'dnssec-invalid',
      },
    },
    {
      name: 'failed lookup at dane-only: refused',
      level: 'dane-only',
      tlsa: 'failed',
      want: { refused: /is not tried at level dane-only/, refusedType: 'dnssec-invalid' },
    },
    {
      name: 'dane-only without TLSA: refused',
      level: 'dane-only',
      tlsa: 'none',
      want: { refused: /no secure TLSA records .* which level dane-only does not allow/, refusedType: 'dane-required' },
    },
    {
      name: 'dane-only, all unusable: refused',
      level: 'dane-only',
      tlsa: 'unusable',
      want: { refused: /all unusable .* which level dane-only does not allow/, refusedType: 'tlsa-invalid' },
    },
    {
      name: 'dane-only with an insecure MX RRset: refused',
      level: 'dane-only',
      tlsa: 'usable',
      target: { mxSecure: false },
      want: { refused: /MX RRset is not DNSSEC-secure, which level dane-only does not allow/, refusedType: 'dane-required' },
    },
    {
      name: 'a secure CNAME chain: its end is a reference name',
      level: 'dane',
      tlsa: 'usable',
      target: { canonical: 'target.example.org' },
      want: { names: ['mx1.example.net', 'target.example.org'] },
    },
    { name: 'a relay: the base domain only', level: 'dane', tlsa: 'usable', target: { viaMx: false }, want: { names: ['mx1.example.net'] } },
  ];
  for (const row of rows) {
    it(`${row.level}: ${row.name}`, () => {
      const p = planHost(policy(row.level, row.policy), target({ tlsa: TLSA[row.tlsa], ...row.target }), settings());
      const got: Record<string, unknown> = {
        level: p.level,
        trust: p.dane?.trust,
        sni: p.tls.servername,
        ca: p.tls.ca,
        names: p.dane ? p.dane.names : p.names,
        refused: p.refused,
        dane: p.dane,
        fallback: p.fallback,
        key: p.key,
        refusedType: p.refusedType,
      };
      for (const [field, want] of Object.entries(row.want)) {
        if (want instanceof RegExp) expect(got[field], field).toMatch(want);
        else expect(got[field], field).toEqual(want);
      }
      // a refused host is never connected to, so it has no session key; a planned one says what DANE did
      if (p.refused) expect([p.key, p.daneNote]).toEqual([undefined, '']);
      else expect([typeof p.key, p.daneNote === '']).toEqual(['string', false]);
    });
  }
});

describe('planHost: the other rules', () => {
  it.each([
    ['none', 'encrypt'],
    ['may', 'encrypt'],
    ['encrypt', 'encrypt'],
    ['verify', 'verify'],
    ['secure', 'secure'],
  ] as const)('implicit TLS: %s runs as %s (smtp_tls_wrappermode has no cleartext)', (level, want) => {
    expect(planHost(policy(level), target({ implicitTls: true }), settings()).level).toBe(want);
    expect(planHost(policy(level), target(), settings()).level).toBe(level);
  });
  it('fallback: the configured level for an authenticated level; clamped to encrypt under hostsRequireTls', () => {
    expect(planHost(policy('verify'), target(), settings()).fallback).toBe('encrypt');
    expect(planHost(policy('secure'), target(), settings()).fallback).toBe('may');
    expect(planHost(policy('secure', { requireTls: true }), target(), settings()).fallback).toBe('encrypt');
    expect(planHost(policy('secure', { fallback: 'none' }), target(), settings()).fallback).toBeUndefined();
    expect(planHost(policy('encrypt'), target(), settings()).fallback).toBeUndefined();
  });
  it.each(LEVELS.map((l) => [l, verifyLevelOf(l)]))('%s is judged by verifyPeer as %s', (level, judged) => {
    const want: Record<string, string> = {
      none: 'may',
      may: 'may',
      encrypt: 'encrypt',
      dane: 'may',
      'dane-only': 'encrypt',
      fingerprint: 'fingerprint',
      verify: 'verify',
      secure: 'secure',
    };
    expect(judged).toBe(want[level]);
  });
  it('names: secure drops the MX host name from an insecure MX RRset; verify keeps it (that is what verify means)', () => {
    expect(planHost(policy('secure', { match: ['hostname', 'nexthop'] }), target({ mxSecure: false }), settings()).names).toEqual(['example.net']);
    expect(planHost(policy('secure', { match: ['hostname', 'nexthop'] }), target(), settings()).names).toEqual(['mx1.example.net', 'example.net']);
    expect(planHost(policy('verify'), target({ mxSecure: false }), settings()).names).toEqual(['mx1.example.net']);
    expect(planHost(policy('secure'), target(), settings()).names).toEqual(['example.net', '.example.net']);
  });
  it('SNI: the MX host name by default, servername= when set, the TLSA base domain under DANE', () => {
    expect(planHost(policy('may'), target(), settings()).tls.servername).toBe('mx1.example.net');
    expect(planHost(policy('may', { servername: 'nexthop' }), target(), settings()).tls.servername).toBe('example.net');
    expect(planHost(policy('dane'), target({ host: 'alias.example.net', tlsa: TLSA.usable }), settings()).tls.servername).toBe('mx1.example.net');
  });
  it('the session key: equal for equal plans, different for what judged the TLS differently', () => {
    const key = (p: Policy, t: Partial<HostTarget> = {}, s: Partial<HostSettings> = {}) => planHost(p, target(t), settings(s)).key;
    expect(key(policy('encrypt'))).toBe(key(policy('encrypt')));
    const base = key(policy('encrypt'));
    expect(key(policy('verify'))).not.toBe(base);
    expect(key(policy('encrypt'), { address: '192.0.2.2' })).not.toBe(base);
    expect(key(policy('encrypt'), {}, { authUser: 'alice' })).not.toBe(base);
    expect(key(policy('encrypt'), {}, { rules: { strict: true } })).not.toBe(base);
    expect(key(policy('encrypt', { tempfailTryclear: true }))).not.toBe(base);
    expect(key(policy('encrypt'), {}, { files: () => ({ ca: Buffer.from('ca') }) })).not.toBe(base);
    expect(key(policy('dane'), { tlsa: TLSA.usable })).not.toBe(key(policy('dane'), { tlsa: TLSA.usable, mxSecure: false }));
  });
  it('tempfail_tryclear: the entry wins over the global setting', () => {
    expect(planHost(policy('may'), target(), settings({ rules: { strict: false, tempfailTryclear: true } })).tempfailTryclear).toBe(true);
    expect(
      planHost(policy('may', { tempfailTryclear: false }), target(), settings({ rules: { strict: false, tempfailTryclear: true } })).tempfailTryclear,
    ).toBe(false);
    expect(planHost(policy('may'), target(), settings()).tempfailTryclear).toBeUndefined();
  });
  it.each([
    ['dane', 'none', { result: 'pass' }],
    ['dane-only', 'none', { result: `fail: ${WHERE} has no secure TLSA records (${(TLSA.none as { why: string }).why})`, resultType: 'dane-required' }],
    ['dane', 'failed', { result: `fail: ${(TLSA.failed as { reason: string }).reason}`, resultType: 'dnssec-invalid' }],
    ['dane', 'unusable', { result: 'pass' }],
  ] as const)('shadow %s with TLSA %s: known before any session', (shadow, tlsa, dane) => {
    expect(planHost(policy('may', { shadow }), target({ tlsa: TLSA[tlsa] }), settings()).shadowPlan).toEqual({
      level: shadow,
      names: [],
      fingerprints: [],
      dane,
    });
  });
  it('shadow dane with usable TLSA: the records and secure names to judge with', () => {
    const p = planHost(policy('may', { shadow: 'dane' }), target({ tlsa: TLSA.usable, canonical: 'target.example.org' }), settings());
    expect(p.shadowPlan?.dane).toEqual({
      session: {
        records: [EE],
        tlsaName: '_25._tcp.mx1.example.net',
        baseDomain: 'mx1.example.net',
        trust: 'Verified',
        names: ['mx1.example.net', 'target.example.org'],
      },
    });
  });
  it('peerChain: only a judgement by DANE (the level, or a DANE shadow with records) reads the certificates above the leaf', () => {
    const chain = (p: Policy, t: Partial<HostTarget> = {}) => planHost(p, target(t), settings()).peerChain;
    expect(chain(policy('dane'), { tlsa: TLSA.usable })).toBe(true);
    expect(chain(policy('dane-only'), { tlsa: TLSA.usable })).toBe(true);
    expect(chain(policy('may', { shadow: 'dane' }), { tlsa: TLSA.usable })).toBe(true);
    expect(chain(policy('dane'), { tlsa: TLSA.none })).toBe(false); // runs as may
    expect(chain(policy('dane'), { tlsa: TLSA.unusable })).toBe(false); // runs as encrypt
    expect(chain(policy('may', { shadow: 'dane' }), { tlsa: TLSA.none })).toBe(false); // the shadow's result is known without a session
    for (const level of ['may', 'encrypt', 'verify', 'secure'] as const) expect(chain(policy(level)), level).toBe(false);
    expect(chain(policy('fingerprint', { match: ['AB:CD'] }))).toBe(false);
    expect(chain(policy('may', { shadow: 'verify' }))).toBe(false);
    // a session that took only the leaf is never reused (nor its TLS session resumed) under a plan that reads the chain
    const key = (p: Policy) => planHost(p, target({ tlsa: TLSA.usable }), settings()).key;
    expect(key(policy('may', { shadow: 'dane' }))).not.toBe(key(policy('may')));
    expect(key(policy('may', { shadow: 'verify' }))).toBe(key(policy('may')));
  });
  it('shadow verify, secure and fingerprint: their names and digests', () => {
    expect(planHost(policy('may', { shadow: 'verify' }), target(), settings()).shadowPlan).toEqual({
      level: 'verify',
      names: ['mx1.example.net'],
      fingerprints: [],
    });
    expect(planHost(policy('may', { shadow: 'secure' }), target(), settings()).shadowPlan).toEqual({
      level: 'secure',
      names: ['example.net', '.example.net'],
      fingerprints: [],
    });
    expect(planHost(policy('encrypt', { shadow: 'fingerprint', match: ['AB:CD'] }), target(), settings()).shadowPlan).toEqual({
      level: 'fingerprint',
      names: [],
      fingerprints: ['AB:CD'],
    });
  });
});

describe('planHost: REQUIRETLS (RFC 8689 section 4.2.1): only DANE with a secure MX, MTA-STS enforce, or an authenticated relay', () => {
  const STS = { domain: 'example.net', id: 'p1', mx: ['mx1.example.net'], lines: ['version: STSv1'] };
  const def = (level: Level): Policy => ({ level, source: 'default' });
  const rows: Array<{ name: string; policy: Policy; target?: Partial<HostTarget>; extra?: Partial<HostSettings>; relay?: boolean; ok: boolean; why?: RegExp }> =
    [
      { name: 'DANE records, secure MX: Verified', policy: def('dane'), target: { tlsa: TLSA.usable }, ok: true },
      {
        name: 'DANE records, insecure MX: only Trusted',
        policy: def('dane'),
        target: { tlsa: TLSA.usable, mxSecure: false },
        ok: false,
        why: /DANE authenticates it only as Trusted \(its MX RRset is not DNSSEC-secure\)/,
      },
      {
        name: 'no TLSA, no MTA-STS',
        policy: def('dane'),
        target: { tlsa: TLSA.none },
        ok: false,
        why: /authenticated neither by DANE \(.*has no TLSA records.*\) nor by an MTA-STS policy in enforce mode/,
      },
      { name: 'only unusable TLSA records', policy: def('dane'), target: { tlsa: TLSA.unusable }, ok: false, why: /neither by DANE/ },
      { name: 'MTA-STS enforce admits the MX', policy: def('dane'), target: { tlsa: TLSA.none }, extra: { sts: { ...STS, mode: 'enforce' } }, ok: true },
      {
        name: 'MTA-STS testing',
        policy: def('dane'),
        target: { tlsa: TLSA.none },
        extra: { sts: { ...STS, mode: 'testing' } },
        ok: false,
        why: /nor by an MTA-STS policy in enforce mode/,
      },
      {
        name: 'MTA-STS enforce does not admit the MX',
        policy: def('dane'),
        target: { tlsa: TLSA.none },
        extra: { sts: { ...STS, mode: 'enforce', mx: ['mx9.example.net'] } },
        ok: false,
        why: /matches no mx pattern/,
      },
      { name: 'a table entry at secure is not DANE or MTA-STS', policy: policy('secure'), ok: false, why: /neither by DANE/ },
      { name: 'a relay at verify', policy: policy('verify', { match: ['hostname'] }), relay: true, ok: true },
      { name: 'a relay at encrypt', policy: policy('encrypt'), relay: true, ok: false, why: /the relay's level encrypt does not authenticate it/ },
    ];
  it.each(rows.map((r) => [r.name, r] as const))('%s', (_name, r) => {
    const plan = planHost(r.policy, target(r.target), settings({ ...r.extra, requireTls: { relay: r.relay === true } }));
    if (r.ok) {
      expect(plan.refused).toBeUndefined();
      expect(plan.requireTls).toBe(true);
      expect(plan.fallback).toBeUndefined();
    } else {
      expect(plan.refused).toMatch(r.why!);
      expect(plan.refusedForRequireTls).toBe(true);
      expect(plan.requireTls).toBeUndefined();
    }
  });
  it('a fallback level configured for the level is not used for a REQUIRETLS message, and the session key differs', () => {
    const base = planHost(policy('verify', { match: ['hostname'] }), target(), settings());
    const required = planHost(policy('verify', { match: ['hostname'] }), target(), settings({ requireTls: { relay: true } }));
    expect(base.fallback).toBe('encrypt');
    expect(required.fallback).toBeUndefined();
    expect(required.tempfailTryclear).toBe(false);
    expect(required.key).not.toBe(base.key);
  });
});
