/**
 * The resolver's validate mode (`resolver.dnssec: 'validate'`): the chain of trust checked in
 * process, from the trust anchors down, over answers a recursive server passed through with
 * DO=1 and CD=1 (RFC 4035 §4.9.1, §4.9.2; RFC 6840 §5.9). lib/dnssec judges the records; this
 * module asks for the DS and DNSKEY RRsets that judging needs, through the resolver's own
 * servers, and caches what it validated.
 *
 * How an answer is judged (RFC 4035 §5):
 * - Each RRset on the answer's CNAME chain (RFC 1034 §3.6.2), then the final RRset or the
 *   denial of existence, is one hop; the answer is as strong as its weakest hop (RFC 4035
 *   §5.4 for the chain: a CNAME into unsigned space makes the data behind it insecure).
 * - A signed RRset is verified with the DNSKEYs of the zone its RRSIG names as signer
 *   (RFC 4035 §5.3.1: the signer is the zone holding the RRset). Those keys come from the
 *   zone's DS RRset, verified with the keys of the zone that signed the DS (its parent, RFC
 *   4035 §5.2), and so on up to a trust anchor: the "bottom-up" chain, one DS and one DNSKEY
 *   query per zone cut, each result cached for its TTL (RFC 4035 §5.3.3).
 * - An answer synthesized from a wildcard carries the proof that the name itself does not
 *   exist (RFC 4035 §5.3.4, RFC 5155 §8.8); a DNAME-synthesized CNAME is judged by its DNAME
 *   (RFC 6672 §5.3.3).
 * - NXDOMAIN and NODATA are judged by the NSEC or NSEC3 records of the zone that signed them
 *   (RFC 4035 §5.4, RFC 5155 §8), each NSEC/NSEC3 RRset verified first.
 * - An unsigned RRset or denial is insecure only when the name is proven to lie in unsigned
 *   space: a walk from the closest trust anchor down, label by label, asking for the DS of
 *   each name (the "top-down" chain), until a delegation is proven to have no DS (an NSEC or
 *   NSEC3 with the NS bit and no DS bit, or an NSEC3 opt-out span, RFC 5155 §6), or a DS set
 *   names only algorithms or digests this validator does not support (RFC 4035 §5.2, RFC
 *   6840 §5.2). A signed zone's RRset without an RRSIG is bogus: RFC 4035 §2.2 has every
 *   authoritative RRset of a signed zone signed, so the upstream stripped it, or forged it.
 * - Names no trust anchor covers are insecure (RFC 4035 §4.3: no chain can be built).
 *
 * Limits (KeyTrap, CVE-2023-50387 and CVE-2023-50868): one lib/dnssec Budget per lookup
 * (signature checks, keys per tag, NSEC3 hashes), at most `queries` DS and DNSKEY queries per
 * lookup (the chain depth), at most `cnames` CNAME or DNAME hops. Reaching one fails the lookup
 * with that reason. Nothing bogus is ever reported as insecure: the resolver fails the lookup.
 */
import type { TrustAnchor } from '../dnssec/anchors.js';
import { Budget, type Limits } from '../dnssec/budget.js';
import { validateDnskeys, type TrustPoint } from '../dnssec/keys.js';
import { isProperSubdomain, isSubdomain, nameToDns, nameToText, nameWire, readName, sameName, suffix, type Name } from '../dnssec/names.js';
import { nsecProveNodata, nsecProveNxdomain, nsecProveWildcard, type DenialVerdict } from '../dnssec/nsec.js';
import { base32hex, nsec3Hash, nsec3ProveNodata, nsec3ProveNxdomain, nsec3ProveWildcard } from '../dnssec/nsec3.js';
import { RRTYPE, fromResourceRecord, parseDs, parseNsec, parseNsec3, parseRrsig, typeText, type Dnskey, type Rr } from '../dnssec/records.js';
import { verifyRrset, type VerifyOptions } from '../dnssec/verify.js';
import { nameLabels } from './names.js';
import type { Message, ResourceRecord } from './wire.js';

/** One reply a server gave: what the validator reads. */
export interface Exchange {
  message: Message;
  /** 0 (NOERROR) or 3 (NXDOMAIN): other RCODEs are failures before validation. */
  rcode: number;
  /** `address:port` of the server that answered. */
  server: string;
}

/** Ask the resolver's servers (no cache, no validation); `failed` is one sentence. */
export type Fetch = (name: string, type: number) => Promise<Exchange | { failed: string }>;

export interface ValidationLimits extends Limits {
  /** DS and DNSKEY queries one lookup may send: the depth of the chain of trust it may walk. */
  queries: number;
  /** CNAME and DNAME hops judged in one answer. */
  cnames: number;
}

