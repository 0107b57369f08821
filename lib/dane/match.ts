/**
 * daneVerify: judges the certificate chain a server sent against its usable TLSA records,
 * as OpenSSL's DANE verification (crypto/x509/x509_vfy.c: dane_verify, build_chain,
 * check_dane_issuer, check_dane_pkeys, check_extensions, check_id, internal_verify) does
 * for Postfix. See index.ts for the rules, the choices and the limits.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { TlsaRecord } from '../dns/message.js';
import { escapeControls, safeText } from '../text/index.js';
import type { ResultType, Verdict } from '../types.js';
import { describeAuthorizationError, nameMatches, SessionCerts, type CertPart, type SessionCert } from '../pkix/index.js';
import {
  abbreviateTlsa,
  classifyTlsa,
  formatTlsa,
  fullCertificate,
  fullPublicKey,
  MATCHING,
  matchingDigest,
  SELECTOR,
  sortTlsa,
  USAGE,
  type TlsaParsers,
} from './tlsa.js';

/**
 * The most TLSA records of usage DANE-TA(2) or DANE-EE(3) one verification accepts; more
 * fail, naming the limit. See index.ts for why this number.
 */
export const MAX_TLSA_RECORDS = 100;

/**
 * The most certificates a chain may have from the leaf up to and including its trust anchor:
 * Postfix's smtp_tls_scert_verifydepth default 9, given to OpenSSL as verify depth 9 + 1 = 10
 * (tls_client.c), and OpenSSL's build_chain() stops adding issuers once the chain holds
 * depth + 2 certificates. A chain that reaches it without a trust anchor fails with
 * CERT_CHAIN_TOO_LONG. See index.ts.
 */
export const MAX_CHAIN_LENGTH = 12;

/** How many records a "none of the records matched" reason lists before it only counts the rest. */
const LISTED_RECORDS = 10;

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
  /**
   * The session's certificates, parsed and hashed at most once (SessionCerts): pass the one
   * the session also gives verifyPeer (a shadow level) and auditDigests. Without it, a new
   * one is made.
   */
  certs?: SessionCerts;
}

