import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { beforeAll, describe, expect, test } from 'vitest';
import { hasNoControls } from '../lib/text/index.js';
import type { DigestAlgorithm, Level, PeerTls, ResultType, Verdict } from '../lib/types.js';

/**
 * RFC 8460 section 4.3's result type a failed verdict must carry: no TLS at a level that needs
 * it -> starttls-not-supported; no certificate, or a fingerprint that matched nothing ->
 * validation-failure; a chain that did not verify -> certificate-expired when OpenSSL said the
 * dates, else certificate-not-trusted; a verified chain whose names matched nothing ->
 * certificate-host-mismatch.
 */
function pkixResultType(level: Level, want: Verdict): ResultType {
  if (want.trust === 'Cleartext') return 'starttls-not-supported';
  if (want.trust === 'Anonymous' || level === 'fingerprint') return 'validation-failure';
  if (want.trust === 'Untrusted')
    return /\((CERT_HAS_EXPIRED|CERT_NOT_YET_VALID)\)$/.test(want.reason ?? '') ? 'certificate-expired' : 'certificate-not-trusted';
  return 'certificate-host-mismatch';
}
const typed = (level: Level, want: Verdict): Verdict => (want.ok ? want : { ...want, resultType: pkixResultType(level, want) });
import {
  auditDigests,
  certDigest,
  certNames,
  describeAuthorizationError,
  expandMatch,
  nameMatches,
  normalizeFingerprint,
  parseSubjectAltName,
  SessionCerts,
  spkiDigest,
  subjectCommonNames,
  verifyPeer,
  type VerifyLevel,
  type VerifyRequest,
} from '../lib/pkix/index.js';
import { daysFromNow, type Issued, issueWithExtensions, makeCA, makeLeaf } from './helpers/pki.js';
import { handshake } from './helpers/tls-peer.js';

/** openssl's answers, by command and input (each openssl run costs tens of milliseconds). */
const opensslMemo = new Map<string, string>();
function memo(key: string, compute: () => string): string {
  let v = opensslMemo.get(key);
  if (v === undefined) opensslMemo.set(key, (v = compute()));
  return v;
}

/** `openssl x509 -fingerprint`: the value after '='. */
function opensslCertFingerprint(pem: string, alg: DigestAlgorithm): string {
  return memo(`cert ${alg} ${pem}`, () => opensslCertFingerprintRun(pem, alg));
}

function opensslCertFingerprintRun(pem: string, alg: DigestAlgorithm): string {
  const out = execFileSync('openssl', ['x509', '-noout', '-fingerprint', `-${alg}`], { input: pem, encoding: 'utf8' });
  return out.trim().split('=')[1]!;
}

/** `openssl x509 -pubkey | openssl pkey -pubin -outform DER | openssl dgst`, in Postfix's format. */
function opensslSpkiFingerprint(pem: string, alg: DigestAlgorithm): string {
  return memo(`spki ${alg} ${pem}`, () => opensslSpkiFingerprintRun(pem, alg));
}

function opensslSpkiFingerprintRun(pem: string, alg: DigestAlgorithm): string {
  const out = execFileSync('sh', ['-c', `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -${alg}`], {
    input: pem,
    encoding: 'utf8',
  });
  const hex = out.trim().split('= ').pop()!;
  return hex.toUpperCase().match(/../g)!.join(':');
}

// ---------------------------------------------------------------------------------------
// Test PKI, made once for this file.

const pki = {} as Record<
  | 'root'
  | 'otherRoot'
  | 'inter'
  | 'expiredInter'
  | 'good'
  | 'rsa'
  | 'cnOnly'
  | 'sanOther'
  | 'expired'
  | 'notYet'
  | 'self'
  | 'idn'
  | 'underExpiredInter'
  | 'oddNames',
  Issued
>;

/** Real handshakes, by scenario. */
const peers = {} as Record<
  'good' | 'expired' | 'notYet' | 'self' | 'unknownCA' | 'sanOther' | 'sanOtherNodeCheck' | 'cnOnly' | 'idn' | 'underExpiredInter' | 'anon',
  PeerTls
>;