export const VALIDATION_LIMITS: Readonly<Pick<ValidationLimits, 'queries' | 'cnames'>> = { queries: 24, cnames: 8 };

export interface ValidatorOptions {
  anchors: readonly TrustAnchor[];
  fetch: Fetch;
  limits?: Partial<ValidationLimits>;
  /** Seconds since 1970; default the system clock. */
  now?: () => number;
  /** Cache validated DNSKEY sets and proven delegations for their TTLs. Default true. */
  cache?: boolean;
}

/** What the answer's chain gave, for the resolver's DnsAnswer. */
export type Verdict =
  | { status: 'secure'; ttl: number; trace: string[] }
  | { status: 'insecure'; ttl: number; reason: string; trace: string[] }
  /** Bogus, a limit reached, or a DS/DNSKEY query that failed: the lookup fails with `reason`. */
  | { status: 'failed'; reason: string; trace: string[] };

/** The answer as the resolver read it (lib/dns/message.ts readAnswer). */
export interface ReadAnswer {
  /** The query name and type, in lib/dns/names.ts form. */
  name: string;
  type: number;
  /** The CNAME targets followed, in order. */
  cnames: readonly string[];
  /** Whether records of the type were found at the end of the chain (else NXDOMAIN or NODATA there). */
  positive: boolean;
}

/** The most seconds a validated key set or proven delegation is kept (as the resolver caps answers). */
const MAX_TRUST_TTL = 86_400;
const MAX_ENTRIES = 10_000;

/**
 * A zone's standing: its validated keys, or proven insecure (and so is every name below it).
 * `chain`: how it was established, from the trust anchor down, one line per step (what the
 * probe shows, as `delv` and `drill -S` do).
 */
type Trust =
  | { secure: true; zone: Name; keys: Dnskey[]; expires: number; chain: readonly string[] }
  | { secure: false; zone: Name; reason: string; expires: number; chain: readonly string[] };

/** What a DS query at a name proved: a zone cut (secure or not), no cut there, or no such name. */
type Cut = { kind: 'zone'; trust: Trust } | { kind: 'none'; ttl: number; line: string } | { kind: 'nxdomain' };

/** One hop's strength. */
type Step = { secure: true; ttl: number } | { secure: false; reason: string };

/** Ends validation: bogus data, a limit, or a query the chain needed that failed. */
class Stop extends Error {}

interface Lookup {
  budget: Budget;
  queries: number;
  now: number;
  /** The chain walked for this answer: the zones' lines (noted once each), then each hop's. */
  trace: string[];
}

/** Add lines to the lookup's trace, each once. */
function note(lookup: Lookup, lines: readonly string[]): void {
  for (const line of lines) if (!lookup.trace.includes(line)) lookup.trace.push(line);
}

const key = (name: Name) => nameWire(name).toString('latin1');
const show = nameToText;
const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1);

/** Class IN records of a section as the validator reads them; OPT and other classes left out. */
function records(section: readonly ResourceRecord[]): Rr[] {
  return section.filter((rr) => rr.class === 1 && rr.type !== 41).map((rr) => fromResourceRecord(rr));
}

function rrsetOf(rrs: readonly Rr[], owner: Name, type: number): Rr[] {
  return rrs.filter((rr) => rr.type === type && sameName(rr.owner, owner));
}

/** The RRSIGs at `owner` over `type` (the Type Covered field, RFC 4034 §3.1.1). */
function sigsOver(rrs: readonly Rr[], owner: Name, type: number): Rr[] {
  return rrs.filter((rr) => rr.type === RRTYPE.RRSIG && rr.rdata.length >= 2 && ((rr.rdata[0]! << 8) | rr.rdata[1]!) === type && sameName(rr.owner, owner));
}

/** The signer the RRSIGs name, the first one that is `owner` or above it (RFC 4035 §5.3.1). */
function signerOf(sigs: readonly Rr[], owner: Name): Name | undefined {
  for (const sig of sigs) {
    try {
      const signer = parseRrsig(sig).signer;
      if (isSubdomain(owner, signer)) return signer;
    } catch {
      // verifyRrset says why when it comes to it
    }
  }
  return undefined;
}

/** RFC 4035 §4.3: with no trust anchor above it, no chain of trust reaches a name (not cached: an anchor may sit below). */
function unanchored(name: Name, now: number): Trust {
  const reason = `no trust anchor is configured at or above ${show(name)}`;
  return { secure: false, zone: name, reason, expires: now + MAX_TRUST_TTL, chain: [`${reason}: insecure`] };
}

