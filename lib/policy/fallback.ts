/**
 * Fallback levels, after Postfix's tlsfallback proposal (smtp_tls_fallback_level, Postfix
 * 2.12 snapshots by Viktor Dukhovni, never merged into a release): when an authenticated
 * level cannot be met, deliver at a lower level, with an audit trail.
 */
import { AUTHENTICATED_LEVELS, type AuthenticatedLevel, type FallbackLevel, type Policy } from '../types.js';
import { PolicyError, type PolicyProblem } from './errors.js';
import { isAuthenticatedLevel, lookupLevel } from './levels.js';

/** Global fallback levels by policy level; frozen. */
export type FallbackMap = Readonly<Partial<Record<AuthenticatedLevel, FallbackLevel>>>;

/** What parseFallbackMap() accepts: `"dane=encrypt, verify=may"` or `{ dane: 'encrypt' }`. */
export type FallbackMapInput = string | Readonly<Record<string, string>> | FallbackMap | undefined | null;

/**
 * Parses the global map: white space or comma separated `policy_level=fallback_level`
 * pairs, or an object. The policy level must authenticate (dane, dane-only, fingerprint,
 * verify, secure); the fallback level must be encrypt or may. `where` names the setting in
 * messages; a problem's line is the item's position (1-based). Throws a PolicyError listing
 * every problem.
 */
export function parseFallbackMap(input: FallbackMapInput, where = 'fallbackLevels'): FallbackMap {
  const { map, problems } = checkFallbackMap(input, where);
  if (problems.length > 0) throw new PolicyError(problems);
  return map;
}

/** Like parseFallbackMap(), but returns the problems instead of throwing. */
export function checkFallbackMap(input: FallbackMapInput, where = 'fallbackLevels'): { map: FallbackMap; problems: PolicyProblem[] } {
  const problems: PolicyProblem[] = [];
  const pairs: [string, unknown][] = [];
  if (typeof input === 'string') {
    for (const item of input.split(/[\s,]+/).filter((t) => t !== '')) {
      const eq = item.indexOf('=');
      if (eq <= 0) {
        problems.push({ file: where, line: pairs.length + 1, message: `malformed item "${item}" (expected policy_level=fallback_level)` });
        pairs.push(['', undefined]);
      } else {
        pairs.push([item.slice(0, eq), item.slice(eq + 1)]);
      }
    }
  } else if (input !== undefined && input !== null) {
    if (typeof input !== 'object' || Array.isArray(input)) {
      problems.push({ file: where, line: 0, message: 'fallback levels must be a string or an object' });
    } else {
      pairs.push(...Object.entries(input));
    }
  }

  const map: Partial<Record<AuthenticatedLevel, FallbackLevel>> = {};
  const seenAt = new Map<string, number>();
  pairs.forEach(([name, value], i) => {
    const line = i + 1;
    if (name === '') return; // already reported as malformed
    const report = (message: string) => problems.push({ file: where, line, message });
    const level = lookupLevel(name);
    if (level === undefined) {
      report(`unknown level "${name}" (expected one of ${AUTHENTICATED_LEVELS.join(', ')})`);
      return;
    }
    if (!isAuthenticatedLevel(level)) {
      report(`level "${level}" cannot have a fallback level (only ${AUTHENTICATED_LEVELS.join(', ')} can)`);
      return;
    }
    const fb = typeof value === 'string' ? value.toLowerCase() : undefined;
    if (fb !== 'encrypt' && fb !== 'may') {
      report(`invalid fallback level ${typeof value === 'string' ? `"${value}"` : String(value)} for ${level} (expected encrypt or may)`);
      return;
    }
    const first = seenAt.get(level);
    if (first !== undefined) {
      report(`${level} is given twice, at items ${first} and ${line}`);
      return;
    }
    seenAt.set(level, line);
    map[level] = fb;
  });
  return { map: Object.freeze(map), problems };
}

/**
 * The fallback level for a policy, if any. The destination's own `fallback` attribute wins
 * (`none` forbids fallback even when the global map has one); otherwise the global map's
 * entry for the policy's level. Only authenticated levels ever fall back.
 */
export function fallbackFor(policy: Policy, map?: FallbackMap): FallbackLevel | undefined {
  if (!isAuthenticatedLevel(policy.level)) return undefined;
  if (policy.fallback === 'none') return undefined;
  if (policy.fallback !== undefined) return policy.fallback;
  return map?.[policy.level];
}
