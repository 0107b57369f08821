/**
 * The nodemailer-tls-policy command, through its `main()` in process, against the same kind of
 * world as the transport's DANE tests: zones signed at setup (test/helpers/signed-dns.ts) behind
 * a recursive server on loopback that plays a trusted local validator (AD on the answers of
 * signed zones, none for the unsigned one), which the probe trusts by default; with --dnssec
 * validate the library checks the same zones itself from the `test.` key. smtp-server peers with
 * certificates made now. Every probe is also checked from the servers' side: they see
 * connections, never MAIL FROM, RCPT, AUTH or DATA.
 *
 * The built command (bin/ -> dist/esm/cli/) is run once at the end, from a build made into a
 * temporary directory (never the repository's dist/, which test/package.test.ts rebuilds).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certificateReport,
  main,
  formatJson,
  formatProbe,
  formatTlsReports,
  probeReport,
  stripAnsi,
  type ProbeReport,
  type PolicyCheckReport,
  type TlsReportsReport,
} from '../lib/cli/index.js';
import { isSubdomain, nameFromText } from '../lib/dnssec/names.js';
import { tlsPolicy } from '../lib/index.js';
import { openStores } from '../lib/store/index.js';
import { T, a, mx, rr } from './helpers/dnssec-signer.js';
import { signTree, startSignedDns, tlsa as tlsaRdata, type SignedDnsServer } from './helpers/signed-dns.js';
import { makeLeaf, makePki, tlsaData, type Issued, type Pki } from './helpers/pki.js';
import { startHosts, startPeer, type HostSpec, type Peer } from './helpers/smtp-peer.js';
import { expectPendingReports, seed, yesterday } from './helpers/tls-reports-seed.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A forged last line of the report, as a hostile peer would write it into its text. */
const FORGED_RESULT = 'Result  would deliver to bank.example via mx.bank.example[192.0.2.1]:25 at level secure (Verified)  (exit 0)';
/**
 * Certificate names that would clear the screen and the scrollback, move the cursor home, set
 * the terminal title (OSC) and print a forged Result line; and one with a literal `\x0a` and
 * quotes, which must not read as an escaped line feed.
 */
const HOSTILE_NAMES = [`evil.example\r\n\x1b[2J\x1b[3J\x1b[H\x1b]0;pwned\x07${FORGED_RESULT}\r\n.`, 'literal\\x0a"quoted"'];
/** A subject CN with ESC and a bidi override (OpenSSL writes it as T61, so the override arrives as C1 and Latin-1 bytes). */
const HOSTILE_CN = 'cn\x1b[31m\u202eevil';
/** A STARTTLS refusal: ESC, OSC, a multi-line reply, bidi, C1 CSI, a lone CR before a forged Result line. */
const HOSTILE_REPLY = `454-4.7.0 busy\x1b[2J\x1b]0;pwned\x07\r\n454 4.7.0 \u202eok\u202c \x9b2J\r${FORGED_RESULT}`;

/**
 * Text that cannot act on a terminal: no C0 control but the LF that ends each line (no CR, and
 * no ESC but the report's own SGR colours when colour is on), no DEL, no C1, no bidi or
 * separator character.
 */
