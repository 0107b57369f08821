/**
 * DANE end to end: zones signed at setup (test/helpers/signed-dns.ts) behind a plain recursive
 * server that never sets AD, validated by the library itself from the tree's trust anchor
 * (`resolver.dnssec: 'validate'`), real smtp-server peers whose certificates are made now, and
 * TLSA records computed from those certificates. Each test checks from the server's side what
 * crossed which channel. (The AD path through a real unbound: test/dnssec.test.ts, interop.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyError, type TlsPolicyOptions, type TlsPolicySentInfo } from '../lib/index.js';
import { isSubdomain, nameFromText } from '../lib/dnssec/names.js';
import { T, a, mx, rr, wireKeepCase } from './helpers/dnssec-signer.js';
import { daysFromNow, makeCA, makeLeaf, tlsaData, type Issued } from './helpers/pki.js';
import { signTree, startSignedDns, tlsa as tlsaRdata, type SignedDnsServer, type TreeZoneSpec } from './helpers/signed-dns.js';
import { startHosts, type Peer, type PeerBehaviour } from './helpers/smtp-peer.js';
import { sendOnce } from './helpers/world.js';

const tlsa = (usage: 0 | 1 | 2 | 3, selector: 0 | 1, matching: 0 | 1 | 2, cert: Issued) =>
  tlsaRdata(usage, selector, matching, Buffer.from(tlsaData(cert.der, selector, matching), 'hex'));
const NOW = Math.floor(Date.now() / 1000);

interface HostDef {
  /** absolute host name */
  name: string;
  behaviour?: PeerBehaviour;
  cert: Issued;
}

let dnsServer: SignedDnsServer;
let dir = '';
let anchorFile = '';
let peers = new Map<string, Peer>();
let root: Issued;
let inter: Issued;
let port = 0;

