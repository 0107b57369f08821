/**
 * outcome: what the attempts on one destination add up to. Pure: attempts' results in, the
 * delivery's recipients, status, reason and winning code out.
 *
 * Rules, each where it is applied:
 * - A recipient accepted stays accepted; one refused for good (5xx) stays refused; one deferred
 *   (4xx to RCPT) is kept for the next MX, as Postfix keeps soft-failed recipients for a backup
 *   server (settleTransaction).
 * - A transaction refused as a whole, temporarily (4xx to MAIL FROM or DATA, a connection lost
 *   before the end of the message): the next MX is tried (settleTransaction).
 * - A server that took the whole message and never answered its end may hold it: no other MX in
 *   this call, the recipients pending (Postfix: "message may be sent more than once").
 * - Postfix's smtp_mx_session_limit counts sessions that completed EHLO and TLS and then failed
 *   the transaction; sessions that failed before do not (sessionLimitReached).
 * - When every MX failed, the destination fails with every MX's reason; its code is ETLS when a
 *   TLS-policy failure was seen and the last failure was not a plain connection failure, else
 *   the last failure's; it is temporary as the last failure was (finalFailure). A TLS-policy
 *   failure is permanent only with tlsFailuresPermanent (conclude).
 * - Status: delivered (every recipient accepted), partial (some), deferred (none, some pending),
 *   bounced (none pending); a probe with no recipients is delivered unless it failed.
 */
import type { Decision } from '../decide/index.js';
import type { TransactionResult } from '../smtp/session.js';
import { lowerFirst } from '../text/index.js';

export interface Outcome {
  readonly recipients: readonly string[];
  /** Recipients not yet accepted or refused for good. */
  remaining: string[];
  accepted: string[];
  rejected: string[];
  pending: string[];
  /** The final reply to the message, when it was accepted. */
  response?: string;
  /** One sentence per failed MX, in order. */
  failures: string[];
  last?: { reason: string; temporary: boolean; code: string };
  /** Set when a server may hold the message already: no other MX is tried in this call. */
  mayBeDelivered?: string;
  /** Sessions that completed EHLO and TLS and then failed the transaction. */
  transactionFailures: number;
  /** A message refused for good by a server (every recipient, MAIL FROM or DATA). */
  refused?: { reason: string; code: string };
  /** Each recipient's own last reply from a server (RCPT TO, or the end of DATA when accepted), with where it came from. */
  replies: Record<string, string>;
}

export function newOutcome(recipients: readonly string[]): Outcome {
  return { recipients, remaining: [...recipients], accepted: [], rejected: [], pending: [], failures: [], transactionFailures: 0, replies: {} };
}

/** What a finished transaction means for the loop. */
export type Settled =
  /** Every recipient is settled: the destination is done. */
  | { done: true }
  /** Try the next MX; `failed` is set when the transaction as a whole failed (the attempt's new reason). */
  | { done: false; failed?: string };

/** Applies a finished transaction (the session's `send`) from `relay` to the outcome. */
export function settleTransaction(o: Outcome, t: TransactionResult, relay: string, nexthop: string): Settled {
  if (o.recipients.length === 0) return { done: true }; // verify() and probe(): no transaction ran
  const anyAccepted = t.recipients.some((r) => r.status === 'accepted');
  if (t.failure && t.bodySent && !anyAccepted) {
    const reason = `${relay} took the whole message, then ${lowerFirst(t.failure.message)} before answering its end: the message may already have been delivered, so it is not sent to another MX now`;
    o.mayBeDelivered = reason;
    o.transactionFailures++;
    return { done: false, failed: reason };
  }
  if (t.failure && t.failure.temporary && !anyAccepted) {
    const reason = `${relay} ${t.failure.reply ? `answered ${t.failure.reply}` : t.failure.message}`;
    o.failures.push(reason);
    o.last = { reason, temporary: true, code: 'ECONNECTION' };
    o.transactionFailures++;
    return { done: false, failed: reason };
  }
  const accepted = t.recipients.filter((r) => r.status === 'accepted');
  const deferred = t.recipients.filter((r) => r.status === 'deferred');
  for (const r of t.recipients) if (r.reply) o.replies[r.recipient] = `${relay}: ${r.reply}`;
  o.accepted.push(...accepted.map((r) => r.recipient));
  o.rejected.push(...t.recipients.filter((r) => r.status === 'rejected').map((r) => r.recipient));
  if (t.reply && accepted.length) o.response = t.reply;
  o.remaining = deferred.map((r) => r.recipient);
  if (!accepted.length && !deferred.length) {
    const messageFailed = t.failure?.command === 'DATA' || t.failure?.code === 'EMESSAGE';
    o.refused = {
      code: messageFailed ? 'EMESSAGE' : 'EENVELOPE',
      reason: !t.failure
        ? `${nexthop}: ${relay} refused every recipient: ${t.recipients.map((r) => `${r.recipient}: ${r.reply ?? 'no reply'}`).join('; ')}`
        : t.failure.reply === undefined && messageFailed
          ? // not offered at all: the server declared a SIZE below the message's (RFC 1870)
            `${nexthop}: the message was not offered to ${relay}: ${t.failure.message}`
          : `${nexthop}: ${relay} refused the message at ${t.failure.command ?? 'the transaction'}: ${t.failure.reply ?? t.failure.message}`,
    };
  }
  if (o.remaining.length === 0) return { done: true };
  const reason = `${relay} deferred ${deferred.map((r) => `${r.recipient}: ${r.reply ?? 'no reply'}`).join('; ')}`;
  o.failures.push(reason);
  o.last = { reason, temporary: true, code: 'EENVELOPE' };
  return { done: false };
}

