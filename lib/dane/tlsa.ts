/**
 * TLSA records as data: their text form, the records a DANE SMTP client can use, and
 * digest algorithm agility. See index.ts for the sources of each rule.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { TlsaRecord } from '../dns/message.js';

export type { TlsaRecord } from '../dns/message.js';

/** Certificate usages (RFC 6698 section 2.1.1, acronyms from RFC 7218). */
export const USAGE = { PKIX_TA: 0, PKIX_EE: 1, DANE_TA: 2, DANE_EE: 3 } as const;
/** Selectors (RFC 6698 section 2.1.2). */
export const SELECTOR = { CERT: 0, SPKI: 1 } as const;
/** Matching types (RFC 6698 section 2.1.3). */
export const MATCHING = { FULL: 0, SHA2_256: 1, SHA2_512: 2 } as const;

const USAGE_NAMES: Readonly<Record<number, string>> = { 0: 'PKIX-TA', 1: 'PKIX-EE', 2: 'DANE-TA', 3: 'DANE-EE', 255: 'PrivCert' };
const SELECTOR_NAMES: Readonly<Record<number, string>> = { 0: 'Cert', 1: 'SPKI', 255: 'PrivSel' };
const MATCHING_NAMES: Readonly<Record<number, string>> = { 0: 'Full', 1: 'SHA2-256', 2: 'SHA2-512', 255: 'PrivMatch' };

/** The digest of each supported digest matching type, with its length in bytes. */
const DIGESTS: Readonly<Record<number, { alg: 'sha256' | 'sha512'; bytes: number }>> = {
  [MATCHING.SHA2_256]: { alg: 'sha256', bytes: 32 },
  [MATCHING.SHA2_512]: { alg: 'sha512', bytes: 64 },
};

/**
 * OpenSSL's default matching type ordinals (ssl/ssl_lib.c, dane_mds[]): higher is
 * preferred. Postfix's documented default tls_dane_digests ("sha512 sha256") gives the
 * same order, and Postfix never changes the ordinal of Full(0).
 */
const ORDINAL: Readonly<Record<number, number>> = { [MATCHING.FULL]: 0, [MATCHING.SHA2_256]: 1, [MATCHING.SHA2_512]: 2 };

/** A record's presentation form (RFC 6698 section 2.2): `3 1 1 <hex, lowercase>`. */
export function formatTlsa(r: TlsaRecord): string {
  const hex = r.data.toString('hex');
  return `${r.usage} ${r.selector} ${r.matchingType}${hex === '' ? '' : ` ${hex}`}`;
}

/** Hex shortened for messages: the first 8 hex digits and '...', when there are more. */
export function abbreviateHex(hex: string): string {
  return hex.length > 8 ? `${hex.slice(0, 8)}...` : hex;
}

/** The presentation form with long data shortened, for messages: `3 1 1 ab12cd34...`. */
export function abbreviateTlsa(r: TlsaRecord): string {
  const hex = abbreviateHex(r.data.toString('hex'));
  return `${r.usage} ${r.selector} ${r.matchingType}${hex === '' ? '' : ` ${hex}`}`;
}

function tlsaError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETLSA' });
}

function parseField(token: string | undefined, names: Readonly<Record<number, string>>, what: string, text: string): number {
  if (token === undefined) throw tlsaError(`invalid TLSA record "${text}": the ${what} is missing`);
  if (/^\d{1,3}$/.test(token) && Number(token) <= 255) return Number(token);
  for (const [code, name] of Object.entries(names)) {
    if (name.toLowerCase() === token.toLowerCase()) return Number(code);
  }
  throw tlsaError(`invalid TLSA record "${text}": ${what} "${token}" is neither a number from 0 to 255 nor a known name`);
}

/**
 * Parses a record's presentation form, as written in zone files and configuration:
 * usage, selector and matching type as decimal numbers (0-255) or RFC 7218 acronyms
 * (`DANE-EE SPKI SHA2-256`), then the data as hex digits in any case, white space allowed
 * between them (RFC 6698 section 2.2). Throws an Error with code 'ETLSA' otherwise.
 */
