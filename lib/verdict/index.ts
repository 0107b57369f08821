/**
 * verdict: a host's plan x what its session showed -> trust, and on failure the reason. Pure.
 *
 * DANE levels with usable records are judged by the DANE module (RFC 7672 section 3, OpenSSL's
 * DANE verification as Postfix uses it); every other level by the PKIX module (Postfix's
 * fingerprint, verify and secure; may and encrypt accept any peer and report what it was). The
 * shadow level is judged on the same facts and never changes what happens: "pass", or
 * "fail: why" (the tlsfallback proposal's shadow, reported in the audit).
 */
import { daneVerify } from '../dane/index.js';
import type { HostPlan, ShadowPlan } from '../plan/host.js';
import type { DaneSession } from '../plan/index.js';
import type { SessionFacts } from '../smtp/session.js';
import { isDaneLevel } from '../policy/levels.js';
import type { ResultType, Verdict } from '../types.js';
import { verifyPeer, type SessionCerts } from '../pkix/index.js';

function daneVerdict(plan: HostPlan, facts: SessionFacts, dane: DaneSession, certs: SessionCerts, now: Date): Verdict | undefined {
  if (!facts.tls) return undefined;
  return daneVerify({
    certs,
    records: dane.records,
    chain: facts.tls.chain,
    tlsaName: dane.tlsaName,
    host: plan.host,
    names: dane.names,
    now,
    trust: dane.trust,
  });
}

/** The verdict on a session's peer under its plan; undefined without TLS. */
export function judge(plan: HostPlan, facts: SessionFacts, certs: SessionCerts, now = new Date()): Verdict | undefined {
  if (!facts.tls) return undefined;
  if (plan.dane) return daneVerdict(plan, facts, plan.dane, certs, now);
  return verifyPeer({
    certs,
    level: plan.verifyLevel,
    host: plan.host,
    names: plan.names,
    fingerprints: plan.level === 'fingerprint' ? plan.fingerprints : [],
    digest: plan.digest,
    peer: facts.tls,
  });
}

/** The shadow level, judged on the same facts: '' without a shadow, "pass", or "fail: why". */
export function judgeShadow(plan: HostPlan, facts: SessionFacts, certs: SessionCerts, now = new Date()): string {
  return judgeReportOnly(plan.shadowPlan, plan, facts, certs, now);
}

/**
 * An MTA-STS policy in testing mode, judged on the same facts as a shadow level is (RFC 8461
 * section 5: "testing" reports, never enforces): '' without one, "pass", or "fail: why".
 */
export function judgeStsTesting(plan: HostPlan, facts: SessionFacts, certs: SessionCerts, now = new Date()): string {
  return judgeReportOnly(plan.stsTesting, plan, facts, certs, now);
}

function judgeReportOnly(shadow: ShadowPlan | undefined, plan: HostPlan, facts: SessionFacts, certs: SessionCerts, now: Date): string {
  return reportOnlyVerdict(shadow, plan, facts, certs, now).result;
}

/**
 * A report-only check (a shadow level, an MTA-STS policy in testing mode) on a session's facts:
 * `result` as the audit shows it ('' without one, "pass", or "fail: why"), and on failure RFC
 * 8460 section 4.3's result type, which TLS reporting counts (lib/tlsrpt).
 */
export function reportOnlyVerdict(
  shadow: ShadowPlan | undefined,
  plan: HostPlan,
  facts: SessionFacts,
  certs: SessionCerts,
  now = new Date(),
): { result: string; resultType?: ResultType } {
  if (!shadow) return { result: '' };
  // known without a session: an MTA-STS mx pattern that does not cover the host
  if (shadow.known !== undefined) return { result: shadow.known, resultType: 'validation-failure' };
  if (shadow.level === 'none' || shadow.level === 'may') return { result: 'pass' };
  if (!facts.tls) {
    const why = facts.failure
      ? facts.failure.message
      : facts.starttlsOffered
        ? `STARTTLS was refused${facts.starttlsReply ? `: ${facts.starttlsReply}` : ''}`
        : 'no STARTTLS was offered';
    // section 4.3.1: no STARTTLS, or a refused one; a failed handshake has no word of its own
    const failedInTls = facts.failure?.kind === 'handshake' || facts.failure?.kind === 'tls-session';
    return { result: `fail: ${plan.where} ${why}`, resultType: failedInTls ? 'validation-failure' : 'starttls-not-supported' };
  }
  if (shadow.level === 'encrypt') return { result: 'pass' };
  if (shadow.dane) {
    // section 4.3.2.1: the TLSA lookup failed (dnssec-invalid), or dane-only found no secure TLSA (dane-required)
    if ('result' in shadow.dane) return { result: shadow.dane.result, ...(shadow.dane.resultType ? { resultType: shadow.dane.resultType } : {}) };
    const verdict = daneVerdict(plan, facts, shadow.dane.session, certs, now);
    return verdict?.ok ? { result: 'pass' } : { result: `fail: ${verdict?.reason ?? 'no TLS'}`, resultType: verdict?.resultType ?? 'validation-failure' };
  }
  const verdict = verifyPeer({
    certs,
    level: isDaneLevel(shadow.level) ? 'encrypt' : shadow.level,
    host: plan.host,
    names: shadow.names,
    fingerprints: shadow.fingerprints,
    digest: plan.digest,
    peer: facts.tls,
  });
  return verdict.ok ? { result: 'pass' } : { result: `fail: ${verdict.reason}`, resultType: verdict.resultType ?? 'validation-failure' };
}
