import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  abbreviateTlsa,
  classifyTlsa,
  daneNames,
  daneVerify,
  formatTlsa,
  MAX_CHAIN_LENGTH,
  MAX_TLSA_RECORDS,
  parseTlsaText,
  SessionCerts,
  type DaneRequest,
  type TlsaRecord,
} from '../lib/dane/index.js';
import { hasNoControls } from '../lib/text/index.js';
import type { ResultType } from '../lib/types.js';
import type { Verdict } from '../lib/types.js';
import { auditDigests } from '../lib/pkix/index.js';
import { daysFromNow, type Issued, issueWithExtensions, longChain, makeCA, makeLeaf } from './helpers/pki.js';
import { thrown } from './helpers/thrown.js';

// ---------------------------------------------------------------------------------------
// Test PKI, made once for this file: root -> intermediate -> leaf, and the odd ones.

const pki = {} as Record<
  | 'root'
  | 'inter'
  | 'impostorInter'
  | 'expiredInter'
  | 'good'
  | 'rsa'
  | 'wildcard'
  | 'provider'
  | 'wrongName'
  | 'expired'
  | 'notYet'
  | 'self'
  | 'underExpiredInter'
  | 'forged'
  | 'notCA'
  | 'underNotCA'
  | 'caFalse'
  | 'underCaFalse'
  | 'clientOnly'
  | 'emailCA'
  | 'underEmailCA',
  Issued
>;

const NAMES = ['mx1.example.net'];

beforeAll(async () => {
  pki.root = await makeCA('Test Root CA');
  [pki.inter, pki.impostorInter, pki.expiredInter] = await Promise.all([
    makeCA('Test Intermediate CA', { issuer: pki.root }),
    // Same name as the intermediate, another key: what it signs is not signed by the real one.
    makeCA('Test Intermediate CA', { issuer: pki.root }),
    makeCA('Expired Intermediate CA', { issuer: pki.root, notBefore: daysFromNow(-60), notAfter: daysFromNow(-2) }),
  ]);
  const cn = 'mx1.example.net';
  [pki.good, pki.rsa, pki.wildcard, pki.provider, pki.wrongName, pki.expired, pki.notYet, pki.self, pki.underExpiredInter, pki.forged, pki.notCA] =
    await Promise.all([
      makeLeaf(pki.inter, { names: NAMES, cn }),
      makeLeaf(pki.inter, { names: NAMES, cn, keyType: 'rsa' }),
      makeLeaf(pki.inter, { names: ['*.example.net'] }),
      makeLeaf(pki.inter, { names: ['mx.provider.net'] }),
      makeLeaf(pki.inter, { names: ['mx.other.test', 'www.other.test'], cn: 'mx.other.test' }),
      makeLeaf(pki.inter, { names: NAMES, cn, notBefore: daysFromNow(-30), notAfter: daysFromNow(-1) }),
      makeLeaf(pki.inter, { names: NAMES, cn, notBefore: daysFromNow(2), notAfter: daysFromNow(30) }),
      makeLeaf('self', { names: NAMES, cn }),
      makeLeaf(pki.expiredInter, { names: NAMES, cn }),
      makeLeaf(pki.impostorInter, { names: NAMES, cn }),
      // A server certificate (CA:FALSE, no keyCertSign) used as if it were a CA.
      makeLeaf(pki.inter, { names: ['signer.example.net'], cn: 'Not A CA' }),
    ]);
  pki.underNotCA = await makeLeaf(pki.notCA, { names: NAMES, cn });
  const serverLeaf = ['basicConstraints = critical,CA:FALSE', 'extendedKeyUsage = serverAuth', 'subjectAltName = DNS:mx1.example.net'];
  // CA:FALSE without a key usage extension: it may sign as far as key usage goes, but it is no CA.
  pki.caFalse = issueWithExtensions(pki.root, 'CA False', ['basicConstraints = critical,CA:FALSE']);
  pki.underCaFalse = issueWithExtensions(pki.caFalse, cn, serverLeaf);
  pki.clientOnly = issueWithExtensions(pki.inter, cn, [
    'basicConstraints = critical,CA:FALSE',
    'extendedKeyUsage = clientAuth',
    'subjectAltName = DNS:mx1.example.net',
  ]);
  pki.emailCA = issueWithExtensions(pki.root, 'Email CA', [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign',
    'extendedKeyUsage = emailProtection',
  ]);
  pki.underEmailCA = issueWithExtensions(pki.emailCA, cn, serverLeaf);
});

// ---------------------------------------------------------------------------------------
// TLSA data, computed here independently of lib/: the SubjectPublicKeyInfo comes from
// openssl, the digests from node:crypto.

const spkiMemo = new Map<string, Buffer>();
function spkiOf(i: Issued): Buffer {
  let v = spkiMemo.get(i.certPem);
  if (v === undefined) {
    v = execFileSync('sh', ['-c', 'openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER'], { input: i.certPem });
    spkiMemo.set(i.certPem, v);
  }
  return v;
}

/** A TLSA record for a certificate: `tlsa(3, 1, 1, pki.good)` is "3 1 1" of the good leaf. */
function tlsa(usage: number, selector: 0 | 1, matchingType: 0 | 1 | 2, i: Issued): TlsaRecord {
  const selected = selector === 0 ? i.der : spkiOf(i);
  const data =
    matchingType === 0
      ? selected
      : createHash(matchingType === 1 ? 'sha256' : 'sha512')
          .update(selected)
          .digest();
  return { usage, selector, matchingType, data: Buffer.from(data) };
}

/** How messages show a record: first 8 hex digits and '...'. */
function ab(r: TlsaRecord): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex').slice(0, 8)}...`;
}

