/**
 * Which attempts TLS reporting counts, and as what (RFC 8460 section 4): pure, from what the
 * attempt already knows (its plan, the session's facts, the decision, the audit record and the
 * recipient domain's MTA-STS lookup). Nothing here does I/O; lib/tlsrpt/index.ts stores the result.
 *
 * RFC 8460 counts TLS sessions, not messages (section 4.4: "total-successful-session-count",
 * "failed-session-count"). An attempt counts when all of these hold:
 * 1. It went to a recipient domain's MX hosts (an implicit MX too). A relay and an address literal
 *    have no policy domain to report to (Postfix reports only for a next-hop domain, too).
 * 2. It was the TLS attempt: a cleartext retry after a TLS failure is not a TLS session, and the
 *    TLS attempt before it was counted already.
 * 3. It opened a new session: a session reused for a later message was counted when it was opened
 *    (Postfix's smtp_tlsrpt_skip_reused_handshakes).
 * 4. TLS was tried, or a policy ruled on the host before any connection: a host refused by its
 *    policy (DANE's dnssec-invalid, dane-required, tlsa-invalid; an MX outside an MTA-STS policy's
 *    patterns) is a failure with that result type; a session with a result type (no STARTTLS, a
 *    refused STARTTLS, a failed handshake, a failed verification, also when a fallback level then
 *    sent the mail) is a failure; a session whose TLS was established and met its level is a
 *    success. A connection that failed before the STARTTLS decision (no answer, an error reply in
 *    cleartext, the transport closed) and a session at level `none` are not TLS sessions and are
 *    not counted.
 * Then, in this order:
 * - A recipient domain that announced an MTA-STS policy which could not be had (the lookup's
 *   failure: sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid), with no cached
 *   policy standing in: its hosts ran without the policy, so each counted session is a failure of
 *   that result type under an `sts` policy without policy-string or mx-host (section 4.3.2.2). A
 *   cached policy that stood in governed the session, which is counted by its own result.
 * - A session that met its level but failed a report-only check is a failure with that check's
 *   result type: an MTA-STS policy in `testing` mode (RFC 8461 section 5: testing exists to be
 *   reported), then a shadow level.
 *
 * The policy a session is counted under (section 4.4): `tlsa` with the usable TLSA records enforced
 * and their base domain; `sts` with the policy's lines and mx patterns (the library's own lookup,
 * or a policy source's policy_* attributes); `no-policy-found` with the recipient domain.
 */
import { formatTlsa } from '../dane/index.js';
import type { Attempt } from '../deliver/types.js';
import type { StsLookup } from '../mtasts/index.js';
import { SessionCerts } from '../pkix/index.js';
import type { HostPlan } from '../plan/host.js';
import type { SessionFacts } from '../smtp/session.js';
import type { Destination, ResultType } from '../types.js';
import { reportOnlyVerdict } from '../verdict/index.js';

/** A policy as RFC 8460 section 4.4 reports it. */
export interface ReportPolicy {
  /** policy-type. */
  type: 'tlsa' | 'sts' | 'no-policy-found';
  /** policy-domain: the MTA-STS policy's domain, the TLSA base domain, or the recipient domain. */
  domain: string;
  /** policy-string: the MTA-STS policy's lines, or the TLSA records (`3 1 1 <hex>`), sorted; empty for no-policy-found. */
  strings: string[];
  /** mx-host: the MTA-STS policy's mx patterns; empty otherwise. */
  mxHosts: string[];
}

/** One failed session as section 4.4's failure-details describe it. */
export interface SessionFailure {
  resultType: ResultType;
  /** sending-mta-ip: the address the connection left from ('' before a connection, for a host refused by its policy). */
  sendingIp: string;
  /** receiving-mx-hostname. */
  receivingMx: string;
  /** receiving-ip. */
  receivingIp: string;
  /** Why, in one sentence (reported as failure-reason-code, section 4.4's "TLS-related error code or error message"). */
  reason: string;
}

