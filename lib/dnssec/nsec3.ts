/**
 * Authenticated denial of existence with NSEC3 (RFC 5155 §8, RFC 9276, RFC 6840 §4.1, §4.3).
 * Pure: the caller has verified each NSEC3 RRset's RRSIG with the keys of `zone`
 * (verifyRrset) and passes the records; these functions say what they prove.
 *
 * Which records count (RFC 5155 §8.1, §8.2):
 * - NSEC3s owned by `<base32hex hash>.<zone>`; records with flags other than 0 or 1 are
 *   ignored (§8.2). Records whose parameters (salt, iterations) differ from the first usable
 *   one are ignored, so a mixed set proves only what one chain proves (§8.2 permits bogus).
 * - Unknown hash algorithms: §8.1 has validators ignore such records, which leaves nothing to
 *   prove with; like an unknown signing algorithm (RFC 4035 §5.2) the answer is then insecure,
 *   not bogus (issue 10). Only the zone, which signed them, can publish them.
 * - More than 150 iterations: insecure (RFC 9276 §3.2 lets validators treat such answers as
 *   insecure; 150 is the limit Unbound, BIND and Knot settled on). No hash is computed then.
 *
 * Work: each owner-name hash costs iterations + 1 SHA-1 rounds and counts against the
 * Budget's nsec3Hashes (CVE-2023-50868); hashes are computed once per call. Past the cap the
 * verdict is 'limit'.
 *
 * Opt-out (RFC 5155 §6, §9.2): an NSEC3 with the opt-out flag covering the next closer name
 * does not prove that name absent, only that any delegation there is unsigned: such proofs
 * are 'insecure'.
 */
import { createHash } from 'node:crypto';
import type { Budget } from './budget.js';
import { isSubdomain, nameToText, nameWire, suffix, wildcardOf, type Name } from './names.js';
import type { DenialVerdict } from './nsec.js';
import { NSEC3_OPT_OUT, RRTYPE, parseNsec3, typeText, type Nsec3, type Rr } from './records.js';

export const NSEC3_SHA1 = 1;
/** RFC 9276 §3.2: NSEC3 chains with more iterations are insecure. */
export const NSEC3_MAX_ITERATIONS = 150;

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';

