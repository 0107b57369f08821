/**
 * deliver: one destination's delivery, as a list of steps (each in its own file):
 * 1. `gather` (gather.ts, I/O): the MX RRset, each host's addresses and TLSA records, with their
 *    DNSSEC status; no MX is the domain itself (implicit MX), a null MX (RFC 7505) or NXDOMAIN a
 *    permanent failure; hosts in preference order, random among equal preference.
 * 2. For each address, up to `maxMxAddresses`: `runAttempt` (attempt.ts, I/O) has `planHost`
 *    (lib/plan/host.ts) make the host's whole plan, opens (or reuses) a session, has `judge`
 *    (lib/verdict) and `decide` (lib/decide) rule on it, and carries the decision out.
 * 3. Each attempt is folded into the outcome (outcome.ts, pure): `settleTransaction` for a sent
 *    transaction, `recordFailure` otherwise. A TLS failure that allows a cleartext retry on a new
 *    connection ('cleartext-later') is put aside; the other MX hosts are tried with TLS first,
 *    then the put-aside addresses in cleartext, in order ('cleartext-now' retries at once:
 *    Exim's tls_tempfail_tryclear), as Postfix's smtp_connect.c orders its tries.
 * 4. It stops early when a server may already hold the message, the transport was closed, or
 *    Postfix's smtp_mx_session_limit is reached; `conclude` gives the recipients, the status
 *    and the code that wins.
 */
import type { OpportunisticRules } from '../decide/index.js';
import type { HostTarget } from '../plan/host.js';
import { Session } from '../smtp/session.js';
import { renderTemplate } from '../audit/index.js';
import { runAttempt, type AttemptContext, type SessionRun } from './attempt.js';
import { gather } from './gather.js';
import { conclude, finalFailure, newOutcome, recordFailure, sessionLimitReached, settleTransaction } from './outcome.js';
import type { Delivery, DeliverDns, DeliverHooks, DeliverMail, DeliverSettings, Destination } from './types.js';
import { PolicyLookupError } from '../policy/lookup.js';
import type { Policy } from '../types.js';
import { stsGoverns } from '../plan/host.js';
import type { StsLookup } from '../mtasts/index.js';

export type { Attempt, AttemptReport, DeliverDns, DeliverEvent, DeliverHooks, DeliverSettings, Delivery, Destination, Parked } from './types.js';
export { MAX_MX_NAMES, orderMx } from './gather.js';

