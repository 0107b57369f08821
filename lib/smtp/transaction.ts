/**
 * The mail transactions of a session, on its socket (I/O; the bytes are lib/smtp/wire.ts).
 *
 * Nodemailer's SMTPConnection sets a session up (connect, greeting, EHLO, STARTTLS, EHLO, AUTH);
 * once the session is ready and judged, the socket is taken from it and this carries the
 * transactions (MAIL FROM, RCPT TO, DATA, the body) and the end (QUIT). The replies, errors and
 * their words are those SMTPConnection gives, so nothing above the session sees a difference;
 * what changes is the cost: one write per pipelined batch (RFC 2920), the body written as slices
 * of the one message buffer with the dots found by indexOf, no stream pipeline, no timers per
 * command beyond the session's deadlines.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { replyCode } from './reply.js';
import { dataSlices, mailFromLine, needsSmtpUtf8, ReplyReader, ReplyTooLarge, validEnvelopeAddress, type SessionExtensions } from './wire.js';

/** An error as SMTPConnection shapes it: the message ends with ": " and the reply when there is one. */
export interface WireError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
  rejectedErrors?: WireError[];
  deadline?: boolean;
  closedByTransport?: boolean;
}

/** As Nodemailer's _formatError: the code, the reply appended to the message, its code, the command. */
export function wireError(message: string | Error, code: string, response: string | undefined, command: string): WireError {
  const error = (typeof message === 'string' ? new Error(message) : message) as WireError;
  error.code = code;
  if (response) {
    error.response = response;
    error.message += `: ${response}`;
    const code = replyCode(response);
    if (code) error.responseCode = code;
  }
  error.command = command;
  return error;
}

/** A successful transaction, as SMTPConnection's send() reports it. */
export interface WireInfo {
  accepted: string[];
  rejectedErrors?: WireError[];
  response: string;
}

export interface WireHooks {
  /** Each command line as it is written (the deadlines count replies from it). */
  command(line: string): void;
  /** Each complete reply as it arrives. */
  reply(reply: string): void;
  /** The whole body was handed to the socket; the reply to its end is awaited. */
  bodyEnd(): void;
  /** The connection ended (closed by either side, or failed). */
  ended(): void;
  /** The transaction log (SMTPConnection's `debug`): client lines, the message, server replies, made safe by the logger. */
  log?: (tnx: 'client' | 'server' | 'message', text: string) => void;
}

type Waiter = (reply: string | WireError) => void;

/** The most of the body handed to the socket at once (then more when it drains). */
const BODY_PIECE = 64 * 1024;

/** The socket of a ready session, taken from SMTPConnection. */
export class Wire {
  private readonly reader = new ReplyReader();
  private readonly ready: Array<string | WireError> = [];
  private readonly waiting: Waiter[] = [];
  /** Replies owed for commands written (a pipelined batch owes one per command). */
  private owed = 0;
  private ended = false;
  private quitting = false;
  /** The body was written and the socket has not yet confirmed taking all of it. */
  private bodyUnconfirmed = false;

