/**
 * plan: protocolRange, cipherList, matchNames and makePlan, as tables with exact results.
 *
 * Sources: Postfix postconf(5) smtp_tls_protocols / smtp_tls_ciphers / smtp_tls_verify_cert_match
 * / smtp_tls_secure_cert_match, tls_misc.c (tls_protocol_mask: a list of included protocols
 * excludes every protocol it does not name), the Postfix 3.8 change that treats the `low` and
 * `export` grades as `medium` (HISTORY 20230303), and this library's documented choices
 * (SNI = the MX host name by default; no SNI for an IP address).
 */
import { DEFAULT_CIPHERS, type ConnectionOptions, type SecureVersion } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { cipherList, makePlan, matchNames, protocolRange, type PlanInput } from '../lib/plan/index.js';
import type { Level, Policy } from '../lib/types.js';

type Range = { minVersion?: SecureVersion; maxVersion?: SecureVersion };
/** What protocolRange returns when no version is left: a range no handshake can satisfy. */
const EMPTY: Range = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' };
const ALL_TLS: Range = { minVersion: 'TLSv1', maxVersion: 'TLSv1.3' };

describe('protocolRange: Postfix protocol tokens -> minVersion/maxVersion', () => {
  const rows: Array<[string, string[] | undefined, Range]> = [
    ['unset: Node defaults', undefined, {}],
    ['empty list (protocols=): Node defaults', [], {}],
    // Postfix's historic default "!SSLv2:!SSLv3": every TLS version, TLSv1 included.
    ['!SSLv2:!SSLv3', ['!SSLv2', '!SSLv3'], ALL_TLS],
    ['>=TLSv1.2', ['>=TLSv1.2'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    ['<=TLSv1.2', ['<=TLSv1.2'], { minVersion: 'TLSv1', maxVersion: 'TLSv1.2' }],
    ['>=TLSv1.1 <=TLSv1.2', ['>=TLSv1.1', '<=TLSv1.2'], { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.2' }],
    ['>=TLSv1.2 <=TLSv1.3', ['>=TLSv1.2', '<=TLSv1.3'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    ['>=TLSv1.3', ['>=TLSv1.3'], { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }],
    ['>=TLSv1 (no bound)', ['>=TLSv1'], ALL_TLS],
    ['>=SSLv3 (no bound Node can see)', ['>=SSLv3'], ALL_TLS],
    ['>=TLSv1.2 with !SSLv3', ['>=TLSv1.2', '!SSLv3'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    ['tokens with white space around them', [' >=TLSv1.2 ', ' !TLSv1.3'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }],
    // Inclusion lists: only the protocols named.
    ['TLSv1.2 TLSv1.3', ['TLSv1.2', 'TLSv1.3'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    ['TLSv1.3 TLSv1.2 (order does not matter)', ['TLSv1.3', 'TLSv1.2'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    ['TLSv1.3 alone', ['TLSv1.3'], { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }],
    ['TLSv1 TLSv1.1', ['TLSv1', 'TLSv1.1'], { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }],
    ['SSLv3 TLSv1: only TLSv1 is usable', ['SSLv3', 'TLSv1'], { minVersion: 'TLSv1', maxVersion: 'TLSv1' }],
    ['TLSv1.2 TLSv1.3 !TLSv1.3', ['TLSv1.2', 'TLSv1.3', '!TLSv1.3'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }],
    ['TLSv1.1 TLSv1.2 TLSv1.3 >=TLSv1.2', ['TLSv1.1', 'TLSv1.2', 'TLSv1.3', '>=TLSv1.2'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    // Exclusions trim the low end, the high end, or both.
    ['!SSLv2:!SSLv3:!TLSv1:!TLSv1.1', ['!SSLv2', '!SSLv3', '!TLSv1', '!TLSv1.1'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    ['!TLSv1', ['!TLSv1'], { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.3' }],
    ['!TLSv1.3 (high end)', ['!TLSv1.3'], { minVersion: 'TLSv1', maxVersion: 'TLSv1.2' }],
    ['!TLSv1:!TLSv1.3 (both ends)', ['!TLSv1', '!TLSv1.3'], { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.2' }],
    ['!TLSv1:!TLSv1.1:!TLSv1.3 (both ends)', ['!TLSv1', '!TLSv1.1', '!TLSv1.3'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }],
    ['>=TLSv1.1 !TLSv1.1', ['>=TLSv1.1', '!TLSv1.1'], { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }],
    ['<=TLSv1.2 !TLSv1.2', ['<=TLSv1.2', '!TLSv1.2'], { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }],
    // Nothing left: a range no handshake can satisfy (never Node's defaults).
    ['>=TLSv1.3 <=TLSv1.2', ['>=TLSv1.3', '<=TLSv1.2'], EMPTY],
    ['TLSv1.2 !TLSv1.2', ['TLSv1.2', '!TLSv1.2'], EMPTY],
    ['TLSv1 >=TLSv1.2', ['TLSv1', '>=TLSv1.2'], EMPTY],
    ['every TLS version excluded', ['!TLSv1', '!TLSv1.1', '!TLSv1.2', '!TLSv1.3'], EMPTY],
    // Postfix (tls_protocol_mask): naming only SSL protocols excludes every TLS version.
    ['SSLv3 alone', ['SSLv3'], EMPTY],
    ['SSLv2 SSLv3', ['SSLv2', 'SSLv3'], EMPTY],
    // <=SSLv3 (accepted by the policy table) leaves no TLS version either.
    ['<=SSLv3', ['<=SSLv3'], EMPTY],
  ];
  it.each(rows)('%s', (_name, tokens, expected) => {
    expect(protocolRange(tokens)).toEqual(expected);
  });
});

describe('cipherList: Postfix grades and exclude -> an OpenSSL cipher string', () => {
  const MEDIUM = 'HIGH:MEDIUM:!aNULL:!eNULL';
  const rows: Array<[string, string | undefined, string[] | undefined, string | undefined]> = [
    ['neither: Node defaults', undefined, undefined, undefined],
    ['empty exclude: Node defaults', undefined, [], undefined],
    ['high', 'high', undefined, 'HIGH:!aNULL:!eNULL'],
    ['HIGH (grade names are case-insensitive)', 'HIGH', undefined, 'HIGH:!aNULL:!eNULL'],
    ['medium', 'medium', undefined, MEDIUM],
    // Postfix 3.8 (HISTORY 20230303): "Treat "export" and "low" cipher grades as "medium"";
    // lib/policy/entry.ts says the same of its own grade list.
    ['low = medium (Postfix >= 3.8)', 'low', undefined, MEDIUM],
    ['export = medium (Postfix >= 3.8)', 'export', undefined, MEDIUM],
    // postconf(5): null enables only the NULL ciphers (authentication without encryption);
    // tls_null_cipherlist = eNULL:!aNULL.
    ['null: only NULL ciphers', 'null', undefined, 'eNULL:!aNULL'],
    ['an OpenSSL list passes through', 'ECDHE+AESGCM', undefined, 'ECDHE+AESGCM'],
    ['high with exclude', 'high', ['RC4', 'aNULL'], 'HIGH:!aNULL:!eNULL:!RC4:!aNULL'],
    ['medium with exclude', 'medium', ['3DES'], `${MEDIUM}:!3DES`],
    ['exclude alone: from OpenSSL DEFAULT', undefined, ['RC4', 'MD5', 'kRSA'], 'DEFAULT:!RC4:!MD5:!kRSA'],
    ['exclude with an OpenSSL list', 'ECDHE+AESGCM:ECDHE+CHACHA20', ['AES128'], 'ECDHE+AESGCM:ECDHE+CHACHA20:!AES128'],
  ];
  it.each(rows)('%s', (_name, ciphers, exclude, expected) => {
    expect(cipherList(ciphers, exclude)).toBe(expected);
  });
});

describe('matchNames: the names a verify/secure certificate must match', () => {
  const mx = { nexthop: 'example.com', host: 'mx1.example.net', mxSecure: false };
  const rows: Array<[string, Level, string[] | undefined, { nexthop: string; host: string; mxSecure: boolean }, string[]]> = [
    // Defaults: smtp_tls_verify_cert_match = hostname, smtp_tls_secure_cert_match = nexthop, dot-nexthop.
    ['verify default: hostname', 'verify', undefined, mx, ['mx1.example.net']],
    ['verify, empty match list: the default', 'verify', [], mx, ['mx1.example.net']],
    ['verify default, DNSSEC MX: still hostname', 'verify', undefined, { ...mx, mxSecure: true }, ['mx1.example.net']],
    ['secure default: nexthop, dot-nexthop', 'secure', undefined, mx, ['example.com', '.example.com']],
    ['secure default, DNSSEC MX: nexthop, dot-nexthop', 'secure', undefined, { ...mx, mxSecure: true }, ['example.com', '.example.com']],
    ['secure, empty match list: the default', 'secure', [], mx, ['example.com', '.example.com']],
    // secure: `hostname` only from a DNSSEC-secure MX answer, or when the host is the next hop.
    ['secure hostname:nexthop, insecure MX: hostname dropped', 'secure', ['hostname', 'nexthop'], mx, ['example.com']],
    ['secure HOSTNAME (any case), insecure MX: dropped', 'secure', ['HOSTNAME', 'nexthop'], mx, ['example.com']],
    ['secure hostname alone, insecure MX: nothing left', 'secure', ['hostname'], mx, []],
    ['secure hostname:nexthop, DNSSEC MX: kept', 'secure', ['hostname', 'nexthop'], { ...mx, mxSecure: true }, ['mx1.example.net', 'example.com']],
    [
      'secure hostname, host = nexthop (relay / implicit MX)',
      'secure',
      ['hostname', 'dot-nexthop'],
      { nexthop: 'relay.example.com', host: 'relay.example.com', mxSecure: false },
      ['relay.example.com', '.relay.example.com'],
    ],
    ['verify hostname:nexthop, insecure MX: hostname kept (verify trusts MX names)', 'verify', ['hostname', 'nexthop'], mx, ['mx1.example.net', 'example.com']],
    // Explicit names: lower case, no trailing dot, a leading '.' for subdomains, duplicates dropped.
    [
      'verify explicit names',
      'verify',
      ['mail.example.org', '.Example.ORG', 'Backup.Example.com.'],
      mx,
      ['mail.example.org', '.example.org', 'backup.example.com'],
    ],
    ['secure explicit names and keywords', 'secure', ['nexthop', '.example.net', 'example.com'], mx, ['example.com', '.example.net']],
    ['secure explicit name equal to the MX host is not the keyword: kept', 'secure', ['mx1.example.net'], mx, ['mx1.example.net']],
    // IDN: A-labels.
    ['verify IDN name', 'verify', ['bücher.example', '.münchen.example'], mx, ['xn--bcher-kva.example', '.xn--mnchen-3ya.example']],
    [
      'secure default with an IDN next hop',
      'secure',
      undefined,
      { nexthop: 'bücher.example', host: 'mx.bücher.example', mxSecure: false },
      ['xn--bcher-kva.example', '.xn--bcher-kva.example'],
    ],
    [
      'verify default with an IDN host',
      'verify',
      undefined,
      { nexthop: 'bücher.example', host: 'mx.bücher.example', mxSecure: false },
      ['mx.xn--bcher-kva.example'],
    ],
    // Levels without a default match.
    ['fingerprint: no names', 'fingerprint', undefined, mx, []],
    ['encrypt: no names', 'encrypt', undefined, mx, []],
  ];
  it.each(rows)('%s', (_name, level, tokens, ctx, expected) => {
    expect(matchNames(level, tokens, ctx)).toEqual(expected);
  });

  it('a name that is not a valid IDN throws EMATCH', () => {
    expect(() => matchNames('verify', ['exa mple.bücher'], mx)).toThrow(expect.objectContaining({ code: 'EMATCH' }));
    // At secure with an insecure MX, `hostname` is dropped before it is expanded: no error from it.
    expect(matchNames('secure', ['hostname', 'nexthop'], { nexthop: 'example.com', host: 'exa mple.bücher', mxSecure: false })).toEqual(['example.com']);
  });
});

describe('makePlan', () => {
  const FP = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
  const base = (policy: Partial<Policy> & { level: Level }, over: Partial<PlanInput> = {}): PlanInput => ({
    policy: { source: 'policy.txt:1', ...policy },
    nexthop: 'example.com',
    host: 'mx1.example.net',
    address: '192.0.2.1',
    port: 25,
    mxSecure: false,
    digest: 'sha256',
    files: {},
    ...over,
  });

  it('a verify plan, whole', () => {
    const input = base({ level: 'verify', protocols: ['>=TLSv1.2'], ciphers: 'high', exclude: ['RC4'] }, { fallback: 'may' });
    expect(makePlan(input)).toEqual({
      nexthop: 'example.com',
      host: 'mx1.example.net',
      address: '192.0.2.1',
      port: 25,
      where: 'mx1.example.net[192.0.2.1]:25',
      level: 'verify',
      policy: input.policy,
      fallback: 'may',
      names: ['mx1.example.net'],
      fingerprints: [],
      digest: 'sha256',
      implicitTls: false,
      tls: { servername: 'mx1.example.net', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: 'HIGH:!aNULL:!eNULL:!RC4' },
    });
  });

  it('a may plan, whole: no names, no fingerprints, no fallback or shadow keys, TLS options only for SNI', () => {
    const input = base({ level: 'may' });
    expect(makePlan(input)).toEqual({
      nexthop: 'example.com',
      host: 'mx1.example.net',
      address: '192.0.2.1',
      port: 25,
      where: 'mx1.example.net[192.0.2.1]:25',
      level: 'may',
      policy: input.policy,
      names: [],
      fingerprints: [],
      digest: 'sha256',
      implicitTls: false,
      tls: { servername: 'mx1.example.net' },
    });
  });

  describe('where: host[address]:port, as Postfix names a server', () => {
    it.each([
      ['mx1.example.net', '192.0.2.1', 25, 'mx1.example.net[192.0.2.1]:25'],
      ['mx1.example.net', '2001:db8::25', 25, 'mx1.example.net[2001:db8::25]:25'],
      ['smtp.example.org', '198.51.100.7', 465, 'smtp.example.org[198.51.100.7]:465'],
      ['192.0.2.9', '192.0.2.9', 587, '192.0.2.9[192.0.2.9]:587'],
    ] as const)('%s %s %i -> %s', (host, address, port, where) => {
      expect(makePlan(base({ level: 'encrypt' }, { host, address, port })).where).toBe(where);
    });
  });

  describe('SNI (servername): hostname by default, nexthop, a literal; never an IP address', () => {
    const rows: Array<[string, string | undefined, Partial<PlanInput>, string | undefined]> = [
      ['default: the MX host', undefined, {}, 'mx1.example.net'],
      ['hostname', 'hostname', {}, 'mx1.example.net'],
      ['nexthop', 'nexthop', {}, 'example.com'],
      ['a literal name', 'smtp-in.example.org', {}, 'smtp-in.example.org'],
      ['default, host is an IPv4 literal (relay [192.0.2.9]): none', undefined, { host: '192.0.2.9', nexthop: '192.0.2.9', address: '192.0.2.9' }, undefined],
      ['default, host is an IPv6 literal: none', undefined, { host: '2001:db8::9', nexthop: '2001:db8::9', address: '2001:db8::9' }, undefined],
      ['nexthop, next hop is an IP literal: none', 'nexthop', { nexthop: '192.0.2.9', host: 'relay.example.net' }, undefined],
      ['a literal IPv4 address: none', '198.51.100.7', {}, undefined],
      ['a literal IPv6 address: none', '2001:db8::7', {}, undefined],
      ['a name with a numeric first label is a name', '25.mail.example.org', {}, '25.mail.example.org'],
    ];
    it.each(rows)('%s', (_name, servername, over, expected) => {
      const plan = makePlan(base({ level: 'encrypt', ...(servername !== undefined ? { servername } : {}) }, over));
      if (expected === undefined) expect(plan.tls).not.toHaveProperty('servername');
      else expect(plan.tls.servername).toBe(expected);
    });
  });

  describe('names only at verify and secure; fingerprints only at fingerprint', () => {
    const rows: Array<[Level, string[] | undefined, string[], string[]]> = [
      ['none', undefined, [], []],
      ['may', undefined, [], []],
      ['encrypt', undefined, [], []],
      ['encrypt', ['mail.example.com'], [], []],
      ['dane', undefined, [], []],
      ['dane-only', undefined, [], []],
      ['fingerprint', [FP], [], [FP]],
      ['fingerprint', [FP, 'abcdef'], [], [FP, 'abcdef']],
      ['fingerprint', undefined, [], []],
      ['verify', undefined, ['mx1.example.net'], []],
      ['verify', ['nexthop', '.example.org'], ['example.com', '.example.org'], []],
      ['secure', undefined, ['example.com', '.example.com'], []],
      ['secure', ['hostname', 'nexthop'], ['example.com'], []],
    ];
    it.each(rows)('%s match=%j -> names %j, fingerprints %j', (level, match, names, fingerprints) => {
      const plan = makePlan(base({ level, ...(match ? { match } : {}) }));
      expect({ names: plan.names, fingerprints: plan.fingerprints }).toEqual({ names, fingerprints });
    });

    it('secure keeps hostname when the MX answer was DNSSEC-secure', () => {
      expect(makePlan(base({ level: 'secure', match: ['hostname', 'nexthop'] }, { mxSecure: true })).names).toEqual(['mx1.example.net', 'example.com']);
    });
    it('secure keeps hostname when the host is the next hop (a relay)', () => {
      const plan = makePlan(base({ level: 'secure', match: ['hostname'] }, { nexthop: 'relay.example.com', host: 'relay.example.com' }));
      expect(plan.names).toEqual(['relay.example.com']);
    });
  });

  describe('files and TLS options', () => {
    const rows: Array<[string, PlanInput['files'], ConnectionOptions]> = [
      ['no files', {}, { servername: 'mx1.example.net' }],
      ['a CA bundle', { ca: 'CA-PEM' }, { servername: 'mx1.example.net', ca: 'CA-PEM' }],
      ['a client certificate and key', { cert: 'CERT-PEM', key: 'KEY-PEM' }, { servername: 'mx1.example.net', cert: 'CERT-PEM', key: 'KEY-PEM' }],
      [
        'all three, as Buffers',
        { ca: Buffer.from('ca'), cert: Buffer.from('cert'), key: Buffer.from('key') },
        { servername: 'mx1.example.net', ca: Buffer.from('ca'), cert: Buffer.from('cert'), key: Buffer.from('key') },
      ],
    ];
    it.each(rows)('%s', (_name, files, tls) => {
      expect(makePlan(base({ level: 'verify' }, { files })).tls).toEqual(tls);
    });

    it('protocols and ciphers reach the handshake options', () => {
      const plan = makePlan(base({ level: 'encrypt', protocols: ['!SSLv2', '!SSLv3', '!TLSv1', '!TLSv1.1'], ciphers: 'medium', exclude: ['3DES'] }));
      expect(plan.tls).toEqual({ servername: 'mx1.example.net', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: 'HIGH:MEDIUM:!aNULL:!eNULL:!3DES' });
    });

    // OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0: lowered for that connection
    // at may and encrypt, never at a level that authenticates (the table refuses those entries).
    const legacy: Array<[Level, string[], string | undefined, string | undefined]> = [
      ['may', ['>=TLSv1'], undefined, `${DEFAULT_CIPHERS}:@SECLEVEL=0`],
      ['may', ['!SSLv2', '!SSLv3'], 'medium', 'HIGH:MEDIUM:!aNULL:!eNULL:@SECLEVEL=0'],
      ['encrypt', ['TLSv1.1', 'TLSv1.2'], 'high', 'HIGH:!aNULL:!eNULL:@SECLEVEL=0'],
      ['encrypt', ['<=TLSv1.2'], undefined, `${DEFAULT_CIPHERS}:@SECLEVEL=0`],
      ['may', ['>=TLSv1.2'], undefined, undefined],
      ['encrypt', ['!TLSv1', '!TLSv1.1'], 'high', 'HIGH:!aNULL:!eNULL'],
      ['encrypt', ['>=TLSv1.3', '<=TLSv1.1'], undefined, undefined],
      ['dane', ['>=TLSv1'], undefined, undefined],
      ['fingerprint', ['>=TLSv1'], undefined, undefined],
      ['verify', ['>=TLSv1'], 'high', 'HIGH:!aNULL:!eNULL'],
      ['secure', ['>=TLSv1.1'], undefined, undefined],
    ];
    it.each(legacy)('%s protocols=%j ciphers=%s -> cipher string %s', (level, protocols, ciphers, expected) => {
      expect(makePlan(base({ level, protocols, ...(ciphers ? { ciphers } : {}), ...(level === 'fingerprint' ? { match: [FP] } : {}) })).tls.ciphers).toBe(
        expected,
      );
    });
  });

  describe('pass-through fields', () => {
    it('fallback, shadow, digest, implicitTls', () => {
      const plan = makePlan(base({ level: 'verify', shadow: 'secure' }, { fallback: 'encrypt', digest: 'sha512', implicitTls: true, port: 465 }));
      expect({ fallback: plan.fallback, shadow: plan.shadow, digest: plan.digest, implicitTls: plan.implicitTls, port: plan.port, where: plan.where }).toEqual({
        fallback: 'encrypt',
        shadow: 'secure',
        digest: 'sha512',
        implicitTls: true,
        port: 465,
        where: 'mx1.example.net[192.0.2.1]:465',
      });
    });
    it('no fallback and no shadow: the keys are absent', () => {
      const plan = makePlan(base({ level: 'verify' }));
      expect(plan).not.toHaveProperty('fallback');
      expect(plan).not.toHaveProperty('shadow');
      expect(plan.implicitTls).toBe(false);
    });
    it('the policy object is the one given', () => {
      const input = base({ level: 'fingerprint', match: [FP] });
      expect(makePlan(input).policy).toBe(input.policy);
    });
  });
});
