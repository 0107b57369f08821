/**
 * The RFC 8460 result type of one attempt (section 4.3), from what the plan, the decision and the
 * verdict already know, so TLS-RPT can count it and a caller can switch on it:
 * - a host refused before any connection: the plan's type (dnssec-invalid: the TLSA lookup
 *   failed; dane-required: dane-only without usable DANE; tlsa-invalid: only unusable records);
 * - no STARTTLS, or STARTTLS refused, at a level that needs TLS: starttls-not-supported;
 * - a failed handshake or a session lost inside TLS: validation-failure (RFC 8460 has no word of
 *   its own for them);
 * - a failed verification: the verdict's type (certificate-host-mismatch, certificate-expired,
 *   certificate-not-trusted, tlsa-invalid, validation-failure), also when a fallback level then
 *   sent the mail: the policy failed, which is what a report says.
 * Success, and failures that are not TLS failures (a reply, a refused connection), have none.
 */
import type { Decision } from '../decide/index.js';
import type { ResultType, Stage, Verdict } from '../types.js';

export function resultTypeOf(refusedType: ResultType | undefined, decision: Decision, verdict: Verdict | undefined): ResultType | undefined {
  if (refusedType) return refusedType;
  const stage: Stage | undefined = 'stage' in decision ? decision.stage : undefined;
  switch (stage) {
    case undefined:
      return undefined;
    case 'tlsa':
      return 'dnssec-invalid';
    case 'policy':
      return 'validation-failure';
    case 'no-starttls':
    case 'starttls-refused':
      return 'starttls-not-supported';
    case 'handshake':
    case 'session':
      return 'validation-failure';
    case 'verification':
      return verdict?.resultType ?? 'validation-failure';
  }
}
