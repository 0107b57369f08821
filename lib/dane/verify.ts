/**
 * daneVerify: judges the certificate chain a server sent against its usable TLSA records,
 * as OpenSSL's DANE verification (crypto/x509/x509_vfy.c: dane_verify, build_chain,
 * check_dane_issuer, check_dane_pkeys, check_extensions, check_id, internal_verify) does
 * for Postfix. See index.ts for the rules and the choices.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { TlsaRecord } from '../dns/message.js';
import type { Verdict } from '../types.js';
import { certNames, describeAuthorizationError, nameMatches, spkiDer } from '../verify/index.js';
import {
  abbreviateTlsa,
  classifyTlsa,
  formatTlsa,
  fullCertificate,
  fullPublicKey,
  MATCHING,
  SELECTOR,
  sortTlsa,
  tlsaMatches,
  USAGE,
} from './tlsa.js';

/** What daneVerify needs to judge one session. */
export interface DaneRequest {
  /** The TLSA records (usable ones; any others are dropped as classifyTlsa drops them). */
  records: readonly TlsaRecord[];
  /** The certificates the server sent, DER, leaf first, exactly as sent. */
  chain: readonly Buffer[];
  /** Where the records were found, for messages: `_25._tcp.mx1.example.net`. */
  tlsaName: string;
  /** The server's name, for messages. */
  host: string;
  /**
   * Reference identifiers for DANE-TA(2): the TLSA base domain, the MX host name, any match
   * names; already expanded (daneNames), a leading '.' meaning any name below.
   */
  names: readonly string[];
  /** The time at which certificate dates are judged. */
  now: Date;
  /** What a success is reported as. */
  trust: 'Verified' | 'Trusted';
}

/** A certificate with its DER and where it came from. */
interface Cert {
  der: Buffer;
  x509: X509Certificate;
  /** True for a Cert(0) Full(0) DANE-TA(2) record's certificate from DNS that the server did not send. */
  fromDns: boolean;
}

/** How the chain reached its trust anchor. */
interface Anchor {
  record: TlsaRecord;
  /**
   * 'cert': path[depth] is a certificate matching the record (sent or from DNS);
   * 'key': a SPKI(1) Full(0) record's public key signed path[depth], the top of the path.
   */
  kind: 'cert' | 'key';
  depth: number;
}

/** OpenSSL's error codes for the checks done here (X509_V_ERR_ without the prefix). */
type ChainError = 'INVALID_CA' | 'INVALID_PURPOSE' | 'CERT_SIGNATURE_FAILURE' | 'CERT_HAS_EXPIRED' | 'CERT_NOT_YET_VALID';

/** serverAuth, and the two Server Gated Crypto OIDs OpenSSL also accepts for the SSL server purpose. */
const SERVER_EKUS: ReadonlySet<string> = new Set(['1.3.6.1.5.5.7.3.1', '2.16.840.1.113730.4.1', '1.3.6.1.4.1.311.10.3.3']);

function subjectLine(x: X509Certificate): string {
  const s = x.subject.split('\n').filter((l) => l !== '').join(', ');
  return s === '' ? 'an empty subject' : s;
}