beforeAll(async () => {
  root = await makeCA('DANE test root');
  inter = await makeCA('DANE test intermediate', { issuer: root });
  const leaf = (names: string[], opts: { expired?: boolean; issuer?: Issued } = {}) =>
    makeLeaf(opts.issuer ?? inter, { names, ...(opts.expired ? { notBefore: daysFromNow(-60), notAfter: daysFromNow(-30) } : {}) });
  const self = (names: string[]) => makeLeaf('self', { names });
  const hosts: HostDef[] = [
    { name: 'mx.ee311.test', cert: await self(['mx.ee311.test']) },
    { name: 'mx.ee301.test', cert: await self(['mx.ee301.test']) },
    { name: 'mx.ee312.test', cert: await self(['mx.ee312.test']) },
    { name: 'mx.expired.test', cert: await leaf(['mx.expired.test'], { expired: true }) },
    { name: 'mx.ta201.test', cert: await leaf(['mx.ta201.test']) },
    { name: 'mx.ta211.test', cert: await leaf(['mx.ta211.test']) },
    { name: 'mx.tawrong.test', cert: await leaf(['mx.somewhere-else.invalid']) },
    { name: 'mx.nomatch.test', cert: await self(['mx.nomatch.test']) },
    { name: 'mx.unusable.test', cert: await self(['mx.unusable.test']) },
    { name: 'mx.unsigned.test', cert: await self(['mx.unsigned.test']) },
    { name: 'mx.island.unsigned.test', cert: await self(['mx.island.unsigned.test']) },
    { name: 'mx.bogus.test', cert: await self(['mx.bogus.test']) },
    { name: 'target.cname.test', cert: await self(['target.cname.test']) },
    { name: 'mx1.two.test', cert: await self(['mx1.two.test']) },
    { name: 'mx2.two.test', cert: await self(['mx2.two.test']) },
    { name: 'mx.slow.test', cert: await self(['mx.slow.test']) },
    { name: 'mx.nostarttls.test', behaviour: 'no-starttls', cert: await self(['mx.nostarttls.test']) },
  ];
  ({ peers, port } = await startHosts(hosts.map((h) => ({ ...h, behaviour: h.behaviour ?? 'starttls' }))));
  const A = (name: string) => rr(`${name}.`, T.A, a(peers.get(name)!.host));
  const cert = (name: string) => hosts.find((h) => h.name === name)!.cert;
  const tlsaAt = (name: string, rdata: Buffer) => rr(`_${port}._tcp.${name}.`, T.TLSA, rdata);
  const mxAt = (domain: string, preference: number, host: string) => rr(`${domain}.`, T.MX, mx(preference, `${host}.`));
  const zone = (origin: string, records: ReturnType<typeof rr>[], extra: Partial<TreeZoneSpec> = {}): TreeZoneSpec => ({
    origin: `${origin}.`,
    algorithm: 13,
    records,
    ...extra,
  });
  const spec: TreeZoneSpec[] = [
    { origin: '.', algorithm: 13 },
    { origin: 'test.', algorithm: 13 },
    zone('ee311.test', [mxAt('ee311.test', 10, 'mx.ee311.test'), A('mx.ee311.test'), tlsaAt('mx.ee311.test', tlsa(3, 1, 1, cert('mx.ee311.test')))]),
    zone('ee301.test', [mxAt('ee301.test', 10, 'mx.ee301.test'), A('mx.ee301.test'), tlsaAt('mx.ee301.test', tlsa(3, 0, 1, cert('mx.ee301.test')))]),
    zone('ee312.test', [mxAt('ee312.test', 10, 'mx.ee312.test'), A('mx.ee312.test'), tlsaAt('mx.ee312.test', tlsa(3, 1, 2, cert('mx.ee312.test')))]),
    zone('expired.test', [
      mxAt('expired.test', 10, 'mx.expired.test'),
      A('mx.expired.test'),
      tlsaAt('mx.expired.test', tlsa(3, 1, 1, cert('mx.expired.test'))),
    ]),
    zone('ta201.test', [mxAt('ta201.test', 10, 'mx.ta201.test'), A('mx.ta201.test'), tlsaAt('mx.ta201.test', tlsa(2, 0, 1, inter))]),
    zone('ta211.test', [mxAt('ta211.test', 10, 'mx.ta211.test'), A('mx.ta211.test'), tlsaAt('mx.ta211.test', tlsa(2, 1, 1, inter))]),
    zone('tawrong.test', [mxAt('tawrong.test', 10, 'mx.tawrong.test'), A('mx.tawrong.test'), tlsaAt('mx.tawrong.test', tlsa(2, 0, 1, inter))]),
    zone('nomatch.test', [mxAt('nomatch.test', 10, 'mx.nomatch.test'), A('mx.nomatch.test'), tlsaAt('mx.nomatch.test', tlsa(3, 1, 1, cert('mx.ee311.test')))]),
    zone('unusable.test', [
      mxAt('unusable.test', 10, 'mx.unusable.test'),
      A('mx.unusable.test'),
      tlsaAt('mx.unusable.test', tlsa(1, 1, 1, cert('mx.unusable.test'))),
      tlsaAt('mx.unusable.test', tlsa(0, 0, 1, root)),
    ]),
    zone(
      'unsigned.test',
      [mxAt('unsigned.test', 10, 'mx.unsigned.test'), A('mx.unsigned.test'), tlsaAt('mx.unsigned.test', tlsa(3, 1, 1, cert('mx.ee311.test')))],
      {
        algorithm: false,
      },
    ),
    // a signed domain whose MX host sits in an unsigned zone
    zone('signedmx.test', [mxAt('signedmx.test', 10, 'mx.island.unsigned.test')]),
    zone('island.unsigned.test', [A('mx.island.unsigned.test'), tlsaAt('mx.island.unsigned.test', tlsa(3, 1, 1, cert('mx.ee311.test')))], { algorithm: false }),
    // an unsigned domain whose MX host is in a signed zone with TLSA: insecure MX, DANE still enforced (Trusted)
    zone('insecuremx.test', [mxAt('insecuremx.test', 10, 'mx.ee311.test')], { algorithm: false }),
    // the TLSA RRset changed after signing: its RRSIG fails
    zone('bogus.test', [mxAt('bogus.test', 10, 'mx.bogus.test'), A('mx.bogus.test'), tlsaAt('mx.bogus.test', tlsa(3, 1, 1, cert('mx.bogus.test')))], {
      tamper: [{ owner: `_${port}._tcp.mx.bogus.test.`, type: T.TLSA }],
    }),
    // MX host is a CNAME to target.cname.test, whose TLSA is found first
    zone('cname.test', [
      mxAt('cname.test', 10, 'mx.cname.test'),
      rr('mx.cname.test.', T.CNAME, wireKeepCase('target.cname.test.')),
      A('target.cname.test'),
      tlsaAt('target.cname.test', tlsa(3, 1, 1, cert('target.cname.test'))),
    ]),
    zone('two.test', [
      mxAt('two.test', 10, 'mx1.two.test'),
      mxAt('two.test', 20, 'mx2.two.test'),
      A('mx1.two.test'),
      A('mx2.two.test'),
      tlsaAt('mx1.two.test', tlsa(3, 1, 1, cert('mx.ee311.test'))),
      tlsaAt('mx2.two.test', tlsa(3, 1, 1, cert('mx2.two.test'))),
    ]),
    // every query at or below _tcp.mx.slow.test goes unanswered (startSignedDns's silent, below)
    zone('slow.test', [mxAt('slow.test', 10, 'mx.slow.test'), A('mx.slow.test')]),
    zone('nostarttls.test', [
      mxAt('nostarttls.test', 10, 'mx.nostarttls.test'),
      A('mx.nostarttls.test'),
      tlsaAt('mx.nostarttls.test', tlsa(3, 1, 1, cert('mx.nostarttls.test'))),
    ]),
  ];
  const tree = signTree(spec, NOW);
  const quiet = nameFromText('_tcp.mx.slow.test.');
  dnsServer = await startSignedDns({ zones: tree.zones, silent: (query) => isSubdomain(query.name, quiet) });
  dir = mkdtempSync(join(tmpdir(), 'dane-'));
  anchorFile = join(dir, 'root.ds');
  writeFileSync(anchorFile, `${tree.anchor}\n`);
}, 60_000);

