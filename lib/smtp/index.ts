/**
 * smtp: the SMTP side of one MX address, around Nodemailer's SMTPConnection.
 *
 * - session.ts: one SMTP conversation that reports facts (STARTTLS offered, the reply to it, the
 *   handshake, the peer chain, protocol and cipher) and never sends anything of the mail on its
 *   own; deadlines on every reply (Postfix's smtp_*_timeout as deadlines), the body and the
 *   reply to its end.
 * - pool.ts: idle sessions kept for the next message under the same plan key (Postfix's
 *   connection cache), with at most so many in use per key.
 * - tracker.ts: the sessions in progress, which the transport's close() ends.
 * - connection-internals.ts: the one place that reads SMTPConnection's private fields.
 */
export { classifyFailure, DEFAULT_COMMAND_TIMEOUT, DEFAULT_DATA_TIMEOUT, oneLine, Session } from './session.js';
export type { RecipientResult, SessionFacts, SessionFailure, SessionFailureKind, SessionOptions, TransactionResult } from './session.js';
export { SessionPool, type PoolOptions, type Slot } from './pool.js';
export { replyCode } from './reply.js';
export { SessionTracker, type TrackedSession } from './tracker.js';
