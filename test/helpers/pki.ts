/**
 * Test PKI: real certificates made at test time with the openssl command line.
 *
 * Every call works in its own fresh temporary directory (removed before it returns), so
 * test files running in parallel never share state, and nothing is cached. Keys are EC
 * P-256 unless RSA is asked for. Certificates are issued with `openssl ca`, which (unlike
 * OpenSSL 3.0's `x509 -req`) can set any notBefore/notAfter, so expired and not-yet-valid
 * certificates are real; self-signed ones use `openssl ca -selfsign`.
 *
 * Part of the test kit shared by test/, demo/ and bench/: the demo and the bench import this
 * file from plain `node`, which strips its types (Node >= 22.18), so it holds only erasable
 * TypeScript (no enums, namespaces or parameter properties) and imports no relative module.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

export type KeyType = 'rsa' | 'ec';

/** A certificate with its key. */
export interface Issued {
  /** The certificate, PEM. */
  certPem: string;
  /** Its private key, PKCS#8 PEM. */
  keyPem: string;
  /** The certificate, DER. */
  der: Buffer;
  /**
   * What a server would send: this certificate, then the intermediate CAs above it, leaf
   * first; never a self-signed root above it (a self-signed certificate is its own chain).
   */
  chainPem: string;
  /** Whether it is self-signed (a root CA or a 'self' leaf). */
  selfSigned: boolean;
}

export interface CertOptions {
  /** DNS subjectAltNames; none (and no `ips`) makes a certificate without the extension. */
  names?: string[];
  /** IP address subjectAltNames (iPAddress entries). */
  ips?: string[];
  /** Subject CN; none makes a subject with only an O attribute. */
  cn?: string;
  notBefore?: Date;
  notAfter?: Date;
  keyType?: KeyType;
}

export interface LeafOptions extends CertOptions {
  names: string[];
}

export interface CAOptions extends Omit<CertOptions, 'cn'> {
  /** Sign with this CA (an intermediate CA); default: self-signed root. */
  issuer?: Issued;
}

const DAY = 24 * 60 * 60 * 1000;