/** The whole record, as `matched` reports it. */
function whole(r: TlsaRecord): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`;
}

function notAfter(i: Issued): string {
  return new X509Certificate(i.der).validToDate.toISOString().replace('.000Z', 'Z');
}

function notBefore(i: Issued): string {
  return new X509Certificate(i.der).validFromDate.toISOString().replace('.000Z', 'Z');
}

/** The leaf with one bit of its signature flipped: its issuer is right, the signature is not. */
function tampered(i: Issued): Buffer {
  const der = Buffer.from(i.der);
  der[der.length - 1] = der[der.length - 1]! ^ 0x01;
  return der;
}

const TLSA_NAME = '_25._tcp.mx1.example.net';
const HOST = 'mx1.example.net';
const REF = ['mx1.example.net', 'example.net'];

function request(over: Partial<DaneRequest> & Pick<DaneRequest, 'records' | 'chain'>): DaneRequest {
  return { tlsaName: TLSA_NAME, host: HOST, names: REF, now: new Date(), trust: 'Verified', ...over };
}

interface Row {
  name: string;
  make: () => { req: Partial<DaneRequest> & Pick<DaneRequest, 'records' | 'chain'>; want: Verdict };
}

const pass = (r: TlsaRecord, trust: 'Verified' | 'Trusted' = 'Verified'): Verdict => ({ ok: true, trust, matched: whole(r) });
/**
 * RFC 8460 section 4.3's result type a DANE failure must carry, read off the expected reason:
 * the leaf's names matched no reference name -> certificate-host-mismatch; a certificate on the
 * path to a matched anchor out of date -> certificate-expired; another failure of that path ->
 * validation-failure; no record matched (or none could be used) -> tlsa-invalid.
 */
function daneResultType(reason: string): ResultType {
  if (/matched none of|no reference names were given/.test(reason) && /\(TLSA /.test(reason)) return 'certificate-host-mismatch';
  if (/certificate chain failed at depth .*: certificate (has expired|is not yet valid)/.test(reason)) return 'certificate-expired';
  if (/certificate chain failed at depth .*\(TLSA /.test(reason) && !/certificate chain too long/.test(reason)) return 'validation-failure';
  return 'tlsa-invalid';
}
const fail = (reason: string): Verdict => ({ ok: false, trust: 'Untrusted', reason, resultType: daneResultType(reason) });
/** A table's expected verdict with the result type every failure carries. */
const typed = (want: Verdict): Verdict => (want.ok || want.resultType ? want : { ...want, resultType: daneResultType(want.reason ?? '') });
const noMatch = (r: TlsaRecord) => fail(`TLSA ${ab(r)} for ${TLSA_NAME} matched no certificate of ${HOST}`);

const full = () => [pki.good.der, pki.inter.der, pki.root.der];

function eeRow(name: string, record: () => TlsaRecord, chain: () => Buffer[], ok: boolean): Row {
  return {
    name,
    make: () => {
      const r = record();
      return { req: { records: [r], chain: chain() }, want: ok ? pass(r) : noMatch(r) };
    },
  };
}

// ---------------------------------------------------------------------------------------

describe('daneVerify: DANE-EE(3) matches the leaf alone, no name, date or chain check', () => {
  const rows: Row[] = [
    eeRow('3 1 1 (SPKI, SHA2-256) of the leaf', () => tlsa(3, 1, 1, pki.good), full, true),
    eeRow('3 0 1 (certificate, SHA2-256) of the leaf', () => tlsa(3, 0, 1, pki.good), full, true),
    eeRow('3 1 2 (SPKI, SHA2-512) of the leaf', () => tlsa(3, 1, 2, pki.good), full, true),
    eeRow('3 0 2 (certificate, SHA2-512) of the leaf', () => tlsa(3, 0, 2, pki.good), full, true),
    eeRow('3 0 0 (whole certificate) of the leaf', () => tlsa(3, 0, 0, pki.good), full, true),
    eeRow('3 1 0 (whole SPKI) of the leaf', () => tlsa(3, 1, 0, pki.good), full, true),
    eeRow(
      '3 1 1 of an RSA leaf',
      () => tlsa(3, 1, 1, pki.rsa),
      () => [pki.rsa.der, pki.inter.der],
      true,
    ),
    eeRow('3 1 1 of another key: mismatch', () => tlsa(3, 1, 1, pki.wrongName), full, false),
    eeRow('3 0 1 of another certificate: mismatch', () => tlsa(3, 0, 1, pki.wrongName), full, false),
    eeRow('3 1 2 of another key: mismatch', () => tlsa(3, 1, 2, pki.wrongName), full, false),
    eeRow('3 0 0 of another certificate: mismatch', () => tlsa(3, 0, 0, pki.wrongName), full, false),
    eeRow('3 1 1 of the intermediate: DANE-EE never matches above the leaf', () => tlsa(3, 1, 1, pki.inter), full, false),
    eeRow(
      'an expired leaf still passes',
      () => tlsa(3, 1, 1, pki.expired),
      () => [pki.expired.der, pki.inter.der],
      true,
    ),
    eeRow(
      'a not yet valid leaf still passes',
      () => tlsa(3, 0, 1, pki.notYet),
      () => [pki.notYet.der, pki.inter.der],
      true,
    ),
    eeRow(
      'a leaf with other names still passes',
      () => tlsa(3, 1, 1, pki.wrongName),
      () => [pki.wrongName.der, pki.inter.der],
      true,
    ),
    eeRow(
      'a self-signed leaf passes',
      () => tlsa(3, 1, 1, pki.self),
      () => [pki.self.der],
      true,
    ),
    eeRow(
      'a leaf with a broken signature passes',
      () => tlsa(3, 1, 1, pki.good),
      () => [tampered(pki.good), pki.inter.der],
      true,
    ),
    {
      name: 'DANE-EE is tried before DANE-TA, whatever the record order',
      make: () => {
        const ee = tlsa(3, 1, 1, pki.good);
        return { req: { records: [tlsa(2, 0, 1, pki.root), ee], chain: full() }, want: pass(ee) };
      },
    },
    {
      name: 'success is reported with the trust asked for',
      make: () => {
        const ee = tlsa(3, 1, 1, pki.good);
        return { req: { records: [ee], chain: full(), trust: 'Trusted' }, want: pass(ee, 'Trusted') };
      },
    },
  ];
  test.each(rows)('$name', ({ make }) => {
    const { req, want } = make();
    expect(daneVerify(request(req))).toEqual(typed(want));
  });
});

describe('daneVerify: DANE-TA(2) anchors a chain that must then verify', () => {
  const names = (r: TlsaRecord, leafNames: string, anchor: string) =>
    fail(`${HOST} certificate names ${leafNames} matched none of ${REF.join(', ')} (TLSA ${ab(r)} for ${TLSA_NAME} ${anchor})`);
  const chainFail = (r: TlsaRecord, depth: number, subject: string, words: string, anchor: string) =>
    fail(`${HOST} certificate chain failed at depth ${depth}, ${subject}: ${words} (TLSA ${ab(r)} for ${TLSA_NAME} ${anchor})`);
  const taRow = (name: string, record: () => TlsaRecord, chain: () => Buffer[], extra: Partial<DaneRequest> = {}): Row => ({
    name,
    make: () => {
      const r = record();
      return { req: { records: [r], chain: chain(), ...extra }, want: pass(r) };
    },
  });
  const rows: Row[] = [
    taRow('2 0 1 of the intermediate, full chain sent', () => tlsa(2, 0, 1, pki.inter), full),
    taRow('2 1 1 of the intermediate', () => tlsa(2, 1, 1, pki.inter), full),
    taRow('2 1 2 of the intermediate', () => tlsa(2, 1, 2, pki.inter), full),
    taRow('2 0 1 of the root in the chain', () => tlsa(2, 0, 1, pki.root), full),
    taRow('2 1 1 of the root in the chain', () => tlsa(2, 1, 1, pki.root), full),
    taRow('2 0 2 of the root in the chain', () => tlsa(2, 0, 2, pki.root), full),
    taRow(
      '2 0 1 of the intermediate, root not sent',
      () => tlsa(2, 0, 1, pki.inter),
      () => [pki.good.der, pki.inter.der],
    ),
    taRow(
      '2 0 1 of the root, chain sent out of order',
      () => tlsa(2, 0, 1, pki.root),
      () => [pki.good.der, pki.root.der, pki.inter.der],
    ),
    taRow('2 1 0 of the root, root sent: matched as a certificate', () => tlsa(2, 1, 0, pki.root), full),
    taRow(
      'a wildcard leaf name',
      () => tlsa(2, 0, 1, pki.root),
      () => [pki.wildcard.der, pki.inter.der, pki.root.der],
    ),
    taRow('a leading-dot reference name matches a name below it', () => tlsa(2, 0, 1, pki.inter), full, { names: ['.example.net'] }),
    taRow(
      'the TLSA base domain as reference name (daneNames after a CNAME)',
      () => tlsa(2, 0, 1, pki.inter),
      () => [pki.provider.der, pki.inter.der],
      { names: daneNames({ baseDomain: 'mx.provider.net', host: HOST }) },
    ),
    {
      name: 'records for the intermediate and the root: the one nearest the leaf is reported',
      make: () => {
        const i = tlsa(2, 0, 1, pki.inter);
        return { req: { records: [tlsa(2, 0, 1, pki.root), i], chain: full() }, want: pass(i) };
      },
    },
    // The trust anchor from DNS when the server did not send it (RFC 7671 5.2.2, 5.2.3).
    taRow(
      '2 0 0 of the root, root not sent',
      () => tlsa(2, 0, 0, pki.root),
      () => [pki.good.der, pki.inter.der],
    ),
    taRow(
      '2 0 0 of the intermediate, only the leaf sent',
      () => tlsa(2, 0, 0, pki.inter),
      () => [pki.good.der],
    ),
    taRow(
      '2 1 0 of the root, root not sent: its key signed the intermediate',
      () => tlsa(2, 1, 0, pki.root),
      () => [pki.good.der, pki.inter.der],
    ),
    taRow(
      '2 1 0 of the intermediate, only the leaf sent: its key signed the leaf',
      () => tlsa(2, 1, 0, pki.inter),
      () => [pki.good.der],
    ),
    taRow(
      "2 1 0 of a self-signed leaf's own key (OpenSSL check_dane_pkeys)",
      () => tlsa(2, 1, 0, pki.self),
      () => [pki.self.der],
    ),
    taRow(
      'the anchor itself expired: OpenSSL does not check a trust anchor that is not self-signed',
      () => tlsa(2, 0, 1, pki.expiredInter),
      () => [pki.underExpiredInter.der, pki.expiredInter.der, pki.root.der],
    ),
    // Failures.
    {
      name: '2 0 1 of the intermediate, wrong leaf name',
      make: () => {
        const r = tlsa(2, 0, 1, pki.inter);
        return {
          req: { records: [r], chain: [pki.wrongName.der, pki.inter.der, pki.root.der] },
          want: names(r, 'mx.other.test, www.other.test', 'matched its issuer CN=Test Intermediate CA'),
        };
      },
    },
    {
      name: '2 1 1 of the root, wrong leaf name',
      make: () => {
        const r = tlsa(2, 1, 1, pki.root);
        return {
          req: { records: [r], chain: [pki.wrongName.der, pki.inter.der, pki.root.der] },
          want: names(r, 'mx.other.test, www.other.test', 'matched CN=Test Root CA, depth 2 of the chain'),
        };
      },
    },
    {
      name: '2 0 0 of the root from DNS, wrong leaf name',
      make: () => {
        const r = tlsa(2, 0, 0, pki.root);
        return {
          req: { records: [r], chain: [pki.wrongName.der, pki.inter.der] },
          want: names(r, 'mx.other.test, www.other.test', 'supplied the trust anchor CN=Test Root CA from DNS'),
        };
      },
    },
    {
      name: '2 1 0 of the intermediate, wrong leaf name',
      make: () => {
        const r = tlsa(2, 1, 0, pki.inter);
        return {
          req: { records: [r], chain: [pki.wrongName.der] },
          want: names(r, 'mx.other.test, www.other.test', `supplied the public key that signed ${HOST}'s certificate`),
        };
      },
    },
    {
      name: 'no reference names at all',
      make: () => {
        const r = tlsa(2, 0, 1, pki.inter);
        return {
          req: { records: [r], chain: full(), names: [] },
          want: fail(
            `${HOST} certificate cannot be matched: no reference names were given (TLSA ${ab(r)} for ${TLSA_NAME} matched its issuer CN=Test Intermediate CA)`,
          ),
        };
      },
    },
    {
      name: '2 0 1 of the root, expired intermediate',
      make: () => {
        const r = tlsa(2, 0, 1, pki.root);
        return {
          req: { records: [r], chain: [pki.underExpiredInter.der, pki.expiredInter.der, pki.root.der] },
          want: chainFail(
            r,
            1,
            'CN=Expired Intermediate CA',
            `certificate has expired, notAfter ${notAfter(pki.expiredInter)}`,
            'matched CN=Test Root CA, depth 2 of the chain',
          ),
        };
      },
    },
    {
      name: '2 0 1 of the intermediate, expired leaf',
      make: () => {
        const r = tlsa(2, 0, 1, pki.inter);
        return {
          req: { records: [r], chain: [pki.expired.der, pki.inter.der] },
          want: chainFail(
            r,
            0,
            'CN=mx1.example.net',
            `certificate has expired, notAfter ${notAfter(pki.expired)}`,
            'matched its issuer CN=Test Intermediate CA',
          ),
        };
      },
    },
    {
      name: '2 1 1 of the intermediate, leaf not yet valid',
      make: () => {
        const r = tlsa(2, 1, 1, pki.inter);
        return {
          req: { records: [r], chain: [pki.notYet.der, pki.inter.der] },
          want: chainFail(
            r,
            0,
            'CN=mx1.example.net',
            `certificate is not yet valid, notBefore ${notBefore(pki.notYet)}`,
            'matched its issuer CN=Test Intermediate CA',
          ),
        };
      },
    },
    {
      name: 'dates are judged at `now`: the good chain a year from now',
      make: () => {
        const r = tlsa(2, 0, 1, pki.root);
        return {
          req: { records: [r], chain: full(), now: daysFromNow(365) },
          want: chainFail(
            r,
            0,
            'CN=mx1.example.net',
            `certificate has expired, notAfter ${notAfter(pki.good)}`,
            'matched CN=Test Root CA, depth 2 of the chain',
          ),
        };
      },
    },
    {
      name: 'the leaf signature does not verify with the issuer it names',
      make: () => {
        const r = tlsa(2, 0, 1, pki.inter);
        return {
          req: { records: [r], chain: [tampered(pki.good), pki.inter.der, pki.root.der] },
          want: chainFail(
            r,
            0,
            'CN=mx1.example.net',
            'certificate signature failure, its signature does not verify with the public key of CN=Test Intermediate CA',
            'matched its issuer CN=Test Intermediate CA',
          ),
        };
      },
    },
    {
      name: 'an intermediate that is not a CA (CA:FALSE, no key usage)',
      make: () => {
        const r = tlsa(2, 0, 1, pki.root);
        return {
          req: { records: [r], chain: [pki.underCaFalse.der, pki.caFalse.der, pki.root.der] },
          want: chainFail(r, 1, 'CN=CA False', 'invalid CA certificate, it is not a CA certificate', 'matched CN=Test Root CA, depth 2 of the chain'),
        };
      },
    },
    {
      name: 'a leaf for TLS clients only (extended key usage clientAuth)',
      make: () => {
        const r = tlsa(2, 1, 1, pki.inter);
        return {
          req: { records: [r], chain: [pki.clientOnly.der, pki.inter.der] },
          want: chainFail(
            r,
            0,
            'CN=mx1.example.net',
            'unsupported certificate purpose, its extended key usage does not include TLS server authentication',
            'matched its issuer CN=Test Intermediate CA',
          ),
        };
      },
    },
    {
      name: 'an intermediate limited to e-mail protection',
      make: () => {
        const r = tlsa(2, 0, 1, pki.root);
        return {
          req: { records: [r], chain: [pki.underEmailCA.der, pki.emailCA.der, pki.root.der] },
          want: chainFail(
            r,
            1,
            'CN=Email CA',
            'unsupported certificate purpose, its extended key usage does not include TLS server authentication',
            'matched CN=Test Root CA, depth 2 of the chain',
          ),
        };
      },
    },
    {
      name: '2 0 0 of an unrelated CA from DNS: the chain does not reach it',
      make: () => {
        const r = tlsa(2, 0, 0, pki.impostorInter);
        return {
          req: { records: [r], chain: [pki.good.der, pki.inter.der] },
          want: fail(
            `TLSA ${ab(r)} for ${TLSA_NAME} supplied CN=Test Intermediate CA from DNS, but the issuer CN=Test Root CA of CN=Test Intermediate CA (depth 1) is not among the certificates ${HOST} sent`,
          ),
        };
      },
    },
    {
      name: 'a leaf signed by another CA of the same name: the chain does not reach the anchor',
      make: () => {
        const r = tlsa(2, 0, 1, pki.inter);
        return {
          req: { records: [r], chain: [pki.forged.der, pki.inter.der, pki.root.der] },
          want: fail(`TLSA ${ab(r)} for ${TLSA_NAME} matched CN=Test Intermediate CA, but ${HOST} certificate was not signed by CN=Test Intermediate CA`),
        };
      },
    },
    {
      name: 'a leaf issued by a certificate that may not issue certificates',
      make: () => {
        const r = tlsa(2, 0, 1, pki.root);
        return {
          req: { records: [r], chain: [pki.underNotCA.der, pki.notCA.der, pki.inter.der, pki.root.der] },
          want: fail(
            `TLSA ${ab(r)} for ${TLSA_NAME} matched CN=Test Root CA, but CN=Not A CA may not issue ${HOST} certificate (its key identifier or key usage do not allow it)`,
          ),
        };
      },
    },
    {
      name: '2 0 1 of the root, root not sent: a digest needs the anchor in the chain',
      make: () => {
        const r = tlsa(2, 0, 1, pki.root);
        return { req: { records: [r], chain: [pki.good.der, pki.inter.der] }, want: noMatch(r) };
      },
    },
    {
      name: '2 1 1 of the root, root not sent',
      make: () => {
        const r = tlsa(2, 1, 1, pki.root);
        return { req: { records: [r], chain: [pki.good.der, pki.inter.der] }, want: noMatch(r) };
      },
    },
    {
      name: '2 0 1 of the intermediate, intermediate not sent',
      make: () => {
        const r = tlsa(2, 0, 1, pki.inter);
        return { req: { records: [r], chain: [pki.good.der] }, want: noMatch(r) };
      },
    },
    {
      name: '2 1 0 of an unrelated key',
      make: () => {
        const r = tlsa(2, 1, 0, pki.impostorInter);
        return { req: { records: [r], chain: [pki.good.der, pki.inter.der] }, want: noMatch(r) };
      },
    },
    {
      name: '2 0 1 of the leaf itself: DANE-TA never matches the leaf',
      make: () => {
        const r = tlsa(2, 0, 1, pki.good);
        return { req: { records: [r], chain: full() }, want: noMatch(r) };
      },
    },
    {
      name: '2 0 0 of a self-signed leaf: the chain stops at a self-signed leaf',
      make: () => {
        const r = tlsa(2, 0, 0, pki.self);
        return { req: { records: [r], chain: [pki.self.der] }, want: noMatch(r) };
      },
    },
  ];
  test.each(rows)('$name', ({ make }) => {
    const { req, want } = make();
    expect(daneVerify(request(req))).toEqual(typed(want));
  });
});