  constructor(
    private readonly socket: Socket | TLSSocket,
    private readonly hooks: WireHooks,
    /** Bytes SMTPConnection had taken in and not yet handled (none, from a well-behaved server). */
    leftover: string,
    socketTimeout: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: Error) => this.fail(wireError(error, 'ESOCKET', undefined, 'CONN')));
    socket.on('end', () => {
      if (!socket.destroyed) socket.end();
    });
    socket.on('close', () => this.onClose());
    socket.setTimeout(socketTimeout);
    socket.on('timeout', () => this.fail(wireError('Timeout', 'ETIMEDOUT', undefined, 'CONN')));
    if (leftover) this.onData(Buffer.from(leftover, 'latin1'));
  }

  get alive(): boolean {
    return !this.ended && !this.socket.destroyed;
  }

  /** Writes command lines in one batch (one TLS record and segment for a pipelined group). */
  write(lines: string[]): void {
    if (!this.alive) return;
    this.owed += lines.length;
    const text = `${lines.join('\r\n')}\r\n`;
    for (const line of lines) {
      this.hooks.command(line);
      this.hooks.log?.('client', line);
    }
    this.socket.write(text);
  }

  /**
   * Writes the body (as dataSlices gives it) in pieces of at most 64 KiB, each after the socket
   * drained the one before once it is full, so that TLS never holds an encrypted copy of a whole
   * large message per connection; bodyEnd runs once the socket took all of it.
   */
  writeBody(message: Buffer): void {
    const slices = dataSlices(message);
    if (this.hooks.log)
      this.hooks.log(
        'message',
        Buffer.concat(slices)
          .toString('latin1')
          .replace(/\r?\n$/, ''),
      );
    this.owed++;
    this.bodyUnconfirmed = true;
    let slice = 0;
    let offset = 0;
    const more = (): void => {
      while (slice < slices.length) {
        if (!this.alive) return;
        const current = slices[slice]!;
        const end = Math.min(offset + BODY_PIECE, current.length);
        const piece = offset === 0 && end === current.length ? current : current.subarray(offset, end);
        if (end === current.length) {
          slice++;
          offset = 0;
        } else {
          offset = end;
        }
        const last = slice === slices.length;
        const room = last ? this.socket.write(piece, () => this.confirmBody()) : this.socket.write(piece);
        if (!room && !last) {
          this.socket.once('drain', more);
          return;
        }
      }
    };
    this.socket.cork();
    more();
    this.socket.uncork();
  }

  /** The socket took the whole body (or the reply to its end came first): the deadlines move on. */
  private confirmBody(): void {
    if (!this.bodyUnconfirmed || this.ended) return;
    this.bodyUnconfirmed = false;
    this.hooks.bodyEnd();
  }

  /** The next reply, or the error that ended the connection before it came. */
  next(): Promise<string | WireError> {
    const ready = this.ready.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /**
   * QUIT; once its reply came this side closes (TLS close_notify, then FIN), as Nodemailer ends a
   * session; the connection is dropped when the server has not closed within `graceMs`.
   */
  quit(graceMs: number): void {
    if (!this.alive) return;
    this.quitting = true;
    this.write(['QUIT']);
    void this.next().then(() => {
      if (!this.socket.destroyed) this.socket.end();
    });
    setTimeout(() => this.destroy(), graceMs).unref();
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.quitting = true;
    this.socket.destroy();
    this.onClose();
  }

  /** Ends the connection with `error`: a transaction waiting gets it. */
  fail(error: WireError): void {
    if (this.ended) return;
    this.deliver(error, true);
    this.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    let replies: string[];
    try {
      replies = this.reader.push(chunk);
    } catch (error) {
      if (error instanceof ReplyTooLarge) {
        this.fail(wireError(error, 'EPROTOCOL', undefined, 'CONN'));
        return;
      }
      throw error;
    }
    for (const reply of replies) {
      if (this.ended) return;
      this.hooks.log?.('server', reply);
      if (this.owed === 0) {
        // Nothing was asked: a 421 ends an idle session (RFC 5321 section 4.2); anything else is
        // a server out of step with the client, and the session can no longer be trusted.
        this.destroy();
        return;
      }
      this.owed--;
      this.confirmBody();
      this.hooks.reply(reply);
      this.deliver(reply, false);
    }
  }

  private deliver(item: string | WireError, toAll: boolean): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter(item);
    else this.ready.push(item);
    if (toAll) for (const w of this.waiting.splice(0)) w(item);
  }

  private onClose(): void {
    if (this.ended) return;
    const rest = this.reader.rest();
    if (!this.quitting || this.waiting.length > 0) {
      // A transaction in flight learns that the connection is gone, with the server's last
      // unterminated failure reply when there is one (as Nodemailer's "Connection closed unexpectedly").
      this.deliver(wireError('Connection closed unexpectedly', 'ECONNECTION', rest, 'CONN'), true);
    }
    this.ended = true;
    if (!this.socket.destroyed) this.socket.destroy();
    this.hooks.ended();
  }
}