const DENIAL_TYPES: ReadonlySet<number> = new Set([RRTYPE.NSEC, RRTYPE.NSEC3]);

export class ChainValidator {
  private readonly anchors: readonly TrustAnchor[];
  private readonly fetchRaw: Fetch;
  private readonly limits: Partial<Limits>;
  private readonly maxQueries: number;
  private readonly maxCnames: number;
  private readonly clock: () => number;
  private readonly caching: boolean;
  /** Zone -> its validated keys, or proven insecure from there down. */
  private readonly trusts = new Map<string, Trust>();
  /** Name -> when the proof that it is no zone cut expires. */
  private readonly noCuts = new Map<string, number>();
  /** Key sets being established, shared by concurrent lookups. */
  private readonly pending = new Map<string, Promise<Trust>>();

  constructor(options: ValidatorOptions) {
    this.anchors = options.anchors;
    this.fetchRaw = options.fetch;
    const { queries, cnames, ...limits } = options.limits ?? {};
    this.limits = limits;
    this.maxQueries = queries ?? VALIDATION_LIMITS.queries;
    this.maxCnames = cnames ?? VALIDATION_LIMITS.cnames;
    this.clock = options.now ?? (() => Date.now() / 1000);
    this.caching = options.cache ?? true;
  }

  /** Forget every validated key set and proven delegation. */
  clear(): void {
    this.trusts.clear();
    this.noCuts.clear();
  }

  /** Judge one answer (see the top of this file). Never throws. */
  async validate(read: ReadAnswer, exchange: Exchange): Promise<Verdict> {
    const lookup: Lookup = { budget: new Budget(this.limits), queries: 0, now: this.clock(), trace: [] };
    try {
      const answers = records(exchange.message.answers);
      const authority = records(exchange.message.authorities);
      if (read.cnames.length > this.maxCnames) {
        throw new Stop(`the answer follows ${read.cnames.length} CNAMEs, more than the ${this.maxCnames} validated`);
      }
      const chain = [read.name, ...read.cnames].map((name) => nameLabels(name) as Name);
      const steps: Step[] = [];
      for (let i = 0; i < chain.length - 1; i++) steps.push(await this.hop(lookup, chain[i]!, RRTYPE.CNAME, answers, authority, exchange.server));
      const last = chain[chain.length - 1]!;
      steps.push(
        read.positive
          ? await this.hop(lookup, last, read.type, answers, authority, exchange.server)
          : await this.denial(lookup, last, read.type, exchange.rcode === 3, authority, exchange.server),
      );
      const weak = steps.find((step): step is Extract<Step, { secure: false }> => !step.secure);
      const ttl = Math.min(MAX_TRUST_TTL, ...steps.map((step) => (step.secure ? step.ttl : MAX_TRUST_TTL)));
      if (weak) return { status: 'insecure', ttl, reason: weak.reason, trace: lookup.trace };
      return { status: 'secure', ttl, trace: lookup.trace };
    } catch (error) {
      const reason = error instanceof Stop ? error.message : `DNSSEC records that cannot be read (${(error as Error).message})`;
      return { status: 'failed', reason, trace: lookup.trace };
    }
  }

  /* --------------------------------------------------------------------------------------
   * Hops.
   */

  /** One RRset of the answer: verified with its signer's keys, or proven to be in unsigned space. */
  private async hop(lookup: Lookup, owner: Name, type: number, answers: Rr[], authority: Rr[], server: string): Promise<Step> {
    const what = `the ${typeText(type)} RRset of ${show(owner)}`;
    const rrset = rrsetOf(answers, owner, type);
    const sigs = sigsOver(answers, owner, type);
    if (sigs.length === 0) {
      if (type === RRTYPE.CNAME) {
        const step = await this.fromDname(lookup, owner, rrset, answers, authority, server);
        if (step) return step;
      }
      return this.unsigned(lookup, owner, `${what} came without an RRSIG from ${server}`);
    }
    const signer = signerOf(sigs, owner);
    if (!signer) throw new Stop(`${what} has RRSIGs whose signer is neither ${show(owner)} nor a zone above it`);
    const trust = await this.signerTrust(lookup, signer, owner, what);
    if (!trust.secure) return { secure: false, reason: trust.reason };
    const verdict = verifyRrset(rrset, sigs, trust.keys, this.options(lookup));
    if (verdict.status !== 'secure') throw new Stop(`in zone ${show(trust.zone)}, ${verdict.reason}`);
    lookup.trace.push(`${what}: RRSIG ${verdict.keyTag}/${verdict.algorithm} by ${show(trust.zone)} verifies`);
    if (!verdict.wildcard) return { secure: true, ttl: verdict.ttl };
    // RFC 4035 §5.3.4: an expansion of a wildcard needs the proof that no closer name exists.
    const { rrs, ttl } = this.denialRecords(lookup, authority, trust);
    const proof = rrs.some((rr) => rr.type === RRTYPE.NSEC3)
      ? nsec3ProveWildcard(owner, verdict.wildcard, rrs, trust.zone, lookup.budget)
      : nsecProveWildcard(owner, verdict.wildcard, rrs, trust.zone);
    const step = this.proven(lookup, proof, trust, `${what}, an expansion of ${show(verdict.wildcard)},`);
    return step.secure ? { secure: true, ttl: Math.min(verdict.ttl, ttl) } : step;
  }