export async function deliver(destination: Destination, mail: DeliverMail, dns: DeliverDns, settings: DeliverSettings, hooks: DeliverHooks): Promise<Delivery> {
  const nexthop = destination.kind === 'relay' ? destination.host : destination.domain;
  let policy: Policy;
  try {
    policy = messagePolicy(await hooks.policyFor(destination), mail);
  } catch (err) {
    if (!(err instanceof PolicyLookupError)) throw err;
    // Postfix defers on a TLS policy lookup error; the default level is never used instead.
    return {
      destination: nexthop,
      level: hooks.defaultLevel,
      policySource: 'policyLookup',
      attempts: [],
      ...conclude(newOutcome(mail.recipients), { reason: `${nexthop}: ${err.message}`, code: 'EPOLICYLOOKUP', temporary: true }, false),
    };
  }
  const delivery: Delivery = {
    destination: nexthop,
    level: policy.level,
    policySource: policy.source,
    status: 'deferred',
    accepted: [],
    rejected: [],
    pending: [],
    attempts: [],
  };
  // What the attempts add up to (lib/deliver/outcome.ts holds the rules).
  const outcome = newOutcome(mail.recipients);
  const end = (failure?: { reason: string; code: string; temporary: boolean }): Delivery =>
    Object.assign(delivery, conclude(outcome, failure, settings.tlsFailuresPermanent));
  const fail = (reason: string, code: string, temporary: boolean): Delivery => end({ reason, code, temporary });

  if (settings.tracker?.closed) return fail(`${nexthop}: ${settings.tracker.closed}; recipients left pending`, 'ECONNECTION', true);
  // MTA-STS (RFC 8461) for a recipient domain at the default level, looked up beside the MX
  // hosts; planHost decides, host by host, whether it governs (DANE first).
  const stsLookup =
    settings.mtaSts && destination.kind === 'domain' && stsGoverns(policy) && !mail.tlsRequiredNo
      ? settings.mtaSts
          .lookup(destination.domain)
          .catch((err: Error): StsLookup => ({ domain: destination.domain, notes: [`the MTA-STS lookup failed: ${err.message}`] }))
      : undefined;
  const [resolved, sts] = await Promise.all([gather(destination, dns, settings, policy), stsLookup]);
  if (sts) delivery.mtaSts = sts;
  if ('fail' in resolved)
    return fail(`${nexthop}: delivery at level ${policy.level} failed: ${resolved.fail.reason}`, resolved.fail.code, resolved.fail.temporary);

  const rules: OpportunisticRules = {
    minimalBackoff: settings.rules.minimalBackoff,
    strict: settings.rules.strict ?? false,
    messageAge: mail.messageAge,
    ...(settings.rules.tempfailTryclear !== undefined ? { tempfailTryclear: settings.rules.tempfailTryclear } : {}),
  };

  // SMTP AUTH goes only to the configured relay: never to an MX host, nor to an address literal
  // a recipient named (Postfix sends SASL only to next hops it has credentials for).
  const authenticate = settings.auth !== undefined && destination.kind === 'relay' && destination.authenticate === true;

  const context: AttemptContext = {
    nexthop,
    policy,
    mail,
    settings,
    hooks,
    rules,
    authenticate,
    relay: destination.kind === 'relay',
    remaining: () => outcome.remaining,
    ...(sts?.policy ? { sts: { domain: sts.domain, id: sts.policy.id, mode: sts.policy.mode, mx: sts.policy.mx, lines: sts.policy.lines } } : {}),
    open: (options) => Session.open(options),
  };

  const record = (run: SessionRun) => {
    run.attempt.auditLine = renderTemplate(settings.auditTemplate, run.attempt.audit, { quoteValues: true });
    delivery.attempts.push(run.attempt);
    settings.logger.info({ tnx: 'tls-audit', destination: nexthop }, '%s', run.attempt.auditLine);
    settings.observe?.({
      type: 'attempt',
      destination: nexthop,
      attempt: run.attempt,
      plan: run.plan,
      facts: run.facts,
      decision: run.decision,
      ...(run.verdict ? { verdict: run.verdict } : {}),
    });
  };

  /** Applies a finished transaction; returns true when this destination is done. */
  const settle = (run: SessionRun): boolean => {
    if (!run.transaction) return false;
    const settled = settleTransaction(outcome, run.transaction, run.attempt.audit.relay, nexthop);
    if (settled.done) return true;
    if (settled.failed) {
      run.attempt.decision = 'next';
      run.attempt.transactionFailed = true;
      run.attempt.reason = settled.failed;
    }
    return false;
  };

  // RFC 8689 section 5: a REQUIRETLS message that no MX may carry is returned with 5.7.30.
  let failures = 0;
  let requireTlsFailures = 0;
  const later: HostTarget[] = [];
  const tryTarget = async (target: HostTarget, mode: 'tls' | 'cleartext-retry'): Promise<boolean> => {
    const run = await runAttempt(target, mode, context);
    record(run);
    // TLS reporting counts new TLS sessions (lib/tlsrpt/session.ts says which); report messages are sent without this hook.
    await settings.tlsRpt?.session({ destination, attempt: run.attempt, plan: run.plan, facts: run.facts, ...(sts ? { lookup: sts } : {}) });
    const d = run.decision;
    if (d.action === 'send') return settle(run);
    // A cleartext retry is planned only from a TLS attempt, so a retry can never loop.
    if (d.action === 'cleartext-now' && mode === 'tls') {
      settings.logger.warn({ tnx: 'tls-policy', destination: nexthop }, '%s; retrying in cleartext at once (tlsTempfailTryclear)', d.reason);
      return tryTarget(target, 'cleartext-retry');
    }
    if (d.action === 'cleartext-later' && mode === 'tls') later.push(target);
    failures++;
    if (d.action === 'next' && d.requireTls) requireTlsFailures++;
    recordFailure(outcome, d, run.failureCode);
    return false;
  };

  const limitReached = () => sessionLimitReached(outcome, settings.maxMxSessions);
  // After each attempt: stop when a server may already hold the message, or the transport was closed.
  const stopped = (): Delivery | undefined => {
    if (outcome.mayBeDelivered) return fail(`${nexthop}: ${outcome.mayBeDelivered}; recipients left pending`, 'ECONNECTION', true);
    const closed = settings.tracker?.closed;
    if (closed)
      return fail(`${nexthop}: ${closed}; recipients left pending${outcome.failures.length ? ` (${outcome.failures.join('; ')})` : ''}`, 'ECONNECTION', true);
    return undefined;
  };
  for (const target of resolved.targets) {
    const stop = stopped();
    if (stop) return stop;
    if (await tryTarget(target, 'tls')) return end();
    if (limitReached()) break;
  }
  for (const target of limitReached() ? [] : [...later]) {
    const stop = stopped();
    if (stop) return stop;
    if (await tryTarget(target, 'cleartext-retry')) return end();
    if (limitReached()) break;
  }
  const stop = stopped();
  if (stop) return stop;
  if (mail.requireTls && failures > 0 && failures === requireTlsFailures) {
    return end({
      reason: `${nexthop}: 5.7.30 REQUIRETLS support required: no MX host can carry this message as RFC 8689 section 4.2.1 requires: ${outcome.failures.join('; ')}`,
      code: 'EREQUIRETLS',
      temporary: false,
    });
  }
  const tlsFailureSeen = delivery.attempts.some((a) => a.stage !== undefined && a.decision !== 'send');
  const under = sts?.policy?.mode === 'enforce' ? ` under the MTA-STS policy of ${sts.domain} (mode enforce)` : '';
  return end(finalFailure(outcome, { nexthop, level: `${policy.level}${under}`, tlsFailureSeen }));
}

/**
 * The destination's policy for this message (RFC 8689):
 * - REQUIRETLS: a destination at the default level is looked up as at `dane` (dane-only stays),
 *   so that DANE applies where the MX publishes TLSA records and MTA-STS where it does not;
 *   planHost then refuses every host neither authenticates (section 4.2.1).
 * - `TLS-Required: No` (section 4.2.2): the recipient's own policies are not enforced: a default
 *   `dane` or `dane-only` runs as `may` (TLS where it can, no deferral for an authentication
 *   failure), and MTA-STS is not looked up. A policy-table entry, a policy source's answer and
 *   every other default level are the operator's word and hold.
 */
function messagePolicy(policy: Policy, mail: DeliverMail): Policy {
  if (policy.source !== 'default') return policy;
  if (mail.requireTls) return policy.level === 'dane-only' ? policy : { ...policy, level: 'dane' };
  if (mail.tlsRequiredNo && (policy.level === 'dane' || policy.level === 'dane-only')) return { ...policy, level: 'may' };
  return policy;
}