/** The result of one transaction: SMTPConnection send()'s error or info. */
export type WireResult = { error: WireError; info?: undefined } | { error?: undefined; info: WireInfo };

const isOk = (reply: string) => reply.charCodeAt(0) === 0x32; // 2xx
const closing = (reply: string) => /^421[ -]/.test(reply);

/**
 * One mail transaction, with SMTPConnection's semantics and words (RFC 5321 section 3.3, RFC
 * 2920 for PIPELINING): MAIL FROM, RCPT TO for each recipient, DATA; with PIPELINING all of them
 * in one batch and the replies read in order. The message goes only after a 354 and only with at
 * least one recipient accepted; a 354 with none accepted is answered with an empty message's
 * end (RFC 2920 section 3.1). A 421 ends the session after the reply it answers.
 */
export async function transact(
  wire: Wire,
  envelope: { from: string; to: string[]; size: number; requireTls: boolean; secure: boolean },
  ext: SessionExtensions,
  message: Buffer,
): Promise<WireResult> {
  /** Each recipient the server refused at RCPT, with its reply. */
  const rejectedErrors: WireError[] = [];
  /** MAIL FROM refused: the RCPT replies after it answer no transaction and count for nothing. */
  let mailError: WireError | undefined;
  // A failure after an accepted MAIL FROM keeps the RCPT refusals, so a recipient refused for good
  // is not reported with the later failure's reply (a 550 to RCPT, then a 451 to DATA, is still a 550).
  const fail = (error: WireError): WireResult => {
    if (rejectedErrors.length && !mailError && !error.rejectedErrors) error.rejectedErrors = rejectedErrors;
    return { error };
  };
  if (!wire.alive) return fail(wireError('Connection closed unexpectedly', 'ECONNECTION', undefined, 'API'));
  if (ext.maxSize && envelope.size > ext.maxSize) {
    // RFC 1870 section 6: the server declared its limit, so the message is not offered to it. As
    // Postfix (smtp_proto.c), a permanent failure: 552 5.3.4, the words this client's own.
    const error = wireError(
      `message size ${envelope.size} exceeds the size limit ${ext.maxSize} that the server declared (EHLO SIZE)`,
      'EMESSAGE',
      undefined,
      'MAIL FROM',
    );
    error.responseCode = 552;
    return fail(error);
  }
  const from = envelope.from.trim();
  const to = envelope.to.map((r) => r.trim());
  if (to.length === 0) return fail(wireError('No recipients defined', 'EENVELOPE', undefined, 'API'));
  if (from && !validEnvelopeAddress(from)) return fail(wireError(`Invalid sender ${JSON.stringify(from)}`, 'EENVELOPE', undefined, 'API'));
  for (const r of to) {
    if (!r || !validEnvelopeAddress(r)) return fail(wireError(`Invalid recipient ${JSON.stringify(r)}`, 'EENVELOPE', undefined, 'API'));
  }
  if (envelope.requireTls) {
    // RFC 8689 section 4.1: REQUIRETLS only over TLS, only to a server that offers it.
    if (!envelope.secure) return fail(wireError('REQUIRETLS can only be used over TLS connections (RFC 8689)', 'EREQUIRETLS', undefined, 'MAIL FROM'));
    if (!ext.requireTls) return fail(wireError('Server does not support REQUIRETLS extension (RFC 8689)', 'EREQUIRETLS', undefined, 'MAIL FROM'));
  }
  const smtpUtf8 = needsSmtpUtf8(from) || to.some(needsSmtpUtf8);
  const usingUtf8 = smtpUtf8 && ext.smtpUtf8;
  const mail = mailFromLine(from, { size: envelope.size, smtpUtf8, requireTls: envelope.requireTls }, ext);
  const rcpts = to.map((r) => `RCPT TO:<${r}>`);
  const pipelined = ext.pipelining;

  const accepted: string[] = [];
  const closedBy = (reply: string) => wireError('Server closed the connection', 'ECONNECTION', reply, 'CONN');
  const ended = (reply: string | WireError): reply is WireError => typeof reply !== 'string';
  /** Every RCPT refused, or MAIL refused: the error that ends the message (Nodemailer's _envelopeError). */
  const envelopeError = (reply: string): WireError | undefined => {
    if (mailError) return mailError;
    if (accepted.length) return undefined;
    const deferred = rejectedErrors.find((e) => e.responseCode !== undefined && e.responseCode < 500);
    const last = rejectedErrors[rejectedErrors.length - 1];
    const error = wireError(
      "Can't send mail - all recipients were rejected",
      'EENVELOPE',
      deferred?.response ?? (pipelined && last ? last.response : reply),
      'RCPT TO',
    );
    error.rejectedErrors = rejectedErrors;
    return error;
  };
  const stop = (error: WireError, reply: string): WireResult => {
    if (closing(reply)) wire.destroy();
    return fail(error);
  };

  if (pipelined) {
    wire.write([mail, ...rcpts, 'DATA']);
  } else {
    wire.write([mail]);
  }
  const mailReply = await wire.next();
  if (ended(mailReply)) return fail(mailReply);
  if (!isOk(mailReply)) {
    const intl = usingUtf8 && /^550 /.test(mailReply) && needsSmtpUtf8(from);
    mailError = wireError(intl ? 'Internationalized mailbox name not allowed' : 'Mail command failed', 'EENVELOPE', mailReply, 'MAIL FROM');
    if (!pipelined || closing(mailReply)) return stop(mailError, mailReply);
  }
  let last = mailReply;
  for (let i = 0; i < to.length; i++) {
    if (!pipelined) wire.write([rcpts[i]!]);
    const reply = await wire.next();
    if (ended(reply)) return fail(reply);
    last = reply;
    if (isOk(reply)) {
      accepted.push(to[i]!);
    } else {
      const intl = usingUtf8 && /^553 /.test(reply) && needsSmtpUtf8(to[i]!);
      const error = wireError(intl ? 'Internationalized mailbox name not allowed' : 'Recipient command failed', 'EENVELOPE', reply, 'RCPT TO');
      error.recipient = to[i]!;
      rejectedErrors.push(error);
    }
    if (closing(reply)) return stop(mailError ?? closedBy(reply), reply);
  }
  if (!pipelined) {
    const error = envelopeError(last);
    if (error) return fail(error);
    wire.write(['DATA']);
  }
  const dataReply = await wire.next();
  if (ended(dataReply)) return fail(dataReply);
  if (pipelined) {
    const error = envelopeError(dataReply);
    if (error) {
      if (/^3/.test(dataReply)) {
        if (mailError) {
          wire.destroy();
          return fail(error);
        }
        // RFC 2920 section 3.1: DATA was accepted with no recipient; end it with no message.
        wire.write(['.']);
        const endReply = await wire.next();
        if (!ended(endReply) && closing(endReply)) wire.destroy();
        return fail(error);
      }
      return stop(error, dataReply);
    }
  }
  if (!/^[23]/.test(dataReply)) return stop(wireError('Data command failed', 'EENVELOPE', dataReply, 'DATA'), dataReply);
  wire.writeBody(message);
  const endReply = await wire.next();
  if (ended(endReply)) return fail(endReply);
  if (!isOk(endReply)) return stop(wireError('Message failed', 'EMESSAGE', endReply, 'DATA'), endReply);
  return { info: { accepted, ...(rejectedErrors.length ? { rejectedErrors } : {}), response: endReply } };
}