  /**
   * RFC 6672 §5.3.3: a CNAME synthesized from a DNAME is unsigned; it stands when a DNAME at an
   * ancestor is in the answer, the CNAME is exactly what that DNAME synthesizes, and the DNAME
   * RRset itself validates. Undefined when no DNAME above `owner` is in the answer.
   */
  private async fromDname(lookup: Lookup, owner: Name, cname: Rr[], answers: Rr[], authority: Rr[], server: string): Promise<Step | undefined> {
    for (let depth = owner.length - 1; depth >= 0; depth--) {
      const at = suffix(owner, depth);
      const dname = rrsetOf(answers, at, RRTYPE.DNAME);
      if (dname.length === 0) continue;
      if (dname.length !== 1 || cname.length !== 1) throw new Stop(`the DNAME at ${show(at)} or the CNAME of ${show(owner)} is not a single record`);
      const target = readName(dname[0]!.rdata, 0).name;
      const expected = [...owner.slice(0, owner.length - depth), ...target];
      const actual = readName(cname[0]!.rdata, 0).name;
      if (!sameName(expected, actual)) {
        throw new Stop(`the CNAME of ${show(owner)} points to ${show(actual)}, not to ${show(expected)} as the DNAME at ${show(at)} synthesizes`);
      }
      return this.hop(lookup, at, RRTYPE.DNAME, answers, authority, server);
    }
    return undefined;
  }

  /** NXDOMAIN or NODATA at `name`: proven by the signer's NSEC or NSEC3 records. */
  private async denial(lookup: Lookup, name: Name, type: number, nxdomain: boolean, authority: Rr[], server: string): Promise<Step> {
    const what = nxdomain ? `the NXDOMAIN answer for ${show(name)}` : `the NODATA answer for ${show(name)} ${typeText(type)}`;
    const sigs = authority.filter((rr) => rr.type === RRTYPE.RRSIG);
    // The NSEC or NSEC3 records' signer names the zone; failing those, the SOA's.
    const denialSigs = sigs.filter((rr) => rr.rdata.length >= 2 && DENIAL_TYPES.has((rr.rdata[0]! << 8) | rr.rdata[1]!));
    const signer = (denialSigs.length > 0 ? denialSigs : sigs).map((sig) => signerOf([sig], name)).find((found) => found !== undefined);
    if (!signer) {
      return this.unsigned(lookup, name, `${what} came without signed NSEC or NSEC3 records from ${server}`);
    }
    const trust = await this.signerTrust(lookup, signer, name, what);
    if (!trust.secure) return { secure: false, reason: trust.reason };
    const { rrs, ttl } = this.denialRecords(lookup, authority, trust);
    const nsec3 = rrs.some((rr) => rr.type === RRTYPE.NSEC3);
    const proof = nxdomain
      ? nsec3
        ? nsec3ProveNxdomain(name, rrs, trust.zone, lookup.budget)
        : nsecProveNxdomain(name, rrs, trust.zone)
      : nsec3
        ? nsec3ProveNodata(name, type, rrs, trust.zone, lookup.budget)
        : nsecProveNodata(name, type, rrs, trust.zone);
    const step = this.proven(lookup, proof, trust, what);
    return step.secure ? { secure: true, ttl } : step;
  }

  /** A denial proof's verdict as a hop; bogus and limits stop the lookup. */
  private proven(lookup: Lookup, proof: DenialVerdict, trust: Extract<Trust, { secure: true }>, what: string): Step {
    switch (proof.status) {
      case 'secure':
        lookup.trace.push(`${what} proven in ${show(trust.zone)}: ${proof.proof}`);
        return { secure: true, ttl: MAX_TRUST_TTL };
      case 'insecure':
        lookup.trace.push(`${what} insecure in ${show(trust.zone)}: ${proof.reason}`);
        return { secure: false, reason: `in zone ${show(trust.zone)}, ${proof.reason}` };
      case 'bogus':
      case 'limit':
        throw new Stop(`in zone ${show(trust.zone)}, ${what} is not proven: ${proof.reason}`);
    }
  }