function issuerLine(x: X509Certificate): string {
  const s = x.issuer.split('\n').filter((l) => l !== '').join(', ');
  return s === '' ? 'an empty name' : s;
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function verifiesWith(x: X509Certificate, key: KeyObject): boolean {
  try {
    return x.verify(key);
  } catch {
    return false;
  }
}

/**
 * Self-signed as OpenSSL's X509_self_signed(cert, 0) means it: issuer and subject names
 * equal and the certificate's own key fits its signature (OpenSSL compares the key
 * identifiers instead of checking the signature; a real self-signature implies both).
 */
function selfSigned(x: X509Certificate): boolean {
  return x.subject === x.issuer && verifiesWith(x, x.publicKey);
}

/** The bytes a record's selector picks from a certificate. */
function selected(r: TlsaRecord, c: Cert): Buffer {
  return r.selector === SELECTOR.SPKI ? spkiDer(c.der) : c.der;
}

/** OpenSSL's time check (ossl_x509_check_cert_time), in whole seconds as OpenSSL compares. */
function timeError(x: X509Certificate, now: Date): ChainError | null {
  const t = Math.floor(now.getTime() / 1000);
  if (t < Math.floor(x.validFromDate.getTime() / 1000)) return 'CERT_NOT_YET_VALID';
  if (t > Math.floor(x.validToDate.getTime() / 1000)) return 'CERT_HAS_EXPIRED';
  return null;
}

/**
 * The issuer OpenSSL's get0_best_issuer_sk() picks among the certificates not used yet:
 * the first that issued `x` (names, key identifiers, key usage: X509Certificate.checkIssued)
 * and is valid now, else the one of those that expires last.
 */
function bestIssuer(pool: readonly Cert[], x: X509Certificate, path: readonly Cert[], now: Date): number {
  let best = -1;
  for (let i = 0; i < pool.length; i++) {
    const c = pool[i]!;
    const selfIssuedLeaf = path.length === 1 && x.subject === x.issuer;
    if (!selfIssuedLeaf && path.some((p) => p.der.equals(c.der))) continue;
    if (!x.checkIssued(c.x509)) continue;
    if (timeError(c.x509, now) === null) return i;
    if (best < 0 || c.x509.validToDate > pool[best]!.x509.validToDate) best = i;
  }
  return best;
}

/**
 * OpenSSL's build_chain() for DANE without PKIX: start from the leaf, add issuers from the
 * DNS certificates (first) and the certificates the server sent, and stop at the first
 * certificate above the leaf that a DANE-TA(2) record matches, at a self-signed
 * certificate, or when no issuer is left. Failing a match, a SPKI(1) Full(0) DANE-TA(2)
 * public key that signed the top of the path is the trust anchor (check_dane_pkeys).
 */
function buildPath(ta: readonly TlsaRecord[], dnsCerts: readonly Cert[], served: readonly Cert[], now: Date): { path: Cert[]; anchor: Anchor | null } {
  const path: Cert[] = [served[0]!];
  const pool: Cert[] = [...dnsCerts, ...served];
  for (;;) {
    const top = path[path.length - 1]!;
    if (selfSigned(top.x509)) break;
    const i = bestIssuer(pool, top.x509, path, now);
    if (i < 0) break;
    const [issuer] = pool.splice(i, 1);
    path.push(issuer!);
    const record = ta.find((r) => tlsaMatches(r, selected(r, issuer!)));
    if (record) return { path, anchor: { record, kind: 'cert', depth: path.length - 1 } };
  }
  const top = path[path.length - 1]!;
  for (const record of ta) {
    if (record.selector !== SELECTOR.SPKI || record.matchingType !== MATCHING.FULL) continue;
    const key = fullPublicKey(record);
    if (key && verifiesWith(top.x509, key)) return { path, anchor: { record, kind: 'key', depth: path.length - 1 } };
  }
  return { path, anchor: null };
}

/** The first failed check of a path to an anchor, in OpenSSL's order, or null. */
function chainFailure(path: readonly Cert[]): { depth: number; code: ChainError; detail: string } | null {
  // check_extensions(): every certificate above the leaf must be a CA; every certificate
  // must allow TLS server authentication when it limits its extended key usage.
  for (let i = 0; i < path.length; i++) {
    const x = path[i]!.x509;
    if (i > 0 && !x.ca) return { depth: i, code: 'INVALID_CA', detail: ', it is not a CA certificate' };
    const eku = x.keyUsage;
    if (eku && !eku.some((oid) => SERVER_EKUS.has(oid))) {
      return { depth: i, code: 'INVALID_PURPOSE', detail: ', its extended key usage does not include TLS server authentication' };
    }
  }
  return null;
}

/** The first failed signature or date, top down as OpenSSL's internal_verify() checks them. */
function signatureOrDateFailure(
  path: readonly Cert[],
  anchor: Anchor,
  now: Date,
): { depth: number; code: ChainError; detail: string } | null {
  const dateFailure = (i: number) => {
    const x = path[i]!.x509;
    const code = timeError(x, now);
    if (code === 'CERT_HAS_EXPIRED') return { depth: i, code, detail: `, notAfter ${iso(x.validToDate)}` };
    if (code === 'CERT_NOT_YET_VALID') return { depth: i, code, detail: `, notBefore ${iso(x.validFromDate)}` };
    return null;
  };
  let n = path.length - 1;
  // The top: a bare public key already verified its signature; a self-signed trust anchor
  // is not checked for its signature; a trust anchor that is not self-signed is not
  // checked at all (not even its dates).
  if (anchor.kind === 'key' || selfSigned(path[n]!.x509)) {
    const f = dateFailure(n);
    if (f) return f;
  }
  for (n -= 1; n >= 0; n--) {
    const issuer = path[n + 1]!.x509;
    if (!verifiesWith(path[n]!.x509, issuer.publicKey)) {
      return {
        depth: n,
        code: 'CERT_SIGNATURE_FAILURE',
        detail: `, its signature does not verify with the public key of ${subjectLine(issuer)}`,
      };
    }
    const f = dateFailure(n);
    if (f) return f;
  }
  return null;
}

/** How a success or a failure after the match names the record and what it matched. */
function anchorPhrase(req: DaneRequest, path: readonly Cert[], anchor: Anchor): string {
  const head = `TLSA ${abbreviateTlsa(anchor.record)} for ${req.tlsaName}`;
  const x = path[anchor.depth]!;
  if (anchor.kind === 'key') {
    const signed = anchor.depth === 0 ? `${req.host}'s certificate` : `${subjectLine(x.x509)}, depth ${anchor.depth} of the chain`;
    return `${head} supplied the public key that signed ${signed}`;
  }
  if (x.fromDns) return `${head} supplied the trust anchor ${subjectLine(x.x509)} from DNS`;
  if (anchor.depth === 1) return `${head} matched its issuer ${subjectLine(x.x509)}`;
  return `${head} matched ${subjectLine(x.x509)}, depth ${anchor.depth} of the chain`;
}

/** The reason when no record led to a trust anchor. */
function noMatchReason(req: DaneRequest, usable: readonly TlsaRecord[], path: readonly Cert[], all: readonly Cert[]): string {
  // A DANE-TA(2) record matched a certificate that is not on the leaf's path: say where
  // the path broke, as that is the likely fault.
  for (const record of usable) {
    if (record.usage !== USAGE.DANE_TA) continue;
    const hit = all.find((c) => !c.der.equals(path[0]!.der) && !path.includes(c) && tlsaMatches(record, selected(record, c)));
    if (!hit) continue;
    const k = path.length - 1;
    const top = path[k]!.x509;
    const what = k === 0 ? `${req.host} certificate` : `${subjectLine(top)} (depth ${k})`;
    const verb = hit.fromDns ? `supplied ${subjectLine(hit.x509)} from DNS` : `matched ${subjectLine(hit.x509)}`;
    const head = `TLSA ${abbreviateTlsa(record)} for ${req.tlsaName} ${verb}, but`;
    if (selfSigned(top)) return `${head} ${what} is self-signed`;
    const named = all.find((c) => !path.includes(c) && c.x509.subject === top.issuer);
    if (!named) return `${head} the issuer ${issuerLine(top)} of ${what} is not among the certificates ${req.host} sent`;
    if (!verifiesWith(top, named.x509.publicKey)) return `${head} ${what} was not signed by ${subjectLine(named.x509)}`;
    return `${head} ${subjectLine(named.x509)} may not issue ${what} (its key identifier or key usage do not allow it)`;
  }
  if (usable.length === 1) return `TLSA ${abbreviateTlsa(usable[0]!)} for ${req.tlsaName} matched no certificate of ${req.host}`;
  const list = usable.map(abbreviateTlsa).join(', ');
  return `none of the ${usable.length} TLSA records for ${req.tlsaName} (${list}) matched ${req.host}'s certificate chain`;
}

/**
 * Judges a server's certificate chain against TLSA records, as Postfix does at the dane
 * and dane-only levels with OpenSSL's DANE verification:
 *  - DANE-EE(3) records are tried first, against the leaf alone: its whole DER
 *    certificate (selector 0) or its SubjectPublicKeyInfo (selector 1), compared whole
 *    (matching type 0) or as a SHA2-256 (1) or SHA2-512 (2) digest. A match succeeds with
 *    no name, date or chain check (RFC 7672 section 3.1.1).
 *  - DANE-TA(2) records are tried against the certificates above the leaf, never the leaf:
 *    the chain is built from the leaf upwards (with Cert(0) Full(0) certificates from DNS
 *    available as issuers), and the first certificate a record matches is the trust
 *    anchor; failing that, a SPKI(1) Full(0) record's public key that signed the top of
 *    the chain is (RFC 7671 sections 5.2.2, 5.2.3). The chain up to the anchor must then
 *    pass: CA certificates above the leaf, TLS server extended key usage where limited, a
 *    leaf name matching one of `names` (RFC 7672 section 3.2), signatures, and dates at
 *    `now` (RFC 7672 section 3.1.2).
 * Success: ok, trust `req.trust`, matched the record (formatTlsa). Failure: Untrusted
 * (Anonymous without a certificate) and one sentence naming the host and the TLSA name.
 */
export function daneVerify(req: DaneRequest): Verdict {
  const usable = sortTlsa(classifyTlsa(req.records).usable);
  const fail = (reason: string): Verdict => ({ ok: false, trust: 'Untrusted', reason });
  if (req.chain.length === 0) {
    return { ok: false, trust: 'Anonymous', reason: `${req.host} presented no certificate, so the TLSA records for ${req.tlsaName} cannot match` };
  }
  const served: Cert[] = [];
  for (let i = 0; i < req.chain.length; i++) {
    const der = Buffer.from(req.chain[i]!);
    try {
      served.push({ der, x509: new X509Certificate(der), fromDns: false });
    } catch {
      return fail(`${req.host} sent a certificate that cannot be parsed at depth ${i}, so the TLSA records for ${req.tlsaName} cannot be checked`);
    }
  }
  if (usable.length === 0) return fail(`no usable TLSA records for ${req.tlsaName} to authenticate ${req.host}`);

  // DANE-EE(3): the leaf alone.
  const leaf = served[0]!;
  for (const r of usable) {
    if (r.usage === USAGE.DANE_EE && tlsaMatches(r, selected(r, leaf))) return { ok: true, trust: req.trust, matched: formatTlsa(r) };
  }

  // DANE-TA(2): build the chain to a trust anchor.
  const ta = usable.filter((r) => r.usage === USAGE.DANE_TA);
  const dnsCerts: Cert[] = [];
  for (const r of req.records) {
    if (!ta.includes(r) || r.selector !== SELECTOR.CERT || r.matchingType !== MATCHING.FULL) continue;
    const x509 = fullCertificate(r)!;
    dnsCerts.push({ der: r.data, x509, fromDns: !served.some((c) => c.der.equals(r.data)) });
  }
  const { path, anchor } = buildPath(ta, dnsCerts, served, req.now);
  if (!anchor) return fail(noMatchReason(req, usable, path, [...served, ...dnsCerts]));

  const because = anchorPhrase(req, path, anchor);
  const chainReason = (f: { depth: number; code: ChainError; detail: string }) =>
    `${req.host} certificate chain failed at depth ${f.depth}, ${subjectLine(path[f.depth]!.x509)}: ${describeAuthorizationError(f.code)}${f.detail} (${because})`;

  const ext = chainFailure(path);
  if (ext) return fail(chainReason(ext));

  // check_id(): the leaf's names against the reference identifiers.
  const offered = certNames(leaf.der);
  const matchedName = req.names.some((pattern) => offered.some((n) => nameMatches(n, pattern)));
  if (!matchedName) {
    const wanted = req.names.join(', ');
    if (req.names.length === 0) return fail(`${req.host} certificate cannot be matched: no reference names were given (${because})`);
    if (offered.length === 0) {
      return fail(`${req.host} certificate has no DNS names and no common name, so it matched none of ${wanted} (${because})`);
    }
    return fail(`${req.host} certificate names ${offered.join(', ')} matched none of ${wanted} (${because})`);
  }

  const sig = signatureOrDateFailure(path, anchor, req.now);
  if (sig) return fail(chainReason(sig));
  return { ok: true, trust: req.trust, matched: formatTlsa(anchor.record) };
}

