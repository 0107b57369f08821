/**
 * The in-process DNSSEC validator's pure core (issue 10): records in, a verdict out; no I/O,
 * time passed in. What the resolver (lib/dns) builds on it: fetch DNSKEY and DS per zone cut
 * from the trust anchors down, validateDnskeys() each zone's key set from its parent's DS,
 * verifyRrset() the answers, and prove absences with the nsec/nsec3 functions, all with one
 * Budget per lookup.
 *
 * Verdicts: 'secure'; 'insecure' (proven unsigned, or signed only with what this validator
 * does not support: RFC 4035 §5.2); 'bogus' (never a downgrade: the caller fails); 'limit'
 * (a KeyTrap cap was reached: the caller fails with that reason); and for verifyRrset
 * 'unsupported' (see its RrsetVerdict).
 */
export { ROOT_ANCHOR_LINES, TrustAnchorError, parseTrustAnchors, rootTrustAnchors, type TrustAnchor } from './anchors.js';
export { Budget, DEFAULT_LIMITS, type Limits } from './budget.js';
export { DIGEST, digestSupported, dsDigest, dsMatches, validateDnskeys, type KeysetVerdict, type TrustPoint } from './keys.js';
export { ROOT, compareNames, isSubdomain, nameFromText, nameToDns, nameToText, nameWire, sameName, type Name } from './names.js';
export { nsecCovers, nsecProveNodata, nsecProveNxdomain, nsecProveWildcard, type DenialVerdict } from './nsec.js';
export { NSEC3_MAX_ITERATIONS, nsec3Hash, nsec3ProveNodata, nsec3ProveNxdomain, nsec3ProveWildcard } from './nsec3.js';
export {
  RRTYPE,
  canonicalRdata,
  fromResourceRecord,
  keyTag,
  parseDnskey,
  parseDs,
  parseNsec,
  parseNsec3,
  parseRrsig,
  typeText,
  type Dnskey,
  type Ds,
  type Nsec,
  type Nsec3,
  type Rr,
  type Rrsig,
} from './records.js';
export { ALGORITHM, DEFAULT_SKEW, algorithmSupported, signedData, verifyRrset, type RrsetVerdict, type VerifyOptions } from './verify.js';