  /**
   * The NSEC and NSEC3 RRsets of `authority` that `trust`'s zone signed, each verified (one that
   * does not verify stops the lookup); those of other zones, or unsigned, are left out.
   */
  private denialRecords(lookup: Lookup, authority: Rr[], trust: Extract<Trust, { secure: true }>): { rrs: Rr[]; ttl: number } {
    const sets = new Map<string, Rr[]>();
    for (const rr of authority) {
      if (!DENIAL_TYPES.has(rr.type)) continue;
      const id = `${key(rr.owner)}/${rr.type}`;
      sets.set(id, [...(sets.get(id) ?? []), rr]);
    }
    const rrs: Rr[] = [];
    let ttl = MAX_TRUST_TTL;
    for (const rrset of sets.values()) {
      const owner = rrset[0]!.owner;
      const sigs = sigsOver(authority, owner, rrset[0]!.type);
      const signer = signerOf(sigs, owner);
      if (!signer || !sameName(signer, trust.zone)) continue;
      const verdict = verifyRrset(rrset, sigs, trust.keys, this.options(lookup));
      if (verdict.status !== 'secure') throw new Stop(`in zone ${show(trust.zone)}, ${verdict.reason}`);
      rrs.push(...rrset);
      ttl = Math.min(ttl, verdict.ttl);
    }
    return { rrs, ttl };
  }

  /** An unsigned hop: insecure when `name` is proven to be in unsigned space, else bogus. */
  private async unsigned(lookup: Lookup, name: Name, what: string): Promise<Step> {
    const trust = await this.closestTrust(lookup, name);
    if (!trust.secure) return { secure: false, reason: trust.reason };
    throw new Stop(
      `${what}, though ${show(name)} is in the signed zone ${show(trust.zone)}: the server strips DNSSEC records (RRSIG, NSEC, NSEC3), or the answer was forged`,
    );
  }

  /* --------------------------------------------------------------------------------------
   * The chain of trust.
   */

  private options(lookup: Lookup): VerifyOptions {
    return { now: lookup.now, budget: lookup.budget };
  }

  private cached(name: Name, now: number): Trust | undefined {
    if (!this.caching) return undefined;
    const entry = this.trusts.get(key(name));
    if (entry && entry.expires > now) return entry;
    return undefined;
  }

  private remember(trust: Trust): Trust {
    if (this.caching && trust.expires > this.clock()) {
      if (this.trusts.size >= MAX_ENTRIES) this.trusts.delete(this.trusts.keys().next().value!);
      this.trusts.set(key(trust.zone), trust);
    }
    return trust;
  }

  private insecure(zone: Name, reason: string, ttl: number, now: number, chain: readonly string[]): Trust {
    return this.remember({ secure: false, zone, reason, expires: now + Math.min(ttl, MAX_TRUST_TTL), chain });
  }

  /** The trust anchor at `zone`, if one is configured there. */
  private anchorAt(zone: Name): TrustAnchor | undefined {
    return this.anchors.find((anchor) => sameName(anchor.zone, zone));
  }

  /** The deepest trust anchor at or above `name`. */
  private anchorAbove(name: Name): TrustAnchor | undefined {
    let best: TrustAnchor | undefined;
    for (const anchor of this.anchors) if (isSubdomain(name, anchor.zone) && (!best || anchor.zone.length > best.zone.length)) best = anchor;
    return best;
  }

  /**
   * An insecure zone at or above `zone` and below the deepest trust anchor over it, from the
   * cache (an anchor below an unsigned delegation starts a chain of its own).
   */
  private insecureAbove(zone: Name, now: number): Trust | undefined {
    const anchor = this.anchorAbove(zone);
    if (!anchor) return undefined;
    for (let depth = anchor.zone.length; depth <= zone.length; depth++) {
      const entry = this.cached(suffix(zone, depth), now);
      if (entry && !entry.secure) return entry;
    }
    return undefined;
  }

  /**
   * The standing of the zone an RRSIG over data at `owner` names as signer. A signer above the
   * deepest trust anchor over `owner` would reach no anchor, and so pass for insecure: such an
   * RRSIG can only be forged (the anchored zone, or one below it, signs that data), so it stops.
   */
  private signerTrust(lookup: Lookup, signer: Name, owner: Name, what: string): Promise<Trust> {
    const anchor = this.anchorAbove(owner);
    if (anchor && !isSubdomain(signer, anchor.zone)) {
      throw new Stop(`${what} is signed by ${show(signer)}, above the trust anchor at ${show(anchor.zone)}`);
    }
    return this.trust(lookup, signer);
  }

