/**
 * decide: plan x facts x verdict -> what happens next with one MX address. Pure.
 *
 * Every rule about *when* mail may cross a channel lives here, one branch per rule, so that a
 * reader who asks "what happens when the MX offers STARTTLS and answers 454?" finds one place.
 *
 * Sources of the rules:
 * - Postfix (smtp_proto.c, TLS_README): at `may`, no STARTTLS -> cleartext; a 4xx or 5xx to
 *   STARTTLS -> cleartext on the same connection; a failed handshake or a TLS failure in the
 *   session -> a new cleartext connection, but only once the message is older than
 *   minimal_backoff_time and (this library's rule) no AUTH credentials are configured. At a
 *   mandatory level every one of those is a failure of that MX, and the next MX is tried.
 * - Exim's tls_tempfail_tryclear (4.96): when set, a 4xx to STARTTLS, a failed handshake or a
 *   connection lost inside TLS -> cleartext at once (a new connection where the old one is
 *   dead), with no age gate; when unset, each is a temporary failure of that MX. A 5xx to
 *   STARTTLS continues in cleartext either way.
 * - The strict variant (asked for on exim-users, in neither MTA): cleartext only when the
 *   server did not offer STARTTLS at all.
 * - Seed 001: before any cleartext retry on a new connection, the destination's other MX hosts
 *   are tried with TLS ('cleartext-later'); tls_tempfail_tryclear=true asks for it at once.
 * - A reply inside TLS (421 to the EHLO after STARTTLS) is the server's answer, not a TLS
 *   failure: that MX fails, and no cleartext retry follows.
 * - The tlsfallback proposal: an authenticated level that cannot authenticate goes on at its
 *   fallback level (encrypt or may) when one is configured; the decision says from which level
 *   and why.
 * - RFC 7672 section 2.2 / Postfix: SMTP AUTH never crosses a cleartext channel unless the
 *   caller allowed it explicitly.
 */
import { isTlsRequiredInPlan } from '../policy/levels.js';
import { replyCode } from '../smtp/reply.js';
import type { FallbackLevel, Level, Stage, Trust, Verdict } from '../types.js';

/** How `may` treats STARTTLS and TLS failures. */
export interface OpportunisticRules {
  /** Exim's tls_tempfail_tryclear; undefined: Postfix's behaviour. */
  tempfailTryclear?: boolean;
  /** Cleartext only when STARTTLS was not offered at all. */
  strict?: boolean;
  /** Postfix's minimal_backoff_time, seconds. */
  minimalBackoff: number;
  /** How long the message has been queued, seconds (0 for a new message). */
  messageAge: number;
}

export interface DecideInput {
  /** Where, for sentences: `mx1.example.net[192.0.2.1]:25`. */
  where: string;
  /** The level asked for this MX (after host lists). */
  level: Level;
  /** The level it may fall back to, when authentication fails (never below what fallback says). */
  fallback?: FallbackLevel;
  rules: OpportunisticRules;
  /** SMTP AUTH credentials are configured for this destination. */
  hasAuth: boolean;
  /** The caller explicitly allows AUTH over cleartext. */
  allowCleartextAuth?: boolean;
  /** This session is the cleartext retry (STARTTLS was not attempted on purpose). */
  cleartextRetry?: boolean;
  /** TLS from the first byte (SMTPS): there is no cleartext on this port to retry with. */
  implicitTls?: boolean;
  facts: {
    starttlsOffered: boolean;
    starttlsReply?: string;
    tls: boolean;
    failure?: { kind: 'connect' | 'reply' | 'handshake' | 'tls-session' | 'tls-reply'; message: string; reply?: string; replyCode?: number };
  };
  /** The verdict on the peer, when TLS was established. */
  verdict?: Verdict;
  /** The message requires REQUIRETLS (RFC 8689): only a Verified session that advertises REQUIRETLS may carry it. */
  requireTls?: { offered: boolean };
}

