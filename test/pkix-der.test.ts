/**
 * subjectPublicKeyInfoOf: the SubjectPublicKeyInfo bytes of a DER certificate found by walking
 * the DER, checked against OpenSSL's own answer (KeyObject.export of the parsed certificate's
 * key, and `openssl x509 -pubkey`) on real certificates of every key type made here, and
 * against broken encodings, every one of which must give undefined rather than some bytes.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { subjectPublicKeyInfoOf } from '../lib/pkix/der.js';
import { SessionCerts, spkiDer } from '../lib/pkix/index.js';
import { makeCA, makeLeaf } from './helpers/pki.js';

const dir = mkdtempSync(join(tmpdir(), 'pkix-der-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate made by `openssl req -x509` with the given key options; v1 without extensions when asked. */
function opensslCert(name: string, keyArgs: string[], v1 = false): Buffer {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.der`);
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', key], { stdio: 'ignore' });
  if (v1) {
    const csr = join(dir, `${name}.csr`);
    execFileSync('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', csr, '-signkey', key, '-days', '2', '-outform', 'DER', '-out', cert], { stdio: 'ignore' });
  } else {
    execFileSync('openssl', ['req', '-x509', '-key', key, '-subj', `/CN=${name}`, '-days', '2', '-outform', 'DER', '-out', cert], { stdio: 'ignore' });
  }
  return readFileSync(cert);
}

/** OpenSSL's SubjectPublicKeyInfo of a certificate, from the command line: `openssl x509 -pubkey`, as DER. */
function opensslSpki(der: Buffer): Buffer {
  const input = join(dir, 'probe-cert.der');
  writeFileSync(input, der);
  execFileSync('openssl', ['x509', '-inform', 'DER', '-in', input, '-noout', '-pubkey', '-out', join(dir, 'pub.pem')]);
  execFileSync('openssl', ['pkey', '-pubin', '-in', join(dir, 'pub.pem'), '-outform', 'DER', '-out', join(dir, 'pub.der')]);
  return readFileSync(join(dir, 'pub.der'));
}

const certs: Record<string, Buffer> = {};
beforeAll(async () => {
  const ca = await makeCA('der CA');
  certs['EC P-256 leaf from a CA (v3)'] = (await makeLeaf(ca, { names: ['mx.der.test'] })).der;
  certs['RSA 2048 leaf from a CA (v3)'] = (await makeLeaf(ca, { names: ['mx.der.test'], keyType: 'rsa' })).der;
  certs['RSA 3072 self-signed (v3)'] = opensslCert('rsa3072', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072']);
  certs['EC P-384 self-signed (v3)'] = opensslCert('p384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']);
  certs['Ed25519 self-signed (v3)'] = opensslCert('ed25519', ['-algorithm', 'ED25519']);
  certs['Ed448 self-signed (v3)'] = opensslCert('ed448', ['-algorithm', 'ED448']);
  certs['RSA-PSS self-signed (v3)'] = opensslCert('rsapss', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048']);
  certs['EC P-256 v1 (no version field)'] = opensslCert('v1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], true);
}, 120_000);

describe('subjectPublicKeyInfoOf agrees with OpenSSL on real certificates', () => {
  test('every key type, with and without the version field', () => {
    expect(Object.keys(certs)).toHaveLength(8);
    for (const [name, der] of Object.entries(certs)) {
      const walked = subjectPublicKeyInfoOf(der);
      expect(walked, name).toBeDefined();
      const exported = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
      expect(walked!.equals(exported), `${name}: the same bytes as KeyObject.export`).toBe(true);
      expect(walked!.equals(opensslSpki(der)), `${name}: the same bytes as openssl x509 -pubkey`).toBe(true);
    }
  });

  test('the v1 certificate really has no version field, and the others have one', () => {
    // TBSCertificate's first element: [0] EXPLICIT version (0xa0) or the serial number (INTEGER, 0x02)
    const firstInTbs = (der: Buffer) => {
      const outerHeader = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
      const tbsHeader = der[outerHeader + 1]! & 0x80 ? 2 + (der[outerHeader + 1]! & 0x7f) : 2;
      return der[outerHeader + tbsHeader];
    };
    expect(firstInTbs(certs['EC P-256 v1 (no version field)']!)).toBe(0x02);
    expect(firstInTbs(certs['Ed25519 self-signed (v3)']!)).toBe(0xa0);
  });

  test('spkiDer and SessionCert.spki() give the same bytes, with and without the handshake shortcut', () => {
    for (const [name, der] of Object.entries(certs)) {
      const want = subjectPublicKeyInfoOf(der)!;
      expect(spkiDer(der).equals(want), name).toBe(true);
      const parsedFirst = new SessionCerts();
      expect(parsedFirst.cert(der).spki().equals(want), name).toBe(true);
      expect(parsedFirst.counters.parses, `${name}: a certificate from elsewhere is parsed first`).toBe(1);
      const fromHandshake = new SessionCerts([der]);
      expect(fromHandshake.cert(der).spki().equals(want), name).toBe(true);
      expect(fromHandshake.counters.parses, `${name}: a handshake's certificate is not parsed again`).toBe(0);
    }
  });

  test('bytes laid out as a certificate that are none still fail as before when no handshake parsed them', () => {
    const notACert = smallestLayout();
    expect(subjectPublicKeyInfoOf(notACert)).toBeDefined();
    expect(() => new X509Certificate(notACert)).toThrow();
    expect(() => new SessionCerts().cert(notACert).spki()).toThrow();
    expect(() => spkiDer(notACert)).toThrow();
  });
});