  /** The keys of the zone `zone` (a signer), established bottom-up from its DS: see the top of this file. */
  private async trust(lookup: Lookup, zone: Name): Promise<Trust> {
    let trust = this.cached(zone, lookup.now) ?? this.insecureAbove(zone, lookup.now);
    if (!trust) {
      const id = key(zone);
      let pending = this.pending.get(id);
      if (!pending) {
        pending = this.establish(lookup, zone).finally(() => this.pending.delete(id));
        this.pending.set(id, pending);
      }
      trust = await pending;
    }
    note(lookup, trust.chain);
    return trust;
  }

  private async establish(lookup: Lookup, zone: Name): Promise<Trust> {
    const anchor = this.anchorAt(zone);
    if (anchor) {
      const named = [...anchor.ds.map((d) => `DS ${d.keyTag}/${d.algorithm}/${d.digestType}`), ...anchor.keys.map((k) => `DNSKEY ${k.keyTag}/${k.algorithm}`)];
      return this.keysFrom(lookup, zone, anchor, `the trust anchor (${named.join(', ')})`, MAX_TRUST_TTL, []);
    }
    if (!this.anchorAbove(zone)) return unanchored(zone, lookup.now);
    const cut = await this.cut(lookup, zone, undefined);
    if (cut.kind === 'zone') return cut.trust;
    if (cut.kind === 'nxdomain') throw new Stop(`RRSIGs name ${show(zone)} as their signer, but ${show(zone)} is proven not to exist`);
    throw new Stop(`RRSIGs name ${show(zone)} as their signer, but ${show(zone)} is proven to be no zone cut (no DS and no NS there)`);
  }

  /**
   * The zone's DNSKEY RRset, validated from `trust` (the parent's verified DS RRset or a trust
   * anchor, RFC 4035 §5.2). `ttl` bounds the cache lifetime (the DS RRset's).
   */
  private async keysFrom(lookup: Lookup, zone: Name, trust: TrustPoint, from: string, ttl: number, chain: readonly string[]): Promise<Trust> {
    const exchange = await this.fetch(lookup, zone, RRTYPE.DNSKEY);
    const answers = records(exchange.message.answers);
    const dnskeys = rrsetOf(answers, zone, RRTYPE.DNSKEY);
    const sigs = sigsOver(answers, zone, RRTYPE.DNSKEY);
    if (dnskeys.length === 0) {
      throw new Stop(`zone ${show(zone)} has ${from} but ${exchange.server} returned no DNSKEY RRset for it`);
    }
    if (sigs.length === 0) {
      throw new Stop(
        `${exchange.server} answered the DNSKEY query for ${show(zone)} without RRSIG records: it strips DNSSEC records, so nothing it returns can be validated ` +
          "(use a recursive server that passes them through, or dnssec: 'trust-ad' with a validating resolver on loopback)",
      );
    }
    const verdict = validateDnskeys(dnskeys, sigs, trust, this.options(lookup));
    switch (verdict.status) {
      case 'secure': {
        const tags = verdict.keys.map((k) => `${k.keyTag}/${k.algorithm}${k.flags & 1 ? ' (SEP)' : ''}`).join(', ');
        const line = `${show(zone)} DNSKEY ${tags}: RRSIG ${verdict.keyTag}/${verdict.algorithm} verifies, from ${from}`;
        const expires = lookup.now + Math.min(ttl, verdict.ttl, MAX_TRUST_TTL);
        return this.remember({ secure: true, zone, keys: verdict.keys, expires, chain: [...chain, line] });
      }
      case 'insecure':
        return this.insecure(zone, `zone ${show(zone)} is insecure: ${verdict.reason} (RFC 4035 §5.2)`, ttl, lookup.now, [
          ...chain,
          `${show(zone)} is insecure: ${verdict.reason}`,
        ]);
      case 'bogus':
      case 'limit':
        throw new Stop(`zone ${show(zone)}: ${verdict.reason}`);
    }
  }