/** OpenSSL's GeneralizedTime form, YYYYMMDDHHMMSSZ. */
function opensslTime(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** A value for `-subj`: '/', '+' and '\' escaped. */
function subjValue(s: string): string {
  return s.replace(/[\\/+]/g, (c) => `\\${c}`);
}

/**
 * A value for the config file's alt_names section, any bytes allowed: OpenSSL's config parser
 * reads `\n`, `\r`, `\t` and `\b` as control characters and a backslash before any other
 * character as that character, so hostile names (line breaks, ESC, quotes) can be issued.
 */
function confValue(s: string): string {
  if (/^[A-Za-z0-9*._-]+$/.test(s)) return s;
  const escaped = s.replace(/[\\"'#$\n\r\t\b]/g, (c) => ({ '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b' })[c] ?? `\\${c}`);
  return /^\s|\s$/.test(s) ? `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"` : escaped;
}

async function newKey(type: KeyType = 'ec'): Promise<string> {
  const pair = type === 'rsa' ? await generateKeyPairAsync('rsa', { modulusLength: 2048 }) : await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function config(dir: string, ca: boolean, names: readonly string[], ips: readonly string[] = []): string {
  const lines = [
    '[ req ]',
    'distinguished_name = req_dn',
    'prompt = no',
    '[ req_dn ]',
    '[ ca ]',
    'default_ca = test_ca',
    '[ test_ca ]',
    `database = ${join(dir, 'index.txt')}`,
    `new_certs_dir = ${dir}`,
    `serial = ${join(dir, 'serial')}`,
    'default_md = sha256',
    'policy = any_policy',
    'unique_subject = no',
    'email_in_dn = no',
    'copy_extensions = none',
    '[ any_policy ]',
    'commonName = optional',
    'organizationName = optional',
    '[ cert_ext ]',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ];
  if (ca) {
    lines.push('basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign');
  } else {
    lines.push('basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature,keyEncipherment', 'extendedKeyUsage = serverAuth');
  }
  if (names.length > 0 || ips.length > 0) {
    lines.push('subjectAltName = @alt_names', '[ alt_names ]');
    names.forEach((n, i) => lines.push(`DNS.${i + 1} = ${confValue(n)}`));
    ips.forEach((ip, i) => lines.push(`IP.${i + 1} = ${ip}`));
  }
  return lines.join('\n') + '\n';
}

async function issue(issuer: Issued | 'self', ca: boolean, opts: CertOptions): Promise<Issued> {
  const dir = await mkdtemp(join(tmpdir(), 'ntp-pki-'));
  try {
    const now = Date.now();
    const notBefore = opts.notBefore ?? new Date(now - 60 * 60 * 1000);
    const notAfter = opts.notAfter ?? new Date(now + (ca ? 3650 : 30) * DAY);
    const keyPem = await newKey(opts.keyType);
    const file = (name: string) => join(dir, name);
    await Promise.all([
      writeFile(file('key.pem'), keyPem, { mode: 0o600 }),
      writeFile(file('openssl.cnf'), config(dir, ca, opts.names ?? [], opts.ips ?? [])),
      writeFile(file('index.txt'), ''),
      // A random serial: certificates from one issuer never collide.
      writeFile(file('serial'), `40${randomBytes(15).toString('hex')}\n`),
    ]);
    const subject = opts.cn !== undefined ? `/CN=${subjValue(opts.cn)}` : '/O=nodemailer-tls-policy test';
    await run('openssl', ['req', '-new', '-config', file('openssl.cnf'), '-key', file('key.pem'), '-subj', subject, '-out', file('req.csr')]);
    const args = ['ca', '-batch', '-notext', '-config', file('openssl.cnf'), '-in', file('req.csr'), '-out', file('cert.pem')];
    args.push('-startdate', opensslTime(notBefore), '-enddate', opensslTime(notAfter), '-extensions', 'cert_ext');
    if (issuer === 'self') {
      args.push('-selfsign', '-keyfile', file('key.pem'));
    } else {
      await Promise.all([writeFile(file('issuer.pem'), issuer.certPem), writeFile(file('issuer-key.pem'), issuer.keyPem, { mode: 0o600 })]);
      args.push('-cert', file('issuer.pem'), '-keyfile', file('issuer-key.pem'));
    }
    await run('openssl', args);
    const certPem = await readFile(file('cert.pem'), 'utf8');
    const der = Buffer.from(new X509Certificate(certPem).raw);
    const above = issuer === 'self' || issuer.selfSigned ? '' : issuer.chainPem;
    return { certPem, keyPem, der, chainPem: certPem + above, selfSigned: issuer === 'self' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A CA: a self-signed root, or with `issuer` an intermediate CA signed by that CA. */
export function makeCA(commonName: string, opts: CAOptions = {}): Promise<Issued> {
  const { issuer, ...rest } = opts;
  return issue(issuer ?? 'self', true, { ...rest, cn: commonName });
}

/** A server certificate signed by `issuer`, or self-signed with 'self'. */
export function makeLeaf(issuer: Issued | 'self', opts: LeafOptions): Promise<Issued> {
  return issue(issuer, false, opts);
}

/** Days from now, for notBefore/notAfter. */
export function daysFromNow(days: number): Date {
  return new Date(Date.now() + days * DAY);
}

/** A test CA with its certificate in a file (for `caFile`), and leaves it issues. */
export interface Pki {
  ca: Issued;
  /** The CA certificate, PEM, in a file of its own. */
  caFile: string;
  /** The temporary directory holding caFile. */
  dir: string;
  /** A leaf for `names` issued by the CA; `self`: self-signed; `expired`: valid 60 to 30 days ago. */
  leaf(names: string[], opts?: { expired?: boolean; self?: boolean }): Promise<Issued>;
  /** Removes `dir`. */
  close(): void;
}

export async function makePki(commonName = 'nodemailer-tls-policy test CA'): Promise<Pki> {
  const ca = await makeCA(commonName);
  const dir = mkdtempSync(join(tmpdir(), 'ntp-pki-ca-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  return {
    ca,
    caFile,
    dir,
    leaf: (names, opts = {}) =>
      makeLeaf(opts.self ? 'self' : ca, {
        names,
        ...(opts.expired ? { notBefore: daysFromNow(-60), notAfter: daysFromNow(-30) } : {}),
      }),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A TLSA record's certificate association data for a certificate (RFC 6698 section 2.1):
 * selector 0 the whole certificate, 1 its SubjectPublicKeyInfo; matching type 0 the bytes
 * themselves, 1 their SHA-256, 2 their SHA-512. Hex.
 */
export function tlsaData(der: Buffer, selector: 0 | 1, matching: 0 | 1 | 2): string {
  const selected = selector === 0 ? der : (new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }) as Buffer);
  if (matching === 0) return selected.toString('hex');
  return createHash(matching === 1 ? 'sha256' : 'sha512')
    .update(selected)
    .digest('hex');
}

/**
 * A chain of `n` CA certificates and a leaf for mx1.example.net, made in one shell run of
 * openssl: "CA 0" is self-signed, "CA i" is signed by "CA i-1", the leaf by "CA n-1".
 */
export function longChain(n: number): { leaf: Issued; cas: Issued[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ntp-dane-chain-'));
  try {
    writeFileSync(
      join(dir, 'x.cnf'),
      [
        '[ req ]',
        'distinguished_name = dn',
        'prompt = no',
        '[ dn ]',
        'CN = unused',
        '[ ca ]',
        'basicConstraints = critical,CA:TRUE',
        'keyUsage = critical,keyCertSign',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        '[ leaf ]',
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature',
        'extendedKeyUsage = serverAuth',
        'subjectAltName = DNS:mx1.example.net',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        '',
      ].join('\n'),
    );
    const make = 'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -config x.cnf';
    const script = [
      'set -e',
      `${make} -extensions ca -subj "/CN=CA 0" -keyout k0.pem -out c0.pem`,
      'i=1',
      `while [ $i -lt ${n} ]; do`,
      `  ${make} -extensions ca -subj "/CN=CA $i" -keyout k$i.pem -out c$i.pem -CA c$((i-1)).pem -CAkey k$((i-1)).pem`,
      '  i=$((i+1))',
      'done',
      `${make} -extensions leaf -subj /CN=mx1.example.net -keyout leaf.key -out leaf.pem -CA c${n - 1}.pem -CAkey k${n - 1}.pem`,
    ].join('\n');
    execFileSync('sh', ['-c', script], { cwd: dir, stdio: 'ignore' });
    const read = (cert: string, key: string): Issued => {
      const certPem = readFileSync(join(dir, cert), 'utf8');
      const der = Buffer.from(new X509Certificate(certPem).raw);
      return { certPem, keyPem: readFileSync(join(dir, key), 'utf8'), der, chainPem: certPem, selfSigned: false };
    };
    return { leaf: read('leaf.pem', 'leaf.key'), cas: Array.from({ length: n }, (_, i) => read(`c${i}.pem`, `k${i}.pem`)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Certificates makeLeaf() cannot make: a certificate signed by `issuer` with exactly the given
 * X.509v3 extensions (openssl x509 -req -extfile), valid from now on; with `utf8`, a subject of
 * one CN, a UTF8String holding `cn` as given (openssl req -utf8), bidi and C1 characters included.
 */
export function issueWithExtensions(issuer: Issued, cn: string, extensions: string[], opts: { utf8?: boolean } = {}): Issued {
  const dir = mkdtempSync(join(tmpdir(), 'ntp-dane-'));
  try {
    const file = (name: string) => join(dir, name);
    writeFileSync(file('issuer.pem'), issuer.certPem);
    writeFileSync(file('issuer-key.pem'), issuer.keyPem, { mode: 0o600 });
    writeFileSync(file('ext.cnf'), ['[ ext ]', 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid', ...extensions].join('\n') + '\n');
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('key.pem')]);
    // -utf8: the CN is a UTF8String holding exactly `cn` (bidi and C1 characters included).
    const subject = opts.utf8 ? `/CN=${cn.replace(/[\\/+]/g, (c) => `\\${c}`)}` : `/CN=${cn}`;
    execFileSync('openssl', ['req', '-new', ...(opts.utf8 ? ['-utf8'] : []), '-key', file('key.pem'), '-subj', subject, '-out', file('req.csr')]);
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        file('req.csr'),
        '-CA',
        file('issuer.pem'),
        '-CAkey',
        file('issuer-key.pem'),
        '-set_serial',
        `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`,
        '-days',
        '30',
        '-extfile',
        file('ext.cnf'),
        '-extensions',
        'ext',
        '-out',
        file('cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const certPem = readFileSync(file('cert.pem'), 'utf8');
    const keyPem = readFileSync(file('key.pem'), 'utf8');
    const der = Buffer.from(new X509Certificate(certPem).raw);
    return { certPem, keyPem, der, chainPem: certPem, selfSigned: false };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
