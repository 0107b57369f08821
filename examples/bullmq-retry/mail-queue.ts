/**
 * A mail queue on BullMQ that loses no recipient: a worker sends each message with
 * nodemailer-tls-policy, keeps the recipients the servers deferred (`info.pending`, or
 * `error.pending` when no recipient was accepted) and tries them again after an exponential
 * backoff, passing the message's first queueing time as `queuedAt`, until the queue lifetime
 * has passed; then it gives them up with a bounce the caller sees.
 *
 * Every recipient ends as one of:
 * - accepted: a server took it (250);
 * - rejected: a server refused it for good (5xx to RCPT), with the reason;
 * - bounced: the send failed for good (`error.temporary === false`), or it was still deferred
 *   once the lifetime had passed, with the last reason.
 *
 * The rules are Postfix's queue manager's: a deferred message is retried after a backoff that
 * doubles from minimal_backoff_time (300 s) up to maximal_backoff_time (4000 s), and a message
 * older than maximal_queue_lifetime (5 days) is tried once more and then bounced. A message's
 * age is counted from its arrival in the queue, here `firstAttemptAt`, set by enqueueMail.
 *
 * One BullMQ job per message: a retry is the same job moved to the delayed set with its data
 * narrowed to the recipients left (BullMQ's "process step jobs" pattern), so a job id follows a
 * message to its end and the job's return value holds every recipient's result.
 */
import { EventEmitter } from 'node:events';
import { DelayedError, Worker, type ConnectionOptions, type Job, type Queue } from 'bullmq';
import nodemailer from 'nodemailer';
import { tlsPolicy, type Delivery, type TlsPolicyOptions, type TlsPolicySentInfo } from 'nodemailer-tls-policy';

export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

export interface RecipientResult {
  recipient: string;
  status: 'accepted' | 'rejected' | 'bounced';
  /** Why it was rejected or bounced. */
  reason?: string;
  /** The attempt that settled it (1 for the first). */
  attempt: number;
}

/** A job's data: the message, the recipients not yet settled and what became of the others. */
export interface MailJobData {
  message: MailMessage;
  remaining: string[];
  /** When the message entered the queue (ms since the epoch): `queuedAt` of every attempt, and the start of its lifetime. */
  firstAttemptAt: number;
  /** Attempts made so far. */
  attempts: number;
  results: RecipientResult[];
}

/** Milliseconds: the first retry's delay, doubled at each retry up to `max`. */
export interface Backoff {
  initial: number;
  max: number;
}

export interface MailWorkerOptions {
  /** An ioredis instance with `maxRetriesPerRequest: null` (BullMQ's workers need it). */
  connection: ConnectionOptions;
  queueName: string;
  transportOptions: TlsPolicyOptions;
  /** Milliseconds after `firstAttemptAt` when recipients still deferred are bounced. Default 5 days (maximal_queue_lifetime). */
  lifetime?: number;
  /** Default 300 s doubling up to 4000 s (minimal_backoff_time, maximal_backoff_time). */
  backoff?: Backoff;
}

export const DEFAULT_LIFETIME = 5 * 24 * 3600_000;
export const DEFAULT_BACKOFF: Backoff = { initial: 300_000, max: 4_000_000 };

/** What one sendMail call did to the recipients it was given. */
export interface SendOutcome {
  accepted: string[];
  rejected: string[];
  pending: string[];
  /** Recipients the send failed for good as a whole (`error.temporary === false`). */
  failed: string[];
  /** Why, for each recipient not accepted. */
  reasons: Record<string, string>;
}

/** The events a MailWorker emits, in the order of a message's life. */
export interface MailWorkerEvents {
  /** After each send: what it did, and the `queuedAt` it was given. */
  attempt: [{ jobId: string; attempt: number; queuedAt: Date; outcome: SendOutcome }];
  /** Recipients deferred, to be tried again at `retryAt`. */
  retry: [{ jobId: string; attempt: number; recipients: string[]; retryAt: number; reasons: Record<string, string> }];
  /** Recipients given up: a permanent failure, or deferred past the lifetime. */
  bounced: [{ jobId: string; results: RecipientResult[] }];
  /** Every recipient of the message is settled: the job has completed, with these results as its return value. */
  done: [{ jobId: string; results: RecipientResult[] }];
  /** The worker could not process a job (Redis unreachable, a bug): BullMQ keeps the job as failed. */
  error: [Error];
}

