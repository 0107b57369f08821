/**
 * Authenticated denial of existence with NSEC (RFC 4035 §3.1.3, §5.4; RFC 6840 §4.1, §4.3).
 * Pure: the caller has verified each NSEC RRset's RRSIG with the keys of `zone` (verifyRrset)
 * and passes the records; these functions say what the records prove.
 *
 * The rules every proof here applies:
 * - An NSEC covers a name that sorts strictly between its owner and its next name in canonical
 *   order (RFC 4034 §6.1); the zone's last NSEC points back to the apex and covers every name
 *   after its owner (RFC 4034 §4.1.1).
 * - RFC 6840 §4.1: an NSEC from the parent side of a delegation (NS set, SOA clear) or at a
 *   DNAME proves nothing about names below its owner, nor about its owner's other types than
 *   DS: the names below belong to another zone (or are redirected). Such an NSEC can prove
 *   only that the delegation has no DS, i.e. that the child is unsigned.
 * - RFC 6840 §4.3: a NODATA proof checks the CNAME bit beside the query type.
 * - The closest encloser of a name an NSEC covers is the longer of the name's common
 *   ancestors with the NSEC's owner and next name; its wildcard must be proven absent too
 *   (RFC 4035 §3.1.3.2, §5.4).
 */
import { commonAncestor, compareNames, isProperSubdomain, isSubdomain, nameToText, sameName, wildcardOf, type Name } from './names.js';
import { RRTYPE, parseNsec, typeText, type Nsec, type Rr } from './records.js';

/** What denial records prove. 'insecure': they prove a name is beneath an unsigned delegation, or (NSEC3) an opt-out span or parameters this validator does not take. */
export type DenialVerdict =
  { status: 'secure'; proof: string } | { status: 'insecure'; reason: string } | { status: 'bogus'; reason: string } | { status: 'limit'; reason: string };

/** RFC 4034 §4.1.1: whether `name` sorts strictly between the NSEC's owner and next name (the last NSEC wraps to the apex). */
export function nsecCovers(nsec: Nsec, name: Name): boolean {
  const afterOwner = compareNames(nsec.owner, name) < 0;
  const beforeNext = compareNames(name, nsec.next) < 0;
  return compareNames(nsec.owner, nsec.next) < 0 ? afterOwner && beforeNext : afterOwner || beforeNext;
}

/** RFC 6840 §4.1: the owner is a delegation seen from the parent (NS without SOA) or a DNAME. */
function isCut(nsec: Nsec): boolean {
  return (nsec.types.has(RRTYPE.NS) && !nsec.types.has(RRTYPE.SOA)) || nsec.types.has(RRTYPE.DNAME);
}

const show = (nsec: Nsec) => `NSEC ${nameToText(nsec.owner)} -> ${nameToText(nsec.next)}`;

class Nsecs {
  readonly records: Nsec[] = [];

  constructor(
    records: readonly Rr[],
    readonly zone: Name,
  ) {
    for (const rr of records) {
      if (rr.type !== RRTYPE.NSEC) continue;
      const nsec = parseNsec(rr);
      // Only the zone's own NSECs speak for names in it.
      if (isSubdomain(nsec.owner, zone)) this.records.push(nsec);
    }
  }

  matching(name: Name): Nsec | undefined {
    return this.records.find((nsec) => sameName(nsec.owner, name));
  }

  /** An NSEC that covers `name` and may speak for it (not a cut above it, RFC 6840 §4.1). */
  covering(name: Name): Nsec | undefined {
    return this.records.find((nsec) => nsecCovers(nsec, name) && !(isCut(nsec) && isProperSubdomain(name, nsec.owner)));
  }

  /** RFC 4035 §5.4: the closest encloser as the covering NSEC shows it. */
  closestEncloser(name: Name, cover: Nsec): Name {
    const byOwner = commonAncestor(name, cover.owner);
    const byNext = commonAncestor(name, cover.next);
    const ce = byOwner.length >= byNext.length ? byOwner : byNext;
    return ce.length >= this.zone.length ? ce : this.zone;
  }

  /** The wildcard at the closest encloser does not exist: an NSEC covers it (RFC 4035 §3.1.3.2). */
  noWildcard(ce: Name): { ok: true; nsec: Nsec } | { ok: false; reason: string } {
    const wildcard = wildcardOf(ce);
    if (this.matching(wildcard)) return { ok: false, reason: `the wildcard ${nameToText(wildcard)} exists` };
    const nsec = this.covering(wildcard);
    return nsec ? { ok: true, nsec } : { ok: false, reason: `no NSEC proves that ${nameToText(wildcard)} does not exist` };
  }
}

function withRecords(records: readonly Rr[], zone: Name, qname: Name, prove: (nsecs: Nsecs) => DenialVerdict): DenialVerdict {
  if (!isSubdomain(qname, zone)) return { status: 'bogus', reason: `${nameToText(qname)} is not in the zone ${nameToText(zone)}` };
  let nsecs: Nsecs;
  try {
    nsecs = new Nsecs(records, zone);
  } catch (error) {
    return { status: 'bogus', reason: (error as Error).message };
  }
  if (nsecs.records.length === 0) return { status: 'bogus', reason: `no NSEC of ${nameToText(zone)}` };
  return prove(nsecs);
}

/**
 * NXDOMAIN (RFC 4035 §3.1.3.2, §5.4): an NSEC covers `qname` and its next name is not below
 * `qname` (else `qname` is an empty non-terminal), and an NSEC covers the wildcard at the
 * closest encloser.
 */
