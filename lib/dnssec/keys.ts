/**
 * From a DS RRset (or trust anchors) to a zone's trusted DNSKEYs (RFC 4035 §5.2): DS digests
 * (RFC 4034 §5.1.4, RFC 4509, RFC 6605 §2) and the validation of a DNSKEY RRset. Pure.
 *
 * Digest types: 2 (SHA-256) and 4 (SHA-384) are checked. 1 (SHA-1) is treated as unsupported,
 * like the SHA-1 signing algorithms 5 and 7 (lib/dnssec/verify.ts): a DS set that has nothing
 * but SHA-1 digests leaves the zone insecure, and a SHA-1 DS beside a SHA-256 one is ignored,
 * which is also RFC 4509 §3's downgrade rule. 3 (GOST R 34.11-94) and unknown types are
 * unsupported too (RFC 4035 §5.2: insecure, not bogus).
 */
import { createHash } from 'node:crypto';
import { nameToText, nameWire, sameName, type Name } from './names.js';
import { DNSKEY_FLAGS, DNSKEY_PROTOCOL, RRTYPE, parseDnskey, type Dnskey, type Ds, type Rr } from './records.js';
import { algorithmSupported, publicKey, verifyRrset, type VerifyOptions } from './verify.js';

export const DIGEST = { SHA1: 1, SHA256: 2, GOST: 3, SHA384: 4 } as const;

const DIGESTS: ReadonlyMap<number, string> = new Map([
  [DIGEST.SHA256, 'sha256'],
  [DIGEST.SHA384, 'sha384'],
]);

export function digestSupported(digestType: number): boolean {
  return DIGESTS.has(digestType);
}

/** RFC 4034 §5.1.4: digest(canonical owner name | DNSKEY RDATA); undefined for an unsupported digest type. */
export function dsDigest(owner: Name, dnskeyRdata: Uint8Array, digestType: number): Buffer | undefined {
  const hash = DIGESTS.get(digestType);
  if (hash === undefined) return undefined;
  return createHash(hash).update(nameWire(owner)).update(dnskeyRdata).digest();
}

/** Whether a DS names this DNSKEY: owner, key tag, algorithm and a supported digest that matches. */
export function dsMatches(ds: Ds, key: Dnskey): boolean {
  if (ds.keyTag !== key.keyTag || ds.algorithm !== key.algorithm || !sameName(ds.owner, key.owner)) return false;
  const digest = dsDigest(key.owner, key.rdata, ds.digestType);
  return digest !== undefined && digest.equals(ds.digest);
}

/** What makes a zone's DNSKEYs trusted: the parent's validated DS RRset, or configured trust anchors (DS or DNSKEY). */
export interface TrustPoint {
  ds?: readonly Ds[];
  keys?: readonly Dnskey[];
}

export type KeysetVerdict =
  | {
      status: 'secure';
      /** Every DNSKEY of the RRset: the keys the zone's other RRsets are verified with. */
      keys: Dnskey[];
      /** The key that signed the DNSKEY RRset. */
      keyTag: number;
      algorithm: number;
      /** Seconds the validated set may be cached (RFC 4035 §5.3.3). */
      ttl: number;
    }
  /** Every DS or anchor uses an algorithm, digest or key this validator does not support (RFC 4035 §5.2). */
  | { status: 'insecure'; reason: string }
  | { status: 'bogus'; reason: string }
  | { status: 'limit'; reason: string };

/** A DNSKEY that may sign: Zone Key flag, protocol 3, not revoked (RFC 4034 §2.1, RFC 5011 §2.1). */
function usable(key: Dnskey): boolean {
  return (key.flags & DNSKEY_FLAGS.ZONE) !== 0 && (key.flags & DNSKEY_FLAGS.REVOKE) === 0 && key.protocol === DNSKEY_PROTOCOL;
}

/**
 * RFC 4035 §5.2: a DNSKEY RRset is secure when a key of it that a DS (or an anchor) names
 * signs it; the SEP flag is not required (RFC 4034 §2.1.1: it is a hint only). `dnskeys` is
 * the zone's DNSKEY RRset, `rrsigs` the RRSIGs that came with it.
 */