export function parseTlsaText(text: string): TlsaRecord {
  const trimmed = String(text).trim();
  const [u, s, m, ...rest] = trimmed.split(/\s+/).filter((t) => t !== '');
  const usage = parseField(u, USAGE_NAMES, 'certificate usage', trimmed);
  const selector = parseField(s, SELECTOR_NAMES, 'selector', trimmed);
  const matchingType = parseField(m, MATCHING_NAMES, 'matching type', trimmed);
  const hex = rest.join('');
  if (!/^[0-9a-f]*$/i.test(hex)) throw tlsaError(`invalid TLSA record "${trimmed}": the data is not hex`);
  if (hex.length % 2 !== 0) throw tlsaError(`invalid TLSA record "${trimmed}": the data has an odd number of hex digits`);
  return { usage, selector, matchingType, data: Buffer.from(hex, 'hex') };
}

/** A record that cannot be used, and why. */
export interface UnusableTlsa {
  record: TlsaRecord;
  reason: string;
}

/** classifyTlsa's answer; each list keeps the order of the input. */
export interface TlsaClassification {
  /** Records a DANE SMTP client matches: DANE-TA(2) and DANE-EE(3) that OpenSSL accepts, after digest agility. */
  usable: TlsaRecord[];
  /** Records dropped as Postfix and OpenSSL drop them (RFC 7672 section 3.1.3, RFC 6698 section 2.1). */
  unusable: UnusableTlsa[];
  /** Usable records never matched because a stronger digest of the same usage and selector exists (RFC 7671 section 9). */
  ignored: UnusableTlsa[];
}

function usageLabel(usage: number): string {
  const name = USAGE_NAMES[usage];
  return name ? `${usage} (${name})` : String(usage);
}

/** The length of a DER TLV (tag, length, contents) at the start of `der`, or -1 when it is malformed. */
function derLength(der: Buffer): number {
  if (der.length < 2) return -1;
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || der.length < 2 + n) return -1;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
  return 2 + n + len;
}

/**
 * How Full(0) record data is parsed: as an X.509 certificate and as a public key, each
 * returning null for data that is not one. daneVerify passes its session's SessionCerts so
 * that every certificate and key is parsed once.
 */
export interface TlsaParsers {
  certificate(der: Buffer): X509Certificate | null;
  publicKey(der: Buffer): KeyObject | null;
}

/** Parsers that parse afresh at every call. */
const FRESH: TlsaParsers = {
  certificate(der) {
    try {
      return new X509Certificate(der);
    } catch {
      return null;
    }
  },
  publicKey(der) {
    try {
      return createPublicKey({ key: der, format: 'der', type: 'spki' });
    } catch {
      return null;
    }
  },
};

/**
 * The full certificate of a Cert(0) Full(0) record, or null when the data is not exactly one
 * DER certificate (OpenSSL's dane_tlsa_add: d2i_X509 must consume all the data).
 */
export function fullCertificate(r: TlsaRecord, parsers: TlsaParsers = FRESH): X509Certificate | null {
  if (derLength(r.data) !== r.data.length || r.data[0] !== 0x30) return null;
  const cert = parsers.certificate(r.data);
  return cert && Buffer.from(cert.raw).equals(r.data) ? cert : null;
}

/**
 * The public key of an SPKI(1) Full(0) record, or null when the data is not exactly one
 * DER SubjectPublicKeyInfo (OpenSSL's dane_tlsa_add: d2i_PUBKEY must consume all the data).
 */
export function fullPublicKey(r: TlsaRecord, parsers: TlsaParsers = FRESH): KeyObject | null {
  if (derLength(r.data) !== r.data.length || r.data[0] !== 0x30) return null;
  return parsers.publicKey(r.data);
}

/** Why a record is unusable, or null when it is usable (before digest agility). */
function unusableReason(r: TlsaRecord, parsers: TlsaParsers): string | null {
  // Postfix (tls_dane.c parse_tlsa_rr) keeps only DANE-TA(2) and DANE-EE(3): RFC 7672
  // section 3.1.3 makes PKIX-TA(0) and PKIX-EE(1) unusable for SMTP.
  if (r.usage === USAGE.PKIX_TA || r.usage === USAGE.PKIX_EE) {
    return `certificate usage ${usageLabel(r.usage)} is not used with SMTP (RFC 7672 section 3.1.3)`;
  }
  if (r.usage !== USAGE.DANE_TA && r.usage !== USAGE.DANE_EE) return `certificate usage ${usageLabel(r.usage)} is not supported`;
  // Postfix reserves the private-use matching type for its fingerprint level.
  if (r.matchingType === 255) return 'matching type 255 (PrivMatch) is reserved for private use';
  // The rest is what OpenSSL's SSL_dane_tlsa_add() refuses (ssl/ssl_lib.c dane_tlsa_add).
  if (r.selector !== SELECTOR.CERT && r.selector !== SELECTOR.SPKI) {
    return `selector ${r.selector} is not supported (0 full certificate, 1 SubjectPublicKeyInfo)`;
  }
  const digest = DIGESTS[r.matchingType];
  if (r.matchingType !== MATCHING.FULL && !digest) {
    return `matching type ${r.matchingType} is not supported (0 full, 1 SHA2-256, 2 SHA2-512)`;
  }
  if (digest) {
    if (r.data.length !== digest.bytes) {
      return `${MATCHING_NAMES[r.matchingType]} data must be ${digest.bytes} bytes, not ${r.data.length}`;
    }
    return null;
  }
  if (r.selector === SELECTOR.CERT && !fullCertificate(r, parsers)) return 'the data is not exactly one DER X.509 certificate';
  if (r.selector === SELECTOR.SPKI && !fullPublicKey(r, parsers)) return 'the data is not exactly one DER SubjectPublicKeyInfo';
  return null;
}