describe('daneVerify: several records, agility, nothing to match', () => {
  const rows: Row[] = [
    {
      name: '3 1 1 and 3 1 2 where only the 3 1 1 would match: SHA2-512 outranks, so it fails',
      make: () => {
        const sha512 = tlsa(3, 1, 2, pki.wrongName);
        return { req: { records: [tlsa(3, 1, 1, pki.good), sha512], chain: full() }, want: noMatch(sha512) };
      },
    },
    {
      name: '3 1 1 and 3 0 2: agility is per selector, the 3 1 1 matches',
      make: () => {
        const r = tlsa(3, 1, 1, pki.good);
        return { req: { records: [r, tlsa(3, 0, 2, pki.wrongName)], chain: full() }, want: pass(r) };
      },
    },
    {
      name: '3 1 0 and 3 1 2: Full(0) is never ignored, the 3 1 0 matches',
      make: () => {
        const r = tlsa(3, 1, 0, pki.good);
        return { req: { records: [tlsa(3, 1, 2, pki.wrongName), r], chain: full() }, want: pass(r) };
      },
    },
    {
      name: '2 0 1 and 2 0 2 of the root where only the 2 0 1 would match',
      make: () => {
        const sha512 = tlsa(2, 0, 2, pki.impostorInter);
        return { req: { records: [tlsa(2, 0, 1, pki.root), sha512], chain: full() }, want: noMatch(sha512) };
      },
    },
    {
      name: 'two records, neither matches',
      make: () => {
        const ee = tlsa(3, 1, 1, pki.wrongName);
        const ta = tlsa(2, 0, 1, pki.impostorInter);
        return {
          req: { records: [ta, ee], chain: full() },
          want: fail(`none of the 2 TLSA records for ${TLSA_NAME} (${ab(ee)}, ${ab(ta)}) matched ${HOST}'s certificate chain`),
        };
      },
    },
    {
      name: 'only unusable records (PKIX-TA, PKIX-EE)',
      make: () => ({
        req: { records: [tlsa(0, 0, 1, pki.root), tlsa(1, 1, 1, pki.good)], chain: full() },
        want: fail(`no usable TLSA records for ${TLSA_NAME} to authenticate ${HOST}`),
      }),
    },
    {
      name: 'unusable records next to a usable one are left out',
      make: () => {
        const r = tlsa(3, 1, 1, pki.good);
        return { req: { records: [tlsa(1, 1, 1, pki.good), r], chain: full() }, want: pass(r) };
      },
    },
    {
      name: 'no certificate (anonymous cipher)',
      make: () => ({
        req: { records: [tlsa(3, 1, 1, pki.good)], chain: [] },
        want: { ok: false, trust: 'Anonymous', reason: `${HOST} presented no certificate, so the TLSA records for ${TLSA_NAME} cannot match` },
      }),
    },
  ];
  test.each(rows)('$name', ({ make }) => {
    const { req, want } = make();
    expect(daneVerify(request(req))).toEqual(typed(want));
  });
});

