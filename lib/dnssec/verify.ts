/**
 * RRSIG verification (RFC 4034 §3, RFC 4035 §5.3) through node:crypto. Pure: records in, a
 * verdict out; time is a parameter.
 *
 * Algorithms (IANA "DNS Security Algorithm Numbers", RFC 8624 §3.1 for what validators
 * implement): 8 RSA/SHA-256 and 10 RSA/SHA-512 (RFC 5702), 13 ECDSA P-256/SHA-256 and 14 ECDSA
 * P-384/SHA-384 (RFC 6605), 15 Ed25519 and 16 Ed448 (RFC 8080).
 *
 * Everything else is 'unsupported', which the caller reads as insecure, not bogus (RFC 4035
 * §5.2, RFC 6840 §5.2: a zone signed only with algorithms the validator does not implement is
 * treated as unsigned). That includes the SHA-1 algorithms 5 (RSASHA1) and 7
 * (RSASHA1-NSEC3-SHA1): SHA-1 signatures can be forged at chosen-prefix cost (RFC 8624 §3.1
 * marks them NOT RECOMMENDED to validate), and Red Hat's validators (RHEL 9 crypto policy for
 * Unbound and BIND) treat such zones as insecure; so does this one. RSA keys below 1024 bits
 * (RFC 8624 §3.1 note) or above 4096 (RFC 3110 §2) and RSA public exponents above 64 bits (a
 * cost bound) are unsupported as well.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { Budget } from './budget.js';
import { isSubdomain, nameToText, nameWire, sameName, signedLabelCount, suffix, wildcardOf, type Name } from './names.js';
import { DNSKEY_FLAGS, DNSKEY_PROTOCOL, RRTYPE, canonicalRdata, canonicalRdataSet, parseRrsig, typeText, type Dnskey, type Rr, type Rrsig } from './records.js';

export const ALGORITHM = {
  RSASHA1: 5,
  RSASHA1_NSEC3_SHA1: 7,
  RSASHA256: 8,
  RSASHA512: 10,
  ECDSAP256SHA256: 13,
  ECDSAP384SHA384: 14,
  ED25519: 15,
  ED448: 16,
} as const;

interface AlgorithmSpec {
  kind: 'rsa' | 'ec' | 'ed';
  /** node:crypto's digest name; null for EdDSA, which hashes internally. */
  hash: string | null;
  /** EC: the curve's JWK name and coordinate size; Ed: the curve name and key size. */
  curve?: string;
  size?: number;
}

const ALGORITHMS: ReadonlyMap<number, AlgorithmSpec> = new Map<number, AlgorithmSpec>([
  [ALGORITHM.RSASHA256, { kind: 'rsa', hash: 'sha256' }],
  [ALGORITHM.RSASHA512, { kind: 'rsa', hash: 'sha512' }],
  [ALGORITHM.ECDSAP256SHA256, { kind: 'ec', hash: 'sha256', curve: 'P-256', size: 32 }],
  [ALGORITHM.ECDSAP384SHA384, { kind: 'ec', hash: 'sha384', curve: 'P-384', size: 48 }],
  [ALGORITHM.ED25519, { kind: 'ed', hash: null, curve: 'Ed25519', size: 32 }],
  [ALGORITHM.ED448, { kind: 'ed', hash: null, curve: 'Ed448', size: 57 }],
]);

/** Whether signatures of this algorithm are validated (see the top of this file). */
export function algorithmSupported(algorithm: number): boolean {
  return ALGORITHMS.has(algorithm);
}

export const RSA_MIN_BITS = 1024;
export const RSA_MAX_BITS = 4096;
const RSA_MAX_EXPONENT_OCTETS = 8;

/** A DNSKEY's public key, or why it has none: `unsupported` (insecure) or malformed (bogus). */
export type PublicKeyResult = { ok: true; key: KeyObject } | { ok: false; unsupported: boolean; reason: string };

const KEY_CACHE_SIZE = 512;
const keyCache = new Map<string, PublicKeyResult>();

/** The node:crypto public key of a DNSKEY (cached by RDATA). */
export function publicKey(dnskey: Dnskey): PublicKeyResult {
  const id = Buffer.from(dnskey.rdata).toString('base64');
  let result = keyCache.get(id);
  if (result === undefined) {
    result = importKey(dnskey);
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(id, result);
  }
  return result;
}

const b64url = (octets: Uint8Array) => Buffer.from(octets).toString('base64url');

