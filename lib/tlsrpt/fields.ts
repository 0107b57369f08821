/**
 * How a counted session is kept in the counter store (pure): one bucket per report (recipient
 * domain and UTC day), one counter per (policy: type, policy-string, policy-domain, mx-host) for
 * successes, and one per (policy, result type, sending IP, receiving MX host, receiving IP) for
 * failures, the granularity of RFC 8460 section 4.4's summary and failure-details. A counter's name
 * is the JSON of its key, so every process writing the same key adds to the same counter.
 */
import { RESULT_TYPES, type ResultType } from '../types.js';
import type { CountedSession, ReportPolicy } from './session.js';

/** A counter's key, read back. */
export interface CounterKey {
  policy: ReportPolicy;
  /** Present for a failure counter. */
  failure?: { resultType: ResultType; sendingIp: string; receivingMx: string; receivingIp: string };
}

const POLICY_TYPES = ['tlsa', 'sts', 'no-policy-found'] as const;

/** The bucket of a report: `YYYY-MM-DD|domain` (a domain has no `|`). */
export function bucketOf(domain: string, day: string): string {
  return `${day}|${domain}`;
}

/** The domain and day of a bucket; undefined for a name that is not one. */
export function parseBucket(bucket: string): { domain: string; day: string } | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})\|([^|]+)$/.exec(bucket);
  return m ? { day: m[1]!, domain: m[2]! } : undefined;
}

/** The counter a counted session adds one to. */
export function counterField(session: CountedSession): string {
  const p = session.policy;
  const policy = [p.type, p.domain, p.strings, p.mxHosts];
  const f = session.failure;
  return JSON.stringify(f ? [...policy, f.resultType, f.sendingIp, f.receivingMx, f.receivingIp] : policy);
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** A counter's key from its name; undefined for a name this library did not write. */
export function parseCounterField(field: string): CounterKey | undefined {
  let v: unknown;
  try {
    v = JSON.parse(field);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || (v.length !== 4 && v.length !== 8)) return undefined;
  const [type, domain, strings, mxHosts, resultType, sendingIp, receivingMx, receivingIp] = v as unknown[];
  if (!(POLICY_TYPES as readonly unknown[]).includes(type) || typeof domain !== 'string' || !isStrings(strings) || !isStrings(mxHosts)) return undefined;
  const policy: ReportPolicy = { type: type as ReportPolicy['type'], domain, strings, mxHosts };
  if (v.length === 4) return { policy };
  if (!(RESULT_TYPES as readonly unknown[]).includes(resultType)) return undefined;
  if (typeof sendingIp !== 'string' || typeof receivingMx !== 'string' || typeof receivingIp !== 'string') return undefined;
  return { policy, failure: { resultType: resultType as ResultType, sendingIp, receivingMx, receivingIp } };
}