export interface MailWorker extends EventEmitter<MailWorkerEvents> {
  worker: Worker<MailJobData, RecipientResult[]>;
  close(): Promise<void>;
}

/** Queues a message; its age and lifetime start now. */
export async function enqueueMail(queue: Queue<MailJobData>, message: MailMessage): Promise<Job<MailJobData>> {
  const data: MailJobData = { message, remaining: [...new Set(message.to)], firstAttemptAt: Date.now(), attempts: 0, results: [] };
  return queue.add('mail', data);
}

/** The delay before retry number `attempt` (1 for the retry after the first attempt). */
export function backoffDelay(attempt: number, backoff: Backoff): number {
  return Math.min(backoff.max, backoff.initial * 2 ** Math.max(0, attempt - 1));
}

/**
 * Why a delivery did not deliver `recipient`: its failure when it has one. A recipient refused
 * inside a transaction that delivered to others has none (the delivery records its replies per
 * message, not per recipient): then where and how it was refused.
 */
function reasonIn(deliveries: readonly Delivery[], recipient: string, fallback: string): string {
  const d = deliveries.find((x) => x.rejected.includes(recipient) || x.pending.includes(recipient));
  if (!d) return fallback;
  if (d.reason) return d.reason;
  // The recipient's own reply, with the server that gave it (Delivery.replies).
  const reply = d.replies?.[recipient] ?? 'the server gave no reply of its own';
  return `${d.destination}: ${d.rejected.includes(recipient) ? 'refused' : 'deferred'} ${recipient}: ${reply}`;
}

function reasonsFor(recipients: readonly string[], deliveries: readonly Delivery[], fallback: string): Record<string, string> {
  return Object.fromEntries(recipients.map((r) => [r, reasonIn(deliveries, r, fallback)]));
}

/** A resolved sendMail: some recipient was accepted; the others are rejected or pending. */
export function outcomeOfInfo(info: Pick<TlsPolicySentInfo, 'accepted' | 'rejected' | 'pending' | 'deliveries'>): SendOutcome {
  const notAccepted = [...info.rejected, ...info.pending];
  return {
    accepted: [...info.accepted],
    rejected: [...info.rejected],
    pending: [...info.pending],
    failed: [],
    reasons: reasonsFor(notAccepted, info.deliveries, 'no delivery of this send names the recipient'),
  };
}

/**
 * A rejected sendMail (no recipient accepted). A TlsPolicyError lists its rejected and pending
 * recipients; one that is not temporary fails every recipient for good. Any other error (it has
 * no `temporary`) leaves every recipient pending: retrying is the safe way not to lose them.
 */
export function outcomeOfError(error: unknown, recipients: readonly string[]): SendOutcome {
  const e = (error ?? {}) as { message?: unknown; temporary?: unknown; rejected?: unknown; pending?: unknown; deliveries?: unknown };
  const message = typeof e.message === 'string' && e.message ? e.message : String(error);
  const deliveries = Array.isArray(e.deliveries) ? (e.deliveries as Delivery[]) : [];
  const reasons = Object.fromEntries(recipients.map((r) => [r, reasonIn(deliveries, r, message)]));
  if (e.temporary === false) return { accepted: [], rejected: [], pending: [], failed: [...recipients], reasons };
  const rejected = Array.isArray(e.rejected) ? recipients.filter((r) => (e.rejected as string[]).includes(r)) : [];
  return { accepted: [], rejected, pending: recipients.filter((r) => !rejected.includes(r)), failed: [], reasons };
}

/**
 * What an attempt made at `now` leaves: the job's new data, and when to try again if some
 * recipient is still deferred. Deferred recipients are bounced once the lifetime has passed
 * (Postfix bounces a deferred message older than maximal_queue_lifetime at its next attempt);
 * a retry is never scheduled after that point, so the last attempt comes at the deadline.
 */