function importKey(dnskey: Dnskey): PublicKeyResult {
  const spec = ALGORITHMS.get(dnskey.algorithm);
  const tag = `DNSKEY ${dnskey.keyTag} (algorithm ${dnskey.algorithm})`;
  if (!spec) return { ok: false, unsupported: true, reason: `${tag}: algorithm not supported` };
  const key = dnskey.publicKey;
  const bad = (why: string): PublicKeyResult => ({ ok: false, unsupported: false, reason: `${tag}: ${why}` });
  try {
    switch (spec.kind) {
      case 'rsa': {
        // RFC 3110 §2: exponent length (1 octet, or 0 then 2 octets), exponent, modulus.
        let pos = 1;
        let expLength = key[0] ?? 0;
        if (expLength === 0) {
          expLength = ((key[1] ?? 0) << 8) | (key[2] ?? 0);
          pos = 3;
        }
        const exponent = key.subarray(pos, pos + expLength);
        const modulus = key.subarray(pos + expLength);
        if (expLength === 0 || exponent.length < expLength || modulus.length === 0) return bad('RSA key shorter than its exponent length says');
        let first = 0;
        while (first < modulus.length && modulus[first] === 0) first++;
        const bits = first === modulus.length ? 0 : (modulus.length - first - 1) * 8 + (32 - Math.clz32(modulus[first]!));
        if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) return { ok: false, unsupported: true, reason: `${tag}: ${bits}-bit RSA modulus` };
        let expFirst = 0;
        while (expFirst < exponent.length && exponent[expFirst] === 0) expFirst++;
        if (exponent.length - expFirst > RSA_MAX_EXPONENT_OCTETS) {
          return { ok: false, unsupported: true, reason: `${tag}: RSA exponent longer than ${RSA_MAX_EXPONENT_OCTETS * 8} bits` };
        }
        return {
          ok: true,
          key: createPublicKey({ key: { kty: 'RSA', n: b64url(modulus.subarray(first)), e: b64url(exponent.subarray(expFirst)) }, format: 'jwk' }),
        };
      }
      case 'ec': {
        // RFC 6605 §4: Q as x | y, each as long as the curve's field.
        const size = spec.size!;
        if (key.length !== 2 * size) return bad(`ECDSA key of ${key.length} octets, ${2 * size} expected`);
        const jwk = { kty: 'EC', crv: spec.curve!, x: b64url(key.subarray(0, size)), y: b64url(key.subarray(size)) };
        return { ok: true, key: createPublicKey({ key: jwk, format: 'jwk' }) };
      }
      case 'ed':
        // RFC 8080 §3: the public key as RFC 8032 encodes it.
        if (key.length !== spec.size) return bad(`${spec.curve} key of ${key.length} octets, ${spec.size} expected`);
        return { ok: true, key: createPublicKey({ key: { kty: 'OKP', crv: spec.curve!, x: b64url(key) }, format: 'jwk' }) };
    }
  } catch (error) {
    return bad(`unusable public key (${(error as Error).message})`);
  }
}

/**
 * The data an RRSIG signs (RFC 4034 §3.1.8.1): the RRSIG RDATA without its signature, the
 * signer's name lowercased, then each RR of the set in canonical order (§6.3, duplicates
 * removed) in canonical form (§6.2): owner lowercased, or for a wildcard expansion `*.` and
 * the rightmost Labels labels of the owner (RFC 4035 §5.3.2); type, class, the original TTL,
 * RDLENGTH and the canonical RDATA. Throws when the Labels field exceeds the owner's labels or
 * an RDATA does not fit its type.
 */
export function signedData(rrset: readonly Rr[], sig: Rrsig): Buffer {
  const first = rrset[0]!;
  const count = signedLabelCount(first.owner);
  if (sig.labels > count) throw new Error(`RRSIG Labels field ${sig.labels} exceeds the ${count} labels of ${nameToText(first.owner)}`);
  const owner = nameWire(sig.labels < count ? wildcardOf(suffix(first.owner, sig.labels)) : first.owner);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(first.type, 0);
  fixed.writeUInt16BE(first.class, 2);
  fixed.writeUInt32BE(sig.originalTtl, 4);
  const parts: Uint8Array[] = [canonicalRdata(RRTYPE.RRSIG, sig.signedFields)];
  for (const rdata of canonicalRdataSet(rrset)) {
    fixed.writeUInt16BE(rdata.length, 8);
    parts.push(owner, Buffer.from(fixed), rdata);
  }
  return Buffer.concat(parts);
}

