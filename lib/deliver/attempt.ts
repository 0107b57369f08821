/**
 * attempt: one session with one MX address (I/O only). It asks planHost for the host's plan,
 * takes a parked session under the same plan key or opens one (the opener is injected, as DNS
 * is, so the loop can be driven without sockets), has the verdict and the decision made, and
 * carries the decision out: nothing of the mail is sent unless the decision is `send`; AUTH only
 * to the configured relay and never over cleartext; then the transaction.
 */
import { decide, type Decision, type OpportunisticRules } from '../decide/index.js';
import { planHost, type HostPlan, type HostTarget, type StsForHost } from '../plan/host.js';
import { oneLine, type Session, type SessionFacts, type SessionOptions } from '../smtp/session.js';
import type { AuditRecord, Level, Policy, Trust, Verdict } from '../types.js';
import { judge, judgeShadow, judgeStsTesting } from '../verdict/index.js';
import { resultTypeOf } from '../verdict/result.js';
import { auditDigests, SessionCerts } from '../pkix/index.js';
import { reportedPolicyFields } from '../audit/index.js';
import type { Attempt, DeliverHooks, DeliverMail, DeliverSettings, Parked } from './types.js';

/** What one attempt needs of its delivery. */
export interface AttemptContext {
  nexthop: string;
  /** The destination's policy, before Exim's host lists. */
  policy: Policy;
  mail: DeliverMail;
  settings: DeliverSettings;
  hooks: DeliverHooks;
  rules: OpportunisticRules;
  /** Whether SMTP AUTH is to be sent (the configured relay only). */
  authenticate: boolean;
  /** The recipient domain's MTA-STS policy in force, when it has one. */
  sts?: StsForHost;
  /** The next hop is a fixed host (the relay, an address literal), not an MX host. */
  relay: boolean;
  /** The recipients still to be sent to. */
  remaining(): string[];
  /** Opens a session (Session.open; a test may pass its own). */
  open(options: SessionOptions): Promise<{ facts: SessionFacts; session?: Session }>;
}

export interface SessionRun {
  attempt: Attempt;
  decision: Decision;
  /** The failure code when it is not the decision's (EAUTH). */
  failureCode?: string;
  plan: HostPlan;
  facts: SessionFacts;
  verdict?: Verdict;
  /** Set when the transaction ran. */
  transaction?: Awaited<ReturnType<Session['send']>>;
}