// ---------------------------------------------------------------------------------------

describe('classifyTlsa', () => {
  const rec = (usage: number, selector: number, matchingType: number, data: Buffer): TlsaRecord => ({ usage, selector, matchingType, data });
  const bytes = (n: number) => Buffer.alloc(n, 0xab);
  const unusableRows: { name: string; make: () => TlsaRecord; reason: string }[] = [
    { name: 'usage 0 (PKIX-TA)', make: () => tlsa(0, 0, 1, pki.root), reason: 'certificate usage 0 (PKIX-TA) is not used with SMTP (RFC 7672 section 3.1.3)' },
    { name: 'usage 1 (PKIX-EE)', make: () => tlsa(1, 1, 1, pki.good), reason: 'certificate usage 1 (PKIX-EE) is not used with SMTP (RFC 7672 section 3.1.3)' },
    { name: 'usage 4', make: () => rec(4, 1, 1, bytes(32)), reason: 'certificate usage 4 is not supported' },
    { name: 'usage 255 (PrivCert)', make: () => rec(255, 1, 1, bytes(32)), reason: 'certificate usage 255 (PrivCert) is not supported' },
    { name: 'selector 2', make: () => rec(3, 2, 1, bytes(32)), reason: 'selector 2 is not supported (0 full certificate, 1 SubjectPublicKeyInfo)' },
    { name: 'matching type 3', make: () => rec(3, 1, 3, bytes(32)), reason: 'matching type 3 is not supported (0 full, 1 SHA2-256, 2 SHA2-512)' },
    { name: 'matching type 255 (PrivMatch)', make: () => rec(3, 1, 255, bytes(32)), reason: 'matching type 255 (PrivMatch) is reserved for private use' },
    { name: 'SHA2-256 digest of 31 bytes', make: () => rec(3, 1, 1, bytes(31)), reason: 'SHA2-256 data must be 32 bytes, not 31' },
    { name: 'SHA2-256 digest of 64 bytes', make: () => rec(2, 0, 1, bytes(64)), reason: 'SHA2-256 data must be 32 bytes, not 64' },
    { name: 'SHA2-512 digest of 32 bytes', make: () => rec(3, 1, 2, bytes(32)), reason: 'SHA2-512 data must be 64 bytes, not 32' },
    { name: 'empty SHA2-256 digest', make: () => rec(3, 1, 1, Buffer.alloc(0)), reason: 'SHA2-256 data must be 32 bytes, not 0' },
    { name: '3 0 0 that is no certificate', make: () => rec(3, 0, 0, bytes(40)), reason: 'the data is not exactly one DER X.509 certificate' },
    {
      name: '2 0 0 with a byte after the certificate',
      make: () => rec(2, 0, 0, Buffer.concat([pki.root.der, Buffer.from([0])])),
      reason: 'the data is not exactly one DER X.509 certificate',
    },
    { name: '2 0 0 holding a public key', make: () => rec(2, 0, 0, spkiOf(pki.root)), reason: 'the data is not exactly one DER X.509 certificate' },
    { name: '3 1 0 that is no public key', make: () => rec(3, 1, 0, bytes(40)), reason: 'the data is not exactly one DER SubjectPublicKeyInfo' },
    { name: '2 1 0 holding a certificate', make: () => rec(2, 1, 0, pki.root.der), reason: 'the data is not exactly one DER SubjectPublicKeyInfo' },
  ];
  test.each(unusableRows)('unusable: $name', ({ make, reason }) => {
    const r = make();
    expect(classifyTlsa([r])).toEqual({ usable: [], unusable: [{ record: r, reason }], ignored: [] });
  });

  test.each([
    { name: '3 1 1', make: () => tlsa(3, 1, 1, pki.good) },
    { name: '3 0 2', make: () => tlsa(3, 0, 2, pki.good) },
    { name: '3 0 0', make: () => tlsa(3, 0, 0, pki.good) },
    { name: '3 1 0', make: () => tlsa(3, 1, 0, pki.good) },
    { name: '2 0 0', make: () => tlsa(2, 0, 0, pki.root) },
    { name: '2 1 0', make: () => tlsa(2, 1, 0, pki.root) },
    { name: '2 1 2', make: () => tlsa(2, 1, 2, pki.root) },
    { name: 'digest data of the right length, whatever it is', make: () => rec(3, 1, 1, bytes(32)) },
  ])('usable: $name', ({ make }) => {
    const r = make();
    expect(classifyTlsa([r])).toEqual({ usable: [r], unusable: [], ignored: [] });
  });

  const agility = 'a SHA2-512 record with the same usage and selector takes precedence (digest agility, RFC 7671 section 9)';
  test.each([
    {
      name: '3 1 1 next to 3 1 2: the 3 1 1 is ignored',
      make: () => [rec(3, 1, 1, bytes(32)), rec(3, 1, 2, bytes(64))],
      usable: [1],
      ignored: [[0, agility]] as [number, string][],
      unusable: [] as number[],
    },
    {
      name: '3 1 0, 3 1 1 and 3 1 2: Full(0) stays, the 3 1 1 is ignored',
      make: () => [rec(3, 1, 0, spkiOf(pki.good)), rec(3, 1, 1, bytes(32)), rec(3, 1, 2, bytes(64))],
      usable: [0, 2],
      ignored: [[1, agility]] as [number, string][],
      unusable: [] as number[],
    },
    {
      name: '3 1 0 next to 3 1 1: both used',
      make: () => [rec(3, 1, 0, spkiOf(pki.good)), rec(3, 1, 1, bytes(32))],
      usable: [0, 1],
      ignored: [] as [number, string][],
      unusable: [] as number[],
    },
    {
      name: '3 1 1 next to 3 0 2: other selector, both used',
      make: () => [rec(3, 1, 1, bytes(32)), rec(3, 0, 2, bytes(64))],
      usable: [0, 1],
      ignored: [] as [number, string][],
      unusable: [] as number[],
    },
    {
      name: '2 1 1 next to 3 1 2: other usage, both used',
      make: () => [rec(2, 1, 1, bytes(32)), rec(3, 1, 2, bytes(64))],
      usable: [0, 1],
      ignored: [] as [number, string][],
      unusable: [] as number[],
    },
    {
      name: '3 1 1 next to an unusable 3 1 2: agility counts usable records only',
      make: () => [rec(3, 1, 1, bytes(32)), rec(3, 1, 2, bytes(32))],
      usable: [0],
      ignored: [] as [number, string][],
      unusable: [1],
    },
    {
      name: '2 0 0 next to 2 0 1 and 2 0 1: both digests kept, they are the best present',
      make: () => [rec(2, 0, 1, bytes(32)), tlsa(2, 0, 0, pki.root), rec(2, 0, 1, Buffer.alloc(32, 1))],
      usable: [0, 1, 2],
      ignored: [] as [number, string][],
      unusable: [] as number[],
    },
    {
      name: '3 0 2 next to two 3 0 1: both 3 0 1 are ignored',
      make: () => [rec(3, 0, 2, bytes(64)), rec(3, 0, 1, bytes(32)), rec(3, 0, 1, Buffer.alloc(32, 2))],
      usable: [0],
      ignored: [
        [1, agility],
        [2, agility],
      ] as [number, string][],
      unusable: [] as number[],
    },
  ])('agility: $name', ({ make, usable, ignored, unusable }) => {
    const records = make();
    const got = classifyTlsa(records);
    expect(got.usable).toEqual(usable.map((i) => records[i]));
    expect(got.ignored).toEqual(ignored.map(([i, reason]) => ({ record: records[i], reason })));
    expect(got.unusable.map((u) => records.indexOf(u.record))).toEqual(unusable);
  });
});