/** RFC 1982 serial arithmetic on 32-bit values: a - b as a signed 32-bit distance. */
export function serialDistance(a: number, b: number): number {
  return (a - b) | 0;
}

/** The default clock-skew allowance, seconds, on both ends of a validity window. */
export const DEFAULT_SKEW = 300;

/**
 * RFC 4034 §3.1.5, RFC 4035 §5.3.1: an RRSIG is usable from its inception to its expiration,
 * compared as RFC 1982 serial numbers to `now` modulo 2^32, each end widened by `skew`
 * seconds. Returns why not, or undefined when it is valid now.
 */
export function windowProblem(sig: Rrsig, now: number, skew = DEFAULT_SKEW): string | undefined {
  const now32 = Math.floor(now) >>> 0;
  if (serialDistance(sig.expiration, sig.inception) <= 0) return 'its expiration is not after its inception';
  if (serialDistance(now32, sig.inception) < -skew) return `not valid until ${sig.inception} (now ${now32})`;
  if (serialDistance(sig.expiration, now32) < -skew) return `expired at ${sig.expiration} (now ${now32})`;
  return undefined;
}

export interface VerifyOptions {
  /** Seconds since 1970. */
  now: number;
  /** Clock-skew allowance, seconds (default DEFAULT_SKEW). */
  skew?: number;
  budget: Budget;
}

export type RrsetVerdict =
  | {
      status: 'secure';
      keyTag: number;
      algorithm: number;
      signer: Name;
      /** Seconds the RRset may be cached: RFC 4035 §5.3.3 (original TTL, TTLs, and the signature's remaining validity). */
      ttl: number;
      /** For an answer synthesized from a wildcard (RFC 4035 §5.3.4), the wildcard's name: the caller must prove the query name does not exist. */
      wildcard?: Name;
    }
  /**
   * No RRSIG over the set uses an algorithm (or key) this validator supports. Insecure only
   * for a zone whose own trust is unsupported: in a zone whose DNSKEY RRset validated (through
   * a DS of a supported algorithm), every RRset carries an RRSIG of that algorithm (RFC 4035
   * §2.2), so there this verdict means bogus.
   */
  | { status: 'unsupported'; reason: string }
  | { status: 'bogus'; reason: string }
  /** A Budget cap was reached (KeyTrap). */
  | { status: 'limit'; reason: string };

/**
 * Verify an RRset against its RRSIGs with the DNSKEYs of the zone that signed it (RFC 4035
 * §5.3): secure when one RRSIG passes every check of §5.3.1 and its signature verifies with a
 * key of `keys`. `keys` are one zone's DNSKEYs, all owned by the zone apex (for a DNSKEY RRset
 * being validated from a DS, only the DS-matched keys). `rrsigs` may hold RRSIGs over other
 * RRsets; only those owned by the RRset's owner and covering its type and class are used.
 */