export function settle(
  data: MailJobData,
  outcome: SendOutcome,
  now: number,
  rules: { lifetime: number; backoff: Backoff },
): { data: MailJobData; retryAt?: number; bounced: RecipientResult[] } {
  const attempt = data.attempts + 1;
  const reason = (r: string) => outcome.reasons[r] ?? 'no reason given';
  const results: RecipientResult[] = [
    ...outcome.accepted.map((recipient) => ({ recipient, status: 'accepted' as const, attempt })),
    ...outcome.rejected.map((recipient) => ({ recipient, status: 'rejected' as const, reason: reason(recipient), attempt })),
  ];
  const bounced = outcome.failed.map((recipient) => ({ recipient, status: 'bounced' as const, reason: reason(recipient), attempt }));
  const deadline = data.firstAttemptAt + rules.lifetime;
  let remaining = outcome.pending;
  if (remaining.length > 0 && now >= deadline) {
    const age = Math.round((now - data.firstAttemptAt) / 1000);
    bounced.push(
      ...remaining.map((recipient) => ({
        recipient,
        status: 'bounced' as const,
        reason: `still deferred after ${attempt} attempts over ${age} s, past the queue lifetime of ${Math.round(rules.lifetime / 1000)} s: ${reason(recipient)}`,
        attempt,
      })),
    );
    remaining = [];
  }
  const next: MailJobData = { ...data, remaining, attempts: attempt, results: [...data.results, ...results, ...bounced] };
  if (remaining.length === 0) return { data: next, bounced };
  return { data: next, retryAt: Math.min(now + backoffDelay(attempt, rules.backoff), deadline), bounced };
}

/** Starts a worker on `queueName` that sends every queued message until each recipient is settled. */
export function startMailWorker(options: MailWorkerOptions): MailWorker {
  const rules = { lifetime: options.lifetime ?? DEFAULT_LIFETIME, backoff: options.backoff ?? DEFAULT_BACKOFF };
  const transporter = nodemailer.createTransport(tlsPolicy(options.transportOptions));
  const events = new EventEmitter<MailWorkerEvents>();

  const attemptJob = async (job: Job<MailJobData, RecipientResult[]>, token?: string): Promise<RecipientResult[]> => {
    const data = job.data;
    const jobId = job.id ?? '';
    const queuedAt = new Date(data.firstAttemptAt);
    const { from, subject, text } = data.message;
    let outcome: SendOutcome;
    try {
      // queuedAt: the message's true age, for the library's cleartext-retry rule (minimal_backoff_time).
      outcome = outcomeOfInfo(await transporter.sendMail({ from, to: data.remaining, subject, text, queuedAt }));
    } catch (error) {
      outcome = outcomeOfError(error, data.remaining);
    }
    events.emit('attempt', { jobId, attempt: data.attempts + 1, queuedAt, outcome });
    const next = settle(data, outcome, Date.now(), rules);
    if (next.bounced.length > 0) events.emit('bounced', { jobId, results: next.bounced });
    if (next.retryAt !== undefined) {
      // The data first: a worker that stops between the two calls resumes with the recipients left, not all of them.
      await job.updateData(next.data);
      await job.moveToDelayed(next.retryAt, token);
      events.emit('retry', { jobId, attempt: next.data.attempts, recipients: next.data.remaining, retryAt: next.retryAt, reasons: outcome.reasons });
      throw new DelayedError();
    }
    await job.updateData(next.data);
    return next.data.results;
  };

  const worker = new Worker<MailJobData, RecipientResult[]>(options.queueName, attemptJob, { connection: options.connection });
  // Emitted once BullMQ has stored the job as completed, with the results as its return value.
  worker.on('completed', (job, results) => events.emit('done', { jobId: job.id ?? '', results }));
  worker.on('error', (error) => events.emit('error', error));
  worker.on('failed', (_job, error) => events.emit('error', error));
  return Object.assign(events, {
    worker,
    close: async () => {
      await worker.close();
      transporter.close();
    },
  });
}
