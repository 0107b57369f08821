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
import type { Verdict } from '../types.js';
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
  if (!shadow) return '';
  if (shadow.known !== undefined) return shadow.known;
  if (shadow.level === 'none' || shadow.level === 'may') return 'pass';
  if (!facts.tls) {
    const why = facts.failure
      ? facts.failure.message
      : facts.starttlsOffered
        ? `STARTTLS was refused${facts.starttlsReply ? `: ${facts.starttlsReply}` : ''}`
        : 'no STARTTLS was offered';
    return `fail: ${plan.where} ${why}`;
  }
  if (shadow.level === 'encrypt') return 'pass';
  if (shadow.dane) {
    if ('result' in shadow.dane) return shadow.dane.result;
    const verdict = daneVerdict(plan, facts, shadow.dane.session, certs, now);
    return verdict?.ok ? 'pass' : `fail: ${verdict?.reason ?? 'no TLS'}`;
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
  return verdict.ok ? 'pass' : `fail: ${verdict.reason}`;
}