export function verifyRrset(rrset: readonly Rr[], rrsigs: readonly Rr[], keys: readonly Dnskey[], options: VerifyOptions): RrsetVerdict {
  const first = rrset[0];
  if (!first) return { status: 'bogus', reason: 'an empty RRset' };
  const what = `${nameToText(first.owner)} ${typeText(first.type)}`;
  if (rrset.some((rr) => rr.type !== first.type || rr.class !== first.class || !sameName(rr.owner, first.owner))) {
    return { status: 'bogus', reason: `${what}: records of other owners, types or classes in one RRset` };
  }
  const sigs: Rrsig[] = [];
  const problems: string[] = [];
  for (const rr of rrsigs) {
    if (rr.type !== RRTYPE.RRSIG || rr.class !== first.class || !sameName(rr.owner, first.owner)) continue;
    try {
      const sig = parseRrsig(rr);
      if (sig.typeCovered === first.type) sigs.push(sig);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (sigs.length === 0) return { status: 'bogus', reason: `${what}: ${problems[0] ?? 'no RRSIG covers it'}` };
  let unsupported = 0;
  for (const sig of sigs) {
    const outcome = checkSignature(rrset, sig, keys, options);
    if (outcome === true) {
      const remaining = Math.max(0, serialDistance(sig.expiration, Math.floor(options.now) >>> 0));
      const count = signedLabelCount(first.owner);
      return {
        status: 'secure',
        keyTag: sig.keyTag,
        algorithm: sig.algorithm,
        signer: sig.signer,
        ttl: Math.min(sig.originalTtl, remaining, ...rrset.map((rr) => rr.ttl)),
        ...(sig.labels < count ? { wildcard: wildcardOf(suffix(first.owner, sig.labels)) } : {}),
      };
    }
    if (outcome.limit) return { status: 'limit', reason: `${what}: ${outcome.reason}` };
    if (outcome.unsupported) unsupported++;
    problems.push(`RRSIG ${sig.keyTag}/${sig.algorithm}: ${outcome.reason}`);
  }
  if (unsupported === sigs.length) return { status: 'unsupported', reason: `${what}: ${problems.join('; ')}` };
  return { status: 'bogus', reason: `${what}: ${problems.join('; ')}` };
}

type Failure = { reason: string; unsupported?: boolean; limit?: boolean };

/** One RRSIG: RFC 4035 §5.3.1's checks, then the signature with each candidate key. */
function checkSignature(rrset: readonly Rr[], sig: Rrsig, keys: readonly Dnskey[], options: VerifyOptions): true | Failure {
  const owner = rrset[0]!.owner;
  if (!algorithmSupported(sig.algorithm)) return { reason: `algorithm ${sig.algorithm} not supported`, unsupported: true };
  const zone = keys[0]?.owner;
  if (zone === undefined) return { reason: 'no DNSKEY to verify it with' };
  // §5.3.1: the signer is the zone that holds the RRset, so its apex is the owner or above it.
  if (!sameName(sig.signer, zone)) return { reason: `signer ${nameToText(sig.signer)} is not the zone ${nameToText(zone)}` };
  if (!isSubdomain(owner, sig.signer)) return { reason: `signer ${nameToText(sig.signer)} is not ${nameToText(owner)} or above it` };
  // A DS RRset lives in the parent (RFC 4035 §2.4): one signed by the zone at its own owner is the child's.
  if (rrset[0]!.type === RRTYPE.DS && sameName(owner, sig.signer)) return { reason: 'a DS RRset signed by the zone below the cut' };
  // §5.3.1: the Labels field is at most the owner's labels (RFC 4034 §3.1.3).
  if (sig.labels > signedLabelCount(owner)) return { reason: `Labels field ${sig.labels} exceeds the owner's ${signedLabelCount(owner)} labels` };
  const window = windowProblem(sig, options.now, options.skew);
  if (window !== undefined) return { reason: window };
  // §5.3.1: a DNSKEY of the signer's apex with the RRSIG's algorithm and key tag, the Zone Key
  // flag set (RFC 4034 §2.1.1), protocol 3 (§2.1.2), and never one with REVOKE set (RFC 5011 §2.1).
  const candidates = keys.filter(
    (key) =>
      key.keyTag === sig.keyTag &&
      key.algorithm === sig.algorithm &&
      sameName(key.owner, sig.signer) &&
      (key.flags & DNSKEY_FLAGS.ZONE) !== 0 &&
      (key.flags & DNSKEY_FLAGS.REVOKE) === 0 &&
      key.protocol === DNSKEY_PROTOCOL,
  );
  if (candidates.length === 0) return { reason: `no usable DNSKEY with tag ${sig.keyTag} and algorithm ${sig.algorithm}` };
  const cap = options.budget.limits.keysPerTag;
  if (candidates.length > cap) return { reason: `${candidates.length} DNSKEYs share tag ${sig.keyTag}, more than the ${cap} tried`, limit: true };
  let data: Buffer;
  try {
    data = signedData(rrset, sig);
  } catch (error) {
    return { reason: (error as Error).message };
  }
  const spec = ALGORITHMS.get(sig.algorithm)!;
  const reasons: string[] = [];
  let unsupported = 0;
  for (const candidate of candidates) {
    const imported = publicKey(candidate);
    if (!imported.ok) {
      if (imported.unsupported) unsupported++;
      reasons.push(imported.reason);
      continue;
    }
    if (!options.budget.signature()) return { reason: `more than ${options.budget.limits.signatures} signature verifications`, limit: true };
    let good = false;
    try {
      const key = spec.kind === 'ec' ? { key: imported.key, dsaEncoding: 'ieee-p1363' as const } : imported.key;
      good = cryptoVerify(spec.hash, data, key, sig.signature);
    } catch {
      good = false;
    }
    if (good) return true;
    reasons.push(`signature does not verify with DNSKEY ${candidate.keyTag}`);
  }
  return { reason: reasons.join('; '), ...(unsupported === candidates.length ? { unsupported: true } : {}) };
}