  /**
   * What the DS query at `name` proves (RFC 4035 §5.2, RFC 6840 §4.1): a zone cut with its keys
   * (or insecure: no DS, or a DS set of unsupported algorithms), no cut, or no such name.
   * `parent`: the zone known to hold `name` (the top-down walk), whose keys must have signed
   * the answer; undefined when the answer's signer says which zone that is (bottom-up).
   */
  private async cut(lookup: Lookup, name: Name, parent: Extract<Trust, { secure: true }> | undefined): Promise<Cut> {
    const exchange = await this.fetch(lookup, name, RRTYPE.DS);
    const answers = records(exchange.message.answers);
    const authority = records(exchange.message.authorities);
    const ds = rrsetOf(answers, name, RRTYPE.DS);
    /** The zone above: the known parent, or the signer's standing (or, for an unsigned reply, the top-down walk's). */
    const above = async (signer: Name | undefined, what: string): Promise<Trust> => {
      if (parent) {
        if (signer && !sameName(signer, parent.zone))
          throw new Stop(`${what} of ${show(name)} is signed by ${show(signer)}, not by its parent zone ${show(parent.zone)}`);
        return parent;
      }
      if (signer) {
        if (!isProperSubdomain(name, signer)) throw new Stop(`${what} of ${show(name)} is signed by ${show(signer)}, not by a zone above it`);
        return this.signerTrust(lookup, signer, name, `${what} of ${show(name)}`);
      }
      return this.closestTrust(lookup, name.slice(1));
    };
    const strip = (trust: Trust, what: string) =>
      new Stop(`${exchange.server} returned ${what}, though ${show(trust.zone)} is signed: it strips DNSSEC records, or the answer was forged`);
    if (ds.length > 0) {
      const sigs = sigsOver(answers, name, RRTYPE.DS);
      const signer = signerOf(sigs, name);
      const trust = await above(signer, 'the DS RRset');
      if (!trust.secure) return { kind: 'zone', trust: this.insecure(name, trust.reason, trust.expires - lookup.now, lookup.now, trust.chain) };
      if (sigs.length === 0) throw strip(trust, `the DS RRset of ${show(name)} without RRSIG records`);
      const verdict = verifyRrset(ds, sigs, trust.keys, this.options(lookup));
      if (verdict.status !== 'secure') throw new Stop(`in zone ${show(trust.zone)}, ${verdict.reason}`);
      const parsed = ds.map((rr) => parseDs(rr));
      const line = `${show(name)} DS ${parsed.map((d) => `${d.keyTag}/${d.algorithm}/${d.digestType}`).join(', ')}: RRSIG ${verdict.keyTag}/${verdict.algorithm} by ${show(trust.zone)} verifies`;
      const keys = await this.keysFrom(lookup, name, { ds: parsed }, `the DS RRset in ${show(trust.zone)}`, verdict.ttl, [...trust.chain, line]);
      return { kind: 'zone', trust: keys };
    }
    const cname = rrsetOf(answers, name, RRTYPE.CNAME);
    if (cname.length > 0) {
      // A CNAME owner holds no other data (RFC 2181 §10.1): no delegation there.
      const sigs = sigsOver(answers, name, RRTYPE.CNAME);
      const trust = await above(signerOf(sigs, name), 'the CNAME');
      if (!trust.secure) return { kind: 'zone', trust: this.insecure(name, trust.reason, trust.expires - lookup.now, lookup.now, trust.chain) };
      if (sigs.length === 0) throw strip(trust, `the CNAME of ${show(name)} without RRSIG records`);
      const verdict = verifyRrset(cname, sigs, trust.keys, this.options(lookup));
      if (verdict.status !== 'secure') throw new Stop(`in zone ${show(trust.zone)}, ${verdict.reason}`);
      return { kind: 'none', ttl: verdict.ttl, line: `${show(name)} is a CNAME in ${show(trust.zone)}, no zone cut` };
    }
    const nxdomain = exchange.rcode === 3;
    const what = `the ${nxdomain ? 'NXDOMAIN' : 'NODATA'} answer to the DS query`;
    const denialSigs = authority.filter((rr) => rr.type === RRTYPE.RRSIG && rr.rdata.length >= 2 && DENIAL_TYPES.has((rr.rdata[0]! << 8) | rr.rdata[1]!));
    const signer = denialSigs.map((sig) => signerOf([sig], name)).find((found) => found !== undefined);
    const trust = await above(signer, `the denial of the DS`);
    if (!trust.secure) return { kind: 'zone', trust: this.insecure(name, trust.reason, trust.expires - lookup.now, lookup.now, trust.chain) };
    if (!signer) throw strip(trust, `${what} for ${show(name)} without signed NSEC or NSEC3 records`);
    const { rrs, ttl } = this.denialRecords(lookup, authority, trust);
    const proof = nxdomain
      ? rrs.some((rr) => rr.type === RRTYPE.NSEC3)
        ? nsec3ProveNxdomain(name, rrs, trust.zone, lookup.budget)
        : nsecProveNxdomain(name, rrs, trust.zone)
      : rrs.some((rr) => rr.type === RRTYPE.NSEC3)
        ? nsec3ProveNodata(name, RRTYPE.DS, rrs, trust.zone, lookup.budget)
        : nsecProveNodata(name, RRTYPE.DS, rrs, trust.zone);
    switch (proof.status) {
      case 'insecure':
        // An opt-out span, or a name beneath an unsigned delegation (RFC 5155 §6, §8.6).
        return {
          kind: 'zone',
          trust: this.insecure(name, `in zone ${show(trust.zone)}, ${proof.reason}`, ttl, lookup.now, [
            ...trust.chain,
            `${show(name)} DS denied in ${show(trust.zone)}, insecure: ${proof.reason}`,
          ]),
        };
      case 'secure':
        if (nxdomain) return { kind: 'nxdomain' };
        if (this.delegationAt(lookup, name, rrs, trust.zone)) {
          return {
            kind: 'zone',
            trust: this.insecure(name, `${show(name)} is an unsigned delegation from ${show(trust.zone)} (${proof.proof})`, ttl, lookup.now, [
              ...trust.chain,
              `${show(name)} DS denied in ${show(trust.zone)}, an unsigned delegation: ${proof.proof}`,
            ]),
          };
        }
        return { kind: 'none', ttl, line: `${show(name)} is no zone cut in ${show(trust.zone)}: ${proof.proof}` };
      case 'bogus':
      case 'limit':
        throw new Stop(`in zone ${show(trust.zone)}, ${what} at ${show(name)} is not proven: ${proof.reason}`);
    }
  }

