/**
 * SessionCerts: the certificates of one TLS session (the chain the server sent, and the
 * Cert(0) Full(0) certificates and SPKI(1) Full(0) keys of its TLSA records), each parsed,
 * exported and hashed at most once, however many checks ask.
 *
 * A session makes one SessionCerts and passes it to every judgement of that session: the
 * level's verdict (verifyPeer or daneVerify), a shadow level's verdict, and the audit's
 * digests (auditDigests). Entries are keyed by the DER bytes themselves, so a SessionCerts
 * can never answer for the wrong certificate, whichever chain it is asked about; the same
 * certificate sent twice, or sent and also published in a "2 0 0" record, is parsed once.
 *
 * `counters` says how much work was done, so that tests can bound it: X.509 parses,
 * SubjectPublicKeyInfo exports, public keys parsed from TLSA data, digests and signature
 * verifications. Nothing here judges anything; it only remembers.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { DigestAlgorithm } from '../types.js';
import { subjectPublicKeyInfoOf } from './der.js';
import { certNamesOf } from './names.js';

/** Digest algorithms we accept, each with its digest length in bytes. */
export const DIGEST_BYTES: Readonly<Record<DigestAlgorithm, number>> = {
  md5: 16,
  sha1: 20,
  sha224: 28,
  sha256: 32,
  sha384: 48,
  sha512: 64,
};

/** Throws a TypeError for a digest algorithm that is not one of DIGEST_BYTES. */
export function checkAlgorithm(alg: DigestAlgorithm): void {
  if (!Object.hasOwn(DIGEST_BYTES, alg)) {
    throw new TypeError(`unsupported digest algorithm "${String(alg)}"`);
  }
}

/** Formats raw digest bytes as Postfix does: uppercase hex bytes joined with ':'. */
export function formatDigest(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').toUpperCase();
  let out = hex.slice(0, 2);
  for (let i = 2; i < hex.length; i += 2) out += `:${hex.slice(i, i + 2)}`;
  return out;
}

/** The work a SessionCerts has done so far. */
export interface CertCounters {
  /** X.509 certificates parsed (new X509Certificate). */
  parses: number;
  /** SubjectPublicKeyInfo DER exports from a parsed certificate. */
  spkiExports: number;
  /** Public keys parsed from DER SubjectPublicKeyInfo data (SPKI(1) Full(0) TLSA records). */
  keyParses: number;
  /** Digests computed (of a certificate or of its SubjectPublicKeyInfo). */
  digests: number;
  /** Signature verifications (X509Certificate.verify). */
  signatures: number;
}

/** Which bytes of a certificate a digest covers: the whole DER certificate, or its DER SubjectPublicKeyInfo. */
export type CertPart = 'cert' | 'spki';

/** One certificate of a session, by its DER bytes. Made only by SessionCerts.cert(). */
export class SessionCert {
  readonly der: Buffer;
  readonly #owner: SessionCerts;
  #x509: X509Certificate | undefined;
  #parseError: unknown;
  #spki: Buffer | undefined;
  #spkiError: unknown;
  readonly #digests = new Map<string, Buffer>();
  readonly #fingerprints = new Map<string, string>();
  #names: string[] | undefined;
  #selfSigned: boolean | undefined;
  /** Signature checks already done: by issuer certificate, and by bare public key. */
  readonly #signedBy = new Map<SessionCert, boolean>();
  readonly #signedByKey = new WeakMap<KeyObject, boolean>();

  /** @internal */
  constructor(owner: SessionCerts, der: Buffer) {
    this.#owner = owner;
    this.der = der;
  }

  /** The parsed certificate, or null when the DER is not a certificate (parsed once, failure remembered). */
  tryX509(): X509Certificate | null {
    if (this.#x509 === undefined && this.#parseError === undefined) {
      this.#owner.counters.parses++;
      try {
        this.#x509 = new X509Certificate(this.der);
      } catch (err) {
        this.#parseError = err ?? new Error('certificate cannot be parsed');
      }
    }
    return this.#x509 ?? null;
  }

  /** The parsed certificate; throws node:crypto's own error (once parsed, again) when it cannot be parsed. */
  get x509(): X509Certificate {
    const x = this.tryX509();
    if (x === null) throw this.#parseError;
    return x;
  }