describe('formatTlsa, abbreviateTlsa and parseTlsaText', () => {
  test.each([
    { r: { usage: 3, selector: 1, matchingType: 1, data: Buffer.from('ABCDEF0123', 'hex') }, text: '3 1 1 abcdef0123', short: '3 1 1 abcdef01...' },
    { r: { usage: 2, selector: 0, matchingType: 0, data: Buffer.from('abcd', 'hex') }, text: '2 0 0 abcd', short: '2 0 0 abcd' },
    { r: { usage: 3, selector: 1, matchingType: 1, data: Buffer.from('abcdef01', 'hex') }, text: '3 1 1 abcdef01', short: '3 1 1 abcdef01' },
    { r: { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(0) }, text: '3 1 1', short: '3 1 1' },
  ])('$text', ({ r, text, short }) => {
    expect(formatTlsa(r)).toBe(text);
    expect(abbreviateTlsa(r)).toBe(short);
    expect(parseTlsaText(text)).toEqual(r);
  });

  test('a real record survives formatting and parsing', () => {
    const r = tlsa(3, 0, 0, pki.good);
    expect(parseTlsaText(formatTlsa(r))).toEqual(r);
  });

  test.each([
    { text: '3 1 1 ABCD ef01', want: { usage: 3, selector: 1, matchingType: 1, data: Buffer.from('abcdef01', 'hex') } },
    { text: '  3\t1 1\nabcd  ', want: { usage: 3, selector: 1, matchingType: 1, data: Buffer.from('abcd', 'hex') } },
    { text: 'DANE-EE SPKI SHA2-256 abcd', want: { usage: 3, selector: 1, matchingType: 1, data: Buffer.from('abcd', 'hex') } },
    { text: 'dane-ta cert full 30', want: { usage: 2, selector: 0, matchingType: 0, data: Buffer.from('30', 'hex') } },
    { text: 'PKIX-TA Cert SHA2-512 00', want: { usage: 0, selector: 0, matchingType: 2, data: Buffer.from('00', 'hex') } },
    { text: '255 255 255 ff', want: { usage: 255, selector: 255, matchingType: 255, data: Buffer.from('ff', 'hex') } },
  ])('parse "$text"', ({ text, want }) => {
    expect(parseTlsaText(text)).toEqual(want);
  });

  test.each([
    { text: '', message: 'invalid TLSA record "": the certificate usage is missing' },
    { text: '3 1', message: 'invalid TLSA record "3 1": the matching type is missing' },
    { text: '256 1 1 ab', message: 'invalid TLSA record "256 1 1 ab": certificate usage "256" is neither a number from 0 to 255 nor a known name' },
    { text: '3 X509 1 ab', message: 'invalid TLSA record "3 X509 1 ab": selector "X509" is neither a number from 0 to 255 nor a known name' },
    { text: '3 1 1 abc', message: 'invalid TLSA record "3 1 1 abc": the data has an odd number of hex digits' },
    { text: '3 1 1 abzz', message: 'invalid TLSA record "3 1 1 abzz": the data is not hex' },
    { text: '3 1 1 ab:cd', message: 'invalid TLSA record "3 1 1 ab:cd": the data is not hex' },
  ])('refuse "$text"', ({ text, message }) => {
    expect(() => parseTlsaText(text)).toThrow(message);
    expect(thrown(() => parseTlsaText(text))).toMatchObject({ code: 'ETLSA' });
  });
});