  /** Whether the zone's verified NSEC or NSEC3 record at `name` has the NS bit (a delegation) and no SOA. */
  private delegationAt(lookup: Lookup, name: Name, rrs: Rr[], zone: Name): boolean {
    const nsecs = rrs.filter((rr) => rr.type === RRTYPE.NSEC && sameName(rr.owner, name)).map((rr) => parseNsec(rr));
    if (nsecs.length > 0) return nsecs.some((nsec) => nsec.types.has(RRTYPE.NS) && !nsec.types.has(RRTYPE.SOA));
    const nsec3s = rrs.filter((rr) => rr.type === RRTYPE.NSEC3).map((rr) => parseNsec3(rr));
    const first = nsec3s[0];
    if (!first || !lookup.budget.nsec3Hash()) return false;
    const owner = [Buffer.from(base32hex(nsec3Hash(name, first.salt, first.iterations))), ...zone];
    return nsec3s.some((nsec3) => sameName(nsec3.owner, owner) && nsec3.types.has(RRTYPE.NS) && !nsec3.types.has(RRTYPE.SOA));
  }

  /**
   * The zone that holds `name`, walked top-down from the closest trust anchor (see the top of
   * this file): its keys, or insecure when a delegation on the way is proven unsigned.
   */
  private async closestTrust(lookup: Lookup, name: Name): Promise<Trust> {
    const anchor = this.anchorAbove(name);
    if (!anchor) return unanchored(name, lookup.now);
    let trust = await this.trust(lookup, anchor.zone);
    if (!trust.secure) return trust;
    for (let depth = anchor.zone.length + 1; depth <= name.length; depth++) {
      const at = suffix(name, depth);
      const cached = this.cached(at, lookup.now);
      if (cached) {
        note(lookup, cached.chain);
        if (!cached.secure) return cached;
        trust = cached;
        continue;
      }
      if (this.caching && (this.noCuts.get(key(at)) ?? 0) > lookup.now) continue;
      const cut = await this.cut(lookup, at, trust);
      if (cut.kind === 'nxdomain') break;
      if (cut.kind === 'zone') note(lookup, cut.trust.chain);
      if (cut.kind === 'none') {
        note(lookup, [cut.line]);
        if (this.caching && cut.ttl > 0) {
          if (this.noCuts.size >= MAX_ENTRIES) this.noCuts.delete(this.noCuts.keys().next().value!);
          this.noCuts.set(key(at), lookup.now + Math.min(cut.ttl, MAX_TRUST_TTL));
        }
        continue;
      }
      if (!cut.trust.secure) return cut.trust;
      trust = cut.trust;
    }
    return trust;
  }

  private async fetch(lookup: Lookup, name: Name, type: number): Promise<Exchange> {
    if (lookup.queries >= this.maxQueries) {
      throw new Stop(`the chain of trust needs more than ${this.maxQueries} DS and DNSKEY queries (at the ${typeText(type)} of ${show(name)})`);
    }
    lookup.queries++;
    const result = await this.fetchRaw(nameToDns(name), type);
    if ('failed' in result) throw new Stop(`the chain of trust needs the ${typeText(type)} RRset of ${show(name)}, and ${lowerFirst(result.failed)}`);
    return result;
  }
}
