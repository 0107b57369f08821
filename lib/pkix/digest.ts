/**
 * Certificate and public-key digests in Postfix's fingerprint format, and the parsing of
 * configured fingerprints.
 */
import { createHash } from 'node:crypto';
import type { DigestAlgorithm, PeerTls } from '../types.js';
import { checkAlgorithm, DIGEST_BYTES, formatDigest, SessionCerts } from './certs.js';

export { formatDigest } from './certs.js';

function digest(data: Uint8Array, alg: DigestAlgorithm): string {
  checkAlgorithm(alg);
  return formatDigest(createHash(alg).update(data).digest());
}

/** The digest of a whole DER certificate (Postfix's "cert fingerprint"). */
export function certDigest(der: Buffer, alg: DigestAlgorithm): string {
  return digest(der, alg);
}

/** The DER SubjectPublicKeyInfo of a DER certificate, as the certificate holds it (the same bytes SessionCert.spki() takes). */
export function spkiDer(der: Buffer): Buffer {
  return new SessionCerts().cert(der).spki();
}

/** The digest of the certificate's DER SubjectPublicKeyInfo (Postfix's "pkey fingerprint"). */
export function spkiDigest(der: Buffer, alg: DigestAlgorithm): string {
  return digest(spkiDer(der), alg);
}

const FINGERPRINT_SYNTAX = /^[0-9a-f]{2}(?::?[0-9a-f]{2})*$/i;

/**
 * Normalizes a configured fingerprint to Postfix's output format (`AB:CD:...`).
 *
 * Accepts what Postfix's hex decoder accepts: pairs of hex digits in any case, with or
 * without a ':' between pairs (no leading, trailing or doubled colons). Surrounding white
 * space is ignored. Anything else throws an Error with code 'EFINGERPRINT'.
 */
export function normalizeFingerprint(s: string): string {
  const text = String(s).trim();
  if (!FINGERPRINT_SYNTAX.test(text)) {
    const why =
      text === ''
        ? 'it is empty'
        : /[^0-9a-f:]/i.test(text)
          ? 'it has characters other than hex digits and colons'
          : 'its hex digits do not form whole bytes separated by single colons';
    throw Object.assign(new Error(`invalid fingerprint "${text}": ${why}`), { code: 'EFINGERPRINT' });
  }
  const hex = text.replace(/:/g, '').toUpperCase();
  const maxBytes = Math.max(...Object.values(DIGEST_BYTES));
  if (hex.length / 2 > maxBytes) {
    throw Object.assign(new Error(`invalid fingerprint "${text}": longer than any supported digest (${maxBytes} bytes)`), {
      code: 'EFINGERPRINT',
    });
  }
  return hex.match(/../g)!.join(':');
}

/**
 * The leaf's certificate and public-key digests in Postfix's fingerprint format, for the
 * audit record; empty without a certificate. With the session's SessionCerts, digests the
 * fingerprint level already computed with the same algorithm are not computed again.
 */
export function auditDigests(
  peer: PeerTls | null,
  alg: DigestAlgorithm,
  certs: SessionCerts = new SessionCerts(),
): { cert_digest: string; spki_digest: string } {
  const leaf = peer?.chain[0];
  if (!leaf) return { cert_digest: '', spki_digest: '' };
  const entry = certs.cert(leaf);
  return { cert_digest: entry.fingerprint('cert', alg), spki_digest: entry.fingerprint('spki', alg) };
}
