/**
 * The bytes of an SMTP mail transaction, without I/O: replies split out of what the server sends,
 * the message body made safe for DATA, and the MAIL FROM / RCPT TO command lines. The session
 * (lib/smtp/transaction.ts) does the reading and writing.
 */

/** The longest reply taken in (1 MiB, as Nodemailer's SMTPConnection): a peer that never ends one is dropped. */
export const MAX_REPLY_SIZE = 1024 * 1024;

/** A server sent a reply line longer than MAX_REPLY_SIZE, or a reply of more than that in all. */
export class ReplyTooLarge extends Error {
  constructor() {
    super('Server response exceeds maximum allowed size');
  }
}

/**
 * Reply text as the server's bytes decoded: UTF-8 when the bytes are valid UTF-8, else byte for
 * byte (RFC 5321 section 4.2.1 defines no charset; modern servers use UTF-8), as Nodemailer does.
 */
function decodeReply(bytes: string): string {
  // `bytes` holds one byte per character (latin1), so it cannot hold U+FFFD itself.
  const utf8 = Buffer.from(bytes, 'latin1').toString('utf8');
  return utf8.includes('\uFFFD') ? bytes : utf8;
}

/**
 * Splits the server's bytes into complete replies (RFC 5321 section 4.2.1: a line whose code is
 * followed by `-` continues the reply, any other line ends it). A reply is its lines joined with
 * `\n`. Empty lines between replies are skipped, as Nodemailer skips them.
 */
export class ReplyReader {
  /** The bytes of the line being received (latin1: one character a byte). */
  private partial = '';
  /** The lines of the reply being received. */
  private lines: string[] = [];
  private size = 0;

  /** Takes a chunk; returns the replies it completed, in order. Throws ReplyTooLarge. */
  push(chunk: Buffer): string[] {
    const data = chunk.toString('latin1');
    if (!data.includes('\n')) {
      this.partial += data;
      if (this.partial.length + this.size > MAX_REPLY_SIZE) throw new ReplyTooLarge();
      return [];
    }
    const replies: string[] = [];
    const lines = (this.partial + data).split('\n');
    this.partial = lines.pop()!;
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (this.lines.length === 0 && line.trim() === '') continue;
      this.lines.push(line);
      this.size += line.length + 1;
      if (this.size > MAX_REPLY_SIZE) throw new ReplyTooLarge();
      if (!/^\d+-/.test(line)) {
        replies.push(decodeReply(this.lines.join('\n')));
        this.lines = [];
        this.size = 0;
      }
    }
    if (this.partial.length + this.size > MAX_REPLY_SIZE) throw new ReplyTooLarge();
    return replies;
  }

  /**
   * What the server left unterminated when it closed, when it reads as a failure reply
   * (`4xx`/`5xx` and a space or dash): reported with the failure, as Nodemailer does.
   */
  rest(): string | undefined {
    const text = [...this.lines, this.partial].join('\n').trim();
    return /^[45]\d{2}[ -]/.test(text) ? decodeReply(text) : undefined;
  }
}

const CRLF = Buffer.from('\r\n');
const DOT = Buffer.from('.');
const END = Buffer.from('.\r\n');
const CRLF_END = Buffer.from('\r\n.\r\n');
const LF = Buffer.from('\n');

/**
 * The message as it goes after DATA's 354 (RFC 5321 section 4.5.2, and section 2.3.8 on line
 * ends), as slices of the message and the bytes put between them:
 * - a bare LF becomes CRLF, a bare CR becomes CRLF (a receiver that takes a lone CR as a line
 *   end would otherwise read `\r.\r` as the end of the data: SMTP smuggling), so the only line
 *   end on the wire is CRLF;
 * - a line that begins with a dot gets another one (transparency);
 * - the end: CRLF (unless the message ends with one), a dot, CRLF.
 * The same bytes as Nodemailer's DataStream, found with indexOf rather than byte by byte.
 */
export function dataSlices(message: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let from = 0; // the first byte not yet put out
  const n = message.length;
  if (n > 0 && message[0] === 0x2e) out.push(DOT);
  let cr = message.indexOf(0x0d);
  let lf = message.indexOf(0x0a);
  while (cr !== -1 || lf !== -1) {
    let lineEnd: number; // the index of the last byte of this line end in the message
    if (cr !== -1 && (lf === -1 || cr < lf)) {
      if (cr + 1 < n && message[cr + 1] === 0x0a) {
        lineEnd = cr + 1; // CRLF
        lf = message.indexOf(0x0a, cr + 2);
      } else {
        // a bare CR: CRLF (a CR that ends the message is completed by the end below)
        if (cr + 1 === n) break;
        out.push(message.subarray(from, cr + 1), LF);
        from = cr + 1;
        lineEnd = cr;
      }
      cr = message.indexOf(0x0d, cr + 1);
    } else {
      // a bare LF: CRLF
      out.push(message.subarray(from, lf), CRLF);
      from = lf + 1;
      lineEnd = lf;
      lf = message.indexOf(0x0a, lf + 1);
    }
    if (lineEnd + 1 < n && message[lineEnd + 1] === 0x2e) {
      out.push(message.subarray(from, lineEnd + 1), DOT);
      from = lineEnd + 1;
    }
  }
  if (from < n) out.push(message.subarray(from));
  const last = n > 0 ? message[n - 1] : undefined;
  if (last === 0x0a) out.push(END);
  else if (last === 0x0d) out.push(LF, END);
  else out.push(CRLF_END);
  return out.filter((b) => b.length > 0);
}

/** An envelope address carries nothing that could end or extend a command line (as Nodemailer checks). */
export function validEnvelopeAddress(address: string): boolean {
  return !/[\r\n<>]/.test(address);
}

/** Whether an address needs SMTPUTF8 (RFC 6531): any character beyond ASCII. */
export function needsSmtpUtf8(address: string): boolean {
  return /[^\x00-\x7f]/.test(address);
}

/** What of the server's EHLO reply the transaction uses. */
export interface EnvelopeExtensions {
  pipelining: boolean;
  size: boolean;
  smtpUtf8: boolean;
  requireTls: boolean;
}

/** The extensions, and the size limit the server declared (RFC 1870; 0 when none). */
export interface SessionExtensions extends EnvelopeExtensions {
  maxSize: number;
}

/**
 * MAIL FROM with its parameters: SMTPUTF8 when an address needs it and the server offers it
 * (RFC 6531 section 3.4), SIZE when offered (RFC 1870), REQUIRETLS when asked (RFC 8689 section
 * 4.1), in Nodemailer's order.
 */
export function mailFromLine(from: string, options: { size: number; smtpUtf8: boolean; requireTls: boolean }, ext: EnvelopeExtensions): string {
  const args: string[] = [];
  if (options.smtpUtf8 && ext.smtpUtf8) args.push('SMTPUTF8');
  if (ext.size && options.size > 0) args.push(`SIZE=${options.size}`);
  if (options.requireTls) args.push('REQUIRETLS');
  return `MAIL FROM:<${from}>${args.length ? ` ${args.join(' ')}` : ''}`;
}
