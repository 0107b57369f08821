/**
 * Work limits against KeyTrap-class attacks. A zone can make a validator try every key of a
 * key tag against every signature (CVE-2023-50387, "KeyTrap") or hash names through many NSEC3
 * iterations (CVE-2023-50868): quadratic or worse work from one answer. The validator counts
 * that work in a Budget the caller creates (one per answer, or one per lookup shared by its
 * answers) and stops with the verdict 'limit' when a cap is reached, never later.
 *
 * The defaults follow the real validators' choices after those CVEs: Unbound verifies at most 8
 * RRSIGs per RRset and 8 NSEC3 hashes per round (it then suspends and resumes); BIND's
 * max-validations-per-fetch is 16. A lookup here walks a few zone cuts (DNSKEY, DS, the answer
 * and perhaps a denial per cut), so the caps below let an honest chain of about six cuts, with
 * a key rollover in each, finish in one budget, and bound a hostile one to a few milliseconds.
 */

export interface Limits {
  /** Signature verifications (public-key operations) per budget. */
  signatures: number;
  /** DNSKEYs tried for one RRSIG (same owner, algorithm and key tag): more means 'limit' at once. */
  keysPerTag: number;
  /** NSEC3 owner-name hashes per budget; each costs at most 151 SHA-1 rounds (more iterations are insecure). */
  nsec3Hashes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = { signatures: 32, keysPerTag: 4, nsec3Hashes: 64 };

export class Budget {
  readonly limits: Readonly<Limits>;
  /** Work done so far. */
  signatures = 0;
  nsec3Hashes = 0;

  constructor(limits: Partial<Limits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Count one signature verification; false (counting nothing) when the cap is reached. */
  signature(): boolean {
    if (this.signatures >= this.limits.signatures) return false;
    this.signatures++;
    return true;
  }

  /** Count one NSEC3 name hash; false (counting nothing) when the cap is reached. */
  nsec3Hash(): boolean {
    if (this.nsec3Hashes >= this.limits.nsec3Hashes) return false;
    this.nsec3Hashes++;
    return true;
  }
}