export type Decision =
  /** Send the mail on this session. */
  | {
      action: 'send';
      /** The level the mail travels at (the fallback level after a fallback). */
      level: Level;
      trust: Trust;
      /** The level asked for, when a fallback or cleartext downgrade took place. */
      downgradedFrom?: Level;
      /** Why the mail travels below what was asked, or in cleartext. */
      reason?: string;
      stage?: Stage;
    }
  /** This MX fails; try the next one. */
  | {
      action: 'next';
      reason: string;
      /** Whether the failure is temporary (a 5xx reply makes it permanent, if no MX is left). */
      temporary: boolean;
      /** Set when the failure is a TLS-policy failure (a stage of the TLS proposal). */
      stage?: Stage;
      /** Set when this MX can never carry the message because it requires REQUIRETLS (RFC 8689 section 4.2.1). */
      requireTls?: true;
    }
  /** Open a new cleartext connection to this address now (tls_tempfail_tryclear). */
  | { action: 'cleartext-now'; reason: string; stage: Stage }
  /** Retry this address in cleartext, after the other MX hosts were tried with TLS. */
  | { action: 'cleartext-later'; reason: string; stage: Stage };

/** Whether cleartext is allowed at all for this MX: `may`, or a mandatory level with fallback=may. */
function cleartextAllowed(input: DecideInput): boolean {
  return input.level === 'none' || input.level === 'may' || input.fallback === 'may';
}

/** A 'send' in cleartext, unless that would carry AUTH credentials in the clear. */
function sendCleartext(input: DecideInput, reason: string | undefined, stage: Stage | undefined): Decision {
  if (input.hasAuth && !input.allowCleartextAuth) {
    return {
      action: 'next',
      temporary: true,
      stage: stage ?? 'no-starttls',
      reason: `${reason ?? `${input.where} is cleartext`}, and SMTP AUTH is never sent over cleartext (set allowCleartextAuth to allow it)`,
    };
  }
  const downgraded = isTlsRequiredInPlan(input.level);
  return {
    action: 'send',
    level: downgraded ? 'may' : input.level,
    trust: 'Cleartext',
    ...(downgraded ? { downgradedFrom: input.level } : {}),
    ...(reason ? { reason } : {}),
    ...(stage ? { stage } : {}),
  };
}

/** What to do when TLS could not be had: no STARTTLS, refused, handshake or session failure. */
function tlsUnavailable(input: DecideInput, stage: Stage, reason: string, replyCode?: number): Decision {
  const rules = input.rules;
  const permanentReply = replyCode !== undefined && replyCode >= 500;
  if (!cleartextAllowed(input)) {
    const fallbackNote = input.fallback === 'encrypt' ? ' (its fallback level encrypt needs TLS too)' : '';
    // Always temporary, even after a 5xx to STARTTLS (Exim defers too; Postfix bounces): the
    // reply travels in cleartext, so an on-path attacker could forge it and turn every
    // mandatory-TLS destination's deferral into a bounce. tlsFailuresPermanent makes it final.
    return {
      action: 'next',
      temporary: true,
      stage,
      reason: `${reason}; TLS is mandatory at level ${input.level}${fallbackNote}`,
    };
  }
  if (stage === 'no-starttls') return sendCleartext(input, reason, stage);
  if (rules.strict) {
    return { action: 'next', temporary: true, stage, reason: `${reason}; cleartext is allowed only when STARTTLS is not offered (strict opportunistic TLS)` };
  }
  if (stage === 'starttls-refused') {
    if (permanentReply || rules.tempfailTryclear !== false) return sendCleartext(input, reason, stage);
    return { action: 'next', temporary: true, stage, reason: `${reason}; tlsTempfailTryclear is false, so no cleartext` };
  }
  // handshake or session: the connection is dead, cleartext needs a new one.
  if (input.implicitTls || input.cleartextRetry) {
    return { action: 'next', temporary: true, stage, reason: `${reason}; an implicit TLS port has no cleartext to retry with` };
  }
  if (input.hasAuth && !input.allowCleartextAuth) {
    return { action: 'next', temporary: true, stage, reason: `${reason}; no cleartext retry because SMTP AUTH is configured` };
  }
  if (rules.tempfailTryclear === true) return { action: 'cleartext-now', stage, reason };
  if (rules.tempfailTryclear === false) {
    return { action: 'next', temporary: true, stage, reason: `${reason}; tlsTempfailTryclear is false, so no cleartext` };
  }
  if (rules.messageAge < rules.minimalBackoff) {
    return {
      action: 'next',
      temporary: true,
      stage,
      reason: `${reason}; no cleartext retry before the message is ${rules.minimalBackoff} s old (it is ${Math.floor(rules.messageAge)} s old)`,
    };
  }
  return { action: 'cleartext-later', stage, reason };
}