beforeAll(async () => {
  pki.root = await makeCA('Test Root CA');
  pki.otherRoot = await makeCA('Other Root CA');
  [pki.inter, pki.expiredInter] = await Promise.all([
    makeCA('Test Intermediate CA', { issuer: pki.root }),
    makeCA('Expired Intermediate CA', { issuer: pki.root, notBefore: daysFromNow(-60), notAfter: daysFromNow(-2) }),
  ]);
  const names = ['mx1.example.net', '*.example.net'];
  [pki.good, pki.rsa, pki.cnOnly, pki.sanOther, pki.expired, pki.notYet, pki.self, pki.idn, pki.underExpiredInter, pki.oddNames] = await Promise.all([
    makeLeaf(pki.inter, { names, cn: 'mx1.example.net' }),
    makeLeaf(pki.root, { names, keyType: 'rsa' }),
    makeLeaf(pki.root, { names: [], cn: 'mx1.example.net' }),
    makeLeaf(pki.root, { names: ['mx.other.test', '*.other.test'], cn: 'mx1.example.net' }),
    makeLeaf(pki.root, { names, notBefore: daysFromNow(-30), notAfter: daysFromNow(-1) }),
    makeLeaf(pki.root, { names, notBefore: daysFromNow(2), notAfter: daysFromNow(30) }),
    makeLeaf('self', { names, cn: 'mx1.example.net' }),
    makeLeaf(pki.root, { names: ['xn--bcher-kva.example'] }),
    makeLeaf(pki.expiredInter, { names }),
    makeLeaf(pki.root, { names: [], cn: 'Mail, Inc. "MX" + 1' }),
  ]);
  const ca = [pki.root.certPem];
  const servername = 'mx1.example.net';
  const run = (leaf: Issued, extra: Partial<Parameters<typeof handshake>[0]> = {}) =>
    handshake({ chainPem: leaf.chainPem, keyPem: leaf.keyPem, ca, servername, ...extra });
  [
    peers.good,
    peers.expired,
    peers.notYet,
    peers.self,
    peers.unknownCA,
    peers.sanOther,
    peers.sanOtherNodeCheck,
    peers.cnOnly,
    peers.idn,
    peers.underExpiredInter,
    peers.anon,
  ] = await Promise.all([
    run(pki.good),
    run(pki.expired),
    run(pki.notYet),
    run(pki.self),
    run(pki.good, { ca: [pki.otherRoot.certPem] }),
    run(pki.sanOther),
    // Node's own checkServerIdentity: the chain verifies, the name does not.
    run(pki.sanOther, { client: { checkServerIdentity: tls.checkServerIdentity } }),
    run(pki.cnOnly),
    run(pki.idn),
    run(pki.underExpiredInter),
    handshake({ anonymous: true }),
  ]);
});

// ---------------------------------------------------------------------------------------

