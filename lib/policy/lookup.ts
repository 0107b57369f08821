/**
 * A policy kept outside the process (Postfix's `smtp_tls_policy_maps = socketmap:...`, a database):
 * the user's async function is asked for each key in Postfix's lookup order, after the table's own
 * entry for that key (maps_find() tries each map for a key before the next key). Its answer is the
 * right-hand side of a table line (`secure match=.example.com`) or an object entry, checked by the
 * table's own checker. A lookup that fails, times out or answers with an invalid entry defers the
 * delivery (Postfix: "TLS policy lookup error"); it never becomes the default level.
 */
import type { Policy } from '../types.js';
import { checkPolicyFiles, checkPolicyObject, checkPolicyText, lookupKeys, type NextHop, type PolicyObjectEntry, type PolicyTable } from './table.js';

/** The user's lookup: the entry for `key` (RHS text or an object entry), or undefined/null when there is none. */
export type PolicyLookup = (key: string) => Promise<string | PolicyObjectEntry | undefined | null> | string | PolicyObjectEntry | undefined | null;

/** How long one call may take before the delivery is deferred. */
export const POLICY_LOOKUP_TIMEOUT_MS = 30_000;

/** Why a lookup could not give a policy: the key, and the reason in words. */
export class PolicyLookupError extends Error {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`policy lookup of ${key} failed: ${reason}`);
  }
}

/** One key's answer from the function, checked; undefined when the function has no entry. */
async function ask(lookup: PolicyLookup, key: string, timeoutMs: number): Promise<Policy | undefined> {
  let timer: NodeJS.Timeout | undefined;
  let answer: Awaited<ReturnType<PolicyLookup>>;
  try {
    answer = await Promise.race([
      Promise.resolve().then(() => lookup(key)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        timer.unref();
      }),
    ]);
  } catch (err) {
    throw new PolicyLookupError(key, err instanceof Error ? err.message : String(err));
  } finally {
    clearTimeout(timer);
  }
  if (answer === undefined || answer === null) return undefined;
  const source = 'policyLookup';
  let check;
  if (typeof answer === 'string') {
    if (answer.trim() === '') throw new PolicyLookupError(key, 'the answer is empty (return undefined for no entry)');
    check = checkPolicyText(`${key} ${answer.replace(/[\r\n]+/g, ' ')}`, source);
  } else if (typeof answer === 'object' && !Array.isArray(answer)) {
    check = checkPolicyObject({ [key]: answer });
  } else {
    throw new PolicyLookupError(key, `the answer must be a string, an object, or undefined, not ${Array.isArray(answer) ? 'an array' : typeof answer}`);
  }
  const table = check.table;
  const problems = table ? checkPolicyFiles(table) : check.problems;
  if (!table || problems.length > 0) throw new PolicyLookupError(key, `invalid entry: ${problems.map((p) => p.message).join('; ')}`);
  const policy = table.lookupExact(table.keys()[0]!);
  if (!policy) throw new PolicyLookupError(key, 'invalid entry');
  return Object.freeze({ ...policy, source: `${source} ${key}` });
}

/**
 * The policy for a next hop with a lookup function: for each key in lookupKeys() order, the
 * table's entry, then the function's; the first found wins, else `defaultPolicy`.
 */
export async function lookupPolicyAsync(
  table: PolicyTable | undefined,
  lookup: PolicyLookup,
  nexthop: NextHop,
  defaultPolicy: Policy,
  timeoutMs = POLICY_LOOKUP_TIMEOUT_MS,
): Promise<Policy> {
  for (const key of lookupKeys(nexthop)) {
    const fromTable = table?.lookupExact(key);
    if (fromTable) return fromTable;
    if (/\s/.test(key)) continue; // a recipient domain no table line could name
    const fromFunction = await ask(lookup, key, timeoutMs);
    if (fromFunction) return fromFunction;
  }
  return defaultPolicy;
}