afterAll(async () => {
  await Promise.all([...peers.values()].map((p) => p.close()));
  await dnsServer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The library validates every answer itself: the server is a plain recursive one. */
const resolverOptions = () => ({ servers: [dnsServer.server], dnssec: 'validate' as const, trustAnchors: anchorFile });

function send(options: TlsPolicyOptions, to: string | string[]): Promise<{ info?: TlsPolicySentInfo; error?: TlsPolicyError }> {
  const dns = createResolver({ ...resolverOptions(), timeout: 400, attempts: 2 });
  return sendOnce({ port, dns, ...options }, { from: 's@origin.test', to, subject: 'dane' });
}

/** MAIL/RCPT/DATA a peer sees while `fn` runs, as [command, secure]; and the SNI of MAIL. */
async function seen<T>(names: string[], fn: () => Promise<T>) {
  const before = new Map(names.map((n) => [n, peers.get(n)!.events.length]));
  const result = await fn();
  const out: Record<string, Array<[string, boolean]>> = {};
  const sni: Record<string, string | undefined> = {};
  for (const n of names) {
    const events = peers
      .get(n)!
      .events.slice(before.get(n))
      .filter((e) => e.command !== 'CONNECT');
    out[n] = events.map((e) => [e.command, e.secure]);
    sni[n] = events.find((e) => e.command === 'MAIL')?.servername;
  }
  return { result, seen: out, sni };
}

const TLS: Array<[string, boolean]> = [
  ['MAIL', true],
  ['RCPT', true],
  ['DATA', true],
];

describe('DANE delivers when a usable TLSA record matches', () => {
  const rows: Array<[string, string, string]> = [
    ['ee311.test', 'mx.ee311.test', '3 1 1'],
    ['ee301.test', 'mx.ee301.test', '3 0 1'],
    ['ee312.test', 'mx.ee312.test', '3 1 2'],
    ['expired.test', 'mx.expired.test', '3 1 1'], // DANE-EE checks no dates
    ['ta201.test', 'mx.ta201.test', '2 0 1'],
    ['ta211.test', 'mx.ta211.test', '2 1 1'],
  ];
  for (const level of ['dane', 'dane-only'] as const) {
    for (const [domain, host, record] of rows) {
      it(`${level}: ${record} at ${domain} -> Verified`, async () => {
        const { result, seen: s, sni } = await seen([host], () => send({ level }, `u@${domain}`));
        expect(result.error).toBeUndefined();
        const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
        expect([audit.auth, audit.level]).toEqual(['Verified', level]);
        expect(audit.matched).toMatch(new RegExp(`^${record} `));
        expect(audit.dane).toContain(`_${port}._tcp.${host}`);
        expect(s[host]).toEqual(TLS);
        expect(sni[host]).toBe(host); // SNI carries the TLSA base domain
      });
    }
  }
});

describe('DANE refuses what does not match, and sends nothing', () => {
  it('TLSA that matches no certificate', async () => {
    const { result, seen: s } = await seen(['mx.nomatch.test'], () => send({ level: 'dane' }, 'u@nomatch.test'));
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(new RegExp(`TLSA 3 1 1 \\S+ for _${port}\\._tcp\\.mx\\.nomatch\\.test matched no certificate`));
    expect(s['mx.nomatch.test']).toEqual([]);
  });
  it('DANE-TA with a leaf whose names match neither the TLSA base domain nor the MX host', async () => {
    const { result, seen: s } = await seen(['mx.tawrong.test'], () => send({ level: 'dane' }, 'u@tawrong.test'));
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.message).toMatch(/mx\.somewhere-else\.invalid/);
    expect(s['mx.tawrong.test']).toEqual([]);
  });
  it('a bogus TLSA RRset: that MX fails temporarily, never a downgrade (dane and dane-only)', async () => {
    for (const level of ['dane', 'dane-only'] as const) {
      const { result, seen: s } = await seen(['mx.bogus.test'], () => send({ level }, 'u@bogus.test'));
      expect(result.error?.code).toBe('ETLS');
      expect(result.error?.temporary).toBe(true);
      expect(result.error?.message).toMatch(
        new RegExp(
          `DNS lookup of TLSA for _${port}\\._tcp\\.mx\\.bogus\\.test failed DNSSEC validation: in zone bogus\\.test\\., _${port}\\._tcp\\.mx\\.bogus\\.test\\. TLSA: RRSIG \\d+/13: signature does not verify with DNSKEY \\d+; mx\\.bogus\\.test\\[[\\d.]+\\]:${port} is not tried at level ${level} without its TLSA records`,
        ),
      );
      expect(s['mx.bogus.test']).toEqual([]);
      expect(peers.get('mx.bogus.test')!.events.filter((e) => e.command === 'CONNECT').length).toBe(0);
    }
  });
  it('a TLSA lookup that times out: temporary failure, no connection', async () => {
    const { result, seen: s } = await seen(['mx.slow.test'], () => send({ level: 'dane' }, 'u@slow.test'));
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(/DNS lookup of TLSA for _\d+\._tcp\.mx\.slow\.test failed: no reply/);
    expect(s['mx.slow.test']).toEqual([]);
  });
  it('a DANE MX without STARTTLS fails: TLS is mandatory with usable TLSA', async () => {
    const { result, seen: s } = await seen(['mx.nostarttls.test'], () => send({ level: 'dane' }, 'u@nostarttls.test'));
    expect(result.error?.message).toMatch(/offered no STARTTLS; TLS is mandatory at level dane/);
    expect(s['mx.nostarttls.test']).toEqual([]);
  });
});

describe('when DANE does not apply', () => {
  it('only unusable TLSA records at dane-only: that MX fails (Postfix: TLSA records unusable)', async () => {
    const { result, seen: s } = await seen(['mx.unusable.test'], () => send({ level: 'dane-only' }, 'u@unusable.test'));
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.message).toMatch(/all unusable .*which level dane-only does not allow/);
    expect(s['mx.unusable.test']).toEqual([]);
  });
  it('only unusable TLSA records: mandatory TLS without authentication (encrypt)', async () => {
    const { result, seen: s } = await seen(['mx.unusable.test'], () => send({ level: 'dane' }, 'u@unusable.test'));
    expect(result.error).toBeUndefined();
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect(audit.level).toBe('encrypt');
    expect(audit.dane).toMatch(/all unusable/);
    expect(s['mx.unusable.test']).toEqual(TLS);
  });
  it('unsigned domain: dane runs as may, dane-only fails without connecting', async () => {
    const may = await seen(['mx.unsigned.test'], () => send({ level: 'dane' }, 'u@unsigned.test'));
    expect(may.result.info!.deliveries[0]!.attempts[0]!.audit.level).toBe('may');
    expect(may.seen['mx.unsigned.test']).toEqual(TLS);
    const only = await seen(['mx.unsigned.test'], () => send({ level: 'dane-only' }, 'u@unsigned.test'));
    expect(only.result.error?.code).toBe('ETLS');
    expect(only.result.error?.message).toMatch(/mx\.unsigned\.test\[[\d.]+\]:\d+: the MX RRset is not DNSSEC-secure, which level dane-only does not allow/);
    expect(only.seen['mx.unsigned.test']).toEqual([]);
  });
  it('hostsRequireTls on a dane host without TLSA: encrypt, never cleartext', async () => {
    const { result } = await seen(['mx.unsigned.test'], () => send({ level: 'dane', hostsRequireTls: ['mx.unsigned.test'] }, 'u@unsigned.test'));
    expect(result.info!.deliveries[0]!.attempts[0]!.audit.level).toBe('encrypt');
  });
  it('signed domain whose MX host is in an unsigned zone: no TLSA is used', async () => {
    const { result } = await seen(['mx.island.unsigned.test'], () => send({ level: 'dane' }, 'u@signedmx.test'));
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect(audit.level).toBe('may');
    expect(audit.dane).toMatch(/addresses of mx\.island\.unsigned\.test are not DNSSEC-secure/);
    const only = await seen(['mx.island.unsigned.test'], () => send({ level: 'dane-only' }, 'u@signedmx.test'));
    expect(only.result.error?.message).toMatch(
      /no secure TLSA records \(the addresses of mx\.island\.unsigned\.test are not DNSSEC-secure\), which level dane-only does not allow/,
    );
    expect(only.seen['mx.island.unsigned.test']).toEqual([]);
  });
  it('insecure MX RRset, secure TLSA at the host: still enforced, reported Trusted (insecure MX policy dane)', async () => {
    const { result, seen: s } = await seen(['mx.ee311.test'], () => send({ level: 'dane' }, 'u@insecuremx.test'));
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect([audit.level, audit.auth]).toEqual(['dane', 'Trusted']);
    expect(s['mx.ee311.test']).toEqual(TLS);
    const may = await seen(['mx.ee311.test'], () => send({ level: 'dane', daneInsecureMxPolicy: 'may' }, 'u@insecuremx.test'));
    expect(may.result.info!.deliveries[0]!.attempts[0]!.audit.level).toBe('may');
    const encrypt = await seen(['mx.ee311.test'], () => send({ level: 'dane', daneInsecureMxPolicy: 'encrypt' }, 'u@insecuremx.test'));
    expect(encrypt.result.info!.deliveries[0]!.attempts[0]!.audit.level).toBe('encrypt');
  });
  it('dane-only with an insecure MX RRset fails that MX, whatever TLSA the host has', async () => {
    const { result, seen: s } = await seen(['mx.ee311.test'], () => send({ level: 'dane-only' }, 'u@insecuremx.test'));
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.message).toMatch(/the MX RRset is not DNSSEC-secure, which level dane-only does not allow/);
    expect(s['mx.ee311.test']).toEqual([]);
  });
});