/** RFC 4648 §7 base32hex, lowercase, without padding (RFC 5155 §3.3). */
export function base32hex(octets: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const octet of octets) {
    value = (value << 8) | octet;
    bits += 8;
    while (bits >= 5) {
      out += BASE32HEX[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32HEX[(value << (5 - bits)) & 31];
  return out;
}

/** The octets of an unpadded base32hex label (either case); undefined when it is not one. */
export function fromBase32hex(label: Uint8Array): Buffer | undefined {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of label) {
    const c = char >= 0x41 && char <= 0x5a ? char + 0x20 : char;
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x76 ? c - 0x61 + 10 : -1;
    if (digit < 0) return undefined;
    value = ((value << 5) | digit) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  // Leftover bits must be zero padding, fewer than one octet.
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return undefined;
  return Buffer.from(out);
}

/** RFC 5155 §5: IH(salt, x, 0) = H(x | salt), IH(salt, x, k) = H(IH(salt, x, k-1) | salt), x the canonical wire name. */
export function nsec3Hash(name: Name, salt: Uint8Array, iterations: number): Buffer {
  let digest = createHash('sha1').update(nameWire(name)).update(salt).digest();
  for (let i = 0; i < iterations; i++) digest = createHash('sha1').update(digest).update(salt).digest();
  return digest;
}

interface Entry {
  record: Nsec3;
  hash: Buffer;
  next: Buffer;
}

class LimitReached extends Error {}

const optOut = (entry: Entry) => (entry.record.flags & NSEC3_OPT_OUT) !== 0;
const show = (entry: Entry) => `NSEC3 ${nameToText(entry.record.owner)}${optOut(entry) ? ' (opt-out)' : ''}`;

class Chain {
  private readonly hashes = new Map<string, Buffer>();

  constructor(
    readonly zone: Name,
    readonly entries: Entry[],
    private readonly budget: Budget,
  ) {}

  private hash(name: Name): Buffer {
    const key = nameWire(name).toString('hex');
    let hash = this.hashes.get(key);
    if (!hash) {
      if (!this.budget.nsec3Hash()) throw new LimitReached(`more than ${this.budget.limits.nsec3Hashes} NSEC3 hashes`);
      const first = this.entries[0]!.record;
      hash = nsec3Hash(name, first.salt, first.iterations);
      this.hashes.set(key, hash);
    }
    return hash;
  }

  /** The NSEC3 whose owner is the hash of `name` (RFC 5155 §1.3 "matches"). */
  matching(name: Name): Entry | undefined {
    const hash = this.hash(name);
    return this.entries.find((entry) => entry.hash.equals(hash));
  }

  /** The NSEC3 whose span holds the hash of `name` (RFC 5155 §1.3 "covers"; the last one wraps). */
  covering(name: Name): Entry | undefined {
    const hash = this.hash(name);
    return this.entries.find((entry) => {
      const afterOwner = Buffer.compare(entry.hash, hash) < 0;
      const beforeNext = Buffer.compare(hash, entry.next) < 0;
      return Buffer.compare(entry.hash, entry.next) < 0 ? afterOwner && beforeNext : afterOwner || beforeNext;
    });
  }

  /**
   * RFC 5155 §8.3: the longest ancestor of `qname` (or qname itself) an NSEC3 matches, and the
   * NSEC3 covering the next closer name (one label longer, towards qname). The closest
   * encloser's NSEC3 must be of this zone: no DNAME, NS only with SOA; an NSEC3 of an
   * unsigned delegation there shows that qname is beneath it ('insecure').
   */
  closestEncloser(qname: Name): { ce: Name; ceEntry: Entry; nextCloser?: Name; ncEntry?: Entry } | DenialVerdict {
    for (let depth = qname.length; depth >= this.zone.length; depth--) {
      const candidate = suffix(qname, depth);
      const ceEntry = this.matching(candidate);
      if (!ceEntry) continue;
      if (depth === qname.length) return { ce: candidate, ceEntry };
      const types = ceEntry.record.types;
      if (types.has(RRTYPE.DNAME)) return { status: 'bogus', reason: `${show(ceEntry)}: the closest encloser ${nameToText(candidate)} is a DNAME` };
      if (types.has(RRTYPE.NS) && !types.has(RRTYPE.SOA)) {
        if (types.has(RRTYPE.DS)) return { status: 'bogus', reason: `${show(ceEntry)}: the closest encloser ${nameToText(candidate)} is a signed delegation` };
        return { status: 'insecure', reason: `${show(ceEntry)}: ${nameToText(qname)} is beneath the unsigned delegation ${nameToText(candidate)}` };
      }
      const nextCloser = suffix(qname, depth + 1);
      const ncEntry = this.covering(nextCloser);
      if (!ncEntry) return { status: 'bogus', reason: `no NSEC3 covers the next closer name ${nameToText(nextCloser)}` };
      return { ce: candidate, ceEntry, nextCloser, ncEntry };
    }
    return { status: 'bogus', reason: `no NSEC3 matches ${nameToText(qname)} or an ancestor of it in ${nameToText(this.zone)}` };
  }
}

/** The usable NSEC3s of `zone` (rules at the top of this file), or the verdict when there are none. */
function chainOf(records: readonly Rr[], zone: Name, budget: Budget): Chain | DenialVerdict {
  const entries: Entry[] = [];
  let unknownHash = 0;
  for (const rr of records) {
    if (rr.type !== RRTYPE.NSEC3) continue;
    const record = parseNsec3(rr);
    if (record.owner.length !== zone.length + 1 || !isSubdomain(record.owner, zone)) continue;
    if ((record.flags & ~NSEC3_OPT_OUT) !== 0) continue;
    if (record.hashAlgorithm !== NSEC3_SHA1) {
      unknownHash++;
      continue;
    }
    const hash = fromBase32hex(record.owner[0]!);
    if (!hash || hash.length !== 20 || record.nextHashed.length !== 20) continue;
    entries.push({ record, hash, next: Buffer.from(record.nextHashed) });
  }
  if (entries.length === 0) {
    if (unknownHash > 0) return { status: 'insecure', reason: `NSEC3 of ${nameToText(zone)} with an unknown hash algorithm only (RFC 5155 §8.1)` };
    return { status: 'bogus', reason: `no NSEC3 of ${nameToText(zone)}` };
  }
  const first = entries[0]!.record;
  if (first.iterations > NSEC3_MAX_ITERATIONS) {
    return {
      status: 'insecure',
      reason: `NSEC3 of ${nameToText(zone)} with ${first.iterations} iterations, more than ${NSEC3_MAX_ITERATIONS} (RFC 9276 §3.2)`,
    };
  }
  const same = entries.filter((entry) => entry.record.iterations === first.iterations && Buffer.from(entry.record.salt).equals(Buffer.from(first.salt)));
  return new Chain(zone, same, budget);
}

function run(records: readonly Rr[], zone: Name, qname: Name, budget: Budget, prove: (chain: Chain) => DenialVerdict): DenialVerdict {
  if (!isSubdomain(qname, zone)) return { status: 'bogus', reason: `${nameToText(qname)} is not in the zone ${nameToText(zone)}` };
  try {
    const chain = chainOf(records, zone, budget);
    return chain instanceof Chain ? prove(chain) : chain;
  } catch (error) {
    if (error instanceof LimitReached) return { status: 'limit', reason: error.message };
    return { status: 'bogus', reason: (error as Error).message };
  }
}

/** NXDOMAIN (RFC 5155 §8.4): a closest encloser proof, and an NSEC3 covering the wildcard at the closest encloser. */
export function nsec3ProveNxdomain(qname: Name, records: readonly Rr[], zone: Name, budget: Budget): DenialVerdict {
  return run(records, zone, qname, budget, (chain) => {
    const proof = chain.closestEncloser(qname);
    if ('status' in proof) return proof;
    if (!proof.ncEntry) return { status: 'bogus', reason: `${show(proof.ceEntry)} shows that ${nameToText(qname)} exists` };
    const wildcard = wildcardOf(proof.ce);
    if (chain.matching(wildcard)) return { status: 'bogus', reason: `the wildcard ${nameToText(wildcard)} exists` };
    const wcEntry = chain.covering(wildcard);
    if (!wcEntry) return { status: 'bogus', reason: `no NSEC3 covers the wildcard ${nameToText(wildcard)}` };
    const text = `closest encloser ${nameToText(proof.ce)} (${show(proof.ceEntry)}), next closer ${nameToText(proof.nextCloser!)} covered by ${show(proof.ncEntry)}, wildcard covered by ${show(wcEntry)}`;
    if (optOut(proof.ncEntry)) return { status: 'insecure', reason: `opt-out span: ${text} (RFC 5155 §9.2)` };
    return { status: 'secure', proof: text };
  });
}

/**
 * NODATA (RFC 5155 §8.5-§8.7): the NSEC3 matching `qname` lacks `qtype` and CNAME (RFC 6840
 * §4.3); or, for qtype DS, the next closer name is in an opt-out span (§8.6: 'insecure', the
 * delegation is unsigned); or `qname` does not exist and the NSEC3 matching the wildcard at
 * its closest encloser lacks the types (§8.7). As with NSEC, a proof of no DS at a delegation
 * is 'secure': the child is proven unsigned.
 */
export function nsec3ProveNodata(qname: Name, qtype: number, records: readonly Rr[], zone: Name, budget: Budget): DenialVerdict {
  return run(records, zone, qname, budget, (chain) => {
    const q = `${nameToText(qname)} ${typeText(qtype)}`;
    const lacks = (entry: Entry): string | undefined => {
      if (entry.record.types.has(qtype)) return `${show(entry)} has the type ${typeText(qtype)}`;
      if (entry.record.types.has(RRTYPE.CNAME)) return `${show(entry)} has a CNAME (RFC 6840 §4.3)`;
      return undefined;
    };
    const exact = chain.matching(qname);
    if (exact) {
      const problem = lacks(exact);
      if (problem) return { status: 'bogus', reason: problem };
      const types = exact.record.types;
      if (qtype === RRTYPE.DS) {
        if (types.has(RRTYPE.SOA) && qname.length > 0) return { status: 'bogus', reason: `${show(exact)} is the child's apex NSEC3, which cannot deny a DS` };
      } else if (types.has(RRTYPE.NS) && !types.has(RRTYPE.SOA)) {
        // The parent side of a delegation speaks only for the DS (RFC 6840 §4.1).
        if (types.has(RRTYPE.DS)) return { status: 'bogus', reason: `${show(exact)} is a signed delegation: the child answers for ${q}` };
        return { status: 'insecure', reason: `${show(exact)}: ${nameToText(qname)} is an unsigned delegation` };
      }
      return { status: 'secure', proof: `${show(exact)} matches ${nameToText(qname)} and lacks ${typeText(qtype)} and CNAME` };
    }
    const proof = chain.closestEncloser(qname);
    if ('status' in proof) {
      // An unsigned delegation above qname: its data is insecure. For a DS query the DS itself
      // would be below that cut too, so the same holds.
      return proof;
    }
    const ncEntry = proof.ncEntry!;
    const wildcard = chain.matching(wildcardOf(proof.ce));
    if (wildcard) {
      const problem = lacks(wildcard);
      if (problem) return { status: 'bogus', reason: problem };
      const text = `closest encloser ${nameToText(proof.ce)}, next closer covered by ${show(ncEntry)}, ${show(wildcard)} matches the wildcard and lacks ${typeText(qtype)} and CNAME`;
      if (optOut(ncEntry)) return { status: 'insecure', reason: `opt-out span: ${text}` };
      return { status: 'secure', proof: text };
    }
    if (optOut(ncEntry)) {
      return {
        status: 'insecure',
        reason: `${show(ncEntry)} covers ${nameToText(proof.nextCloser!)}: an opt-out span, so ${q} may be an unsigned delegation (RFC 5155 §8.6, §9.2)`,
      };
    }
    return { status: 'bogus', reason: `no NSEC3 matches ${nameToText(qname)} and no wildcard at ${nameToText(proof.ce)} answers` };
  });
}

/**
 * A positive answer synthesized from `wildcard` (RrsetVerdict.wildcard; RFC 5155 §8.8): an
 * NSEC3 covers the next closer name, the child of the wildcard's parent towards `qname`.
 */
export function nsec3ProveWildcard(qname: Name, wildcard: Name, records: readonly Rr[], zone: Name, budget: Budget): DenialVerdict {
  return run(records, zone, qname, budget, (chain) => {
    const source = wildcard.slice(1);
    if (qname.length <= source.length || !isSubdomain(qname, source))
      return { status: 'bogus', reason: `${nameToText(qname)} is not below ${nameToText(source)}` };
    const nextCloser = suffix(qname, source.length + 1);
    const cover = chain.covering(nextCloser);
    if (!cover) return { status: 'bogus', reason: `no NSEC3 covers the next closer name ${nameToText(nextCloser)}` };
    const text = `${show(cover)} covers the next closer name ${nameToText(nextCloser)}`;
    if (optOut(cover)) return { status: 'insecure', reason: `opt-out span: ${text}` };
    return { status: 'secure', proof: text };
  });
}