export async function runAttempt(target: HostTarget, mode: 'tls' | 'cleartext-retry', ctx: AttemptContext, fresh = false): Promise<SessionRun> {
  const { nexthop, policy, mail, settings, hooks, rules, authenticate } = ctx;
  // Everything this host gets is decided before any connection, in one place (lib/plan/host.ts).
  const plan = planHost(hooks.hostPolicy(policy, { name: target.host, address: target.address }), target, {
    nexthop,
    insecureMxPolicy: settings.insecureMxPolicy,
    digest: settings.digest,
    ...(settings.tlsDefaults ? { tlsDefaults: settings.tlsDefaults } : {}),
    fallbackFor: hooks.fallbackFor,
    files: hooks.files,
    rules: { strict: rules.strict ?? false, ...(rules.tempfailTryclear !== undefined ? { tempfailTryclear: rules.tempfailTryclear } : {}) },
    ...(authenticate && settings.auth ? { authUser: settings.auth.user } : {}),
    ...(ctx.sts ? { sts: ctx.sts } : {}),
    ...(mail.requireTls ? { requireTls: { relay: ctx.relay } } : {}),
  });
  const refused = plan.refused;
  const daneNote = plan.daneNote;
  const tempfailTryclear = plan.tempfailTryclear;
  // A session parked after an earlier message under the same plan key is used as it is:
  // its TLS was judged for exactly this plan, and the decision taken then still holds.
  const key = settings.pool && mode === 'tls' ? plan.key : undefined;
  const pool = key ? settings.pool : undefined;
  const slot = key && pool ? await pool.acquire(key, !fresh) : undefined;
  // The transport was closed while this delivery waited for a session slot: nothing is opened.
  const notTried = slot?.closed ? `was not tried: ${settings.tracker?.closed ?? 'the transport was closed'}` : undefined;
  const parked = slot?.parked;
  // A kept TLS session for exactly this plan (its key), offered for resumption.
  const resumeFrom = !parked && mode === 'tls' && plan.key && plan.level !== 'none' ? settings.tickets?.get(plan.key) : undefined;
  let slotOpen = pool !== undefined && !notTried; // until the session goes back with give(), or release() ends the slot
  let facts: SessionFacts;
  let session: Session | undefined;
  let verdict: Verdict | undefined;
  let decision: Decision;
  let digests: Parked['digests'];
  let shadow: string;
  let stsTesting: string;
  const giveBack = (session: Session, messages: number) => {
    slotOpen = false;
    pool!.give(key!, session, { facts, decision, digests, shadowResult: shadow, stsResult: stsTesting, ...(verdict ? { verdict } : {}) }, messages);
  };
  try {
    if (parked) {
      ({ facts, verdict, decision, digests, shadowResult: shadow, stsResult: stsTesting } = parked.data);
      session = parked.session;
    } else {
      ({ facts, session } = refused
        ? { facts: { starttlsOffered: false, starttlsSent: false } as SessionFacts, session: undefined }
        : notTried
          ? { facts: { starttlsOffered: false, starttlsSent: false, failure: { kind: 'connect', message: notTried } } as SessionFacts, session: undefined }
          : await ctx.open({
              host: plan.host,
              address: plan.address,
              port: plan.port,
              implicitTls: plan.implicitTls,
              starttls: mode === 'tls' && plan.level !== 'none',
              tls: plan.tls,
              // the whole chain when a judgement reads it, or when someone observes the facts (the probe shows every certificate)
              peerChain: plan.peerChain || settings.observe !== undefined,
              ...(resumeFrom ? { tlsSession: resumeFrom.ticket } : {}),
              ...(settings.name ? { name: settings.name } : {}),
              ...settings.timeouts,
              ...(settings.tracker ? { tracker: settings.tracker } : {}),
              logger: settings.smtpLogger,
              debug: settings.debug,
            }));
      if (facts.tls?.resumed && resumeFrom) {
        // A resumed session shows no certificate: judge the chain it was verified with, under
        // the plan as it is now (dates, names, TLSA records are checked again).
        facts = {
          ...facts,
          tls: {
            ...facts.tls,
            chain: resumeFrom.chain,
            authorized: resumeFrom.authorized,
            ...(resumeFrom.authorizationError ? { authorizationError: resumeFrom.authorizationError } : {}),
          },
        };
        settings.tickets!.resumed++;
      }
      // Each certificate of the session is parsed and hashed once, for every judgement on it.
      const certs = new SessionCerts(facts.tls?.chain);
      verdict = judge(plan, facts, certs);
      decision = refused
        ? plan.refusedForRequireTls
          ? { action: 'next', temporary: false, stage: 'policy', requireTls: true, reason: refused }
          : { action: 'next', temporary: true, stage: plan.refusedStage ?? 'tlsa', reason: refused }
        : decide({
            where: plan.where,
            level: plan.level,
            ...(plan.fallback ? { fallback: plan.fallback } : {}),
            rules: { ...rules, ...(tempfailTryclear !== undefined ? { tempfailTryclear } : {}) },
            hasAuth: authenticate,
            allowCleartextAuth: settings.allowCleartextAuth,
            cleartextRetry: mode === 'cleartext-retry',
            implicitTls: plan.implicitTls,
            facts: {
              starttlsOffered: facts.starttlsOffered,
              tls: facts.tls !== undefined,
              ...(facts.starttlsReply ? { starttlsReply: facts.starttlsReply } : {}),
              ...(facts.failure ? { failure: facts.failure } : {}),
            },
            ...(verdict ? { verdict } : {}),
            ...(plan.requireTls ? { requireTls: { offered: facts.requireTlsOffered === true } } : {}),
          });
      digests = auditDigests(facts.tls ?? null, settings.digest, certs);
      keepTicket(settings, plan.key, facts, decision);
      shadow = judgeShadow(plan, facts, certs);
      stsTesting = judgeStsTesting(plan, facts, certs);
    }
    const sent = decision.action === 'send' ? decision : undefined;
    const level: Level = sent ? sent.level : plan.level;
    // a failed attempt sent nothing: its auth is the verdict on TLS when there was one, else empty
    const trust: Trust | '' = sent ? sent.trust : facts.tls ? (verdict?.trust ?? '') : '';
    const reason = 'reason' in decision ? decision.reason : undefined;
    const resultType = resultTypeOf(plan.refusedType, decision, verdict);
    const audit: AuditRecord = {
      relay: plan.where,
      destination: nexthop,
      mx: plan.host,
      address: plan.address,
      port: plan.port,
      level,
      policy: sent?.downgradedFrom ?? '',
      auth: trust,
      protocol: facts.tls?.protocol ?? '',
      cipher: facts.tls?.cipher ?? '',
      cert_digest: digests.cert_digest,
      spki_digest: digests.spki_digest,
      fallback_reason: sent && reason ? reason : '',
      shadow: plan.shadow ?? '',
      shadow_result: shadow,
      reply: facts.failure?.reply ?? facts.starttlsReply ?? '',
      matched: verdict?.matched ?? '',
      dane: daneNote,
      result_type: resultType ?? '',
      // a policy source's attributes, per session, as Postfix 3.10 hands them to TLSRPT (tls->ext_policy_* in smtp_tls_policy.c, reported by smtp_tlsrpt.c)
      ...reportedPolicyFields(plan.policy.reported ?? plan.sts?.reported),
      // what governed the host: DANE records, an MTA-STS policy (fetched here or from a policy source), or neither
      policy_type: plan.policyType,
      sts_mode: plan.sts?.mode ?? '',
      sts_id: plan.sts?.id ?? '',
      // enforce: whether this host met the policy; testing: whether it would have.
      sts_result: plan.sts?.mode === 'testing' ? stsTesting : plan.sts ? (sent ? 'pass' : `fail: ${reason ?? 'not delivered'}`) : '',
      // the message's own TLS demands (RFC 8689): REQUIRETLS asked for, or TLS-Required: No honoured
      resumed: facts.tls?.resumed ? 'yes' : '',
      requiretls: mail.requireTls ? 'yes' : '',
      tls_required: mail.tlsRequiredNo ? 'no' : '',
    };
    const attempt: Attempt = {
      mx: plan.host,
      address: plan.address,
      port: plan.port,
      mode,
      level,
      trust,
      decision: decision.action,
      ...(reason ? { reason } : {}),
      ...('stage' in decision && decision.stage ? { stage: decision.stage } : {}),
      ...(resultType ? { resultType } : {}),
      audit,
      auditLine: '',
    };
    if (decision.action !== 'send' || !session) {
      session?.quit();
      return { attempt, decision, plan, facts, ...(verdict ? { verdict } : {}) };
    }
    if (decision.downgradedFrom) {
      settings.logger.warn(
        { tnx: 'tls-policy', destination: nexthop, relay: plan.where },
        'TLS fallback for %s: level %s instead of %s: %s',
        nexthop,
        decision.level,
        decision.downgradedFrom,
        reason,
      );
    }
    if (authenticate && settings.auth && !parked && !mail.skipLogin) {
      const open = session; // narrowed above (action 'send' has a session) for the closure below
      if (!open.encrypted && !settings.allowCleartextAuth) {
        // decide() never sends in cleartext with AUTH configured; this is the last guard.
        session.close();
        throw new Error(`internal: refusing to send AUTH over cleartext to ${plan.where}`);
      }
      // Either AUTH failure ends this session and defers on to the next host: Postfix's
      // smtp_sasl_auth_soft_bounce (default yes), a refused AUTH never bounces.
      const authFailed = (why: string, reply?: string): SessionRun => {
        open.quit();
        attempt.decision = 'next';
        attempt.reason = why;
        if (reply !== undefined) attempt.audit.reply = reply;
        return { attempt, failureCode: 'EAUTH', decision: { action: 'next', temporary: true, reason: why }, plan, facts, ...(verdict ? { verdict } : {}) };
      };
      if (!session.offersAuth) {
        // AUTH is configured for this relay and the relay offers none: fail it with that reason,
        // never send the mail unauthenticated (Postfix would skip AUTH and let the relay refuse).
        return authFailed(`${plan.where} offered no SMTP AUTH (its EHLO reply has no AUTH line), and AUTH is configured for this relay`);
      }
      try {
        await session.login(settings.auth);
      } catch (err) {
        const e = err as { response?: string; responseCode?: number; message: string };
        return authFailed(`${plan.where} refused SMTP AUTH: ${oneLine(e.response) ?? e.message}`, oneLine(e.response) ?? '');
      }
    }
    if (mail.recipients.length === 0) {
      // verify() and probe(): everything up to MAIL FROM was done and passed.
      if (pool) giveBack(session, parked?.messages ?? 0);
      else session.quit();
      return { attempt, decision, plan, facts, ...(verdict ? { verdict } : {}), transaction: { ok: true, recipients: [] } };
    }
    const transaction = await session.send(mail.from, ctx.remaining(), mail.message, plan.requireTls === true);
    if (parked && !transaction.ok && !transaction.reply && !transaction.dataSent && !session.alive) {
      // The server closed the parked session while it was idle, before DATA: the message did not
      // reach it, so a new session may carry it (after DATA it may have, and is not sent again here).
      slotOpen = false;
      pool!.release(key!);
      return runAttempt(target, mode, ctx, true);
    }
    if (pool && transaction.ok) giveBack(session, (parked?.messages ?? 0) + 1);
    else session.quit();
    attempt.reused = parked !== undefined;
    if (transaction.reply !== undefined) attempt.reply = transaction.reply;
    attempt.audit.reply = transaction.reply ?? '';
    return { attempt, decision, plan, facts, ...(verdict ? { verdict } : {}), transaction };
  } finally {
    if (slotOpen) pool!.release(key!);
  }
}

/**
 * Keeps the session's TLS session for resumption under its plan key when the session was judged
 * good enough to carry mail, and forgets the key's entry when TLS failed under it (a handshake,
 * a verification, a session lost inside TLS).
 */
function keepTicket(settings: DeliverSettings, key: string | undefined, facts: SessionFacts, decision: Decision): void {
  const tickets = settings.tickets;
  if (!tickets || !key) return;
  if (decision.action === 'send' && facts.tls && facts.tlsSession && facts.tls.chain.length > 0) {
    tickets.set(key, {
      ticket: facts.tlsSession,
      chain: facts.tls.chain,
      authorized: facts.tls.authorized,
      ...(facts.tls.authorizationError ? { authorizationError: facts.tls.authorizationError } : {}),
    });
  } else if ('stage' in decision && (decision.stage === 'handshake' || decision.stage === 'verification' || decision.stage === 'session')) {
    tickets.delete(key);
  }
}