function expectTerminalSafe(text: string, color: boolean) {
  if (!color) expect(text).not.toContain('\x1b');
  const plain = stripAnsi(text);
  expect(plain).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
  expect(plain).not.toMatch(/[\x80-\x9f]/);
  expect(plain).not.toMatch(/[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/);
  // the report's last line is the only Result line, and it is about the probed next hop
  const lines = plain.trimEnd().split('\n');
  expect(lines.filter((l) => l.startsWith('Result'))).toEqual([lines.at(-1)]);
  expect(lines.at(-1)).toMatch(/^Result {2}would (deliver to|defer mail for|bounce mail for) (?!bank\.example)/);
}

let dns: SignedDnsServer;
/** Holds the trust anchor file of --dnssec validate: the `test.` zone's key. */
let dnsDir = '';
let peers = new Map<string, Peer>();
const certs = new Map<string, Issued>();
let pki: Pki;
let port = 0;
let dir: string;
let caFile: string;

const spkiSha256 = (der: Buffer) => tlsaData(der, 1, 1);

beforeAll(async () => {
  pki = await makePki('CLI test CA');
  ({ dir, caFile } = pki);
  const ca = pki.ca;
  const other = await makeLeaf('self', { names: ['mx.other.invalid'] });
  const hosts: Array<HostSpec & { cert: Issued }> = [
    { name: 'mx.dane.test', behaviour: 'starttls', cert: await makeLeaf('self', { names: ['mx.dane.test'] }) },
    { name: 'mx.mismatch.test', behaviour: 'starttls', cert: await makeLeaf('self', { names: ['mx.mismatch.test'] }) },
    { name: 'mx.unsigned.test', behaviour: 'starttls', cert: await makeLeaf('self', { names: ['mx.unsigned.test'] }) },
    { name: 'mx.nostarttls.test', behaviour: 'no-starttls', cert: await makeLeaf(ca, { names: ['mx.nostarttls.test'] }) },
    { name: 'mx.good.test', behaviour: 'starttls', cert: await makeLeaf(ca, { names: ['mx.good.test'] }) },
    { name: 'mx.badcert.test', behaviour: 'starttls', cert: await makeLeaf(ca, { names: ['mx.elsewhere.invalid'] }) },
    // reached as [address]:port, without DNS
    { name: 'hostile-cert', behaviour: 'starttls', cert: await makeLeaf('self', { names: HOSTILE_NAMES, cn: HOSTILE_CN }) },
    { name: 'hostile-cert-ca', behaviour: 'starttls', cert: await makeLeaf(ca, { names: HOSTILE_NAMES }) },
    { name: 'hostile-reply', behaviour: 'starttls', cert: await makeLeaf(ca, { names: ['mx.hostile.test'] }), rawReplies: { STARTTLS: HOSTILE_REPLY } },
  ];
  ({ peers, port } = await startHosts(hosts));
  for (const h of hosts) certs.set(h.name, h.cert);
  const A = (name: string) => rr(`${name}.`, T.A, a(peers.get(name)!.host));
  const MX = (domain: string, preference: number, host: string) => rr(`${domain}.`, T.MX, mx(preference, host === '.' ? '.' : `${host}.`));
  const tlsa = (host: string, usage: number, selector: number, matching: number, hex: string) =>
    rr(`_${port}._tcp.${host}.`, T.TLSA, tlsaRdata(usage, selector, matching, Buffer.from(hex, 'hex')));
  const tree = signTree(
    [
      { origin: '.', algorithm: 13 },
      { origin: 'test.', algorithm: 13 },
      // a usable DANE-EE record that matches, and a PKIX-TA record no SMTP client may use
      {
        origin: 'dane.test.',
        algorithm: 13,
        records: [
          MX('dane.test', 10, 'mx.dane.test'),
          A('mx.dane.test'),
          tlsa('mx.dane.test', 3, 1, 1, spkiSha256(certs.get('mx.dane.test')!.der)),
          tlsa('mx.dane.test', 0, 0, 1, 'ab'.repeat(32)),
        ],
      },
      {
        origin: 'mismatch.test.',
        algorithm: 13,
        records: [MX('mismatch.test', 10, 'mx.mismatch.test'), A('mx.mismatch.test'), tlsa('mx.mismatch.test', 3, 1, 1, spkiSha256(other.der))],
      },
      {
        origin: 'unsigned.test.',
        algorithm: false,
        records: [
          MX('unsigned.test', 10, 'mx.unsigned.test'),
          A('mx.unsigned.test'),
          tlsa('mx.unsigned.test', 3, 1, 1, spkiSha256(certs.get('mx.unsigned.test')!.der)),
        ],
      },
      { origin: 'nostarttls.test.', algorithm: 13, records: [MX('nostarttls.test', 10, 'mx.nostarttls.test'), A('mx.nostarttls.test')] },
      { origin: 'good.test.', algorithm: 13, records: [MX('good.test', 10, 'mx.good.test'), A('mx.good.test')] },
      { origin: 'badcert.test.', algorithm: 13, records: [MX('badcert.test', 10, 'mx.badcert.test'), A('mx.badcert.test')] },
      { origin: 'nullmx.test.', algorithm: 13, records: [MX('nullmx.test', 0, '.')] },
    ],
    Math.floor(Date.now() / 1000),
  );
  // A trusted validator's verdict: every name is in a signed zone under the signed test. but those of unsigned.test.
  const unsigned = nameFromText('unsigned.test.');
  dns = await startSignedDns({ zones: tree.zones, ad: (query) => !isSubdomain(query.name, unsigned) });
  dnsDir = mkdtempSync(join(tmpdir(), 'ntp-cli-dns-'));
  const testKey = tree.keys.get('test.')!.dnskey.rdata;
  writeFileSync(
    join(dnsDir, 'test.anchor'),
    `test. IN DNSKEY ${(testKey[0]! << 8) | testKey[1]!} ${testKey[2]} ${testKey[3]} ${Buffer.from(testKey.subarray(4)).toString('base64')}\n`,
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([...peers.values()].map((p) => p.close()));
  await dns?.close();
  pki?.close();
  if (dnsDir) rmSync(dnsDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(argv: string[], options: { tty?: boolean; env?: Record<string, string> } = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (out += s), ...(options.tty ? { isTTY: true } : {}) },
    stderr: { write: (s: string) => (err += s) },
    env: options.env ?? {},
  });
  return { code, out, err };
}

/** What the peers saw (besides connections) while `fn` ran. */
async function watched<T>(fn: () => Promise<T>): Promise<{ result: T; commands: string[]; connections: number }> {
  const before = new Map([...peers].map(([n, p]) => [n, p.events.length]));
  const result = await fn();
  const events = [...peers].flatMap(([n, p]) => p.events.slice(before.get(n)));
  return {
    result,
    commands: events.filter((e) => e.command !== 'CONNECT').map((e) => e.command),
    connections: events.filter((e) => e.command === 'CONNECT').length,
  };
}

/** `probe TARGET --json` against the test world; checks that no peer saw any of a mail. */
async function probe(target: string, ...args: string[]): Promise<Run & { report: ProbeReport; connections: number }> {
  const { result, commands, connections } = await watched(() =>
    run(['probe', target, '--json', '--port', String(port), '--resolver', dns.server, '--dns-timeout', '1000', ...args]),
  );
  expect(result.err).toBe('');
  expect(commands, 'the probe must send no MAIL FROM, RCPT, AUTH or DATA').toEqual([]);
  const report = JSON.parse(result.out) as ProbeReport;
  expect(report.result.exitStatus).toBe(result.code);
  return { ...result, report, connections };
}

describe('probe --json, by kind of destination', () => {
  it('DANE match: secure MX and TLSA, Verified, DATA would be sent, exit 0', async () => {
    const { code, report, connections } = await probe('dane.test', '--level', 'dane');
    expect(code).toBe(0);
    expect(connections).toBe(1);
    expect(report.destination).toEqual({ kind: 'domain', domain: 'dane.test' });
    expect(report.policy).toMatchObject({ level: 'dane', source: 'default' });
    expect(report.mx).toMatchObject({ dnssec: 'secure', records: [{ preference: 10, exchange: 'mx.dane.test' }], implicit: false, nullMx: false });
    const host = report.hosts[0]!;
    expect(host).toMatchObject({ name: 'mx.dane.test', dnssec: 'secure', addresses: [peers.get('mx.dane.test')!.host] });
    expect(host.tlsa).toMatchObject({ status: 'secure', name: `_${port}._tcp.mx.dane.test`, baseDomain: 'mx.dane.test' });
    const records = host.tlsa!.status === 'secure' ? host.tlsa!.records : [];
    // an RRset has no order: sorted here
    const sorted = [...records].sort((x, y) => y.record.localeCompare(x.record));
    expect(sorted.map((r) => [r.record.slice(0, 5), r.usability])).toEqual([
      ['3 1 1', 'usable'],
      ['0 0 1', 'unusable'],
    ]);
    expect(sorted[1]!.reason).toMatch(/PKIX-TA/);
    const a = report.attempts[0]!;
    expect(a.plan).toMatchObject({ level: 'dane', sni: 'mx.dane.test', names: ['mx.dane.test'], daneEnforced: true });
    expect(a.session).toMatchObject({ starttlsOffered: true, starttlsSent: true });
    expect(a.session.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(a.session.cipher).not.toBe('');
    const leaf = a.session.chain[0]!;
    expect(leaf).toMatchObject({ depth: 0, names: ['mx.dane.test'], selfSigned: true, validity: 'valid', digest: 'sha256' });
    expect(leaf.tlsa).toBe(`3 1 1 ${spkiSha256(certs.get('mx.dane.test')!.der)}`);
    expect(leaf.certDigest).toBe(createHash('sha256').update(certs.get('mx.dane.test')!.der).digest('hex').toUpperCase().match(/../g)!.join(':'));
    expect(a.verdict).toMatchObject({ trust: 'Verified', ok: true });
    expect(a.verdict.matched).toMatch(/^3 1 1 /);
    expect(a.wouldSendData).toBe(true);
    expect(report.result).toMatchObject({
      action: 'deliver',
      status: 'delivered',
      via: { mx: 'mx.dane.test', level: 'dane', trust: 'Verified' },
      exitStatus: 0,
    });
    expect(report.result.summary).toMatch(/^would deliver to dane\.test via mx\.dane\.test\[[\d.]+\]:\d+ at level dane \(Verified\)$/);
  });

  it('DANE mismatch: Untrusted with the reason, no DATA, deferred, exit 1; with dane=encrypt a fallback, still exit 1', async () => {
    const { code, report } = await probe('mismatch.test', '--level', 'dane');
    expect(code).toBe(1);
    const a = report.attempts[0]!;
    expect(a.verdict.ok).toBe(false);
    expect(a.verdict.trust).toBe('Untrusted');
    expect(a.verdict.reason).toMatch(/matched no certificate/);
    expect(a.decision).toMatchObject({ action: 'next', stage: 'verification', temporary: true });
    expect(a.wouldSendData).toBe(false);
    expect(report.result).toMatchObject({ action: 'defer', status: 'deferred', code: 'ETLS', temporary: true, exitStatus: 1 });

    const fallback = await probe('mismatch.test', '--level', 'dane', '--fallback', 'dane=encrypt');
    expect(fallback.code).toBe(1);
    expect(fallback.report.policy.fallback).toBe('encrypt');
    expect(fallback.report.attempts[0]!.wouldSendData).toBe(true);
    expect(fallback.report.result).toMatchObject({
      action: 'fallback',
      status: 'delivered',
      fallback: { from: 'dane', to: 'encrypt' },
      via: { level: 'encrypt' },
    });
    expect(fallback.report.result.fallback!.reason).toMatch(/matched no certificate/);
    expect(fallback.report.result.summary).toMatch(/only by a fallback: .* at level encrypt instead of dane/);
  });

  it('insecure (unsigned) domain: dane runs as may (exit 0); dane-only does not connect (exit 1)', async () => {
    const { code, report } = await probe('unsigned.test', '--level', 'dane');
    expect(code).toBe(0);
    expect(report.mx!.dnssec).toBe('insecure');
    expect(report.hosts[0]!.dnssec).toBe('insecure');
    expect(report.hosts[0]!.tlsa).toMatchObject({ status: 'none' });
    expect(report.hosts[0]!.tlsa!.status === 'none' && report.hosts[0]!.tlsa!.why).toMatch(/not DNSSEC-secure/);
    const a = report.attempts[0]!;
    expect(a.plan.level).toBe('may');
    expect(a.plan.dane).toMatch(/no secure TLSA records/);
    expect(a.verdict).toMatchObject({ trust: 'Untrusted', ok: true }); // a self-signed certificate is fine at may
    expect(report.result).toMatchObject({ action: 'deliver', via: { level: 'may', trust: 'Untrusted' } });

    const only = await probe('unsigned.test', '--level', 'dane-only');
    expect(only.code).toBe(1);
    expect(only.connections).toBe(0);
    expect(only.report.attempts[0]).toMatchObject({ connected: false, wouldSendData: false, decision: { action: 'next', stage: 'tlsa' } });
    expect(only.report.result.reason).toMatch(/mx\.unsigned\.test.*(not DNSSEC-secure|no secure TLSA).*dane-only/);
  });

  it('no STARTTLS at encrypt: the MX fails, exit 1; at may the mail would go in cleartext, exit 0', async () => {
    const { code, report } = await probe('nostarttls.test', '--level', 'encrypt');
    expect(code).toBe(1);
    const a = report.attempts[0]!;
    expect(a.session).toMatchObject({ starttlsOffered: false, starttlsSent: false, chain: [] });
    expect(a.decision).toMatchObject({ action: 'next', stage: 'no-starttls' });
    expect(a.decision.reason).toMatch(/offered no STARTTLS; TLS is mandatory at level encrypt/);
    expect(report.result).toMatchObject({ action: 'defer', code: 'ETLS' });

    const may = await probe('nostarttls.test', '--level', 'may');
    expect(may.code).toBe(0);
    expect(may.report.attempts[0]!.verdict.trust).toBe('Cleartext');
    expect(may.report.result).toMatchObject({ action: 'deliver', via: { level: 'may', trust: 'Cleartext' } });
    expect(may.report.result.summary).toMatch(/in cleartext \(.*offered no STARTTLS\)/);
  });

  it('bad certificate at verify: Trusted chain, wrong name, exit 1; the right name is Verified, exit 0', async () => {
    const { code, report } = await probe('badcert.test', '--level', 'verify', '--ca-file', caFile);
    expect(code).toBe(1);
    const a = report.attempts[0]!;
    expect(a.plan.names).toEqual(['mx.badcert.test']);
    expect(a.session.authorized).toBe(true);
    expect(a.session.chain[0]).toMatchObject({ names: ['mx.elsewhere.invalid'], issuer: 'CN=CLI test CA', selfSigned: false });
    expect(a.verdict).toMatchObject({ trust: 'Trusted', ok: false });
    expect(a.verdict.reason).toMatch(/names mx\.elsewhere\.invalid matched none of mx\.badcert\.test/);
    expect(report.result.action).toBe('defer');

    const good = await probe('good.test', '--level', 'verify', '--ca-file', caFile);
    expect(good.code).toBe(0);
    expect(good.report.hosts[0]!.tlsaSkipped).toBe('level verify does not use DANE');
    expect(good.report.attempts[0]!.plan.daneEnforced).toBe(false);
    expect(good.report.attempts[0]!.verdict).toMatchObject({ trust: 'Verified', matched: 'mx.good.test' });
    expect(good.report.attempts[0]!.session.chain[0]!.issuer).toBe('CN=CLI test CA');

    // without the CA the chain is not trusted
    const untrusted = await probe('good.test', '--level', 'verify');
    expect(untrusted.code).toBe(1);
    expect(untrusted.report.attempts[0]!.verdict.trust).toBe('Untrusted');

    // --extra-ca-file: the CA beside Node's own
    const extra = await probe('good.test', '--level', 'verify', '--extra-ca-file', caFile);
    expect(extra.code).toBe(0);
    expect(extra.report.attempts[0]!.verdict.trust).toBe('Verified');
  });

  it('null MX: bounce, no host looked up, nothing connected, exit 1', async () => {
    const { code, report, connections } = await probe('nullmx.test', '--level', 'dane');
    expect(code).toBe(1);
    expect(connections).toBe(0);
    expect(report.mx).toMatchObject({ dnssec: 'secure', nullMx: true, records: [{ preference: 0, exchange: '.' }] });
    expect(report.hosts).toEqual([]);
    expect(report.attempts).toEqual([]);
    expect(report.result).toMatchObject({ action: 'bounce', status: 'bounced', code: 'ENULLMX', temporary: false, exitStatus: 1 });
  });

  it('a fixed next hop [address]:port: no MX lookup', async () => {
    const address = peers.get('mx.good.test')!.host;
    const { code, report } = await probe(`[${address}]:${port}`, '--level', 'encrypt');
    expect(code).toBe(0);
    expect(report.destination).toEqual({ kind: 'relay', host: address, port, implicitTls: false });
    expect(report.mx).toBeUndefined();
    expect(report.hosts[0]).toMatchObject({ name: address, literal: true, addresses: [address] });
    expect(report.attempts[0]!.where).toBe(`${address}[${address}]:${port}`);
  });

  it('host:port is a fixed next hop too (no MX lookup), as the relay option reads it; the report shows that port', async () => {
    const { code, report } = await probe(`mx.good.test:${port}`, '--level', 'encrypt');
    expect(code).toBe(0);
    expect(report.destination).toEqual({ kind: 'relay', host: 'mx.good.test', port, implicitTls: false, written: 'host:port' });
    expect(report.mx).toBeUndefined();
    expect(report.config.port).toBe(port);
  });

  it('host:port finds the policy entry Postfix finds for that relayhost (host:port as written); [host]:port does not', async () => {
    const file = join(dir, 'probe-hostport.txt');
    writeFileSync(file, `mx.good.test:${port} encrypt\n`);
    const unbracketed = await probe(`mx.good.test:${port}`, '--policy', file, '--level', 'verify', '--ca-file', caFile);
    expect(unbracketed.report.policy).toMatchObject({ level: 'encrypt', source: `${file}:1` });
    expect(unbracketed.report.attempts[0]!.plan.level).toBe('encrypt');
    // --shadow lands on the key the lookup finds first, host:port
    const shadowed = await probe(`mx.good.test:${port}`, '--policy', file, '--shadow', 'verify', '--ca-file', caFile);
    expect(shadowed.report.policy).toMatchObject({ level: 'encrypt', shadow: 'verify', source: `${file}:1 + --shadow` });
    expect(shadowed.report.attempts[0]!.shadowResult).toBe('pass');
    const bracketed = await probe(`[mx.good.test]:${port}`, '--policy', file, '--level', 'encrypt', '--shadow', 'verify', '--ca-file', caFile);
    expect(bracketed.report.policy).toMatchObject({ level: 'encrypt', shadow: 'verify', source: 'the default level + --shadow' });
  });

  it('--smtps: implicit TLS on a next hop whatever its port', async () => {
    const smtps = await startPeer({
      host: peers.get('mx.good.test')!.host.replace(/\.\d+$/, '.250'),
      port: 0,
      behaviour: 'implicit-tls',
      cert: certs.get('mx.good.test')!.chainPem,
      key: certs.get('mx.good.test')!.keyPem,
    });
    try {
      const { code, report } = await probe(`[${smtps.host}]:${smtps.port}`, '--smtps', '--level', 'encrypt');
      expect(code).toBe(0);
      expect(report.destination).toMatchObject({ kind: 'relay', port: smtps.port, implicitTls: true });
      expect(report.attempts[0]!.plan.implicitTls).toBe(true);
      expect(smtps.events.map((e) => [e.command, e.secure])).toEqual([['CONNECT', true]]);
    } finally {
      await smtps.close();
    }
  });

  it('--shadow adds a shadow level to the destination (never enforced); --policy entries are used', async () => {
    const shadow = await probe('badcert.test', '--level', 'encrypt', '--shadow', 'verify', '--ca-file', caFile);
    expect(shadow.code).toBe(0);
    expect(shadow.report.policy).toMatchObject({ level: 'encrypt', shadow: 'verify', source: 'the default level + --shadow' });
    expect(shadow.report.attempts[0]!.shadowResult).toMatch(/^fail: .*matched none of mx\.badcert\.test/);

    const file = join(dir, 'probe-policy.txt');
    writeFileSync(file, '# probe policy\ngood.test  encrypt  protocols=>=TLSv1.2\n.test      encrypt\n');
    const fromTable = await probe('good.test', '--policy', file, '--ca-file', caFile, '--shadow', 'secure');
    expect(fromTable.code).toBe(0);
    expect(fromTable.report.policy).toMatchObject({ level: 'encrypt', shadow: 'secure', source: `${file}:2 + --shadow` });
    expect(fromTable.report.attempts[0]!.plan).toMatchObject({ level: 'encrypt', shadow: 'secure', protocols: ['>=TLSv1.2'] });
    expect(fromTable.report.attempts[0]!.shadowResult).toBe('pass'); // secure: mx.good.test matches dot-nexthop
    const parent = await probe('badcert.test', '--policy', file);
    expect(parent.report.policy).toMatchObject({ level: 'encrypt', source: `${file}:3` });
  });

  it('--dnssec validate: the server is only asked (CD=1), the library validates from --trust-anchors, and the report shows each chain', async () => {
    const anchors = join(dnsDir, 'test.anchor');
    const { code, report } = await probe('dane.test', '--level', 'dane', '--dnssec', 'validate', '--trust-anchors', anchors);
    expect(code).toBe(0);
    expect(report.config.resolver).toEqual({ servers: [dns.server], trustAd: 'loopback', dnssec: 'validate' });
    expect(report.mx!.dnssec).toBe('secure');
    expect(report.attempts[0]!.verdict).toMatchObject({ trust: 'Verified' });
    const asked = report.dnssec!.map((v) => `${v.type} ${v.name} ${v.status}`);
    expect(asked).toEqual(expect.arrayContaining(['MX dane.test secure', 'A mx.dane.test secure', `TLSA _${port}._tcp.mx.dane.test secure`]));
    const mx = report.dnssec!.find((v) => v.type === 'MX')!;
    expect(mx.chain[0]).toMatch(/^test\. DNSKEY \d+\/13 \(SEP\): RRSIG \d+\/13 verifies, from the trust anchor \(DNSKEY \d+\/13\)$/);
    expect(mx.chain[1]).toMatch(/^dane\.test\. DS \d+\/13\/2: RRSIG \d+\/13 by test\. verifies$/);
    expect(mx.chain.at(-1)).toMatch(/^the MX RRset of dane\.test\.: RRSIG \d+\/13 by dane\.test\. verifies$/);
    // The text form: the resolver line says where DNSSEC is checked, and a DNSSEC section lists each name with its chain.
    const text = await run(['probe', 'dane.test', '--port', String(port), '--resolver', dns.server, '--dnssec', 'validate', '--trust-anchors', anchors]);
    const lines = stripAnsi(text.out).split('\n');
    expect(lines).toContain(`  resolver     ${dns.server}  (DNSSEC validated here, from the trust anchors)`);
    const section = lines.indexOf('DNSSEC');
    expect(section).toBeGreaterThan(0);
    expect(lines[section + 1]).toBe('  MX           dane.test  secure');
    expect(lines[section + 2]).toMatch(/^ {15} {2}test\. DNSKEY /);
  });

  it('--dnssec and --trust-anchors: bad values are usage errors that name the flag', async () => {
    const bad = await run(['probe', 'dane.test', '--dnssec', 'yes']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--dnssec');
    const missing = await run(['probe', 'dane.test', '--dnssec', 'validate', '--trust-anchors', join(dnsDir, 'nothing-here')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`resolver.trustAnchors: cannot read ${join(dnsDir, 'nothing-here')} (ENOENT)`);
  });

  it('--trust-ad no: every answer is insecure, so dane runs as may', async () => {
    const { code, report } = await probe('dane.test', '--level', 'dane', '--trust-ad', 'no');
    expect(code).toBe(0);
    expect(report.config.resolver).toEqual({ servers: [dns.server], trustAd: false, dnssec: 'trust-ad' });
    expect(report.dnssec).toBeUndefined();
    expect(report.mx!.dnssec).toBe('insecure');
    expect(report.hosts[0]!.dnssec).toBe('insecure');
    expect(report.attempts[0]!.plan.level).toBe('may');
  });
});

describe('probe --match: the match= attribute for the probed destination', () => {
  it('at verify, in place of the default (hostname); at secure, in place of nexthop and dot-nexthop', async () => {
    const named = await probe('badcert.test', '--level', 'verify', '--ca-file', caFile, '--match', 'other.test:mx.elsewhere.invalid');
    expect(named.code).toBe(0);
    expect(named.report.policy).toMatchObject({ level: 'verify', source: 'the default level + --match' });
    expect(named.report.attempts[0]!.plan.names).toEqual(['other.test', 'mx.elsewhere.invalid']);
    expect(named.report.attempts[0]!.verdict).toMatchObject({ trust: 'Verified', matched: 'mx.elsewhere.invalid' });
    // secure's default, dot-nexthop, matches mx.good.test; nexthop alone does not
    expect((await probe('good.test', '--level', 'secure', '--ca-file', caFile)).code).toBe(0);
    const nexthop = await probe('good.test', '--level', 'secure', '--ca-file', caFile, '--match', 'nexthop');
    expect(nexthop.code).toBe(1);
    expect(nexthop.report.attempts[0]!.plan.names).toEqual(['good.test']);
  });

  it("replaces the table entry's match, and serves a verify shadow of an encrypt entry", async () => {
    const file = join(dir, 'probe-match.txt');
    writeFileSync(file, 'badcert.test  verify  match=badcert.test\n');
    const fromTable = await probe('badcert.test', '--policy', file, '--ca-file', caFile);
    expect(fromTable.code).toBe(1);
    const replaced = await probe('badcert.test', '--policy', file, '--ca-file', caFile, '--match', 'mx.elsewhere.invalid');
    expect(replaced.code).toBe(0);
    expect(replaced.report.policy).toMatchObject({ level: 'verify', source: `${file}:1 + --match` });
    const shadow = await probe('badcert.test', '--level', 'encrypt', '--shadow', 'verify', '--ca-file', caFile, '--match', 'mx.elsewhere.invalid');
    expect(shadow.code).toBe(0);
    expect(shadow.report.policy).toMatchObject({ level: 'encrypt', shadow: 'verify', source: 'the default level + --shadow and --match' });
    expect(shadow.report.attempts[0]!.shadowResult).toBe('pass');
  });

  it("keeps the entry's policy-source attributes: an MTA-STS MX rule still refuses an MX outside its patterns", async () => {
    const file = join(dir, 'probe-sts.txt');
    writeFileSync(file, 'good.test  secure  policy_type=sts policy_domain=good.test mx_host_pattern=mx.other.test\n');
    const probed = await probe('good.test', '--policy', file, '--ca-file', caFile, '--match', 'mx.good.test');
    expect(probed.code).toBe(1);
    expect(probed.connections).toBe(0);
    expect(probed.report.attempts[0]!.decision.reason).toMatch(/MX host mx\.good\.test matches no mx_host_pattern of the MTA-STS policy of good\.test/);
  });

  it('at fingerprint, digests', async () => {
    const address = peers.get('mx.good.test')!.host;
    const digest = createHash('sha256').update(certs.get('mx.good.test')!.der).digest('hex').toUpperCase().match(/../g)!.join(':');
    const pinned = await probe(`[${address}]:${port}`, '--level', 'fingerprint', '--fingerprint-cert-match', `${'AB:'.repeat(31)}AB`, '--match', digest);
    expect(pinned.code).toBe(0);
    expect(pinned.report.attempts[0]!.plan.fingerprints).toEqual([digest]);
  });
});

describe('probe of an address literal: no DNS, so no warning about DNS servers', () => {
  it('a resolver that is never asked is warned about for a domain, not for [address]:port', async () => {
    const domain = await probe('good.test', '--level', 'encrypt', '--resolver', '192.0.2.53');
    expect(domain.report.warnings).toEqual([
      'DNS server 192.0.2.53:53 will not be asked: it is not on loopback, so its AD bit is not believed ' +
        "(trustAd: 'loopback'), and an answer from it could only replace a failure at a trusted server, turning a failed DNSSEC lookup into an insecure one",
    ]);
    const literal = await probe(`[${peers.get('mx.good.test')!.host}]:${port}`, '--level', 'encrypt', '--resolver', '192.0.2.53');
    expect(literal.code).toBe(0);
    expect(literal.report.warnings).toEqual([]);
    // the system's servers (resolv.conf), trusted with --trust-ad yes: the same
    const system = await run(['probe', `[${peers.get('mx.good.test')!.host}]:${port}`, '--level', 'encrypt', '--trust-ad', 'yes']);
    expect(system.code).toBe(0);
    expect(system.out).not.toContain('warning');
    expect(system.err).toBe('');
  });
});

describe('probe: the global protocol, cipher and match flags (tlsProtocols ... secureCertMatch)', () => {
  const relay = (name: string) => `[${peers.get(name)!.host}]:${port}`;

  it('--verify-cert-match and --secure-cert-match: the names a certificate must carry where the entry has no match', async () => {
    // a next hop given by address: verify's default (hostname) is the address, which the certificate does not carry
    const byDefault = await probe(relay('mx.good.test'), '--level', 'verify', '--ca-file', caFile);
    expect(byDefault.code).toBe(1);
    expect(byDefault.report.attempts[0]!.plan.names).toEqual([peers.get('mx.good.test')!.host]);
    const named = await probe(
      relay('mx.good.test'),
      '--level',
      'verify',
      '--ca-file',
      caFile,
      '--verify-cert-match',
      'other.test',
      '--verify-cert-match',
      'mx.good.test',
    );
    expect(named.code).toBe(0);
    expect(named.report.attempts[0]!.plan.names).toEqual(['other.test', 'mx.good.test']);
    expect(named.report.attempts[0]!.verdict).toMatchObject({ trust: 'Verified', matched: 'mx.good.test' });

    const secure = await probe('badcert.test', '--level', 'secure', '--ca-file', caFile);
    expect(secure.code).toBe(1);
    const elsewhere = await probe('badcert.test', '--level', 'secure', '--ca-file', caFile, '--secure-cert-match', 'mx.elsewhere.invalid');
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.report.attempts[0]!.verdict).toMatchObject({ trust: 'Verified', matched: 'mx.elsewhere.invalid' });
  });

  it('--fingerprint-cert-match, repeatable: level fingerprint needs no table', async () => {
    const digest = createHash('sha256').update(certs.get('mx.good.test')!.der).digest('hex').toUpperCase().match(/../g)!.join(':');
    const pinned = await probe(
      relay('mx.good.test'),
      '--level',
      'fingerprint',
      '--fingerprint-cert-match',
      `${'AB:'.repeat(31)}AB`,
      '--fingerprint-cert-match',
      digest,
    );
    expect(pinned.code).toBe(0);
    expect(pinned.report.attempts[0]!.plan.fingerprints).toEqual([`${'AB:'.repeat(31)}AB`, digest]);
    expect(pinned.report.attempts[0]!.verdict).toMatchObject({ trust: 'Verified', ok: true });
    const other = await probe(relay('mx.good.test'), '--level', 'fingerprint', '--fingerprint-cert-match', `${'AB:'.repeat(31)}AB`);
    expect(other.code).toBe(1);
    expect(other.report.attempts[0]!.verdict).toMatchObject({ ok: false });
  });

  it('--tls-protocols applies at may, --tls-mandatory-protocols at encrypt', async () => {
    const plain = await probe(relay('mx.good.test'), '--level', 'encrypt');
    expect(plain.report.attempts[0]!.session.protocol).toBe('TLSv1.3');
    const mandatory = await probe(relay('mx.good.test'), '--level', 'encrypt', '--tls-mandatory-protocols', '<=TLSv1.2', '--tls-protocols', '>=TLSv1.3');
    expect(mandatory.code).toBe(0);
    expect(mandatory.report.attempts[0]!.plan.protocols).toEqual(['<=TLSv1.2']);
    expect(mandatory.report.attempts[0]!.session.protocol).toBe('TLSv1.2');
    const opportunistic = await probe(relay('mx.good.test'), '--level', 'may', '--tls-mandatory-protocols', '>=TLSv1.3', '--tls-protocols', '<=TLSv1.2');
    expect(opportunistic.report.attempts[0]!.session.protocol).toBe('TLSv1.2');
  });

  it('--tls-ciphers and --tls-exclude-ciphers at may, the mandatory ones at encrypt', async () => {
    const tls12 = ['--tls-protocols', '<=TLSv1.2', '--tls-mandatory-protocols', '<=TLSv1.2'];
    const plain = await probe(relay('mx.good.test'), '--level', 'may', ...tls12);
    expect(plain.report.attempts[0]!.session.cipher).toMatch(/GCM/);
    const may = await probe(relay('mx.good.test'), '--level', 'may', ...tls12, '--tls-ciphers', 'high', '--tls-exclude-ciphers', 'AESGCM CHACHA20');
    expect(may.report.attempts[0]!.plan.ciphers).toBe('high');
    expect(may.report.attempts[0]!.session.cipher).not.toMatch(/GCM|CHACHA/);
    // tlsExcludeCiphers applies at every level, tlsMandatoryExcludeCiphers only at encrypt and above
    const everywhere = await probe(relay('mx.good.test'), '--level', 'encrypt', ...tls12, '--tls-exclude-ciphers', 'AESGCM CHACHA20');
    expect(everywhere.report.attempts[0]!.session.cipher).not.toMatch(/GCM|CHACHA/);
    const notAtMay = await probe(relay('mx.good.test'), '--level', 'may', ...tls12, '--tls-mandatory-exclude-ciphers', 'AESGCM CHACHA20');
    expect(notAtMay.report.attempts[0]!.session.cipher).toMatch(/GCM/);
    const mandatory = await probe(
      relay('mx.good.test'),
      '--level',
      'encrypt',
      ...tls12,
      '--tls-mandatory-ciphers',
      'medium',
      '--tls-mandatory-exclude-ciphers',
      'AESGCM:CHACHA20',
    );
    expect(mandatory.code).toBe(0);
    expect(mandatory.report.attempts[0]!.plan.ciphers).toBe('medium');
    expect(mandatory.report.attempts[0]!.session.cipher).not.toMatch(/GCM|CHACHA/);
  });

  it('--tls-protocols ">=TLSv1" reaches a server that speaks TLS 1.1 at most (security level 0 at may)', async () => {
    const old = await startPeer({
      host: peers.get('mx.good.test')!.host.replace(/\.\d+$/, '.251'),
      port: 0,
      behaviour: 'starttls',
      cert: certs.get('mx.good.test')!.chainPem,
      key: certs.get('mx.good.test')!.keyPem,
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    try {
      const target = `[${old.host}]:${old.port}`;
      const refused = await probe(target, '--level', 'may');
      expect(refused.code).toBe(1);
      expect(refused.report.attempts[0]!.session.failure?.message).toMatch(/protocol version/);
      const legacy = await probe(target, '--level', 'may', '--tls-protocols', '>=TLSv1');
      expect(legacy.code).toBe(0);
      expect(legacy.report.attempts[0]!.session.protocol).toBe('TLSv1.1');
    } finally {
      await old.close();
    }
  });
});

describe('probe, human format', () => {
  const args = () => ['probe', 'dane.test', '--level', 'dane', '--port', String(port), '--resolver', dns.server];

  it('aligned sections, the result last, no colour when stdout is not a terminal', async () => {
    const { result: r, commands } = await watched(() => run(args()));
    expect(commands).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('\u001b[');
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^probe dane\.test  \(nodemailer-tls-policy .*no MAIL FROM\)$/);
    for (const heading of ['Policy', 'MX dane.test', 'Host mx.dane.test', `Attempt 1 mx.dane.test[${peers.get('mx.dane.test')!.host}]:${port}`]) {
      expect(lines).toContain(heading);
    }
    expect(lines.at(-1)).toMatch(/^Result  would deliver to dane\.test via .* at level dane \(Verified\)  \(exit 0\)$/);
    // each row: two spaces, a 12-column label, the value
    for (const label of ['level', 'resolver', 'answer', 'addresses', 'TLSA', 'plan', 'STARTTLS', 'TLS', 'certificates', 'verdict', 'DATA']) {
      expect(
        lines.some((l) => l.startsWith(`  ${label.padEnd(12)} `)),
        label,
      ).toBe(true);
    }
    expect(r.out).toMatch(/ {2}answer {7}secure\n/);
    expect(r.out).toMatch(/3 1 1 [0-9a-f]{64} {2}usable\n/);
    expect(r.out).toMatch(/0 0 1 [0-9a-f]{64} {2}unusable: /);
    expect(r.out).toMatch(/verdict {6}Verified, matched 3 1 1 /);
    expect(r.out).toMatch(/DATA {9}would be sent at level dane \(Verified\)/);
  });

  it('colour on a terminal, none with NO_COLOR or --no-color', async () => {
    expect((await run(args(), { tty: true })).out).toContain('\u001b[32mVerified\u001b[39m');
    expect((await run(args(), { tty: true, env: { NO_COLOR: '1' } })).out).not.toContain('\u001b[');
    expect((await run([...args(), '--no-color'], { tty: true })).out).not.toContain('\u001b[');
    // an empty NO_COLOR does not count (no-color.org)
    expect((await run(args(), { tty: true, env: { NO_COLOR: '' } })).out).toContain('\u001b[');
  });

  it('formatProbe and probeReport are pure: the report is plain JSON, and formatting it twice gives the same text', async () => {
    const { report } = await probe('good.test', '--level', 'verify', '--ca-file', caFile);
    const text = formatProbe(report);
    expect(formatProbe(JSON.parse(JSON.stringify(report)) as ProbeReport)).toBe(text);
    expect(JSON.stringify(report)).not.toContain('"Buffer"');
    expect(formatProbe(report, { color: true })).toContain('\u001b[');
    // a minimal result still makes a report
    const bare = probeReport({
      destination: { kind: 'domain', domain: 'x.test' },
      delivery: {
        destination: 'x.test',
        level: 'may',
        policySource: 'default',
        status: 'deferred',
        accepted: [],
        rejected: [],
        pending: [],
        attempts: [],
        reason: 'x.test: no MX address',
        code: 'EDNS',
        temporary: true,
      },
      events: [],
    });
    expect(bare.result).toMatchObject({ action: 'defer', exitStatus: 1, summary: 'would defer mail for x.test (EDNS, temporary): x.test: no MX address' });
    // a certificate that cannot be read is reported, not thrown
    expect(certificateReport(Buffer.from('not a certificate'), 0, 'sha256')).toMatchObject({
      validity: 'unknown',
      error: expect.stringMatching(/^cannot read the certificate/),
    });
  });
});

const GOOD_POLICY = `# destination   level   attributes
Example.COM.    secure  match=.example.com fallback=none
.example.org    encrypt
[relay.example]:587 verify
    protocols=!TLSv1:!TLSv1.1
partner.net     may     shadow=verify
fp.example      fingerprint match=${'AB:'.repeat(31)}AB
`;

const BAD_POLICY = `# a comment
good.example    verify

bad.example     sekure
other.example   encrypt match=foo.example
good.example    may
    
third.example   secure  fallback=maybe
`;

describe('check-policy', () => {
  it('a valid table: exit 0, every entry as the transport reads it, with its line', async () => {
    const file = join(dir, 'good.txt');
    writeFileSync(file, GOOD_POLICY);
    const text = await run(['check-policy', file]);
    expect(text.code).toBe(0);
    expect(text.err).toBe('');
    expect(text.out).toContain(`${file}: valid, 5 entries`);
    expect(text.out).toMatch(/\n {4}2 {2}example\.com +secure +match=\.example\.com fallback=none\n/);
    expect(text.out).toMatch(/\n {4}4 {2}\[relay\.example\]:587 +verify +match=hostname \(default\) protocols=!TLSv1:!TLSv1\.1\n/);
    expect(text.out).toMatch(/\n {4}6 {2}partner\.net +may +match=hostname \(default\) shadow=verify\n/);

    const json = await run(['check-policy', file, '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.out) as PolicyCheckReport;
    expect(report.valid).toBe(true);
    expect(report.entries.map((e) => [e.line, e.key, e.level])).toEqual([
      [2, 'example.com', 'secure'],
      [3, '.example.org', 'encrypt'],
      [4, '[relay.example]:587', 'verify'],
      [6, 'partner.net', 'may'],
      [7, 'fp.example', 'fingerprint'],
    ]);
    expect(report.entries[2]!.attributes).toEqual([
      { name: 'match', value: 'hostname', default: true },
      { name: 'protocols', value: '!TLSv1:!TLSv1.1' },
    ]);
    expect(report.entries[4]!.attributes).toEqual([{ name: 'match', value: `${'AB:'.repeat(31)}AB` }]);
  });

  it('an invalid table: exit 1, every problem with its exact line', async () => {
    const file = join(dir, 'bad.txt');
    writeFileSync(file, BAD_POLICY);
    const text = await run(['check-policy', file]);
    expect(text.code).toBe(1);
    const lines = text.out.trimEnd().split('\n');
    expect(lines.map((l) => l.slice(0, l.indexOf(': ')))).toEqual([`${file}:4`, `${file}:5`, `${file}:6`, `${file}:8`, file]);
    expect(lines[0]).toContain('unknown level "sekure" for bad.example');
    expect(lines[1]).toContain('attribute "match" is not allowed at level "encrypt"');
    expect(lines[2]).toContain('good.example is listed twice, at lines 2 and 6');
    expect(lines[3]).toContain('invalid fallback "maybe"');
    expect(lines[4]).toBe(`${file}: 4 problems, the table is not valid`);

    const json = await run(['check-policy', file, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.out) as PolicyCheckReport;
    expect(report.valid).toBe(false);
    expect(report.problems.map((p) => p.line)).toEqual([4, 5, 6, 8]);
    expect(report.entries).toEqual([]);
  });

  it('an entry over continuation lines: each problem at the line its attribute is on', async () => {
    const file = join(dir, 'continued.txt');
    writeFileSync(file, 'example.com  verify\n    match=nexthop\n    ciphers=strong\n# a comment\n    fallback=maybe\nexample.net  may\n');
    const text = await run(['check-policy', file]);
    expect(text.code).toBe(1);
    expect(text.out.trimEnd().split('\n')).toEqual([
      `${file}:3: unknown cipher grade "strong" for example.com (expected one of high, medium, low, export, null)`,
      `${file}:5: invalid fallback "maybe" for example.com (expected may, encrypt or none)`,
      `${file}: 2 problems, the table is not valid`,
    ]);
    const json = JSON.parse((await run(['check-policy', file, '--json'])).out) as PolicyCheckReport;
    expect(json.problems.map((p) => p.line)).toEqual([3, 5]);
  });

  it('a file an entry names that cannot be read is a problem at its line, found now, not at send time', async () => {
    const file = join(dir, 'files.txt');
    const notPem = join(dir, 'not-pem.txt');
    writeFileSync(notPem, 'hello\n');
    writeFileSync(
      file,
      `good.example may\nca.example verify cafile=${join(dir, 'missing-ca.pem')}\ncert.example encrypt cert_file=${notPem} key_file=${notPem}\n`,
    );
    const text = await run(['check-policy', file]);
    expect(text.code).toBe(1);
    const lines = text.out.trimEnd().split('\n');
    expect(lines[0]).toBe(`${file}:2: cafile ${join(dir, 'missing-ca.pem')} for ca.example cannot be read: ENOENT`);
    expect(lines[1]).toBe(`${file}:3: cert_file ${notPem} for cert.example holds no PEM block`);
    expect(lines[2]).toBe(`${file}:3: key_file ${notPem} for cert.example holds no PEM block`);
    // the transport refuses the same table when it is made
    expect(() => tlsPolicy({ policy: { file } })).toThrow(/cafile .*missing-ca\.pem for ca\.example cannot be read: ENOENT/);
  });

  it('bad arguments: exit 2', async () => {
    expect((await run(['check-policy'])).code).toBe(2);
    const missing = await run(['check-policy', join(dir, 'nonexistent.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/cannot read .*nonexistent\.txt: no such file/);
    expect((await run(['check-policy', 'a', 'b'])).code).toBe(2);
    expect((await run(['check-policy', 'a', '--bogus'])).code).toBe(2);
  });
});

describe('bad arguments: exit 2, nothing looked up or connected to', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no command', [], /no command/],
    ['an unknown command', ['prob', 'x.test'], /unknown command 'prob'/],
    ['an unknown option', ['probe', 'dane.test', '--bogus'], /Unknown option '--bogus'/],
    ['a missing target', ['probe', '--level', 'dane'], /probe needs a target/],
    ['two targets', ['probe', 'a.test', 'b.test'], /one target/],
    ['an unknown level', ['probe', 'dane.test', '--level', 'sekure'], /--level: unknown level "sekure"/],
    [
      'a bad fallback map',
      ['probe', 'dane.test', '--fallback', 'may=encrypt'],
      /--fallback "may=encrypt" is not a fallback map:\n {2}--fallback:1: level "may" cannot have a fallback level/,
    ],
    ['a bad port', ['probe', 'dane.test', '--port', '70000'], /--port must be from 1 to 65535/],
    ['a target with two colons', ['probe', 'a:b:25'], /target "a:b:25" is not a domain, \[host\], \[host\]:port or host:port/],
    ['--smtps for a domain (MX hosts have no implicit TLS)', ['probe', 'dane.test', '--smtps'], /--smtps needs a fixed next hop/],
    ['a bare address', ['probe', '192.0.2.1'], /write it in brackets/],
    ['a bad resolver', ['probe', 'dane.test', '--resolver', 'dns.example'], /--resolver: DNS server "dns.example" is not an IP address/],
    ['a bad --trust-ad', ['probe', 'dane.test', '--trust-ad', 'maybe'], /--trust-ad must be one of loopback, yes, no/],
    ['a missing CA file', ['probe', 'dane.test', '--ca-file', '/nonexistent/ca.pem'], /cannot read CA file \/nonexistent\/ca\.pem/],
    [
      'a shadow that is not stricter',
      ['probe', 'dane.test', '--level', 'verify', '--shadow', 'may'],
      /--shadow: shadow level "may" for dane\.test is not stricter than level "verify"/,
    ],
    ['--cert-file without --key-file', ['probe', 'dane.test', '--cert-file', '/x.pem'], /go together/],
    [
      '--match at a level that matches nothing',
      ['probe', 'dane.test', '--match', 'nexthop'],
      /--match nexthop does not fit the policy of dane\.test \(level may, the default level\):\n {2}--match: attribute "match" is not allowed at level "may" for dane\.test \(only fingerprint, verify and secure use it\)/,
    ],
    [
      '--match at dane',
      ['probe', 'dane.test', '--level', 'dane', '--match', 'mx.dane.test'],
      /--match mx\.dane\.test does not fit the policy of dane\.test \(level dane, the default level\):\n {2}--match: attribute "match" is not allowed at level "dane"/,
    ],
    ['--match with a bad name', ['probe', 'dane.test', '--level', 'verify', '--match', 'bad..name'], /--match: invalid match "bad\.\.name": empty label/],
    ['an empty --match', ['probe', 'dane.test', '--level', 'verify', '--match', ' '], /--match needs a name, a pattern or a digest/],
    ['a bad --tls-protocols', ['probe', 'dane.test', '--tls-protocols', 'TLSv9'], /--tls-protocols: unknown protocol "TLSv9" \(expected SSLv2, /],
    [
      'a bad --tls-mandatory-ciphers',
      ['probe', 'dane.test', '--tls-mandatory-ciphers', 'strong'],
      /--tls-mandatory-ciphers: unknown cipher grade "strong" \(expected one of high, medium, low, export, null\)/,
    ],
    ['a bad --tls-exclude-ciphers', ['probe', 'dane.test', '--tls-exclude-ciphers', '!RC4'], /--tls-exclude-ciphers: invalid cipher exclusion "!RC4"/],
    ['an empty --tls-ciphers', ['probe', 'dane.test', '--tls-ciphers', ''], /--tls-ciphers has an empty value/],
    ['a bad --fingerprint-cert-match', ['probe', 'dane.test', '--fingerprint-cert-match', 'zz'], /--fingerprint-cert-match: malformed fingerprint "zz"/],
    ['a bad --verify-cert-match', ['probe', 'dane.test', '--verify-cert-match', 'bad..name'], /--verify-cert-match: invalid match "bad\.\.name": empty label/],
    [
      '--level fingerprint without --fingerprint-cert-match',
      ['probe', 'dane.test', '--level', 'fingerprint'],
      /level fingerprint needs --fingerprint-cert-match: /,
    ],
    [
      '--tls-mandatory-protocols below TLS 1.2 under an authenticated --level',
      ['probe', 'dane.test', '--level', 'verify', '--tls-mandatory-protocols', '>=TLSv1'],
      /--tls-mandatory-protocols ">=TLSv1" allows TLSv1 and TLSv1\.1, which OpenSSL 3 negotiates only at security level 0, and it applies to level "verify" \(the level option\)/,
    ],
  ];
  for (const [what, argv, message] of cases) {
    it(what, async () => {
      const { result, connections } = await watched(() => run(argv));
      expect(result.code).toBe(2);
      expect(result.err).toMatch(message);
      expect(result.err).toContain("Try 'nodemailer-tls-policy --help'.");
      expect(result.out).toBe('');
      expect(connections).toBe(0);
    });
  }

  it('a bad policy file: every problem printed with its line; with --json also as JSON', async () => {
    const file = join(dir, 'bad-probe.txt');
    writeFileSync(file, BAD_POLICY);
    const r = await run(['probe', 'dane.test', '--policy', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`the policy table ${file} has 4 problems:`);
    for (const line of [4, 5, 6, 8]) expect(r.err).toContain(`  ${file}:${line}: `);
    const json = await run(['probe', 'dane.test', '--policy', file, '--json']);
    expect(json.code).toBe(2);
    const doc = JSON.parse(json.out) as { error: { problems: Array<{ line: number }>; exitStatus: number } };
    expect(doc.error.problems.map((p) => p.line)).toEqual([4, 5, 6, 8]);
    expect(doc.error.exitStatus).toBe(2);
  });

  it('--help and --version: exit 0', async () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['probe', '--help'], ['check-policy', '--help']]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^Usage:\n {2}nodemailer-tls-policy probe/);
      expect(r.out).toContain('Exit status of probe: 0');
    }
    expect((await run(['--version'])).out).toMatch(/^nodemailer-tls-policy \d+\.\d+\.\d+\n$/);
  });

  it('an unexpected failure of the command itself: exit 3, with the error on stderr', async () => {
    let err = '';
    const code = await main(['--version'], {
      stdout: {
        write: () => {
          throw new Error('stdout is gone');
        },
      },
      stderr: { write: (s: string) => (err += s) },
    });
    expect(code).toBe(3);
    expect(err).toMatch(/the --version command failed: Error: stdout is gone/);
  });
});

describe('the installed command', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };

  it('package.json names bin/nodemailer-tls-policy.mjs, which is shipped, executable and runs dist/esm/cli/index.js', async () => {
    expect(pkg.bin).toEqual({ 'nodemailer-tls-policy': 'bin/nodemailer-tls-policy.mjs' });
    // shipped: in the file list `npm pack` makes (.npmignore decides it)
    const pack = await exec('npm', ['pack', root, '--dry-run', '--json', '--ignore-scripts']);
    expect(pack.code, pack.stderr).toBe(0);
    expect((JSON.parse(pack.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path)).toContain('bin/nodemailer-tls-policy.mjs');
    const bin = join(root, pkg.bin['nodemailer-tls-policy']!);
    const text = readFileSync(bin, 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(text).toContain("import('../dist/esm/cli/index.js')");
    accessSync(bin, constants.X_OK);
    // the module it imports is built from lib/cli/index.ts
    expect(existsSync(join(root, 'lib', 'cli', 'index.ts'))).toBe(true);
  });

  it('runs from a build (made in a temporary directory): --version, check-policy and probe, with their exit status', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ntp-cli-build-'));
    try {
      const require = createRequire(import.meta.url);
      // TypeScript 7's tsc, installed as @typescript/native (eslint.config.js says why)
      const tsc = join(dirname(require.resolve('@typescript/native/package.json')), 'bin', 'tsc');
      // tsc emits even when a file elsewhere in lib/ fails to typecheck: only the output matters here
      await exec(process.execPath, [tsc, '-p', join(root, 'tsconfig.esm.json'), '--outDir', join(out, 'dist', 'esm')], 60_000);
      expect(existsSync(join(out, 'dist', 'esm', 'cli', 'index.js'))).toBe(true);
      mkdirSync(join(out, 'bin'));
      copyFileSync(join(root, pkg.bin['nodemailer-tls-policy']!), join(out, 'bin', 'nodemailer-tls-policy.mjs'));
      symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'), 'dir');
      const bin = join(out, 'bin', 'nodemailer-tls-policy.mjs');

      const version = await exec(process.execPath, [bin, '--version']);
      expect(version).toMatchObject({ code: 0, stdout: expect.stringMatching(/^nodemailer-tls-policy \d/) });
      const bad = join(dir, 'bin-bad.txt');
      writeFileSync(bad, BAD_POLICY);
      expect((await exec(process.execPath, [bin, 'check-policy', bad])).code).toBe(1);
      expect((await exec(process.execPath, [bin, 'probe'])).code).toBe(2);

      const before = peers.get('mx.dane.test')!.events.length;
      const dane = await exec(process.execPath, [bin, 'probe', 'dane.test', '--level', 'dane', '--json', '--port', String(port), '--resolver', dns.server]);
      expect(dane.code, dane.stderr).toBe(0);
      expect((JSON.parse(dane.stdout) as ProbeReport).result.via?.trust).toBe('Verified');
      const mismatch = await exec(process.execPath, [bin, 'probe', 'mismatch.test', '--level', 'dane', '--port', String(port), '--resolver', dns.server]);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stdout).not.toContain('\u001b['); // a pipe is not a terminal
      expect(mismatch.stdout).toMatch(/\nResult  would defer mail for mismatch\.test/);
      expect(
        peers
          .get('mx.dane.test')!
          .events.slice(before)
          .map((e) => e.command),
      ).toEqual(['CONNECT']);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});

function exec(file: string, args: string[], timeout = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

describe('probe: text from a hostile peer never acts on the terminal', () => {
  const at = (name: string) => `[${peers.get(name)!.host}]:${port}`;
  const textRun = (target: string, level: string, options: { tty?: boolean; env?: Record<string, string> } = {}, ...more: string[]) =>
    watched(() => run(['probe', target, '--level', level, '--port', String(port), '--resolver', dns.server, ...more], options));

  it('a self-signed certificate whose names and subject hold controls: shown escaped, with or without colour', async () => {
    for (const options of [{}, { tty: true, env: { NO_COLOR: '1' } }, { tty: true }]) {
      const color = options.tty === true && options.env === undefined;
      const { result: r, commands } = await textRun(at('hostile-cert'), 'encrypt', options);
      expect(commands).toEqual([]);
      expect(r.code).toBe(0);
      expectTerminalSafe(r.out, color);
      const out = stripAnsi(r.out);
      expect(out).toContain(`evil.example\\x0d\\x0a\\x1b[2J\\x1b[3J\\x1b[H\\x1b]0;pwned\\x07${FORGED_RESULT}\\x0d\\x0a.`);
      // a literal backslash is doubled: "\x0a" in a name is never shown as an escaped line feed
      expect(out).toContain('literal\\\\x0a"quoted"');
      // the subject: OpenSSL's own \1B for ESC (backslash doubled), the C1 byte escaped
      expect(out).toMatch(/subject CN=cn\\\\1B\[31m.*\\u\{0080\}/);
      expect(out).toMatch(/\nResult {2}would deliver to [\d.]+ via \S+ at level encrypt \(Untrusted\) {2}\(exit 0\)\n$/);
      if (color) expect(r.out).toContain('\u001b[31mUntrusted\u001b[39m');
    }
  });

  it('certificate names inside a verification reason are shown escaped', async () => {
    const { result: r } = await textRun(at('hostile-cert-ca'), 'verify', {}, '--ca-file', caFile);
    expect(r.code).toBe(1);
    expectTerminalSafe(r.out, false);
    expect(r.out).toMatch(/verdict {6}Trusted: .*certificate names evil\.example\\x0d\\x0a\\x1b\[2J/);
    expect(r.out).toMatch(/\nResult {2}would defer mail for /);
  });

  it('a STARTTLS refusal with controls, bidi and a forged Result line: shown escaped, at may and at encrypt', async () => {
    const reply = '454-4.7.0 busy\\x1b[2J\\x1b]0;pwned\\x07 454 4.7.0 \\u{202e}ok\\u{202c} \\u{009b}2J\\x0d' + FORGED_RESULT;
    for (const [level, code] of [
      ['may', 0],
      ['encrypt', 1],
    ] as const) {
      for (const options of [{}, { tty: true }]) {
        const { result: r, commands } = await textRun(at('hostile-reply'), level, options);
        expect(commands).toEqual([]);
        expect(r.code).toBe(code);
        expectTerminalSafe(r.out, options.tty === true);
        const out = stripAnsi(r.out);
        expect(out).toContain(`STARTTLS     offered, refused: ${reply}\n`);
        expect(out.trimEnd().split('\n').at(-1)).toContain(reply);
      }
    }
  });

  it('--json keeps the data and is safe to print: C0 by JSON.stringify, C1, bidi and separators as \\u escapes', async () => {
    const { report, out } = await probe(at('hostile-cert'), '--level', 'encrypt');
    expect(report.attempts[0]!.session.chain[0]!.names).toEqual(HOSTILE_NAMES);
    expect(report.attempts[0]!.session.chain[0]!.subject).toMatch(/\u0080/);
    expect(out).toContain('\\u0080');
    expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/);

    const refused = await probe(at('hostile-reply'), '--level', 'may');
    // the reply as the session gathered it: escaped once, where it was read
    expect(refused.report.attempts[0]!.session.starttlsReply).toMatch(/^454-4\.7\.0 busy\\x1b\[2J/);
    expect(refused.out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
  });

  it('formatJson round-trips every character and writes none a terminal acts on', () => {
    const value = {
      s: 'a\r\nb\x1b[2J\x07\x7f\x85\x9b\u061c\u200e\u200f\u2028\u2029\u202a\u202e\u2066\u2069\ufeff\\ "q" é 中 \u{1f600}',
      list: ['\u202e', 1, null, true],
    };
    const text = formatJson(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(text).toBe(
      `${JSON.stringify(value, null, 2).replace(/[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`,
    );
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/);
    expect(text).toContain('é 中 \u{1f600}');
  });

  it('formatProbe escapes DNS names and reasons too (MX, host, CNAME, TLSA), whatever report it is given', async () => {
    const { report } = await probe('dane.test', '--level', 'dane');
    const evil = `mx.evil.test\r\n\x1b]0;pwned\x07\u202e${FORGED_RESULT}`;
    const hostile: ProbeReport = JSON.parse(JSON.stringify(report)) as ProbeReport;
    hostile.mx!.records[0]!.exchange = evil;
    hostile.hosts[0]!.name = evil;
    hostile.hosts[0]!.cnames = [evil];
    hostile.attempts[0]!.where = evil;
    hostile.attempts[0]!.plan.names = [evil];
    hostile.attempts[0]!.verdict.matched = evil;
    hostile.warnings = [evil];
    for (const color of [false, true]) {
      const text = formatProbe(hostile, { color });
      expectTerminalSafe(text, color);
      expect(stripAnsi(text)).toContain(`Host mx.evil.test\\x0d\\x0a\\x1b]0;pwned\\x07\\u{202e}${FORGED_RESULT}\n`);
    }
    // a report with nothing hostile in it prints as it did
    expect(formatProbe(report)).toBe(formatProbe(JSON.parse(JSON.stringify(report)) as ProbeReport));
  });
});

describe('tls-reports', () => {
  let file: string;
  beforeAll(async () => {
    file = join(dir, 'tlsrpt.sqlite');
    await seed({ file });
  }, 30_000);

  // The same with --redis and a real redis-server: test/cli-tls-reports-redis.test.ts (npm run test:interop).
  it('--store: the reports of ended days with a failure, due or being retried with the reason; not today, not a day without a failure', async () => {
    await expectPendingReports(['--store', file], `SQLite file ${file}`);
  });

  it('nothing pending: said so, exit 0', async () => {
    const empty = join(dir, 'empty.sqlite');
    openStores({ file: empty });
    expect(await run(['tls-reports', '--store', empty])).toMatchObject({ code: 0, out: `No TLS report is pending in the SQLite file ${empty}.\n` });
  });

  it('a reason that quotes a hostile answer is escaped for the terminal', () => {
    const hostile: TlsReportsReport = {
      store: 'memory',
      pending: [
        {
          domain: 'x.test',
          day: yesterday,
          status: 'retrying',
          successful: 0,
          failed: 1,
          attempts: 1,
          errors: { 'https://r.test/': `https://r.test/: HTTP status 500\r\n\x1b]0;pwned\x07\u202e${FORGED_RESULT}` },
          policies: [],
        },
      ],
    };
    for (const color of [false, true]) {
      const text = stripAnsi(formatTlsReports(hostile, { color }));
      expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
      expect(text).toContain('HTTP status 500\\x0d\\x0a\\x1b]0;pwned');
    }
  });

  it.each([
    [[], /tls-reports needs the store your transports count into: --store FILE \(a SQLite file\) or --redis URL/],
    [['--store', 'a.sqlite', '--redis', 'redis://127.0.0.1'], /--store and --redis exclude each other/],
    [['--store', '/nonexistent/tlsrpt.sqlite'], /--store \/nonexistent\/tlsrpt\.sqlite: no such file/],
    [['--redis', 'http://127.0.0.1'], /--redis "http:\/\/127\.0\.0\.1" is not a redis:\/\/ or rediss:\/\/ URL/],
    [['--store', 'a.sqlite', '--bogus'], /Unknown option '--bogus'/],
    [['--store', 'a.sqlite', 'extra'], /tls-reports takes no arguments but options, not extra/],
  ])('%j: exit 2, with why', async (argv, message) => {
    const r = await run(['tls-reports', ...argv]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('a Redis that does not answer: exit 1, naming the store and why', async () => {
    const r = await run(['tls-reports', '--redis', 'redis://127.0.0.1:9']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^nodemailer-tls-policy: tlsReports\.pending\(\): the Redis store failed: /);
  });

  it('--help: the usage, with the command', async () => {
    const r = await run(['tls-reports', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('tls-reports (--store FILE | --redis URL) [--all] [--json] [--no-color]');
  });
});
