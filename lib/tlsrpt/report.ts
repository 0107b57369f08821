/**
 * The report (RFC 8460 section 4), pure: a recipient domain's counters for one UTC day, as the
 * section 4 JSON. One entry in `policies` per policy the sessions ran under (section 4.4: type,
 * policy-string, policy-domain, mx-host), with its summary and its failure-details, one per
 * (result type, sending MTA IP, receiving MX host, receiving IP).
 */
import type { ResultType } from '../types.js';
import type { CounterKey } from './fields.js';
import type { ReportPolicy } from './session.js';

/** Section 4.4's report, as JSON. */
export interface TlsRptReport {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info': string;
  'report-id': string;
  policies: TlsRptPolicyResult[];
}

export interface TlsRptPolicyResult {
  policy: {
    'policy-type': ReportPolicy['type'];
    /** The MTA-STS policy's lines, or the TLSA records; absent when there are none (no-policy-found). */
    'policy-string'?: string[];
    'policy-domain': string;
    /** The MTA-STS policy's mx patterns; absent when there are none. */
    'mx-host'?: string[];
  };
  summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
  'failure-details'?: TlsRptFailureDetail[];
}

export interface TlsRptFailureDetail {
  'result-type': ResultType;
  /** Absent for a host its policy refused before any connection. */
  'sending-mta-ip'?: string;
  'receiving-mx-hostname': string;
  'receiving-ip': string;
  'failed-session-count': number;
  /** Section 4.4: "a text field to include a TLS-related error code or error message": the last reason seen. */
  'failure-reason-code'?: string;
}

/** Who sends the report (the tlsRpt option). */
export interface Submitter {
  organization: string;
  contact: string;
  /** The submitter's domain. */
  submitter: string;
}

/** Reasons are one line, and at most this long in a report. */
const MAX_REASON = 500;

/** The report-id: unique per submitter, domain and day, and the same when a delivery is retried; in msg-id form for the subject (section 5.3). */
export function reportId(domain: string, day: string, submitter: string): string {
  return `${day}.${domain}@${submitter}`;
}

/** Section 4.4's date-range of a UTC day: 00:00:00 to 23:59:59 (the RFC's example). */
export function dateRange(day: string): { 'start-datetime': string; 'end-datetime': string } {
  return { 'start-datetime': `${day}T00:00:00Z`, 'end-datetime': `${day}T23:59:59Z` };
}

const policyKey = (p: ReportPolicy) => JSON.stringify([p.type, p.domain, p.strings, p.mxHosts]);

/** A report's `policies` from its counters (rows with a count of 0 or less are left out); empty without any. */
export function reportPolicies(rows: ReadonlyArray<CounterKey & { count: number; note?: string }>): TlsRptPolicyResult[] {
  const policies = new Map<string, { policy: ReportPolicy; ok: number; failed: number; details: TlsRptFailureDetail[] }>();
  for (const row of rows) {
    if (!(row.count > 0)) continue;
    const key = policyKey(row.policy);
    const entry = policies.get(key) ?? { policy: row.policy, ok: 0, failed: 0, details: [] };
    policies.set(key, entry);
    if (!row.failure) {
      entry.ok += row.count;
      continue;
    }
    entry.failed += row.count;
    const f = row.failure;
    const reason = row.note?.replace(/\s+/g, ' ').trim().slice(0, MAX_REASON);
    entry.details.push({
      'result-type': f.resultType,
      ...(f.sendingIp ? { 'sending-mta-ip': f.sendingIp } : {}),
      'receiving-mx-hostname': f.receivingMx,
      'receiving-ip': f.receivingIp,
      'failed-session-count': row.count,
      ...(reason ? { 'failure-reason-code': reason } : {}),
    });
  }
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...policies.entries()]
    .sort(([a], [b]) => order(a, b))
    .map(([, e]) => ({
      policy: {
        'policy-type': e.policy.type,
        ...(e.policy.strings.length ? { 'policy-string': e.policy.strings } : {}),
        'policy-domain': e.policy.domain,
        ...(e.policy.mxHosts.length ? { 'mx-host': e.policy.mxHosts } : {}),
      },
      summary: { 'total-successful-session-count': e.ok, 'total-failure-session-count': e.failed },
      ...(e.details.length
        ? {
            'failure-details': e.details.sort((a, b) =>
              order(
                `${a['result-type']} ${a['receiving-mx-hostname']} ${a['receiving-ip']} ${a['sending-mta-ip'] ?? ''}`,
                `${b['result-type']} ${b['receiving-mx-hostname']} ${b['receiving-ip']} ${b['sending-mta-ip'] ?? ''}`,
              ),
            ),
          }
        : {}),
    }));
}

/** The report of `domain` for `day` from its counters; undefined without any. */
export function buildReport(
  domain: string,
  day: string,
  rows: ReadonlyArray<CounterKey & { count: number; note?: string }>,
  who: Submitter,
): TlsRptReport | undefined {
  const results = reportPolicies(rows);
  if (results.length === 0) return undefined;
  return {
    'organization-name': who.organization,
    'date-range': dateRange(day),
    'contact-info': who.contact,
    'report-id': reportId(domain, day, who.submitter),
    policies: results,
  };
}

/** Whether a report has a failed session (by default only such days are reported, as mox does). */
export function hasFailure(report: Pick<TlsRptReport, 'policies'>): boolean {
  return report.policies.some((p) => p.summary['total-failure-session-count'] > 0);
}
