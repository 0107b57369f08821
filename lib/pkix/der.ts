/**
 * The SubjectPublicKeyInfo of a DER certificate, as the certificate holds it, found by walking
 * the DER (RFC 5280 section 4.1) instead of parsing the certificate and re-encoding its key.
 *
 * These are the bytes DANE's selector 1 covers (RFC 6698 section 2.1.2: "the DER-encoded
 * binary structure ... SubjectPublicKeyInfo") and Postfix's public-key fingerprints digest:
 * OpenSSL takes them with i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert)), which encodes the
 * structure as it was parsed, so for a DER certificate it gives back these very bytes. Pure;
 * a few microseconds, where X509Certificate plus KeyObject.export costs tens.
 *
 * undefined when the bytes are not laid out as a certificate (the caller then parses).
 */

/** One DER element: its tag, and where its whole encoding and its contents lie. */
interface Element {
  tag: number;
  start: number;
  contents: number;
  end: number;
}

/** The element at `offset`, within `limit`; undefined for anything but DER's definite lengths of up to 4 bytes. */
function element(der: Uint8Array, offset: number, limit: number): Element | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers do not occur in these fields
  const first = der[offset + 1]!;
  let length: number;
  let contents: number;
  if (first < 0x80) {
    length = first;
    contents = offset + 2;
  } else {
    const bytes = first & 0x7f;
    if (bytes === 0 || bytes > 4 || offset + 2 + bytes > limit) return undefined; // 0x80 is BER's indefinite length
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[offset + 2 + i]!;
    if (length < 0x80 || der[offset + 2]! === 0) return undefined; // DER: the shortest form
    contents = offset + 2 + bytes;
  }
  const end = contents + length;
  if (end > limit) return undefined;
  return { tag, start: offset, contents, end };
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const VERSION = 0xa0; // [0] EXPLICIT Version

/**
 * The DER SubjectPublicKeyInfo of a DER certificate (a view of `der`, not a copy), or
 * undefined when `der` is not Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
 * [0] version OPTIONAL, serialNumber INTEGER, signature, issuer, validity, subject,
 * subjectPublicKeyInfo, ... }, ... } with SEQUENCEs where RFC 5280 has them.
 */
export function subjectPublicKeyInfoOf(der: Uint8Array): Buffer | undefined {
  const certificate = element(der, 0, der.length);
  if (!certificate || certificate.tag !== SEQUENCE || certificate.end !== der.length) return undefined;
  const tbs = element(der, certificate.contents, certificate.end);
  if (!tbs || tbs.tag !== SEQUENCE) return undefined;
  let field = element(der, tbs.contents, tbs.end);
  if (field?.tag === VERSION) field = element(der, field.end, tbs.end);
  if (!field || field.tag !== INTEGER) return undefined;
  // signature AlgorithmIdentifier, issuer Name, validity, subject Name, subjectPublicKeyInfo: five SEQUENCEs
  for (let i = 0; i < 5; i++) {
    field = element(der, field.end, tbs.end);
    if (!field || field.tag !== SEQUENCE) return undefined;
  }
  const view = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  return view.subarray(field.start, field.end);
}