/** A counted session: the report it goes into (domain and UTC day), its policy, and its failure if it failed. */
export interface CountedSession {
  /** The recipient domain (A-label) whose `_smtp._tls` record receives the report. */
  domain: string;
  /** The UTC day of the session, YYYY-MM-DD (section 4.4: a report covers a full UTC day). */
  day: string;
  policy: ReportPolicy;
  failure?: SessionFailure;
}

/** What countSession reads of one attempt. */
export interface SessionInput {
  destination: Destination;
  attempt: Pick<Attempt, 'mode' | 'reused' | 'resultType' | 'reason' | 'mx' | 'address' | 'audit'>;
  plan: HostPlan;
  facts: SessionFacts;
  /** The recipient domain's MTA-STS lookup, when there was one. */
  lookup?: StsLookup;
  /** ms since the epoch. */
  now: number;
}

/** YYYY-MM-DD of a time, in UTC. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The session as TLS reporting counts it, or undefined when it does not count (see the top of this file). */
export function countSession(input: SessionInput): CountedSession | undefined {
  const { destination, attempt, plan, facts, lookup } = input;
  if (destination.kind !== 'domain') return undefined; // 1
  if (attempt.mode !== 'tls') return undefined; // 2
  if (attempt.reused) return undefined; // 3
  const domain = destination.domain;
  const base = { domain, day: utcDay(input.now) };
  const counted = (policy: ReportPolicy, resultType?: ResultType, reason?: string): CountedSession =>
    resultType
      ? {
          ...base,
          policy,
          failure: {
            resultType,
            sendingIp: facts.localAddress ?? '',
            receivingMx: attempt.mx,
            receivingIp: attempt.address,
            reason: reason ?? '',
          },
        }
      : { ...base, policy };
  let policy = reportPolicy(plan, domain);
  // Section 4.3.2.2: the domain announced an MTA-STS policy that could not be had, and none is
  // cached; not for a host DANE refused (DANE governs it, RFC 8461 section 2).
  const daneRefused = plan.refused !== undefined && plan.refusedStage === 'tlsa';
  const stsFailure = lookup?.failure && !lookup.policy && policy.type === 'no-policy-found' && !daneRefused ? lookup.failure : undefined;
  if (stsFailure) policy = { type: 'sts', domain: lookup!.domain, strings: [], mxHosts: [] };
  const failureOf = (resultType: ResultType, reason: string | undefined) =>
    stsFailure ? counted(policy, stsFailure.resultType, stsFailure.reason) : counted(policy, resultType, reason);
  // 4: a host its policy refused before any connection
  if (plan.refused) return failureOf(plan.refusedType ?? 'validation-failure', plan.refused);
  if (plan.level === 'none') return undefined;
  if (attempt.resultType) return failureOf(attempt.resultType, attempt.reason);
  if (!facts.tls) return undefined; // no TLS session: never connected, or an error reply before the STARTTLS decision
  if (stsFailure) return counted(policy, stsFailure.resultType, stsFailure.reason);
  // A report-only check that failed on a session that met its level: MTA-STS testing mode, then the shadow level.
  for (const check of [plan.stsTesting, plan.shadowPlan]) {
    if (!check) continue;
    const judged = reportOnlyVerdict(check, plan, facts, new SessionCerts(facts.tls?.chain));
    if (judged.resultType) return counted(policy, judged.resultType, judged.result.replace(/^fail: /, ''));
  }
  return counted(policy);
}

/** The policy a host's session is reported under (section 4.4). */
export function reportPolicy(plan: HostPlan, recipientDomain: string): ReportPolicy {
  if (plan.policyType === 'tlsa' && plan.dane) {
    return { type: 'tlsa', domain: plan.dane.baseDomain, strings: plan.dane.records.map(formatTlsa).sort(), mxHosts: [] };
  }
  const reported = plan.sts?.reported ?? plan.policy.reported;
  if (plan.policyType === 'sts') {
    return {
      type: 'sts',
      domain: reported?.domain ?? recipientDomain,
      strings: [...(reported?.strings ?? [])],
      mxHosts: [...(reported?.mxHostPatterns ?? [])],
    };
  }
  return {
    type: 'no-policy-found',
    domain: reported?.type === 'no-policy-found' && reported.domain ? reported.domain : recipientDomain,
    strings: [],
    mxHosts: [],
  };
}