/** A certificate of the chain being built, and where it came from. */
interface Cert {
  entry: SessionCert;
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

/**
 * A distinguished name as Node prints it (one RDN a line), on one line. Node's text is
 * OpenSSL's RFC 2253 form: C0 controls are already escaped (`\0A`), and so are ',', '+',
 * '"', '\', ';', '<' and '>' inside values; what OpenSSL leaves raw (C1 controls, bidi
 * formatting, line and paragraph separators) is escaped here, without a second layer of
 * backslashes over OpenSSL's own.
 */
function dnLine(text: string, empty: string): string {
  const s = text
    .split('\n')
    .filter((l) => l !== '')
    .join(', ');
  return s === '' ? empty : escapeControls(s);
}

function subjectLine(x: X509Certificate): string {
  return dnLine(x.subject, 'an empty subject');
}

function issuerLine(x: X509Certificate): string {
  return dnLine(x.issuer, 'an empty name');
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** OpenSSL's time check (ossl_x509_check_cert_time), in whole seconds as OpenSSL compares. */
function timeError(x: X509Certificate, now: Date): ChainError | null {
  const t = Math.floor(now.getTime() / 1000);
  if (t < Math.floor(x.validFromDate.getTime() / 1000)) return 'CERT_NOT_YET_VALID';
  if (t > Math.floor(x.validToDate.getTime() / 1000)) return 'CERT_HAS_EXPIRED';
  return null;
}

/** One (selector, matching type) pair present among the indexed records. */
interface Kind {
  part: CertPart;
  alg: 'sha256' | 'sha512' | null;
  /** Record data (as a latin1 string) -> position of the first record with that data. */
  first: Map<string, number>;
}

/**
 * The records of one usage, looked up by the bytes they match instead of being compared one
 * by one with each certificate: a certificate costs one lookup per (selector, matching type)
 * pair present (at most six), each with bytes SessionCert computes once.
 */
class RecordIndex {
  readonly #kinds = new Map<string, Kind>();

  /** Indexes the records of `usage` in `records`, by position. */
  constructor(records: readonly TlsaRecord[], usage: number) {
    records.forEach((r, i) => {
      if (r.usage !== usage) return;
      const name = `${r.selector} ${r.matchingType}`;
      let kind = this.#kinds.get(name);
      if (!kind) {
        kind = { part: r.selector === SELECTOR.SPKI ? 'spki' : 'cert', alg: matchingDigest(r.matchingType), first: new Map() };
        this.#kinds.set(name, kind);
      }
      const data = r.data.toString('latin1');
      if (!kind.first.has(data)) kind.first.set(data, i);
    });
  }

  /**
   * For each (selector, matching type) pair, the position of the first record the certificate
   * matches. Records with the same pair and data match the same certificates, so the first
   * of them stands for all.
   */
  matches(c: SessionCert): number[] {
    const out: number[] = [];
    for (const kind of this.#kinds.values()) {
      let value: Buffer;
      try {
        value = kind.alg ? c.digest(kind.part, kind.alg) : c.bytes(kind.part);
      } catch {
        // A public key node:crypto cannot export matches no SPKI(1) record.
        continue;
      }
      const i = kind.first.get(value.toString('latin1'));
      if (i !== undefined) out.push(i);
    }
    return out;
  }

  /** The position of the first record (in the indexed order) that the certificate matches, or -1. */
  first(c: SessionCert): number {
    const hits = this.matches(c);
    return hits.length === 0 ? -1 : Math.min(...hits);
  }
}

/**
 * The issuer OpenSSL's get0_best_issuer_sk() picks among the certificates not used yet:
 * the first that issued `x` (names, key identifiers, key usage: X509Certificate.checkIssued)
 * and is valid now, else the one of those that expires last.
 */
function bestIssuer(pool: readonly Cert[], x: X509Certificate, path: readonly Cert[], now: Date): number {
  let best = -1;
  const selfIssuedLeaf = path.length === 1 && x.subject === x.issuer;
  for (let i = 0; i < pool.length; i++) {
    const c = pool[i]!;
    // OpenSSL's no_dup (X509_cmp): the same certificate is never used twice, whoever sent it.
    if (!selfIssuedLeaf && path.some((p) => p.entry === c.entry)) continue;
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
 * certificate, when no issuer is left, or when the chain holds MAX_CHAIN_LENGTH
 * certificates. Failing a match, a SPKI(1) Full(0) DANE-TA(2) public key that signed the
 * top of the path is the trust anchor (check_dane_pkeys), unless the chain is at its limit.
 */
function buildPath(
  usable: readonly TlsaRecord[],
  ta: RecordIndex,
  keys: readonly TlsaRecord[],
  dnsCerts: readonly Cert[],
  served: readonly Cert[],
  now: Date,
  parsers: TlsaParsers,
): { path: Cert[]; anchor: Anchor | null; tooLong: boolean } {
  const path: Cert[] = [served[0]!];
  const pool: Cert[] = [...dnsCerts, ...served];
  for (;;) {
    const top = path[path.length - 1]!;
    // OpenSSL looks for no issuer once the chain holds depth + 2 certificates.
    if (path.length >= MAX_CHAIN_LENGTH) break;
    if (top.entry.selfSigned()) break;
    const i = bestIssuer(pool, top.x509, path, now);
    if (i < 0) break;
    const [issuer] = pool.splice(i, 1);
    path.push(issuer!);
    // check_dane_issuer(): the first record, in OpenSSL's order, that matches the new issuer.
    const first = ta.first(issuer!.entry);
    if (first >= 0) return { path, anchor: { record: usable[first]!, kind: 'cert', depth: path.length - 1 }, tooLong: false };
  }
  // build_chain() tries bare keys only while the chain is within its limit.
  if (path.length >= MAX_CHAIN_LENGTH) return { path, anchor: null, tooLong: true };
  const top = path[path.length - 1]!;
  for (const record of keys) {
    const key: KeyObject | null = fullPublicKey(record, parsers);
    if (key && top.entry.signedByKey(key)) return { path, anchor: { record, kind: 'key', depth: path.length - 1 }, tooLong: false };
  }
  return { path, anchor: null, tooLong: false };
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
function signatureOrDateFailure(path: readonly Cert[], anchor: Anchor, now: Date): { depth: number; code: ChainError; detail: string } | null {
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
  if (anchor.kind === 'key' || path[n]!.entry.selfSigned()) {
    const f = dateFailure(n);
    if (f) return f;
  }
  for (n -= 1; n >= 0; n--) {
    const issuer = path[n + 1]!;
    if (!path[n]!.entry.signedBy(issuer.entry)) {
      return {
        depth: n,
        code: 'CERT_SIGNATURE_FAILURE',
        detail: `, its signature does not verify with the public key of ${subjectLine(issuer.x509)}`,
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

/** The records of a "none matched" reason: all of them, or the first few and a count of the rest. */
function recordList(usable: readonly TlsaRecord[]): string {
  const shown = usable.slice(0, LISTED_RECORDS).map(abbreviateTlsa);
  const rest = usable.length - shown.length;
  return rest > 0 ? `${shown.join(', ')} and ${rest} more` : shown.join(', ');
}

/** The reason when no record led to a trust anchor. */
function noMatchReason(req: DaneRequest, usable: readonly TlsaRecord[], ta: RecordIndex, path: readonly Cert[], all: readonly Cert[]): string {
  // A DANE-TA(2) record matched a certificate that is not on the leaf's path: say where
  // the path broke, as that is the likely fault. The first such record in OpenSSL's order
  // is reported, with the first certificate (sent, then from DNS) it matched; each
  // certificate is looked up once, whatever the number of records.
  const hits = new Map<number, Cert>();
  for (const c of all) {
    if (c.entry === path[0]!.entry || path.includes(c)) continue;
    for (const i of ta.matches(c.entry)) if (!hits.has(i)) hits.set(i, c);
  }
  if (hits.size > 0) {
    const first = Math.min(...hits.keys());
    const record = usable[first]!;
    const hit = hits.get(first)!;
    const k = path.length - 1;
    const top = path[k]!;
    const what = k === 0 ? `${req.host} certificate` : `${subjectLine(top.x509)} (depth ${k})`;
    const verb = hit.fromDns ? `supplied ${subjectLine(hit.x509)} from DNS` : `matched ${subjectLine(hit.x509)}`;
    const head = `TLSA ${abbreviateTlsa(record)} for ${req.tlsaName} ${verb}, but`;
    if (top.entry.selfSigned()) return `${head} ${what} is self-signed`;
    const named = all.find((c) => !path.includes(c) && c.x509.subject === top.x509.issuer);
    if (!named) return `${head} the issuer ${issuerLine(top.x509)} of ${what} is not among the certificates ${req.host} sent`;
    if (!top.entry.signedBy(named.entry)) return `${head} ${what} was not signed by ${subjectLine(named.x509)}`;
    return `${head} ${subjectLine(named.x509)} may not issue ${what} (its key identifier or key usage do not allow it)`;
  }
  if (usable.length === 1) return `TLSA ${abbreviateTlsa(usable[0]!)} for ${req.tlsaName} matched no certificate of ${req.host}`;
  return `none of the ${usable.length} TLSA records for ${req.tlsaName} (${recordList(usable)}) matched ${req.host}'s certificate chain`;
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
 *  - More than MAX_TLSA_RECORDS records of usage 2 or 3, or a chain that reaches
 *    MAX_CHAIN_LENGTH certificates without a trust anchor, fail with a reason naming the
 *    limit.
 * Success: ok, trust `req.trust`, matched the record (formatTlsa). Failure: Untrusted
 * (Anonymous without a certificate) and one sentence naming the host and the TLSA name;
 * certificate names and subjects in it are escaped (lib/text).
 *
 * Each certificate is parsed, exported and hashed at most once (req.certs, a SessionCerts),
 * and records are looked up by the bytes they match, so the work grows with the number of
 * certificates plus the number of records, never with their product.
 */
export function daneVerify(req: DaneRequest): Verdict {
  // RFC 8460 section 4.3: no record matched is tlsa-invalid; a chain to a matched anchor that
  // fails on a date is certificate-expired, on the leaf's names certificate-host-mismatch.
  const fail = (reason: string, resultType: ResultType = 'tlsa-invalid'): Verdict => ({ ok: false, trust: 'Untrusted', reason, resultType });
  if (req.chain.length === 0) {
    return {
      ok: false,
      trust: 'Anonymous',
      reason: `${req.host} presented no certificate, so the TLSA records for ${req.tlsaName} cannot match`,
      resultType: 'tlsa-invalid',
    };
  }
  // Bounded before any record data or certificate is parsed.
  const dane = req.records.reduce((n, r) => (r.usage === USAGE.DANE_TA || r.usage === USAGE.DANE_EE ? n + 1 : n), 0);
  if (dane > MAX_TLSA_RECORDS) {
    return fail(
      `too many TLSA records for ${req.tlsaName} to authenticate ${req.host}: ${dane} of usage DANE-TA(2) or DANE-EE(3), more than the limit of ${MAX_TLSA_RECORDS}`,
    );
  }
  const certs = req.certs ?? new SessionCerts();
  const served: Cert[] = [];
  for (let i = 0; i < req.chain.length; i++) {
    const entry = certs.cert(req.chain[i]!);
    const x509 = entry.tryX509();
    if (!x509) {
      return fail(`${req.host} sent a certificate that cannot be parsed at depth ${i}, so the TLSA records for ${req.tlsaName} cannot be checked`);
    }
    served.push({ entry, x509, fromDns: false });
  }
  const parsers: TlsaParsers = { certificate: (der) => certs.cert(der).tryX509(), publicKey: (der) => certs.publicKey(der) };
  const usable = sortTlsa(classifyTlsa(req.records, parsers).usable);
  if (usable.length === 0) return fail(`no usable TLSA records for ${req.tlsaName} to authenticate ${req.host}`);

  // DANE-EE(3): the leaf alone.
  const leaf = served[0]!;
  const ee = new RecordIndex(usable, USAGE.DANE_EE).first(leaf.entry);
  if (ee >= 0) return { ok: true, trust: req.trust, matched: formatTlsa(usable[ee]!) };

  // DANE-TA(2): build the chain to a trust anchor.
  const ta = new RecordIndex(usable, USAGE.DANE_TA);
  const taRecords = new Set(usable.filter((r) => r.usage === USAGE.DANE_TA));
  const keys = usable.filter((r) => r.usage === USAGE.DANE_TA && r.selector === SELECTOR.SPKI && r.matchingType === MATCHING.FULL);
  const sent = new Set(served.map((c) => c.entry));
  const dnsCerts: Cert[] = [];
  for (const r of req.records) {
    if (!taRecords.has(r) || r.selector !== SELECTOR.CERT || r.matchingType !== MATCHING.FULL) continue;
    const x509 = fullCertificate(r, parsers)!;
    const entry = certs.cert(r.data);
    dnsCerts.push({ entry, x509, fromDns: !sent.has(entry) });
  }
  const { path, anchor, tooLong } = buildPath(usable, ta, keys, dnsCerts, served, req.now, parsers);
  if (tooLong) {
    const k = path.length - 1;
    return fail(
      `${req.host} certificate chain failed at depth ${k}, ${subjectLine(path[k]!.x509)}: ${describeAuthorizationError('CERT_CHAIN_TOO_LONG')}, ` +
        `no TLSA record for ${req.tlsaName} matched its first ${MAX_CHAIN_LENGTH} certificates (the verify depth limit of Postfix and OpenSSL)`,
    );
  }
  if (!anchor) return fail(noMatchReason(req, usable, ta, path, [...served, ...dnsCerts]));

  const because = anchorPhrase(req, path, anchor);
  const chainReason = (f: { depth: number; code: ChainError; detail: string }) =>
    `${req.host} certificate chain failed at depth ${f.depth}, ${subjectLine(path[f.depth]!.x509)}: ${describeAuthorizationError(f.code)}${f.detail} (${because})`;
  const chainType = (f: { code: ChainError }): ResultType =>
    f.code === 'CERT_HAS_EXPIRED' || f.code === 'CERT_NOT_YET_VALID' ? 'certificate-expired' : 'validation-failure';

  const ext = chainFailure(path);
  if (ext) return fail(chainReason(ext), chainType(ext));

  // check_id(): the leaf's names, raw, against the reference identifiers; shown escaped.
  const offered = leaf.entry.names();
  const matchedName = req.names.some((pattern) => offered.some((n) => nameMatches(n, pattern)));
  if (!matchedName) {
    const wanted = req.names.join(', ');
    if (req.names.length === 0)
      return fail(`${req.host} certificate cannot be matched: no reference names were given (${because})`, 'certificate-host-mismatch');
    if (offered.length === 0) {
      return fail(`${req.host} certificate has no DNS names and no common name, so it matched none of ${wanted} (${because})`, 'certificate-host-mismatch');
    }
    return fail(`${req.host} certificate names ${offered.map(safeText).join(', ')} matched none of ${wanted} (${because})`, 'certificate-host-mismatch');
  }

  const sig = signatureOrDateFailure(path, anchor, req.now);
  if (sig) return fail(chainReason(sig), chainType(sig));
  return { ok: true, trust: req.trust, matched: formatTlsa(anchor.record) };
}