export function validateDnskeys(dnskeys: readonly Rr[], rrsigs: readonly Rr[], trust: TrustPoint, options: VerifyOptions): KeysetVerdict {
  const zone = dnskeys[0]?.owner;
  if (zone === undefined) return { status: 'bogus', reason: 'no DNSKEY RRset' };
  const where = `${nameToText(zone)} DNSKEY`;
  let keys: Dnskey[];
  try {
    keys = dnskeys.map((rr) => parseDnskey(rr));
  } catch (error) {
    return { status: 'bogus', reason: `${where}: ${(error as Error).message}` };
  }
  if (dnskeys.some((rr) => rr.type !== RRTYPE.DNSKEY || !sameName(rr.owner, zone)))
    return { status: 'bogus', reason: `${where}: records of other owners in the RRset` };
  const allDs = (trust.ds ?? []).filter((ds) => sameName(ds.owner, zone));
  const allAnchors = (trust.keys ?? []).filter((key) => sameName(key.owner, zone));
  if (allDs.length + allAnchors.length === 0) return { status: 'bogus', reason: `${where}: no DS or trust anchor for the zone` };
  const ds = allDs.filter((entry) => algorithmSupported(entry.algorithm) && digestSupported(entry.digestType));
  const anchors = allAnchors.filter((key) => algorithmSupported(key.algorithm) && usable(key));
  if (ds.length + anchors.length === 0) {
    const seen = [
      ...allDs.map((entry) => `DS ${entry.keyTag} algorithm ${entry.algorithm} digest ${entry.digestType}`),
      ...allAnchors.map((key) => `DNSKEY ${key.keyTag} algorithm ${key.algorithm}`),
    ];
    return { status: 'insecure', reason: `${where}: no supported algorithm and digest type among ${seen.join(', ')}` };
  }
  const cap = options.budget.limits.keysPerTag;
  const trusted = new Set<Dnskey>();
  for (const entry of ds) {
    const candidates = keys.filter((key) => key.keyTag === entry.keyTag && key.algorithm === entry.algorithm && usable(key));
    if (candidates.length > cap)
      return { status: 'limit', reason: `${where}: ${candidates.length} DNSKEYs share tag ${entry.keyTag}, more than the ${cap} tried` };
    for (const key of candidates) if (dsMatches(entry, key)) trusted.add(key);
  }
  for (const anchor of anchors) {
    for (const key of keys) if (Buffer.from(key.rdata).equals(Buffer.from(anchor.rdata))) trusted.add(key);
  }
  if (trusted.size === 0) {
    const named = [...ds.map((entry) => `DS ${entry.keyTag}/${entry.algorithm}`), ...anchors.map((key) => `anchor ${key.keyTag}/${key.algorithm}`)];
    return { status: 'bogus', reason: `${where}: no DNSKEY matches ${named.join(', ')}` };
  }
  // Keys the DS names but that cannot be used (an RSA key below 1024 bits) leave the zone
  // insecure only when no other named key can be; the RRSIGs' own algorithms never do: an
  // RRSIG claiming an unsupported algorithm over a set a supported DS vouches for is bogus.
  const signing = [...trusted].filter((key) => {
    const imported = publicKey(key);
    return imported.ok || !imported.unsupported;
  });
  if (signing.length === 0) {
    return { status: 'insecure', reason: `${where}: ${[...trusted].map((key) => (publicKey(key) as { reason: string }).reason).join('; ')}` };
  }
  const verdict = verifyRrset(dnskeys, rrsigs, signing, options);
  switch (verdict.status) {
    case 'secure':
      return { status: 'secure', keys, keyTag: verdict.keyTag, algorithm: verdict.algorithm, ttl: verdict.ttl };
    case 'unsupported':
      return { status: 'bogus', reason: verdict.reason };
    case 'bogus':
    case 'limit':
      return verdict;
  }
}