/** A matching type's ordinal for digest agility: higher is preferred. */
export function matchingOrdinal(matchingType: number): number {
  return ORDINAL[matchingType] ?? -1;
}

/**
 * Sorts records as OpenSSL's dane_tlsa_add() keeps them: by usage, selector and matching
 * type ordinal, each descending (DANE-EE first, SPKI before Cert, SHA2-512 before
 * SHA2-256 before Full), records that compare equal in their original order.
 */
export function sortTlsa(records: readonly TlsaRecord[]): TlsaRecord[] {
  return records
    .map((record, index) => ({ record, index }))
    .sort(
      (a, b) =>
        b.record.usage - a.record.usage ||
        b.record.selector - a.record.selector ||
        matchingOrdinal(b.record.matchingType) - matchingOrdinal(a.record.matchingType) ||
        a.index - b.index,
    )
    .map((e) => e.record);
}

/**
 * Splits TLSA records into the usable, the unusable (with a reason each) and those
 * ignored by digest algorithm agility.
 *
 * Usable: usage DANE-TA(2) or DANE-EE(3); selector Cert(0) or SPKI(1); matching type
 * Full(0) with data that is exactly one DER certificate or SubjectPublicKeyInfo, or
 * SHA2-256(1) / SHA2-512(2) with a digest of 32 / 64 bytes.
 *
 * Agility, as OpenSSL's dane_match_cert() applies it (crypto/x509/x509_vfy.c): among the
 * usable records with the same usage and selector, digest records whose matching type
 * ranks below the best matching type present are ignored; Full(0) records are never
 * ignored. SHA2-512 outranks SHA2-256.
 */
export function classifyTlsa(records: readonly TlsaRecord[], parsers: TlsaParsers = FRESH): TlsaClassification {
  const unusable: UnusableTlsa[] = [];
  const candidates: TlsaRecord[] = [];
  for (const record of records) {
    const reason = unusableReason(record, parsers);
    if (reason === null) candidates.push(record);
    else unusable.push({ record, reason });
  }
  const best = new Map<string, number>();
  const key = (r: TlsaRecord) => `${r.usage} ${r.selector}`;
  for (const r of candidates) best.set(key(r), Math.max(best.get(key(r)) ?? -1, matchingOrdinal(r.matchingType)));
  const usable: TlsaRecord[] = [];
  const ignored: UnusableTlsa[] = [];
  for (const r of candidates) {
    const top = best.get(key(r))!;
    if (r.matchingType !== MATCHING.FULL && matchingOrdinal(r.matchingType) < top) {
      const stronger = Object.keys(ORDINAL)
        .map(Number)
        .find((m) => ORDINAL[m] === top)!;
      ignored.push({
        record: r,
        reason: `a ${MATCHING_NAMES[stronger]} record with the same usage and selector takes precedence (digest agility, RFC 7671 section 9)`,
      });
    } else {
      usable.push(r);
    }
  }
  return { usable, unusable, ignored };
}

/** Whether the certificate (DER) or its SubjectPublicKeyInfo (DER) matches a usable record. */
export function tlsaMatches(r: TlsaRecord, selected: Buffer): boolean {
  const digest = DIGESTS[r.matchingType];
  const value = digest ? createHash(digest.alg).update(selected).digest() : selected;
  return value.equals(r.data);
}

/** The digest algorithm of a digest matching type, or null for Full(0). */
export function matchingDigest(matchingType: number): 'sha256' | 'sha512' | null {
  return DIGESTS[matchingType]?.alg ?? null;
}