/** Records an attempt that sent nothing (any decision but send); `code` when it is not the decision's (EAUTH). */
export function recordFailure(o: Outcome, d: Exclude<Decision, { action: 'send' }>, code?: string): void {
  if (d.action === 'cleartext-later') {
    o.failures.push(`${d.reason} (cleartext retry once the other MX hosts were tried with TLS)`);
    o.last = { reason: d.reason, temporary: true, code: 'ETLS' };
    return;
  }
  o.failures.push(d.reason);
  o.last = { reason: d.reason, temporary: d.action === 'next' ? d.temporary : true, code: code ?? (d.stage ? 'ETLS' : 'ECONNECTION') };
}

/** Postfix's smtp_mx_session_limit (0: no limit). */
export function sessionLimitReached(o: Outcome, limit: number): boolean {
  return limit > 0 && o.transactionFailures >= limit;
}

/** How the destination fails once no MX is left: every MX's reason, the code that wins. */
export function finalFailure(
  o: Outcome,
  ctx: { nexthop: string; level: string; tlsFailureSeen: boolean },
): { reason: string; code: string; temporary: boolean } {
  const last = o.last ?? { reason: 'no MX was tried', temporary: true, code: 'ECONNECTION' };
  return {
    reason: `${ctx.nexthop}: delivery at level ${ctx.level} failed: ${o.failures.join('; ')}`,
    code: ctx.tlsFailureSeen && last.code !== 'ECONNECTION' ? 'ETLS' : last.code,
    temporary: last.temporary,
  };
}

/** The delivery's recipients, status and failure, once the loop is over. */
export interface Concluded {
  status: 'delivered' | 'partial' | 'deferred' | 'bounced';
  accepted: string[];
  rejected: string[];
  pending: string[];
  response?: string;
  reason?: string;
  code?: string;
  temporary?: boolean;
  replies?: Record<string, string>;
}

/**
 * The end of a destination: `failure` when it failed (the remaining recipients become pending,
 * or refused when the failure is permanent: not temporary, or a TLS-policy failure under
 * tlsFailuresPermanent), else as the transactions left it.
 */
export function conclude(o: Outcome, failure?: { reason: string; code: string; temporary: boolean }, tlsFailuresPermanent = false): Concluded {
  const out: Concluded = { status: 'deferred', accepted: [...o.accepted], rejected: [...o.rejected], pending: [...o.pending] };
  if (Object.keys(o.replies).length > 0) out.replies = { ...o.replies };
  if (o.response !== undefined) out.response = o.response;
  if (failure) {
    const permanent = !failure.temporary || (failure.code === 'ETLS' && tlsFailuresPermanent);
    out.reason = failure.reason;
    out.code = failure.code;
    out.temporary = !permanent;
    (permanent ? out.rejected : out.pending).push(...o.remaining);
  } else if (o.refused) {
    out.reason = o.refused.reason;
    out.code = o.refused.code;
    out.temporary = false;
  }
  if (o.recipients.length === 0) out.status = out.reason ? (out.temporary === false ? 'bounced' : 'deferred') : 'delivered';
  else if (out.accepted.length === o.recipients.length) out.status = 'delivered';
  else if (out.accepted.length > 0) out.status = 'partial';
  else out.status = out.pending.length ? 'deferred' : 'bounced';
  return out;
}