export function nsecProveNxdomain(qname: Name, records: readonly Rr[], zone: Name): DenialVerdict {
  return withRecords(records, zone, qname, (nsecs) => {
    const q = nameToText(qname);
    if (nsecs.matching(qname)) return { status: 'bogus', reason: `an NSEC shows that ${q} exists` };
    const cover = nsecs.covering(qname);
    if (!cover) return { status: 'bogus', reason: `no NSEC covers ${q}` };
    // A name with names below it exists (an empty non-terminal) though no NSEC owns it.
    if (isProperSubdomain(cover.next, qname)) return { status: 'bogus', reason: `${show(cover)} shows that ${q} is an empty non-terminal` };
    const ce = nsecs.closestEncloser(qname, cover);
    const wildcard = nsecs.noWildcard(ce);
    if (!wildcard.ok) return { status: 'bogus', reason: wildcard.reason };
    return { status: 'secure', proof: `${show(cover)} covers ${q}; ${show(wildcard.nsec)} covers ${nameToText(wildcardOf(ce))}` };
  });
}

/**
 * NODATA (RFC 4035 §3.1.3.1, §3.1.3.4, §5.4): the NSEC at `qname` lacks `qtype` and CNAME; or
 * `qname` is an empty non-terminal (an NSEC covers it and its next name is below it); or
 * `qname` does not exist and the NSEC of the wildcard at its closest encloser lacks the types.
 * For qtype DS a proof at a delegation is the proof of an unsigned child (the verdict is
 * 'secure': the absence of the DS is proven); the child's own apex NSEC cannot give it.
 */
export function nsecProveNodata(qname: Name, qtype: number, records: readonly Rr[], zone: Name): DenialVerdict {
  return withRecords(records, zone, qname, (nsecs) => {
    const q = `${nameToText(qname)} ${typeText(qtype)}`;
    const lacks = (nsec: Nsec): string | undefined => {
      if (nsec.types.has(qtype)) return `${show(nsec)} has the type ${typeText(qtype)}`;
      if (nsec.types.has(RRTYPE.CNAME)) return `${show(nsec)} has a CNAME (RFC 6840 §4.3)`;
      return undefined;
    };
    const exact = nsecs.matching(qname);
    if (exact) {
      const problem = lacks(exact);
      if (problem) return { status: 'bogus', reason: problem };
      if (qtype === RRTYPE.DS) {
        // The DS lives in the parent: an NSEC with SOA is the child's apex (RFC 4035 §5.4, RFC 6840 §4.1).
        if (exact.types.has(RRTYPE.SOA) && qname.length > 0)
          return { status: 'bogus', reason: `${show(exact)} is the child's apex NSEC, which cannot deny a DS` };
      } else if (isCut(exact) && !exact.types.has(RRTYPE.DNAME)) {
        // The parent side of a delegation speaks only for the DS (RFC 6840 §4.1).
        if (exact.types.has(RRTYPE.DS)) return { status: 'bogus', reason: `${show(exact)} is a signed delegation: the child answers for ${q}` };
        return { status: 'insecure', reason: `${show(exact)}: ${nameToText(qname)} is an unsigned delegation` };
      }
      return { status: 'secure', proof: `${show(exact)} lacks ${typeText(qtype)} and CNAME` };
    }
    const cover = nsecs.covering(qname);
    if (!cover) return { status: 'bogus', reason: `no NSEC matches or covers ${nameToText(qname)}` };
    // An empty non-terminal: nothing owns it, yet names below it exist.
    if (isProperSubdomain(cover.next, qname)) return { status: 'secure', proof: `${show(cover)}: ${nameToText(qname)} is an empty non-terminal` };
    // A wildcard that exists but lacks the type (RFC 4035 §3.1.3.4).
    const ce = nsecs.closestEncloser(qname, cover);
    const wildcard = nsecs.matching(wildcardOf(ce));
    if (!wildcard)
      return { status: 'bogus', reason: `${show(cover)} shows that ${nameToText(qname)} does not exist, and no wildcard at ${nameToText(ce)} answers` };
    const problem = lacks(wildcard);
    if (problem) return { status: 'bogus', reason: problem };
    return { status: 'secure', proof: `${show(cover)} covers ${nameToText(qname)}; ${show(wildcard)} lacks ${typeText(qtype)} and CNAME` };
  });
}

/**
 * A positive answer synthesized from `wildcard` (RrsetVerdict.wildcard; RFC 4035 §3.1.3.3,
 * §5.3.4): an NSEC proves that `qname` does not exist and that the wildcard's parent is its
 * closest encloser, so no closer name could have answered.
 */
export function nsecProveWildcard(qname: Name, wildcard: Name, records: readonly Rr[], zone: Name): DenialVerdict {
  return withRecords(records, zone, qname, (nsecs) => {
    const source = wildcard.slice(1);
    if (!isProperSubdomain(qname, source)) return { status: 'bogus', reason: `${nameToText(qname)} is not below ${nameToText(source)}` };
    const cover = nsecs.covering(qname);
    if (!cover) return { status: 'bogus', reason: `no NSEC proves that ${nameToText(qname)} does not exist` };
    const ce = nsecs.closestEncloser(qname, cover);
    if (!sameName(ce, source)) {
      return { status: 'bogus', reason: `${show(cover)} makes ${nameToText(ce)} the closest encloser, not ${nameToText(source)}: a closer name exists` };
    }
    return { status: 'secure', proof: `${show(cover)} covers ${nameToText(qname)}, closest encloser ${nameToText(ce)}` };
  });
}
