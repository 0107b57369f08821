/**
 * RFC 8460's report schema as a checker for tests: section 4.4's fields, their JSON types and
 * formats (RFC 3339 date-times, an RFC 5322 addr-spec, IP addresses, host names), section 4.3's
 * result types, the policy types, and the arithmetic the fields imply (a policy's failure count is
 * the sum of its failure details). Every problem is listed with where it is; an empty list is a
 * valid report. Nothing else is allowed (an unknown field is a problem), so a report this library
 * writes must be exactly what the RFC describes.
 *
 * Part of the test kit: erasable TypeScript only.
 */
import { isIP } from 'node:net';

const RESULT_TYPES = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
];
const POLICY_TYPES = ['tlsa', 'sts', 'no-policy-found'];
/** RFC 3339 section 5.6 date-time. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const ADDR_SPEC = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+$/;

type Json = Record<string, unknown>;

export function tlsrptProblems(report: unknown): string[] {
  const problems: string[] = [];
  const problem = (where: string, what: string) => problems.push(`${where}: ${what}`);
  const object = (v: unknown, where: string): v is Json => {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return true;
    problem(where, 'is not an object');
    return false;
  };
  const only = (o: Json, where: string, required: string[], optional: string[] = []) => {
    for (const k of required) if (!(k in o)) problem(where, `has no "${k}"`);
    for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) problem(where, `has a field "${k}" RFC 8460 does not define`);
  };
  const string = (v: unknown, where: string, test?: (s: string) => boolean, what = 'valid') => {
    if (typeof v !== 'string' || v === '') problem(where, 'is not a non-empty string');
    else if (test && !test(v)) problem(where, `is not ${what}: ${JSON.stringify(v)}`);
  };
  const count = (v: unknown, where: string, min: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) problem(where, `is not an integer >= ${min}: ${JSON.stringify(v)}`);
  };
  const strings = (v: unknown, where: string) => {
    if (!Array.isArray(v) || v.length === 0 || v.some((s) => typeof s !== 'string')) problem(where, 'is not a non-empty array of strings');
  };

  if (!object(report, 'report')) return problems;
  only(report, 'report', ['organization-name', 'date-range', 'contact-info', 'report-id', 'policies']);
  string(report['organization-name'], 'organization-name');
  string(report['contact-info'], 'contact-info', (s) => ADDR_SPEC.test(s), 'an addr-spec');
  string(report['report-id'], 'report-id');
  const range = report['date-range'];
  if (object(range, 'date-range')) {
    only(range, 'date-range', ['start-datetime', 'end-datetime']);
    string(range['start-datetime'], 'date-range.start-datetime', (s) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)), 'an RFC 3339 date-time');
    string(range['end-datetime'], 'date-range.end-datetime', (s) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)), 'an RFC 3339 date-time');
    if (typeof range['start-datetime'] === 'string' && typeof range['end-datetime'] === 'string') {
      if (!(Date.parse(range['start-datetime']) < Date.parse(range['end-datetime']))) problem('date-range', 'does not end after it starts');
    }
  }
  const policies = report.policies;
  if (!Array.isArray(policies) || policies.length === 0) {
    problem('policies', 'is not a non-empty array');
    return problems;
  }
  policies.forEach((entry: unknown, i) => {
    const at = `policies[${i}]`;
    if (!object(entry, at)) return;
    only(entry, at, ['policy', 'summary'], ['failure-details']);
    const policy = entry.policy;
    if (object(policy, `${at}.policy`)) {
      only(policy, `${at}.policy`, ['policy-type', 'policy-domain'], ['policy-string', 'mx-host']);
      string(policy['policy-type'], `${at}.policy.policy-type`, (s) => POLICY_TYPES.includes(s), 'tlsa, sts or no-policy-found');
      string(policy['policy-domain'], `${at}.policy.policy-domain`, (s) => HOSTNAME.test(s), 'a domain name');
      if ('policy-string' in policy) strings(policy['policy-string'], `${at}.policy.policy-string`);
      if ('mx-host' in policy) strings(policy['mx-host'], `${at}.policy.mx-host`);
      if (policy['policy-type'] === 'sts' && 'policy-string' in policy && !('mx-host' in policy)) problem(`${at}.policy`, 'is an sts policy with no mx-host');
      if (policy['policy-type'] !== 'sts' && 'mx-host' in policy) problem(`${at}.policy`, 'has mx-host but is not an sts policy');
    }
    const summary = entry.summary;
    let failures = 0;
    if (object(summary, `${at}.summary`)) {
      only(summary, `${at}.summary`, ['total-successful-session-count', 'total-failure-session-count']);
      count(summary['total-successful-session-count'], `${at}.summary.total-successful-session-count`, 0);
      count(summary['total-failure-session-count'], `${at}.summary.total-failure-session-count`, 0);
      failures = summary['total-failure-session-count'] as number;
    }
    const details = entry['failure-details'];
    if (details === undefined) {
      if (failures > 0) problem(at, 'counts failures but has no failure-details');
      return;
    }
    if (!Array.isArray(details) || details.length === 0) {
      problem(`${at}.failure-details`, 'is not a non-empty array');
      return;
    }
    let sum = 0;
    details.forEach((d: unknown, j) => {
      const dat = `${at}.failure-details[${j}]`;
      if (!object(d, dat)) return;
      only(
        d,
        dat,
        ['result-type', 'failed-session-count'],
        ['sending-mta-ip', 'receiving-mx-hostname', 'receiving-mx-helo', 'receiving-ip', 'additional-information', 'failure-reason-code'],
      );
      string(d['result-type'], `${dat}.result-type`, (s) => RESULT_TYPES.includes(s), 'a result type of RFC 8460 section 4.3');
      if ('sending-mta-ip' in d) string(d['sending-mta-ip'], `${dat}.sending-mta-ip`, (s) => isIP(s) !== 0, 'an IP address');
      if ('receiving-ip' in d) string(d['receiving-ip'], `${dat}.receiving-ip`, (s) => isIP(s) !== 0, 'an IP address');
      if ('receiving-mx-hostname' in d) string(d['receiving-mx-hostname'], `${dat}.receiving-mx-hostname`, (s) => HOSTNAME.test(s), 'a host name');
      if ('additional-information' in d) string(d['additional-information'], `${dat}.additional-information`, (s) => URL.canParse(s), 'a URI');
      if ('failure-reason-code' in d) string(d['failure-reason-code'], `${dat}.failure-reason-code`);
      count(d['failed-session-count'], `${dat}.failed-session-count`, 1);
      sum += typeof d['failed-session-count'] === 'number' ? d['failed-session-count'] : 0;
    });
    if (sum !== failures) problem(at, `total-failure-session-count is ${failures}, but its failure-details count ${sum}`);
  });
  return problems;
}