describe('MX hosts and fallback', () => {
  it('MX host that is a CNAME: TLSA at the target, which is the TLSA base domain and the SNI', async () => {
    const { result, seen: s, sni } = await seen(['target.cname.test'], () => send({ level: 'dane' }, 'u@cname.test'));
    expect(result.error).toBeUndefined();
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect(audit.auth).toBe('Verified');
    expect(audit.dane).toContain(`_${port}._tcp.target.cname.test`);
    expect(sni['target.cname.test']).toBe('target.cname.test');
    expect(s['target.cname.test']).toEqual(TLS);
  });
  it('first MX fails DANE, the second passes', async () => {
    const { result, seen: s } = await seen(['mx1.two.test', 'mx2.two.test'], () => send({ level: 'dane' }, 'u@two.test'));
    expect(result.error).toBeUndefined();
    const attempts = result.info!.deliveries[0]!.attempts;
    expect(attempts.map((a) => [a.mx, a.decision])).toEqual([
      ['mx1.two.test', 'next'],
      ['mx2.two.test', 'send'],
    ]);
    expect(attempts[0]!.reason).toMatch(/matched no certificate/);
    expect(s).toEqual({ 'mx1.two.test': [], 'mx2.two.test': TLS });
  });
  it('dane=encrypt: a mismatch is delivered at encrypt, audited with policy dane and why', async () => {
    const { result, seen: s } = await seen(['mx.nomatch.test'], () => send({ level: 'dane', fallbackLevels: 'dane=encrypt' }, 'u@nomatch.test'));
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect([audit.level, audit.policy]).toEqual(['encrypt', 'dane']);
    expect(audit.fallback_reason).toMatch(/matched no certificate/);
    expect(s['mx.nomatch.test']).toEqual(TLS);
  });
  it('fallback=none on the destination overrides dane=encrypt', async () => {
    const { result, seen: s } = await seen(['mx.nomatch.test'], () =>
      send({ level: 'may', fallbackLevels: 'dane=encrypt', policy: 'nomatch.test dane fallback=none' }, 'u@nomatch.test'),
    );
    expect(result.error?.code).toBe('ETLS');
    expect(s['mx.nomatch.test']).toEqual([]);
  });
});

describe('DANE and connection reuse', () => {
  it('a second message under the same DANE plan reuses the verified session', async () => {
    const peer = peers.get('mx.ee312.test')!;
    const before = peer.connections;
    const transport = tlsPolicy({ level: 'dane', port, dns: createResolver(resolverOptions()) });
    const mailer = nodemailer.createTransport(transport);
    const infos = [];
    for (let i = 0; i < 3; i++) infos.push(await mailer.sendMail({ from: 's@origin.test', to: `u${i}@ee312.test`, text: 'x' }));
    mailer.close();
    expect(peer.connections - before).toBe(1);
    expect(infos.map((i) => [i.deliveries[0]!.attempts[0]!.reused, i.deliveries[0]!.attempts[0]!.audit.auth])).toEqual([
      [false, 'Verified'],
      [true, 'Verified'],
      [true, 'Verified'],
    ]);
  });
});