  /**
   * The DER SubjectPublicKeyInfo as the certificate holds it (taken once; a failure is
   * remembered and thrown again). The bytes are found by walking the DER (subjectPublicKeyInfoOf),
   * which is what OpenSSL's i2d_X509_PUBKEY gives for the parsed certificate; a certificate the
   * TLS handshake did not already parse is parsed first, so that bytes that are no certificate
   * still fail as before. Only if the walk finds no key is the parsed key exported instead.
   */
  spki(): Buffer {
    if (this.#spki === undefined) {
      if (this.#spkiError !== undefined) throw this.#spkiError;
      const x = this.#owner.fromHandshake(this.der) ? undefined : this.x509;
      this.#owner.counters.spkiExports++;
      try {
        this.#spki = subjectPublicKeyInfoOf(this.der) ?? (x ?? this.x509).publicKey.export({ type: 'spki', format: 'der' });
      } catch (err) {
        this.#spkiError = err ?? new Error('public key cannot be exported');
        throw this.#spkiError;
      }
    }
    return this.#spki;
  }

  /** The bytes a part names: the DER certificate or its DER SubjectPublicKeyInfo. */
  bytes(part: CertPart): Buffer {
    return part === 'spki' ? this.spki() : this.der;
  }

  /** The raw digest of a part (computed once per part and algorithm). */
  digest(part: CertPart, alg: DigestAlgorithm): Buffer {
    const key = `${part} ${alg}`;
    let d = this.#digests.get(key);
    if (d === undefined) {
      checkAlgorithm(alg);
      const data = this.bytes(part);
      this.#owner.counters.digests++;
      d = createHash(alg).update(data).digest();
      this.#digests.set(key, d);
    }
    return d;
  }

  /** The digest of a part in Postfix's fingerprint format, `AB:CD:...` (one digest per part and algorithm). */
  fingerprint(part: CertPart, alg: DigestAlgorithm): string {
    const key = `${part} ${alg}`;
    let f = this.#fingerprints.get(key);
    if (f === undefined) {
      f = formatDigest(this.digest(part, alg));
      this.#fingerprints.set(key, f);
    }
    return f;
  }

  /** The names offered for host name checks, raw as the certificate holds them (certNames). */
  names(): string[] {
    this.#names ??= certNamesOf(this.x509);
    return this.#names;
  }

  /** Whether this certificate's signature verifies with the public key of `issuer` (checked once per issuer). */
  signedBy(issuer: SessionCert): boolean {
    let ok = this.#signedBy.get(issuer);
    if (ok === undefined) {
      ok = this.#verify(issuer.x509.publicKey);
      this.#signedBy.set(issuer, ok);
    }
    return ok;
  }

  /** Whether this certificate's signature verifies with a bare public key (checked once per key object). */
  signedByKey(key: KeyObject): boolean {
    let ok = this.#signedByKey.get(key);
    if (ok === undefined) {
      ok = this.#verify(key);
      this.#signedByKey.set(key, ok);
    }
    return ok;
  }

  /**
   * Self-signed as OpenSSL's X509_self_signed(cert, 0) means it: issuer and subject names
   * equal and the certificate's own key fits its signature (OpenSSL compares the key
   * identifiers instead of checking the signature; a real self-signature implies both).
   * The signature is checked only for a self-issued certificate, and only once.
   */
  selfSigned(): boolean {
    if (this.#selfSigned === undefined) {
      const x = this.x509;
      this.#selfSigned = x.subject === x.issuer && this.signedBy(this);
    }
    return this.#selfSigned;
  }

  #verify(key: KeyObject): boolean {
    this.#owner.counters.signatures++;
    try {
      return this.x509.verify(key);
    } catch {
      return false;
    }
  }
}

/**
 * The certificates of one session, each parsed, exported and hashed at most once. Make one
 * per session (`new SessionCerts()`) and pass it to daneVerify, verifyPeer and auditDigests
 * for that session; without one, each call makes its own.
 */
export class SessionCerts {
  /** The work done so far. */
  readonly counters: CertCounters = { parses: 0, spkiExports: 0, keyParses: 0, digests: 0, signatures: 0 };
  readonly #certs = new Map<string, SessionCert>();
  readonly #keys = new Map<string, KeyObject | null>();
  readonly #handshake: ReadonlySet<Uint8Array>;

  /**
   * `handshake`: the certificates the session's TLS handshake received (PeerTls.chain), which
   * OpenSSL has already parsed as certificates: taking their public keys needs no second parse.
   */
  constructor(handshake: readonly Uint8Array[] = []) {
    this.#handshake = new Set(handshake);
  }

  /** Whether `der` is one of the handshake's own certificates (the same bytes object). */
  fromHandshake(der: Uint8Array): boolean {
    for (const sent of this.#handshake) if (sent === der || Buffer.compare(sent, der) === 0) return true;
    return false;
  }

  /** The entry for a DER certificate (the same entry for the same bytes; nothing is parsed yet). */
  cert(der: Uint8Array): SessionCert {
    const bytes = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
    const key = bytes.toString('latin1');
    let entry = this.#certs.get(key);
    if (entry === undefined) {
      entry = new SessionCert(this, Buffer.from(bytes));
      this.#certs.set(key, entry);
    }
    return entry;
  }

  /**
   * The public key in DER SubjectPublicKeyInfo data (an SPKI(1) Full(0) TLSA record's), or
   * null when the data is no public key; parsed once per distinct data.
   */
  publicKey(spki: Buffer): KeyObject | null {
    const key = spki.toString('latin1');
    let k = this.#keys.get(key);
    if (k === undefined) {
      this.counters.keyParses++;
      try {
        k = createPublicKey({ key: spki, format: 'der', type: 'spki' });
      } catch {
        k = null;
      }
      this.#keys.set(key, k);
    }
    return k;
  }
}
