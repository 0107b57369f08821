/**
 * policy: what level (and attributes) a destination asks for. Pure, except that a policy
 * table may be read from a file, synchronously, once.
 *
 * What it implements:
 *
 * - Postfix's smtp_tls_policy_maps (postconf(5); src/smtp/smtp_tls_policy.c): the table
 *   syntax (`KEY LEVEL name=value ...`, Postfix's logical lines, comments and continuation
 *   lines, `{ name = value }` groups), the levels none may encrypt dane dane-only
 *   fingerprint verify secure (case-insensitive; smtp_tls_per_site's MUST and
 *   MUST_NOPEERMATCH are rejected, as Postfix rejects them in this table), the attributes
 *   match, protocols, ciphers, exclude and servername with Postfix's rules for each, and
 *   the lookup order: a recipient domain, then its parent patterns `.b.example`,
 *   `.example`, nearest first; a bracketed next hop without parent lookups.
 * - The tlsfallback proposal's smtp_tls_fallback_level (Postfix 2.12 snapshots): a global
 *   `policy_level=fallback_level` map and the per-destination `fallback` attribute
 *   (may, encrypt, or none to forbid), allowed only on authenticated levels.
 * - Exim's hosts_require_tls, hosts_avoid_tls and tls_tempfail_tryclear (spec, smtp
 *   transport): two host lists applied per MX host, and a `tempfail_tryclear` attribute.
 *
 * Choices where this library differs from, or goes beyond, its sources:
 *
 * - Problems are errors, never warnings: Postfix ignores attributes at level none with a
 *   warning and skips a malformed fingerprint; here both reject the table. The whole input
 *   is checked and every problem reported (PolicyError.problems, checkPolicyTable()).
 * - Keys are normalized (lower case, A-labels, no trailing dot, canonical IP literals,
 *   `[ipv6:addr]` = `[addr]`, service names to ports), so two spellings of one destination
 *   are a duplicate. Keys Postfix would store but never find (`*`, a bare IP address,
 *   `host:port` without brackets) are rejected.
 * - A relay `[host]:port` is looked up as `[host]:port`, then `[host]` (Postfix looks the
 *   next hop up once, exactly as written; the relay here always has a numeric port).
 * - This project's attributes: `cafile` (verify and secure, or a verify/secure shadow),
 *   `cert_file` + `key_file` (together, any level with TLS), `shadow` (a stricter level,
 *   reported, not enforced), `tempfail_tryclear` (only where a TLS failure can end in
 *   cleartext: may, dane, or an authenticated level without fallback=none/encrypt).
 * - `match` also serves a fingerprint/verify/secure shadow of a weaker level.
 * - A fingerprint must have the length of a supported digest (16, 20, 28, 32, 48 or 64
 *   bytes); protocols in hex after >= / <= become names; `>=none` (no bound) is dropped;
 *   `ciphers` takes Postfix's grade names only, as Postfix does.
 * - `protocols` that allow TLSv1 or TLSv1.1 are refused at the authenticated levels: OpenSSL 3
 *   speaks those versions only at security level 0, which only may and encrypt get
 *   (protocols.ts); Postfix takes them and, on OpenSSL 3, never negotiates them.
 * - Strictness (compareStrictness): none < may < encrypt < dane < dane-only <
 *   {fingerprint, verify, secure}; the last three are peers, none stricter than another.
 * - Mandatory levels (isMandatoryLevel) are encrypt, dane-only, fingerprint, verify and
 *   secure; `dane` is opportunistic (mandatory only once usable TLSA records are found).
 * - The fallback map rejects unknown and duplicate levels (Postfix ignores unknown names and
 *   takes the first of two).
 * - Exim lists: see hostlists.ts for the pattern subset and why a requirement (from the
 *   list, the table or DANE) is never turned into cleartext by hostsAvoidTls.
 */
export { PolicyError, formatProblem, type PolicyProblem } from './errors.js';
export {
  compareStrictness,
  DEFAULT_CERT_MATCH,
  defaultPolicy,
  isAuthenticatedLevel,
  isDaneLevel,
  isTlsRequiredInPlan,
  isLevel,
  isMandatoryLevel,
  isOpportunisticLevel,
  isStricter,
  MANDATORY_LEVELS,
  parseLevel,
  type MandatoryLevel,
} from './levels.js';
export { CIPHER_GRADES } from './entry.js';
export {
  checkPolicyFile,
  checkPolicyFiles,
  checkPolicyObject,
  checkPolicyTable,
  checkPolicyText,
  createPolicyTable,
  lookupKeys,
  lookupPolicy,
  PolicyTable,
  type NextHop,
  type PolicyCheck,
  type PolicyInput,
  type PolicyInput as PolicyTableInput,
  type PolicyObjectEntry,
} from './table.js';
export {
  checkFallbackMap,
  fallbackFor,
  parseFallbackMap,
  parseFallbackMap as parseFallbackLevels,
  type FallbackMap,
  type FallbackMapInput,
} from './fallback.js';
export {
  applyHostLists,
  checkHostList,
  inHostList,
  matchHostList,
  parseHostList,
  type HostIdentity,
  type HostList,
  type HostListItem,
  type HostLists,
} from './hostlists.js';
export { normalizeKey } from './keys.js';
export { lookupPolicyAsync, PolicyLookupError, POLICY_LOOKUP_TIMEOUT_MS, type PolicyLookup } from './lookup.js';
