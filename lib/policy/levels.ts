/**
 * Levels: names, classes (authenticated, mandatory, opportunistic) and strictness.
 */
import { AUTHENTICATED_LEVELS, LEVELS, type AuthenticatedLevel, type Level, type Policy } from '../types.js';
import { PolicyError } from './errors.js';

/**
 * Levels at which delivery never happens without TLS. `dane` is not one: with no TLSA
 * records it is `may`, and only with usable TLSA records does it require (and authenticate) TLS.
 */
export const MANDATORY_LEVELS = ['encrypt', 'dane-only', 'fingerprint', 'verify', 'secure'] as const;
export type MandatoryLevel = (typeof MANDATORY_LEVELS)[number];

/** Levels whose `match` attribute lists names (verify, secure) or digests (fingerprint). */
export const MATCH_LEVELS = ['fingerprint', 'verify', 'secure'] as const;

/** Levels that check the server's chain against CAs (Postfix's TLS_MUST_PKIX). */
export const PKIX_LEVELS = ['verify', 'secure'] as const;

/**
 * What `match` means when a verify or secure entry has none: Postfix's main.cf defaults
 * smtp_tls_verify_cert_match = hostname, smtp_tls_secure_cert_match = nexthop, dot-nexthop.
 * The table keeps `match` unset; whoever builds the plan applies these.
 */
export const DEFAULT_CERT_MATCH: Readonly<Record<'verify' | 'secure', readonly string[]>> = Object.freeze({
  verify: Object.freeze(['hostname']),
  secure: Object.freeze(['nexthop', 'dot-nexthop']),
});

/**
 * Strictness ranks: none < may < encrypt < dane < dane-only < {fingerprint, verify, secure}.
 * fingerprint, verify and secure share the top rank: each authenticates the server in its own
 * way (a pinned digest, a CA chain plus the MX name, a CA chain plus the next-hop name) and
 * none of them implies another, so none is stricter than the others. This differs from
 * Postfix's internal numbering (fingerprint < dane < dane-only < verify < secure), which
 * orders its code paths, not guarantees.
 */
const RANK: Readonly<Record<Level, number>> = Object.freeze({
  none: 0,
  may: 1,
  encrypt: 2,
  dane: 3,
  'dane-only': 4,
  fingerprint: 5,
  verify: 5,
  secure: 5,
});

export function isLevel(s: unknown): s is Level {
  return typeof s === 'string' && (LEVELS as readonly string[]).includes(s);
}

/** dane, dane-only, fingerprint, verify, secure: the levels that authenticate the server. */
export function isAuthenticatedLevel(level: Level): level is AuthenticatedLevel {
  return (AUTHENTICATED_LEVELS as readonly string[]).includes(level);
}

/** encrypt, dane-only, fingerprint, verify, secure: never cleartext. `dane` is opportunistic. */
export function isMandatoryLevel(level: Level): level is MandatoryLevel {
  return (MANDATORY_LEVELS as readonly string[]).includes(level);
}

/** dane and dane-only: the levels whose plan depends on the host's TLSA records. */
export function isDaneLevel(level: Level | undefined): level is 'dane' | 'dane-only' {
  return level === 'dane' || level === 'dane-only';
}

/**
 * Whether a host as planned (lib/plan/host.ts) needs TLS at this level: the mandatory levels,
 * and `dane`, which reaches a session only with usable TLSA records (planHost turns it into may
 * or encrypt first otherwise).
 */
export function isTlsRequiredInPlan(level: Level): boolean {
  return isMandatoryLevel(level) || level === 'dane';
}

/** may and dane: TLS when the server (or its DNS) allows it, cleartext otherwise. */
export function isOpportunisticLevel(level: Level): boolean {
  return level === 'may' || level === 'dane';
}

/**
 * Negative when `a` is less strict than `b`, positive when stricter, 0 when equally strict
 * (the same level, or two of fingerprint, verify and secure).
 */
export function compareStrictness(a: Level, b: Level): number {
  return Math.sign(RANK[a] - RANK[b]);
}

/** Whether `a` is strictly stricter than `b`. */
export function isStricter(a: Level, b: Level): boolean {
  return RANK[a] > RANK[b];
}

/** The level a name stands for (case-insensitive, as Postfix), or undefined. */
export function lookupLevel(name: string): Level | undefined {
  const lower = name.toLowerCase();
  return isLevel(lower) ? lower : undefined;
}

/** The reason a name is not a level, for messages: `unknown level "x" (expected one of ...)`. */
export function unknownLevelText(name: string, what = 'level', subject?: string): string {
  const forPart = subject ? ` for ${subject}` : '';
  let hint = '';
  const upper = name.toUpperCase();
  // smtp_tls_per_site's words are not accepted by smtp_tls_policy_maps; say what to write instead.
  if (upper === 'MUST') hint = '; "MUST" is smtp_tls_per_site syntax, write "verify"';
  else if (upper === 'MUST_NOPEERMATCH') hint = '; "MUST_NOPEERMATCH" is smtp_tls_per_site syntax, write "encrypt"';
  else if (name.toLowerCase() === 'halfdane') hint = '; "halfdane" is only ever logged by Postfix, never configured';
  return `unknown ${what} "${name}"${forPart} (expected one of ${LEVELS.join(', ')}${hint})`;
}

/**
 * Parses a level name, case-insensitively as Postfix does. `where` names the setting for the
 * message (e.g. `defaultLevel`). Throws a PolicyError (file `where`, line 0) when it is unknown.
 */
export function parseLevel(s: string, where: string): Level {
  const level = typeof s === 'string' ? lookupLevel(s.trim()) : undefined;
  if (level === undefined) {
    throw new PolicyError([{ file: where, line: 0, message: unknownLevelText(String(s)) }]);
  }
  return level;
}

/** The policy used when the table has no entry: the transport's default level. */
export function defaultPolicy(level: Level | string, where = 'defaultLevel'): Policy {
  return Object.freeze({ level: parseLevel(level, where), source: 'default' });
}