describe('handshake facts (what the verdicts below are judged on)', () => {
  test.each([
    { scenario: 'good', authorized: true, authorizationError: undefined, chain: 3 },
    { scenario: 'expired', authorized: false, authorizationError: 'CERT_HAS_EXPIRED', chain: 2 },
    { scenario: 'notYet', authorized: false, authorizationError: 'CERT_NOT_YET_VALID', chain: 2 },
    { scenario: 'self', authorized: false, authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT', chain: 1 },
    { scenario: 'unknownCA', authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', chain: 2 },
    { scenario: 'sanOther', authorized: true, authorizationError: undefined, chain: 2 },
    { scenario: 'sanOtherNodeCheck', authorized: false, authorizationError: 'ERR_TLS_CERT_ALTNAME_INVALID', chain: 2 },
    { scenario: 'underExpiredInter', authorized: false, authorizationError: 'CERT_HAS_EXPIRED', chain: 3 },
    { scenario: 'anon', authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT', chain: 0 },
  ] as const)('$scenario', ({ scenario, authorized, authorizationError, chain }) => {
    const peer = peers[scenario];
    expect(peer.authorized).toBe(authorized);
    expect(peer.authorizationError).toBe(authorizationError);
    expect(peer.chain).toHaveLength(chain);
    expect(peer.protocol).toBe(scenario === 'anon' ? 'TLSv1.2' : 'TLSv1.3');
    expect(peer.cipher).toMatch(scenario === 'anon' ? /^AECDH-/ : /^TLS_/);
  });

  test('the chain starts with the leaf the server sent', () => {
    expect(peers.good.chain[0]).toEqual(pki.good.der);
    expect(peers.good.chain[1]).toEqual(pki.inter.der);
    expect(peers.good.chain[2]).toEqual(pki.root.der);
  });
});

describe('certDigest and spkiDigest', () => {
  test.each([
    // Known vectors: Postfix's format is uppercase hex bytes joined with ':'.
    { data: 'abc', alg: 'sha256', want: 'BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD' },
    { data: 'abc', alg: 'md5', want: '90:01:50:98:3C:D2:4F:B0:D6:96:3F:7D:28:E1:7F:72' },
    { data: 'abc', alg: 'sha1', want: 'A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D' },
  ] as const)('$alg of "$data"', ({ data, alg, want }) => {
    expect(certDigest(Buffer.from(data), alg)).toBe(want);
  });

  const algs: DigestAlgorithm[] = ['sha256', 'sha1', 'sha512', 'sha384', 'sha224', 'md5'];
  test.each((['good', 'rsa', 'self'] as const).flatMap((cert) => algs.map((alg) => ({ cert, alg }))))(
    '$cert certificate, $alg: as openssl computes it',
    ({ cert, alg }) => {
      const { certPem, der } = pki[cert];
      expect(certDigest(der, alg)).toBe(opensslCertFingerprint(certPem, alg));
      expect(spkiDigest(der, alg)).toBe(opensslSpkiFingerprint(certPem, alg));
      expect(spkiDigest(der, alg)).not.toBe(certDigest(der, alg));
    },
  );

  test('an unknown algorithm is refused', () => {
    expect(() => certDigest(Buffer.from('x'), 'sha3' as DigestAlgorithm)).toThrow('unsupported digest algorithm "sha3"');
  });
});

describe('normalizeFingerprint', () => {
  test.each([
    { input: 'ab:cd:ef:01', want: 'AB:CD:EF:01' },
    { input: 'ABCDEF01', want: 'AB:CD:EF:01' },
    { input: 'abCDef01', want: 'AB:CD:EF:01' },
    { input: 'ab:cdef:01', want: 'AB:CD:EF:01' },
    { input: '  ab:cd  ', want: 'AB:CD' },
  ])('$input -> $want', ({ input, want }) => {
    expect(normalizeFingerprint(input)).toBe(want);
  });

  test.each([
    { input: 'zz:00', error: 'invalid fingerprint "zz:00": it has characters other than hex digits and colons' },
    { input: 'ab-cd', error: 'invalid fingerprint "ab-cd": it has characters other than hex digits and colons' },
    { input: 'abc', error: 'invalid fingerprint "abc": its hex digits do not form whole bytes separated by single colons' },
    { input: 'a:bc', error: 'invalid fingerprint "a:bc": its hex digits do not form whole bytes separated by single colons' },
    { input: ':ab', error: 'invalid fingerprint ":ab": its hex digits do not form whole bytes separated by single colons' },
    { input: 'ab:', error: 'invalid fingerprint "ab:": its hex digits do not form whole bytes separated by single colons' },
    { input: 'ab::cd', error: 'invalid fingerprint "ab::cd": its hex digits do not form whole bytes separated by single colons' },
    { input: '', error: 'invalid fingerprint "": it is empty' },
    { input: 'ab'.repeat(65), error: `invalid fingerprint "${'ab'.repeat(65)}": longer than any supported digest (64 bytes)` },
  ])('$input is refused', ({ input, error }) => {
    expect(() => normalizeFingerprint(input)).toThrow(error);
    expect(() => normalizeFingerprint(input)).toThrow(expect.objectContaining({ code: 'EFINGERPRINT' }));
  });
});

describe('expandMatch', () => {
  const ctx = { hostname: 'MX1.Example.NET.', nexthop: 'example.net' };
  test.each([
    { tokens: ['hostname'], want: ['mx1.example.net'] },
    { tokens: ['HostName'], want: ['mx1.example.net'] },
    { tokens: ['nexthop', 'dot-nexthop'], want: ['example.net', '.example.net'] },
    { tokens: ['NEXTHOP', 'Dot-Nexthop'], want: ['example.net', '.example.net'] },
    { tokens: ['mail.Example.COM.'], want: ['mail.example.com'] },
    { tokens: ['.Example.COM'], want: ['.example.com'] },
    { tokens: ['hostname.example.org'], want: ['hostname.example.org'] },
    { tokens: ['bücher.example'], want: ['xn--bcher-kva.example'] },
    { tokens: ['.BÜCHER.example'], want: ['.xn--bcher-kva.example'] },
    { tokens: ['\u3002bücher.example'], want: ['.xn--bcher-kva.example'] },
    { tokens: ['mx\uff0ebücher.example'], want: ['mx.xn--bcher-kva.example'] },
    { tokens: ['.', '', '  ', 'hostname', 'mx1.example.net', 'dot-nexthop', '.example.net'], want: ['mx1.example.net', '.example.net'] },
  ])('$tokens', ({ tokens, want }) => {
    expect(expandMatch(tokens, ctx)).toEqual(want);
  });

  test('a name that is no valid IDN is refused', () => {
    expect(() => expandMatch(['exa mple.bücher'], ctx)).toThrow('match name "exa mple.bücher" is not a valid internationalized domain name');
    expect(() => expandMatch(['exa mple.bücher'], ctx)).toThrow(expect.objectContaining({ code: 'EMATCH' }));
  });
});

describe('nameMatches (each row also checked against OpenSSL X509_check_host with NO_PARTIAL_WILDCARDS)', () => {
  const rows = [
    { cert: 'mx1.example.net', ref: 'mx1.example.net', want: true, why: 'same name' },
    { cert: 'MX1.Example.Net', ref: 'mx1.example.net', want: true, why: 'case-insensitive' },
    { cert: 'mx1.example.net', ref: 'mx2.example.net', want: false, why: 'other name' },
    { cert: 'mx1.example.net', ref: 'example.net', want: false, why: 'parent domain' },
    { cert: '*.example.net', ref: 'mx1.example.net', want: true, why: 'wildcard: one label' },
    { cert: '*.Example.NET', ref: 'MX1.example.net', want: true, why: 'wildcard, case-insensitive' },
    { cert: '*.example.net', ref: 'example.net', want: false, why: 'wildcard: not the domain itself' },
    { cert: '*.example.net', ref: 'a.b.example.net', want: false, why: 'wildcard: not two labels' },
    { cert: '*.example.net', ref: 'a_b.example.net', want: false, why: 'wildcard: letters, digits and hyphens only' },
    { cert: '*.example.net', ref: 'xn--bcher-kva.example.net', want: true, why: 'wildcard: an A-label is one label' },
    { cert: '*.example.net', ref: '*.example.net', want: true, why: 'wildcard: matches a literal *' },
    { cert: 'f*.example.net', ref: 'foo.example.net', want: false, why: 'no partial wildcards' },
    { cert: '*o.example.net', ref: 'foo.example.net', want: false, why: 'no partial wildcards (suffix form)' },
    { cert: 'f*.example.net', ref: 'f*.example.net', want: true, why: 'a partial wildcard matches only literally' },
    { cert: '*.net', ref: 'example.net', want: false, why: 'a wildcard needs three labels' },
    { cert: 'a.*.example.net', ref: 'a.b.example.net', want: false, why: 'wildcard only in the left-most label' },
    { cert: 'xn--bcher-kva.example', ref: 'xn--bcher-kva.example', want: true, why: 'IDN A-label' },
    { cert: 'mx1.example.net', ref: '.example.net', want: true, why: 'leading dot: a subdomain' },
    { cert: 'a.b.example.net', ref: '.example.net', want: true, why: 'leading dot: any depth' },
    { cert: 'example.net', ref: '.example.net', want: false, why: 'leading dot: not the domain itself' },
    { cert: 'mx1.otherexample.net', ref: '.example.net', want: false, why: 'leading dot: on a label boundary' },
    { cert: 'MX1.EXAMPLE.NET', ref: '.example.net', want: true, why: 'leading dot, case-insensitive' },
    { cert: '*.example.net', ref: '.example.net', want: true, why: 'leading dot: a wildcard just below' },
    { cert: '*.sub.example.net', ref: '.example.net', want: true, why: 'leading dot: a wildcard deeper below' },
    { cert: 'f*.example.net', ref: '.example.net', want: true, why: 'leading dot: the prefix is not inspected' },
    { cert: '*.example.net', ref: '.mx1.example.net', want: false, why: 'leading dot: a wildcard is not expanded' },
  ];

  const certs = new Map<string, X509Certificate>();
  beforeAll(async () => {
    await Promise.all(
      [...new Set(rows.map((r) => r.cert))].map(async (name) => {
        certs.set(name, new X509Certificate((await makeLeaf('self', { names: [name] })).der));
      }),
    );
  });

  test.each(rows)('$cert vs $ref: $want ($why)', ({ cert, ref, want }) => {
    expect(nameMatches(cert, ref)).toBe(want);
    const openssl = certs.get(cert)!.checkHost(ref, { partialWildcards: false }) !== undefined;
    expect(openssl).toBe(want);
  });

  test('empty names and embedded NULs never match', () => {
    expect(nameMatches('', 'mx1.example.net')).toBe(false);
    expect(nameMatches('mx1.example.net', '')).toBe(false);
    expect(nameMatches('mx1.example.net\0.evil', 'mx1.example.net\0.evil')).toBe(false);
  });
});

describe('certNames', () => {
  test.each([
    { cert: 'good', want: ['mx1.example.net', '*.example.net'], why: 'DNS subjectAltNames; the CN is ignored' },
    { cert: 'sanOther', want: ['mx.other.test', '*.other.test'], why: 'DNS subjectAltNames; the CN is ignored' },
    { cert: 'cnOnly', want: ['mx1.example.net'], why: 'the CN, when there is no DNS subjectAltName' },
    { cert: 'oddNames', want: ['Mail, Inc. "MX" + 1'], why: 'an escaped CN' },
    { cert: 'idn', want: ['xn--bcher-kva.example'], why: 'an A-label' },
    { cert: 'root', want: ['Test Root CA'], why: 'a CA: its CN' },
  ] as const)('$cert: $why', ({ cert, want }) => {
    expect(certNames(pki[cert].der)).toEqual(want);
  });

  test('no subjectAltName and no CN: no names', async () => {
    const leaf = await makeLeaf('self', { names: [] });
    expect(certNames(leaf.der)).toEqual([]);
  });

  test('a DNS name Node prints quoted', async () => {
    const leaf = await makeLeaf('self', { names: ['a,b.example.net', 'c.example.net'], cn: 'cn.example.net' });
    expect(new X509Certificate(leaf.der).subjectAltName).toBe('DNS:"a\\u002cb.example.net", DNS:c.example.net');
    expect(certNames(leaf.der)).toEqual(['a,b.example.net', 'c.example.net']);
  });

  test.each([
    { text: undefined, want: [] },
    { text: 'DNS:a.example', want: [{ type: 'DNS', value: 'a.example' }] },
    {
      text: 'DNS:a.example, IP Address:192.0.2.1, email:x@y.example, DNS:"a\\u002cb, DNS:c.example", DNS:"q\\"\\\\.example"',
      want: [
        { type: 'DNS', value: 'a.example' },
        { type: 'IP Address', value: '192.0.2.1' },
        { type: 'email', value: 'x@y.example' },
        { type: 'DNS', value: 'a,b, DNS:c.example' },
        { type: 'DNS', value: 'q"\\.example' },
      ],
    },
    {
      text: 'othername: SRVName:_smtp.example, DNS:b.example',
      want: [
        { type: 'othername', value: ' SRVName:_smtp.example' },
        { type: 'DNS', value: 'b.example' },
      ],
    },
  ])('parseSubjectAltName $text', ({ text, want }) => {
    expect(parseSubjectAltName(text)).toEqual(want);
  });

  test.each([
    { text: 'CN=mx1.example.net', want: ['mx1.example.net'] },
    { text: 'C=US\nO=Example\nCN=a\\, b', want: ['a, b'] },
    { text: 'O=b + CN=x.example\nCN=\\#lead/y\nCN=tab\\09end', want: ['x.example', '#lead/y', 'tab\tend'] },
    { text: 'O=no common name', want: [] },
  ])('subjectCommonNames $text', ({ text, want }) => {
    expect(subjectCommonNames(text)).toEqual(want);
  });
});

describe('verifyPeer', () => {
  type Scenario = keyof typeof peers | 'cleartext';
  interface Row {
    level: VerifyLevel;
    scenario: Scenario;
    names?: string[];
    /** Fingerprints: literal, or taken from a certificate at test time. */
    fingerprints?: Array<string | { of: keyof typeof pki; kind: 'cert' | 'spki'; alg?: DigestAlgorithm }>;
    digest?: DigestAlgorithm;
    want: Verdict | ((fp: { cert: string; spki: string }) => Verdict);
  }
  const host = 'mx1.example.net';
  const mxNames = ['mx1.example.net', '.example.net'];
  const rows: Row[] = [
    // Cleartext.
    { level: 'none', scenario: 'cleartext', want: { ok: true, trust: 'Cleartext' } },
    { level: 'may', scenario: 'cleartext', want: { ok: true, trust: 'Cleartext' } },
    ...(['encrypt', 'fingerprint', 'verify', 'secure'] as const).map((level) => ({
      level,
      scenario: 'cleartext' as const,
      want: { ok: false, trust: 'Cleartext' as const, reason: `${host} session is not encrypted (cleartext), and level ${level} requires TLS` },
    })),
    // Anonymous cipher, no certificate.
    { level: 'may', scenario: 'anon', want: { ok: true, trust: 'Anonymous' } },
    { level: 'encrypt', scenario: 'anon', want: { ok: true, trust: 'Anonymous' } },
    ...(['fingerprint', 'verify', 'secure'] as const).map((level) => ({
      level,
      scenario: 'anon' as const,
      names: mxNames,
      want: {
        ok: false,
        trust: 'Anonymous' as const,
        reason: `${host} presented no certificate (anonymous cipher AECDH-AES256-SHA), and level ${level} requires one`,
      },
    })),
    // may and encrypt: Trusted or Untrusted, always acceptable, never Verified.
    { level: 'may', scenario: 'good', names: mxNames, want: { ok: true, trust: 'Trusted' } },
    { level: 'encrypt', scenario: 'good', want: { ok: true, trust: 'Trusted' } },
    { level: 'encrypt', scenario: 'sanOther', want: { ok: true, trust: 'Trusted' } },
    { level: 'may', scenario: 'expired', want: { ok: true, trust: 'Untrusted' } },
    { level: 'encrypt', scenario: 'self', want: { ok: true, trust: 'Untrusted' } },
    { level: 'encrypt', scenario: 'unknownCA', want: { ok: true, trust: 'Untrusted' } },
    { level: 'none', scenario: 'self', want: { ok: true, trust: 'Untrusted' } },
    // fingerprint: the leaf's certificate or public-key digest; no chain, name or date check.
    {
      level: 'fingerprint',
      scenario: 'good',
      fingerprints: ['00:11', { of: 'good', kind: 'cert' }],
      want: ({ cert }) => ({ ok: true, trust: 'Verified', matched: cert }),
    },
    {
      level: 'fingerprint',
      scenario: 'good',
      fingerprints: [{ of: 'good', kind: 'spki' }],
      want: ({ spki }) => ({ ok: true, trust: 'Verified', matched: spki }),
    },
    {
      level: 'fingerprint',
      scenario: 'self',
      fingerprints: [{ of: 'self', kind: 'cert' }],
      want: ({ cert }) => ({ ok: true, trust: 'Verified', matched: cert }),
    },
    {
      level: 'fingerprint',
      scenario: 'expired',
      digest: 'sha1',
      fingerprints: [{ of: 'expired', kind: 'spki', alg: 'sha1' }],
      want: ({ spki }) => ({ ok: true, trust: 'Verified', matched: spki }),
    },
    {
      level: 'fingerprint',
      scenario: 'sanOther',
      fingerprints: [{ of: 'sanOther', kind: 'cert' }],
      want: ({ cert }) => ({ ok: true, trust: 'Verified', matched: cert }),
    },
    {
      level: 'fingerprint',
      scenario: 'good',
      fingerprints: ['00:11:22', { of: 'self', kind: 'cert' }],
      want: ({ cert, spki }) => ({
        ok: false,
        trust: 'Trusted',
        reason: `${host} certificate fingerprint ${cert} (public key ${spki}) matched none of the 2 configured fingerprints`,
      }),
    },
    {
      level: 'fingerprint',
      scenario: 'self',
      fingerprints: [{ of: 'good', kind: 'spki' }],
      want: ({ cert, spki }) => ({
        ok: false,
        trust: 'Untrusted',
        reason: `${host} certificate fingerprint ${cert} (public key ${spki}) matched none of the 1 configured fingerprint`,
      }),
    },
    {
      level: 'fingerprint',
      scenario: 'good',
      digest: 'sha1',
      fingerprints: [{ of: 'good', kind: 'cert', alg: 'sha256' }],
      want: ({ cert, spki }) => ({
        ok: false,
        trust: 'Trusted',
        reason: `${host} certificate fingerprint ${cert} (public key ${spki}) matched none of the 1 configured fingerprint`,
      }),
    },
    {
      level: 'fingerprint',
      scenario: 'good',
      fingerprints: [],
      want: ({ cert, spki }) => ({
        ok: false,
        trust: 'Trusted',
        reason: `${host} certificate fingerprint ${cert} (public key ${spki}) cannot match: no fingerprints are configured`,
      }),
    },
    // verify and secure: chain, then names.
    { level: 'verify', scenario: 'good', names: ['mx1.example.net'], want: { ok: true, trust: 'Verified', matched: 'mx1.example.net' } },
    { level: 'secure', scenario: 'good', names: ['example.net', '.example.net'], want: { ok: true, trust: 'Verified', matched: 'mx1.example.net' } },
    { level: 'secure', scenario: 'good', names: ['mx9.example.net'], want: { ok: true, trust: 'Verified', matched: '*.example.net' } },
    { level: 'verify', scenario: 'cnOnly', names: ['mx1.example.net'], want: { ok: true, trust: 'Verified', matched: 'mx1.example.net' } },
    {
      level: 'verify',
      scenario: 'idn',
      names: expandMatch(['bücher.example'], { hostname: '', nexthop: '' }),
      want: { ok: true, trust: 'Verified', matched: 'xn--bcher-kva.example' },
    },
    {
      level: 'verify',
      scenario: 'sanOtherNodeCheck',
      names: ['mx.other.test'],
      want: { ok: true, trust: 'Verified', matched: 'mx.other.test' },
    },
    {
      level: 'verify',
      scenario: 'sanOther',
      names: mxNames,
      want: { ok: false, trust: 'Trusted', reason: `${host} certificate names mx.other.test, *.other.test matched none of mx1.example.net, .example.net` },
    },
    {
      level: 'secure',
      scenario: 'sanOtherNodeCheck',
      names: mxNames,
      want: { ok: false, trust: 'Trusted', reason: `${host} certificate names mx.other.test, *.other.test matched none of mx1.example.net, .example.net` },
    },
    {
      level: 'verify',
      scenario: 'good',
      names: [],
      want: { ok: false, trust: 'Trusted', reason: `${host} certificate cannot be matched: no names are configured to match` },
    },
    {
      level: 'secure',
      scenario: 'expired',
      names: mxNames,
      want: { ok: false, trust: 'Untrusted', reason: `${host} certificate is not trusted: certificate has expired (CERT_HAS_EXPIRED)` },
    },
    {
      level: 'verify',
      scenario: 'underExpiredInter',
      names: mxNames,
      want: { ok: false, trust: 'Untrusted', reason: `${host} certificate is not trusted: certificate has expired (CERT_HAS_EXPIRED)` },
    },
    {
      level: 'verify',
      scenario: 'notYet',
      names: mxNames,
      want: { ok: false, trust: 'Untrusted', reason: `${host} certificate is not trusted: certificate is not yet valid (CERT_NOT_YET_VALID)` },
    },
    {
      level: 'secure',
      scenario: 'self',
      names: mxNames,
      want: { ok: false, trust: 'Untrusted', reason: `${host} certificate is not trusted: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)` },
    },
    {
      level: 'verify',
      scenario: 'unknownCA',
      names: mxNames,
      want: {
        ok: false,
        trust: 'Untrusted',
        reason: `${host} certificate is not trusted: unable to get local issuer certificate (UNABLE_TO_GET_ISSUER_CERT_LOCALLY)`,
      },
    },
  ];

  function fingerprintOf(f: string | { of: keyof typeof pki; kind: 'cert' | 'spki'; alg?: DigestAlgorithm }): string {
    if (typeof f === 'string') return normalizeFingerprint(f);
    const { certPem } = pki[f.of];
    const alg = f.alg ?? 'sha256';
    return f.kind === 'cert' ? opensslCertFingerprint(certPem, alg) : opensslSpkiFingerprint(certPem, alg);
  }

  test.each(rows.map((r) => ({ ...r, title: `${r.level} ${r.scenario}${r.names ? ` [${r.names.join(' ')}]` : ''}` })))('$title', (row) => {
    const peer = row.scenario === 'cleartext' ? null : peers[row.scenario];
    const digest = row.digest ?? 'sha256';
    const req: VerifyRequest = {
      level: row.level,
      host,
      names: row.names ?? [],
      fingerprints: (row.fingerprints ?? []).map(fingerprintOf),
      digest,
      peer,
    };
    const leafPem = peer?.chain[0] ? new X509Certificate(peer.chain[0]).toString() : '';
    const want =
      typeof row.want === 'function' ? row.want({ cert: opensslCertFingerprint(leafPem, digest), spki: opensslSpkiFingerprint(leafPem, digest) }) : row.want;
    expect(verifyPeer(req)).toEqual(typed(row.level, want));
  });

  test('a certificate-less session with a fingerprint match list still fails', () => {
    const peer: PeerTls = { protocol: 'TLSv1.2', cipher: '', chain: [], authorized: false };
    expect(verifyPeer({ level: 'fingerprint', host: 'relay.example', names: [], fingerprints: ['AB:CD'], digest: 'sha256', peer })).toEqual({
      ok: false,
      trust: 'Anonymous',
      reason: 'relay.example presented no certificate (anonymous cipher unknown), and level fingerprint requires one',
      resultType: 'validation-failure',
    });
  });

  test('an unauthorized peer without an error code still fails with a reason', () => {
    // authorizationError left out: the peer gave no reason at all.
    const { protocol, cipher, chain } = peers.good;
    const peer: PeerTls = { protocol, cipher, chain, authorized: false };
    expect(verifyPeer({ level: 'verify', host, names: mxNames, fingerprints: [], digest: 'sha256', peer })).toEqual({
      ok: false,
      trust: 'Untrusted',
      reason: `${host} certificate is not trusted: no reason was given`,
      resultType: 'certificate-not-trusted',
    });
  });

  test('DANE levels are not judged here', () => {
    const req = { level: 'dane', host, names: [], fingerprints: [], digest: 'sha256', peer: peers.good } as unknown as VerifyRequest;
    expect(() => verifyPeer(req)).toThrow('verifyPeer: level "dane" is not judged here (DANE levels have their own module)');
  });
});

describe('describeAuthorizationError', () => {
  test.each([
    { code: 'DEPTH_ZERO_SELF_SIGNED_CERT', want: 'self-signed certificate' },
    { code: 'CERT_HAS_EXPIRED', want: 'certificate has expired' },
    { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', want: 'unable to verify the first certificate' },
    { code: 'SOME_NEW_ERROR', want: 'some new error' },
    { code: undefined, want: 'no reason was given' },
  ])('$code', ({ code, want }) => {
    expect(describeAuthorizationError(code)).toBe(want);
  });
});

describe('auditDigests', () => {
  test('the leaf of a real session', () => {
    expect(auditDigests(peers.good, 'sha256')).toEqual({
      cert_digest: opensslCertFingerprint(pki.good.certPem, 'sha256'),
      spki_digest: opensslSpkiFingerprint(pki.good.certPem, 'sha256'),
    });
    expect(auditDigests(peers.self, 'sha1')).toEqual({
      cert_digest: opensslCertFingerprint(pki.self.certPem, 'sha1'),
      spki_digest: opensslSpkiFingerprint(pki.self.certPem, 'sha1'),
    });
  });
  test.each([
    { what: 'anonymous', peer: () => peers.anon },
    { what: 'cleartext', peer: () => null },
  ])('$what: empty', ({ peer }) => {
    expect(auditDigests(peer(), 'sha256')).toEqual({ cert_digest: '', spki_digest: '' });
  });
});

// ---------------------------------------------------------------------------------------
// Certificate names are untrusted text.

/**
 * A leaf signed by `issuer` whose subject is exactly one CN, a UTF8String holding `cn` as
 * given, with no subjectAltName, so that the CN is the name matched.
 */
function utf8CnLeaf(issuer: Issued, cn: string): Issued {
  return issueWithExtensions(issuer, cn, ['basicConstraints = critical,CA:FALSE', 'extendedKeyUsage = serverAuth'], { utf8: true });
}

/**
 * Hostile certificate names, one a row: the raw name the certificate carries (as a DNS
 * subjectAltName, or as the only CN; 'cn-utf8' for characters beyond single bytes) and how a
 * reason must show it (lib/text's safeText form).
 */
const HOSTILE: { what: string; name: string; where: 'san' | 'cn' | 'cn-utf8'; shown: string }[] = [
  { what: 'LF', name: 'evil\n.example.net', where: 'san', shown: 'evil\\x0a.example.net' },
  { what: 'CRLF', name: 'mx1.example.net\r\n.example.net', where: 'san', shown: 'mx1.example.net\\x0d\\x0a.example.net' },
  { what: 'a lone CR', name: 'evil\r.example.net', where: 'cn', shown: 'evil\\x0d.example.net' },
  { what: 'LF in a CN', name: 'mx1.example.net\nauth=Verified', where: 'cn', shown: 'mx1.example.net\\x0aauth=Verified' },
  { what: 'ESC: CSI sequences', name: '\x1b[2J\x1b[1;31mmx1.example.net', where: 'san', shown: '\\x1b[2J\\x1b[1;31mmx1.example.net' },
  { what: 'ESC: an OSC title sequence', name: '\x1b]0;pwned\x07.example.net', where: 'cn', shown: '\\x1b]0;pwned\\x07.example.net' },
  { what: 'DEL', name: 'evil\x7f.example.net', where: 'san', shown: 'evil\\x7f.example.net' },
  { what: 'C1: NEL and CSI', name: 'evil\u0085\u009b.example.net', where: 'cn-utf8', shown: 'evil\\u{0085}\\u{009b}.example.net' },
  { what: 'bidi: RIGHT-TO-LEFT OVERRIDE', name: 'ten.\u202eexample.net', where: 'cn-utf8', shown: 'ten.\\u{202e}example.net' },
  { what: 'bidi: LEFT-TO-RIGHT ISOLATE', name: '\u2066evil\u2069.example.net', where: 'cn-utf8', shown: '\\u{2066}evil\\u{2069}.example.net' },
  { what: 'a line separator', name: 'evil\u2028.example.net', where: 'cn-utf8', shown: 'evil\\u{2028}.example.net' },
  { what: 'a literal backslash', name: 'evil\\x0a.example.net', where: 'san', shown: 'evil\\\\x0a.example.net' },
  { what: "', ' inside", name: 'mx1.example.net, evil.example.net', where: 'san', shown: 'mx1.example.net, evil.example.net' },
  { what: "'=' inside", name: 'auth=Verified.example.net', where: 'san', shown: 'auth=Verified.example.net' },
  { what: 'a quote', name: "evil'.example.net", where: 'san', shown: "evil'.example.net" },
];

/** What a reason or `matched` must never hold: C0/C1 controls, DEL, separators, bidi formatting. */
function assertPrintable(text: string | undefined): void {
  if (text === undefined) return;
  expect(hasNoControls(text), JSON.stringify(text)).toBe(true);
  expect(text).not.toMatch(/[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/);
}

describe('hostile certificate names: matched raw, never matching, shown escaped', () => {
  const leaves = new Map<string, Issued>();
  const sessions = new Map<string, PeerTls>();
  const host = 'mx1.example.net';
  const refs = ['mx1.example.net', '.example.net'];

  beforeAll(async () => {
    await Promise.all(
      HOSTILE.map(async (row) => {
        const leaf =
          row.where === 'san'
            ? await makeLeaf(pki.root, { names: [row.name] })
            : row.where === 'cn'
              ? await makeLeaf(pki.root, { names: [], cn: row.name })
              : utf8CnLeaf(pki.root, row.name);
        leaves.set(row.what, leaf);
        // A real handshake: the chain verifies (the root is trusted), so only names decide.
        sessions.set(row.what, await handshake({ chainPem: leaf.chainPem, keyPem: leaf.keyPem, ca: [pki.root.certPem], servername: host }));
      }),
    );
  });

  test.each(HOSTILE)('$what: the certificate really carries the raw name', ({ what, name }) => {
    expect(certNames(leaves.get(what)!.der)).toEqual([name]);
    expect(sessions.get(what)!.authorized).toBe(true);
  });

  test.each(HOSTILE)('$what: never matches, not even itself or a leading-dot reference', ({ name }) => {
    for (const ref of [name, '.example.net', '.net', 'mx1.example.net', 'evil.example.net']) {
      expect(nameMatches(name, ref), JSON.stringify(ref)).toBe(false);
    }
  });

  test.each(HOSTILE.flatMap((row) => (['verify', 'secure'] as const).map((level) => ({ ...row, level }))))(
    '$level, $what: fails, the reason shows the escaped name',
    ({ what, shown, level }) => {
      const verdict = verifyPeer({ level, host, names: refs, fingerprints: [], digest: 'sha256', peer: sessions.get(what)! });
      expect(verdict).toEqual({
        ok: false,
        trust: 'Trusted',
        reason: `${host} certificate names ${shown} matched none of ${refs.join(', ')}`,
        resultType: 'certificate-host-mismatch',
      });
      assertPrintable(verdict.reason);
    },
  );

  test.each(HOSTILE)('fingerprint, $what: no name reaches the reason or `matched`', ({ what }) => {
    const peer = sessions.get(what)!;
    const leaf = leaves.get(what)!;
    const spki = opensslSpkiFingerprint(leaf.certPem, 'sha256');
    const pass = verifyPeer({ level: 'fingerprint', host, names: [], fingerprints: [spki], digest: 'sha256', peer });
    expect(pass).toEqual({ ok: true, trust: 'Verified', matched: spki });
    const miss = verifyPeer({ level: 'fingerprint', host, names: [], fingerprints: ['00:11'], digest: 'sha256', peer });
    expect(miss).toEqual({
      ok: false,
      trust: 'Trusted',
      reason: `${host} certificate fingerprint ${opensslCertFingerprint(leaf.certPem, 'sha256')} (public key ${spki}) matched none of the 1 configured fingerprint`,
      resultType: 'validation-failure',
    });
    assertPrintable(miss.reason);
  });

  test('the escaped forms of LF and of a literal backslash before "x0a" differ', () => {
    const lf = HOSTILE.find((r) => r.what === 'LF')!.shown;
    const literal = HOSTILE.find((r) => r.what === 'a literal backslash')!.shown;
    expect(lf).not.toBe(literal);
  });
});

describe('SessionCerts: the leaf is parsed and hashed once per session', () => {
  test('fingerprint verdict, a shadow verdict and the audit digests share the work', () => {
    const certs = new SessionCerts();
    const peer = peers.good;
    const spki = opensslSpkiFingerprint(pki.good.certPem, 'sha256');
    const req: VerifyRequest = { level: 'fingerprint', host: 'mx1.example.net', names: [], fingerprints: [spki], digest: 'sha256', peer, certs };
    expect(verifyPeer(req)).toEqual({ ok: true, trust: 'Verified', matched: spki });
    expect(certs.counters).toEqual({ parses: 1, spkiExports: 1, keyParses: 0, digests: 2, signatures: 0 });
    // A shadow level on the same session (secure), then the audit's digests: nothing computed again.
    expect(verifyPeer({ ...req, level: 'secure', names: ['mx1.example.net'] })).toEqual({ ok: true, trust: 'Verified', matched: 'mx1.example.net' });
    expect(auditDigests(peer, 'sha256', certs)).toEqual({
      cert_digest: opensslCertFingerprint(pki.good.certPem, 'sha256'),
      spki_digest: spki,
    });
    expect(certs.counters).toEqual({ parses: 1, spkiExports: 1, keyParses: 0, digests: 2, signatures: 0 });
    // Another algorithm is another digest of the same bytes, the certificate is not parsed again.
    expect(auditDigests(peer, 'sha1', certs).spki_digest).toBe(opensslSpkiFingerprint(pki.good.certPem, 'sha1'));
    expect(certs.counters).toEqual({ parses: 1, spkiExports: 1, keyParses: 0, digests: 4, signatures: 0 });
  });

  test('without a SessionCerts each call still answers the same', () => {
    expect(auditDigests(peers.good, 'sha256')).toEqual(auditDigests(peers.good, 'sha256', new SessionCerts()));
  });

  test('an unsupported digest algorithm is refused as before', () => {
    expect(() => auditDigests(peers.good, 'sha3' as DigestAlgorithm, new SessionCerts())).toThrow('unsupported digest algorithm "sha3"');
  });
});