describe('daneNames', () => {
  test.each([
    { name: 'no CNAME: base domain and MX host are one', input: { baseDomain: 'mx1.example.net', host: 'mx1.example.net' }, want: ['mx1.example.net'] },
    {
      name: 'after a CNAME: the base domain first, then the MX host, normalized',
      input: { baseDomain: 'MX.Provider.NET.', host: 'mx1.example.net.' },
      want: ['mx.provider.net', 'mx1.example.net'],
    },
    {
      name: 'match names expanded as verify expands them',
      input: { baseDomain: 'mx.provider.net', host: 'mx1.example.net', nexthop: 'example.net', match: ['nexthop', 'dot-nexthop', 'hostname', '.Example.ORG'] },
      want: ['mx.provider.net', 'mx1.example.net', 'example.net', '.example.net', '.example.org'],
    },
    {
      name: 'nexthop defaults to the host',
      input: { baseDomain: 'mx1.example.net', host: 'mx1.example.net', match: ['dot-nexthop'] },
      want: ['mx1.example.net', '.mx1.example.net'],
    },
    { name: 'IDNs become A-labels', input: { baseDomain: 'mx.bücher.example', host: 'mx.bücher.example' }, want: ['mx.xn--bcher-kva.example'] },
  ])('$name', ({ input, want }) => {
    expect(daneNames(input)).toEqual(want);
  });
});

// ---------------------------------------------------------------------------------------
// Bounded work: a hostile TLSA RRset and certificate chain.