describe('subjectPublicKeyInfoOf refuses what is not DER laid out as a certificate', () => {
  test('every proper prefix of a certificate, and a certificate with a byte after it', () => {
    for (const der of Object.values(certs)) {
      for (let n = 0; n < der.length; n++) expect(subjectPublicKeyInfoOf(der.subarray(0, n)), `prefix of ${n} bytes`).toBeUndefined();
      expect(subjectPublicKeyInfoOf(Buffer.concat([der, Buffer.from([0])]))).toBeUndefined();
    }
  });

  const der = () => certs['RSA 2048 leaf from a CA (v3)']!;
  const cases: [string, () => Uint8Array][] = [
    ['empty', () => Buffer.alloc(0)],
    ['an outer tag other than SEQUENCE', () => Buffer.concat([Buffer.from([0x31]), der().subarray(1)])],
    ['an indefinite outer length (BER)', () => Buffer.concat([Buffer.from([0x30, 0x80]), der().subarray(4), Buffer.from([0, 0])])],
    ['a length in more bytes than needed (a leading zero byte)', () => Buffer.from([0x30, 0x82, 0x00, 0x03, 0x30, 0x01, 0x02])],
    ['a length in long form that fits the short form', () => Buffer.from([0x30, 0x81, 0x13, ...smallestLayout().subarray(2)])],
    ['a length longer than four bytes', () => Buffer.from([0x30, 0x85, 0, 0, 0, 0, 3, 0x30, 0x01, 0x02])],
    ['a high tag number', () => Buffer.from([0x30, 0x04, 0x1f, 0x81, 0x00, 0x00])],
    ['a TBSCertificate that is not a SEQUENCE', () => Buffer.from([0x30, 0x03, 0x04, 0x01, 0x00])],
    ['no serial number after the version', () => Buffer.from([0x30, 0x09, 0x30, 0x07, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x30, 0x00])],
    ['too few SEQUENCEs before the key', () => Buffer.from([0x30, 0x0b, 0x30, 0x09, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00])],
    [
      'a field that is not a SEQUENCE where one belongs',
      () => Buffer.from([0x30, 0x0f, 0x30, 0x0d, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x31, 0x00, 0x30, 0x00]),
    ],
  ];
  test.each(cases)('%s', (_name, make) => {
    expect(subjectPublicKeyInfoOf(make())).toBeUndefined();
  });

  test('the smallest layout that is one gives the sixth element, as a view of the input', () => {
    const bytes = smallestLayout();
    const got = subjectPublicKeyInfoOf(bytes);
    expect(got?.toString('hex')).toBe('30020500');
    expect(got?.buffer).toBe(bytes.buffer);
  });
});

/** Certificate { TBS { serial, signature, issuer, validity, subject, SPKI { 05 00 }, 30 00 } }: the layout, and nothing a parser would take. */
function smallestLayout(): Buffer {
  return Buffer.from([0x30, 0x13, 0x30, 0x11, 0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x02, 0x05, 0x00, 0x30, 0x00]);
}