export function decide(input: DecideInput): Decision {
  const decision = decideTls(input);
  if (!input.requireTls || decision.action !== 'send') return decision;
  // RFC 8689 section 4.2.1: a REQUIRETLS message crosses only an authenticated TLS session (the
  // plan allows only DANE-verified, MTA-STS-enforced or authenticated-relay hosts, without any
  // fallback) whose EHLO after STARTTLS advertises REQUIRETLS; nothing else is a way to send it.
  const where = input.where;
  if (decision.downgradedFrom !== undefined || decision.trust !== 'Verified') {
    return {
      action: 'next',
      temporary: false,
      requireTls: true,
      reason: `${where} was authenticated only as ${decision.trust}, and the message requires REQUIRETLS (RFC 8689 section 4.2.1)`,
    };
  }
  if (!input.requireTls.offered) {
    return {
      action: 'next',
      temporary: false,
      requireTls: true,
      reason: `${where} did not advertise REQUIRETLS after STARTTLS, and the message requires it (RFC 8689 section 4.2.1)`,
    };
  }
  return decision;
}

function decideTls(input: DecideInput): Decision {
  const { facts, where } = input;
  const failure = facts.failure;
  if (failure) {
    switch (failure.kind) {
      case 'handshake':
        return tlsUnavailable(input, 'handshake', `${where} ${failure.message}`);
      case 'tls-session':
        return tlsUnavailable(input, 'session', `${where} ${failure.message}`);
      case 'tls-reply':
        return {
          action: 'next',
          temporary: (failure.replyCode ?? 400) < 500,
          reason: `${where} answered ${failure.reply} inside TLS`,
        };
      case 'reply':
        return { action: 'next', temporary: (failure.replyCode ?? 400) < 500, reason: `${where} answered ${failure.reply}` };
      case 'connect':
        return { action: 'next', temporary: true, reason: `${where} ${failure.message}` };
    }
  }
  if (input.cleartextRetry && !cleartextAllowed(input)) {
    throw new Error(`decide: a cleartext retry of ${where} at level ${input.level} must never be planned`);
  }
  if (input.level === 'none' || input.cleartextRetry) {
    const reason = input.cleartextRetry ? `cleartext retry of ${where} after a TLS failure` : undefined;
    return sendCleartext(input, reason, input.cleartextRetry ? 'handshake' : undefined);
  }
  if (!facts.tls) {
    if (!facts.starttlsOffered) return tlsUnavailable(input, 'no-starttls', `${where} offered no STARTTLS`);
    const reply = facts.starttlsReply ?? 'no reply';
    return tlsUnavailable(input, 'starttls-refused', `${where} refused STARTTLS: ${reply}`, replyCode(facts.starttlsReply));
  }
  const verdict = input.verdict;
  if (!verdict) throw new Error('decide: TLS was established but no verdict was given');
  if (verdict.ok) return { action: 'send', level: input.level, trust: verdict.trust };
  const reason = verdict.reason ? `${where}: ${verdict.reason}` : `${where} failed verification`;
  if (input.fallback) {
    return {
      action: 'send',
      level: input.fallback,
      trust: verdict.trust,
      downgradedFrom: input.level,
      reason,
      stage: 'verification',
    };
  }
  return { action: 'next', temporary: true, stage: 'verification', reason };
}