/** `openssl verify` with Postfix's verify depth (10) and `anchor` as the only trust anchor: OpenSSL's own depth verdict. */
function opensslDepthVerdict(leaf: Issued, untrusted: readonly Issued[], anchor: Issued): string {
  const dir = mkdtempSync(join(tmpdir(), 'ntp-dane-depth-'));
  try {
    writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
    writeFileSync(join(dir, 'untrusted.pem'), untrusted.map((c) => c.certPem).join(''));
    writeFileSync(join(dir, 'anchor.pem'), anchor.certPem);
    try {
      execFileSync('openssl', ['verify', '-partial_chain', '-verify_depth', '10', '-CAfile', 'anchor.pem', '-untrusted', 'untrusted.pem', 'leaf.pem'], {
        cwd: dir,
        stdio: 'pipe',
      });
      return 'OK';
    } catch (e) {
      return String((e as { stdout?: Buffer }).stdout ?? '') + String((e as { stderr?: Buffer }).stderr ?? '');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('daneVerify: a hostile TLSA RRset and certificate chain cost bounded work', () => {
  /** 99 CAs and a leaf: the chain as sent is the leaf, then "CA 98" (depth 1) down to "CA 0" (depth 99). */
  let long: { leaf: Issued; cas: Issued[] };
  const caAt = (depth: number) => long.cas[long.cas.length - depth]!;
  const sent = () => [long.leaf.der, ...[...long.cas].reverse().map((c) => c.der)];
  /** `n` "2 1 1" records of random digests: they match nothing. */
  const noise = (n: number): TlsaRecord[] => Array.from({ length: n }, () => ({ usage: 2, selector: 1, matchingType: 1, data: randomBytes(32) }));
  const tooLong = fail(
    `${HOST} certificate chain failed at depth 11, CN=CA 88: certificate chain too long, no TLSA record for ${TLSA_NAME} matched its first 12 certificates (the verify depth limit of Postfix and OpenSSL)`,
  );
  const tooMany = (n: number) =>
    fail(`too many TLSA records for ${TLSA_NAME} to authenticate ${HOST}: ${n} of usage DANE-TA(2) or DANE-EE(3), more than the limit of 100`);

  beforeAll(() => {
    long = longChain(99);
  });

  const judge = (records: TlsaRecord[], chain: Buffer[]) => {
    const certs = new SessionCerts();
    const verdict = daneVerify(request({ records, chain, certs }));
    return { verdict, counters: { ...certs.counters } };
  };

  test('the limits are the documented ones', () => {
    expect(MAX_TLSA_RECORDS).toBe(100);
    expect(MAX_CHAIN_LENGTH).toBe(12);
    expect(sent()).toHaveLength(100);
    expect(new X509Certificate(caAt(11).der).subject).toBe('CN=CA 88');
  });

  test('the crafted case: 1,000 "2 1 1" records that match nothing and a 100-certificate chain fail before any work', () => {
    const { verdict, counters } = judge(noise(1000), sent());
    expect(verdict).toEqual(tooMany(1000));
    expect(counters).toEqual({ parses: 0, spkiExports: 0, keyParses: 0, digests: 0, signatures: 0 });
  });

  test('101 records are over the limit, whatever their usage mix', () => {
    const records = [...noise(60), ...noise(41).map((r) => ({ ...r, usage: 3 })), tlsa(1, 1, 1, pki.good)];
    expect(judge(records, sent()).verdict).toEqual(tooMany(101));
  });

  test('100 records matching nothing: the chain stops at 12 certificates, each looked at once', () => {
    const { verdict, counters } = judge(noise(100), sent());
    expect(verdict).toEqual(tooLong);
    // Every certificate sent is parsed once; the 11 above the leaf on the path each have their
    // SubjectPublicKeyInfo exported and hashed once, whatever the number of records.
    expect(counters).toEqual({ parses: 100, spkiExports: 11, keyParses: 0, digests: 11, signatures: 0 });
  });

  test('a "2 1 1" of the CA at depth 11: the last certificate within the limit is a trust anchor', () => {
    const r = tlsa(2, 1, 1, caAt(11));
    const { verdict, counters } = judge([...noise(99), r], sent());
    expect(verdict).toEqual(pass(r));
    // 11 signatures: each certificate below the anchor verified once with its issuer's key.
    expect(counters).toEqual({ parses: 100, spkiExports: 11, keyParses: 0, digests: 11, signatures: 11 });
    expect(opensslDepthVerdict(long.leaf, [...long.cas].reverse(), caAt(11))).toBe('OK');
  });

  test('a "2 1 1" of the CA at depth 12: beyond the limit, so no trust anchor (never a truncated pass)', () => {
    const r = tlsa(2, 1, 1, caAt(12));
    const { verdict, counters } = judge([...noise(99), r], sent());
    expect(verdict).toEqual(tooLong);
    expect(counters).toEqual({ parses: 100, spkiExports: 11, keyParses: 0, digests: 11, signatures: 0 });
    expect(opensslDepthVerdict(long.leaf, [...long.cas].reverse(), caAt(12))).toContain('certificate chain too long');
  });

  test('a "2 0 0" trust anchor from DNS at depth 12 is beyond the limit too', () => {
    const r = tlsa(2, 0, 0, caAt(12));
    const chain = sent().slice(0, 12);
    expect(judge([r], chain).verdict).toEqual(tooLong);
    expect(judge([tlsa(2, 0, 0, caAt(11))], chain.slice(0, 11)).verdict).toEqual(pass(tlsa(2, 0, 0, caAt(11))));
  });

  test("the leaf's issuer not sent: every other certificate is hashed once for the reason", () => {
    const records = noise(100);
    const chain = [
      long.leaf.der,
      ...[...long.cas]
        .reverse()
        .slice(1)
        .map((c) => c.der),
    ];
    const { verdict, counters } = judge(records, chain);
    const listed = `${records.slice(0, 10).map(ab).join(', ')} and 90 more`;
    expect(verdict).toEqual(fail(`none of the 100 TLSA records for ${TLSA_NAME} (${listed}) matched ${HOST}'s certificate chain`));
    expect(counters).toEqual({ parses: 99, spkiExports: 98, keyParses: 0, digests: 98, signatures: 0 });
  });

  test('a record matching a certificate off the path is found by lookup, not by trying every pair', () => {
    const r = tlsa(2, 1, 1, long.cas[50]!);
    const records = [...noise(60), r, ...noise(39)];
    const chain = [
      long.leaf.der,
      ...[...long.cas]
        .reverse()
        .slice(1)
        .map((c) => c.der),
    ];
    const { verdict, counters } = judge(records, chain);
    expect(verdict).toEqual(
      fail(`TLSA ${ab(r)} for ${TLSA_NAME} matched CN=CA 50, but the issuer CN=CA 98 of ${HOST} certificate is not among the certificates ${HOST} sent`),
    );
    expect(counters).toEqual({ parses: 99, spkiExports: 98, keyParses: 0, digests: 98, signatures: 0 });
  });

  test('100 "2 1 0" keys that signed nothing: each parsed once and tried once against the top', () => {
    const records: TlsaRecord[] = Array.from({ length: 100 }, () => {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return { usage: 2, selector: 1, matchingType: 0, data: publicKey.export({ type: 'spki', format: 'der' }) };
    });
    const { verdict, counters } = judge(records, [pki.good.der, pki.inter.der]);
    const listed = `${records.slice(0, 10).map(ab).join(', ')} and 90 more`;
    expect(verdict).toEqual(fail(`none of the 100 TLSA records for ${TLSA_NAME} (${listed}) matched ${HOST}'s certificate chain`));
    // The intermediate's SubjectPublicKeyInfo is exported once: "2 1 0" records also match a
    // certificate whole (check_dane_issuer), before their keys are tried as bare keys.
    expect(counters).toEqual({ parses: 2, spkiExports: 1, keyParses: 100, digests: 0, signatures: 100 });
  });

  test('a self-signed certificate is verified once, however often it is asked about', () => {
    // Asked when building the chain and again for the reason.
    const r = tlsa(2, 0, 0, pki.impostorInter);
    const { verdict, counters } = judge([r], [pki.self.der]);
    expect(verdict).toEqual(fail(`TLSA ${ab(r)} for ${TLSA_NAME} supplied CN=Test Intermediate CA from DNS, but ${HOST} certificate is self-signed`));
    expect(counters).toEqual({ parses: 2, spkiExports: 0, keyParses: 0, digests: 0, signatures: 1 });
  });

  test('a DANE-TA verdict judged again on the same session redoes no parse, digest or signature', () => {
    const certs = new SessionCerts();
    const r = tlsa(2, 0, 1, pki.root);
    expect(daneVerify(request({ records: [r], chain: full(), certs }))).toEqual(pass(r));
    const first = { ...certs.counters };
    // leaf and intermediate each verified with their issuer's key; the self-signed root once.
    expect(first).toEqual({ parses: 3, spkiExports: 0, keyParses: 0, digests: 2, signatures: 3 });
    expect(daneVerify(request({ records: [r], chain: full(), certs }))).toEqual(pass(r));
    expect(certs.counters).toEqual(first);
  });

  test('one SessionCerts per session: the verdict, a shadow verdict and the audit digests share the work', () => {
    const certs = new SessionCerts();
    const records = [tlsa(3, 1, 1, pki.good), tlsa(3, 0, 1, pki.good)];
    expect(daneVerify(request({ records, chain: full(), certs }))).toEqual(pass(records[0]!));
    expect(certs.counters).toEqual({ parses: 3, spkiExports: 1, keyParses: 0, digests: 2, signatures: 0 });
    // The same session judged again (a dane shadow level), then its audit digests (SHA-256).
    expect(daneVerify(request({ records, chain: full(), certs, trust: 'Trusted' }))).toEqual(pass(records[0]!, 'Trusted'));
    const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex').toUpperCase().match(/../g)!.join(':');
    expect(auditDigests({ protocol: 'TLSv1.3', cipher: '', chain: full(), authorized: false }, 'sha256', certs)).toEqual({
      cert_digest: hex(pki.good.der),
      spki_digest: hex(spkiOf(pki.good)),
    });
    expect(certs.counters).toEqual({ parses: 3, spkiExports: 1, keyParses: 0, digests: 2, signatures: 0 });
  });
});

// ---------------------------------------------------------------------------------------
// Certificate names and subjects are untrusted text.

/** What a reason must never hold: C0/C1 controls, DEL, separators, bidi formatting. */
function assertPrintable(text: string | undefined): void {
  expect(text).toBeDefined();
  expect(hasNoControls(text!), JSON.stringify(text)).toBe(true);
  expect(text).not.toMatch(/[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/);
}

describe('daneVerify (DANE-TA): hostile certificate names and subjects', () => {
  const HOSTILE: { what: string; name: string; where: 'san' | 'cn' | 'cn-utf8'; shown: string }[] = [
    { what: 'LF', name: 'evil\n.example.net', where: 'san', shown: 'evil\\x0a.example.net' },
    { what: 'CRLF', name: 'mx1.example.net\r\n.example.net', where: 'san', shown: 'mx1.example.net\\x0d\\x0a.example.net' },
    { what: 'a lone CR in a CN', name: 'evil\r.example.net', where: 'cn', shown: 'evil\\x0d.example.net' },
    { what: 'ESC: CSI sequences', name: '\x1b[2J\x1b[1;31mmx1.example.net', where: 'san', shown: '\\x1b[2J\\x1b[1;31mmx1.example.net' },
    { what: 'ESC: an OSC title sequence', name: '\x1b]0;pwned\x07.example.net', where: 'cn', shown: '\\x1b]0;pwned\\x07.example.net' },
    { what: 'C1: NEL and CSI', name: 'evil\u0085\u009b.example.net', where: 'cn-utf8', shown: 'evil\\u{0085}\\u{009b}.example.net' },
    { what: 'bidi: RIGHT-TO-LEFT OVERRIDE', name: 'ten.\u202eexample.net', where: 'cn-utf8', shown: 'ten.\\u{202e}example.net' },
    { what: 'bidi: LEFT-TO-RIGHT ISOLATE', name: '\u2066evil\u2069.example.net', where: 'cn-utf8', shown: '\\u{2066}evil\\u{2069}.example.net' },
    { what: 'a literal backslash', name: 'evil\\x0a.example.net', where: 'san', shown: 'evil\\\\x0a.example.net' },
    { what: "', ' inside", name: 'mx1.example.net, evil.example.net', where: 'san', shown: 'mx1.example.net, evil.example.net' },
    { what: "'=' inside", name: 'auth=Verified.example.net', where: 'san', shown: 'auth=Verified.example.net' },
  ];
  const leaves = new Map<string, Issued>();
  const refs = [...REF, '.example.net'];
  let evilCA: Issued;
  let underEvilCA: Issued;
  let hostileCnExpired: Issued;
  // Node prints the CN in OpenSSL's RFC 2253 form: LF and ESC as \0A and \1B, ',' as \,; the
  // bidi override and NEL are left raw by OpenSSL and escaped by the reason.
  const evilSubject = 'CN=Evil\\0ACA\\1B[31m\\u{202e}\\u{0085}\\, O=Bank';

  beforeAll(async () => {
    await Promise.all(
      HOSTILE.map(async (row) => {
        const leaf =
          row.where === 'san'
            ? await makeLeaf(pki.inter, { names: [row.name] })
            : row.where === 'cn'
              ? await makeLeaf(pki.inter, { names: [], cn: row.name })
              : issueWithExtensions(pki.inter, row.name, ['basicConstraints = critical,CA:FALSE', 'extendedKeyUsage = serverAuth'], { utf8: true });
        leaves.set(row.what, leaf);
      }),
    );
    evilCA = issueWithExtensions(pki.root, 'Evil\nCA\x1b[31m\u202e\u0085, O=Bank', ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign'], {
      utf8: true,
    });
    underEvilCA = issueWithExtensions(evilCA, 'mx1.example.net', [
      'basicConstraints = critical,CA:FALSE',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = DNS:mx1.example.net',
    ]);
    hostileCnExpired = await makeLeaf(pki.inter, {
      names: NAMES,
      cn: 'mx1.example.net\x1b]0;pwned\x07',
      notBefore: daysFromNow(-30),
      notAfter: daysFromNow(-1),
    });
  });

  test.each(HOSTILE)('$what: never matches a reference, the reason shows the name escaped', ({ what, name, shown }) => {
    const r = tlsa(2, 0, 1, pki.inter);
    const verdict = daneVerify(request({ records: [r], chain: [leaves.get(what)!.der, pki.inter.der, pki.root.der], names: [...refs, name] }));
    expect(verdict).toEqual(
      fail(
        `${HOST} certificate names ${shown} matched none of ${[...refs, name].join(', ')} (TLSA ${ab(r)} for ${TLSA_NAME} matched its issuer CN=Test Intermediate CA)`,
      ),
    );
  });

  test.each(HOSTILE)('$what: nothing but the escaped name in the reason', ({ what }) => {
    const r = tlsa(2, 0, 1, pki.inter);
    const verdict = daneVerify(request({ records: [r], chain: [leaves.get(what)!.der, pki.inter.der, pki.root.der], names: refs }));
    expect(verdict.ok).toBe(false);
    assertPrintable(verdict.reason);
  });

  test('a hostile CA subject is shown escaped when it is the trust anchor', () => {
    const r = tlsa(2, 0, 1, evilCA);
    const verdict = daneVerify(request({ records: [r], chain: [underEvilCA.der, evilCA.der], names: ['other.example'] }));
    expect(verdict).toEqual(
      fail(`${HOST} certificate names mx1.example.net matched none of other.example (TLSA ${ab(r)} for ${TLSA_NAME} matched its issuer ${evilSubject})`),
    );
    assertPrintable(verdict.reason);
    // The same anchor passes with the right names: the subject is only shown, never changed.
    expect(daneVerify(request({ records: [r], chain: [underEvilCA.der, evilCA.der] }))).toEqual(pass(r));
  });

  test('a hostile CA subject from DNS that the chain does not reach is shown escaped', () => {
    const r = tlsa(2, 0, 0, evilCA);
    const verdict = daneVerify(request({ records: [r], chain: [pki.good.der, pki.inter.der] }));
    expect(verdict).toEqual(
      fail(
        `TLSA ${ab(r)} for ${TLSA_NAME} supplied ${evilSubject} from DNS, but the issuer CN=Test Root CA of CN=Test Intermediate CA (depth 1) is not among the certificates ${HOST} sent`,
      ),
    );
    assertPrintable(verdict.reason);
  });

  test('a hostile leaf CN in a chain failure is shown escaped', () => {
    const r = tlsa(2, 0, 1, pki.inter);
    const verdict = daneVerify(request({ records: [r], chain: [hostileCnExpired.der, pki.inter.der] }));
    expect(verdict).toEqual(
      fail(
        `${HOST} certificate chain failed at depth 0, CN=mx1.example.net\\1B]0\\;pwned\\07: certificate has expired, notAfter ${notAfter(hostileCnExpired)} (TLSA ${ab(r)} for ${TLSA_NAME} matched its issuer CN=Test Intermediate CA)`,
      ),
    );
    assertPrintable(verdict.reason);
  });
});
