/**
 * One SMTP conversation with one MX address: Nodemailer's SMTPConnection sets it up (connect,
 * greeting, EHLO, STARTTLS, EHLO, AUTH); the mail transactions and QUIT then run on the session's
 * own wire (lib/smtp/transaction.ts), which takes the socket from SMTPConnection at the first
 * transaction and reports with the same replies and words.
 *
 * The session holds no policy. It connects, lets SMTPConnection do EHLO and STARTTLS, and
 * reports facts: was STARTTLS offered, what did the server answer to it, did the handshake
 * fail, was the connection lost inside TLS, what peer chain, protocol and cipher did TLS show.
 * The caller judges those facts (verify, decide) *before* it sends anything of the mail: the
 * session never sends MAIL FROM, RCPT, AUTH or DATA on its own.
 *
 * TLS runs with `rejectUnauthorized: false` on purpose: Node checks nothing useful for DANE or
 * fingerprints during the handshake, so the verdict is taken on the peer chain afterwards, and
 * OpenSSL's own chain verification result (`authorized`) is one of the facts.
 *
 * Every string the server controls (each reply, and each error message that quotes one) is made
 * safe once, here, where it is gathered (lib/text replyLine/safeText): one line, every control,
 * separator and bidi character escaped visibly. Nothing downstream (decide, the audit line, the
 * logs, the probe report) ever sees the raw text. The logger handed to SMTPConnection gets the
 * same treatment, since SMTPConnection logs replies in its own messages.
 */
import type { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import { tlsContextKey } from '../plan/index.js';
import { format } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { getLogger } from 'nodemailer/lib/shared';
import { escapeControls, replyLine, safeText } from '../text/index.js';
import type { PeerTls } from '../types.js';
import {
  drainRepliesOnClose,
  ehloLinesOf,
  extensionsOf,
  failConnection,
  isSecure,
  isUpgrading,
  lastReplyOf,
  onCommand,
  onConnected,
  onReply,
  WatchedConnection,
  setEhloName,
  plaintextEhloOf,
  socketOf,
  takeSocket,
  tlsSocketOf,
} from './connection-internals.js';
import { transact, Wire, wireError, type WireError } from './transaction.js';
import type { SessionExtensions } from './wire.js';
import type { SessionTracker } from './tracker.js';
import { replyCode } from './reply.js';

/**
 * The timeouts of a session: Nodemailer's connect, greeting and inactivity timers, and this
 * library's deadlines (Postfix's smtp_*_timeout kept as deadlines).
 */
export interface SessionTimeouts {
  connectionTimeout?: number;
  greetingTimeout?: number;
  socketTimeout?: number;
  /**
   * Milliseconds within which each SMTP reply must be complete, counted from the command it
   * answers (or the reply before it, when commands are pipelined). A deadline, not an inactivity
   * timer: a reply that trickles in one byte at a time fails too. Default 300000, Postfix's
   * smtp_helo_timeout, smtp_mail_timeout and smtp_rcpt_timeout.
   */
  commandTimeout?: number;
  /**
   * Milliseconds within which the message body must be handed over after the 354, and again
   * within which the reply to its end must arrive. Default 600000, Postfix's
   * smtp_data_done_timeout.
   */
  dataTimeout?: number;
}

export interface SessionOptions extends SessionTimeouts {
  /** The MX host name, for messages. */
  host: string;
  /** The address to connect to. */
  address: string;
  port: number;
  /** TLS from the first byte (SMTPS, port 465) instead of STARTTLS. */
  implicitTls?: boolean;
  /** Whether to send STARTTLS when it is offered (false at level none). */
  starttls: boolean;
  /** Options for the TLS handshake: servername, ca, cert, key, minVersion, maxVersion, ciphers. */
  tls: ConnectionOptions;
  /** EHLO name. */
  name?: string;
  /**
   * Take the whole certificate chain from the handshake (default), or only the leaf (false):
   * HostPlan.peerChain says whether anything judges the certificates above it.
   */
  peerChain?: boolean;
  /** A kept TLS session to offer for resumption (lib/smtp/tickets.ts). */
  tlsSession?: Buffer;
  /** Where the session is registered while it is in progress, so the transport's close() can end it. */
  tracker?: SessionTracker;
  logger?: unknown;
  debug?: boolean;
}

export const DEFAULT_COMMAND_TIMEOUT = 300_000;
export const DEFAULT_DATA_TIMEOUT = 600_000;
/** Socket inactivity that ends a session (Nodemailer's default socketTimeout, 10 minutes). */
const DEFAULT_SOCKET_TIMEOUT = 600_000;

/** How a session that never became ready ended. */
export type SessionFailureKind =
  /** TCP connect failed or timed out, or the server closed before greeting. */
  | 'connect'
  /** The server answered with an error (greeting, EHLO/HELO) in cleartext. */
  | 'reply'
  /** The TLS handshake failed (the connection is dead). */
  | 'handshake'
  /** The connection was lost inside TLS, before the transaction. */
  | 'tls-session'
  /** The server answered with an error inside TLS (e.g. 421 to EHLO): its answer, not a TLS failure. */
  | 'tls-reply';

export interface SessionFailure {
  kind: SessionFailureKind;
  /** What went wrong, in words, without the host (the caller adds where). */
  message: string;
  /** The server's reply, when there was one. */
  reply?: string;
  /** The reply's code, when there was one. */
  replyCode?: number;
}

/** What one session saw. */
export interface SessionFacts {
  /** Whether the last cleartext EHLO offered STARTTLS. */
  starttlsOffered: boolean;
  /** Whether STARTTLS was sent. */
  starttlsSent: boolean;
  /** The server's non-2xx reply to STARTTLS, when it refused. */
  starttlsReply?: string;
  /** TLS as established, when it was. */
  tls?: PeerTls;
  /** Set when the session never became ready. */
  failure?: SessionFailure;
  /** Whether the EHLO reply on the channel the mail would use (after STARTTLS) advertised REQUIRETLS (RFC 8689 section 3). */
  requireTlsOffered?: boolean;
  /** The TLS session to keep for resumption, when the server gave one. */
  tlsSession?: Buffer;
  /** The address this connection left from, once it was up (RFC 8460's sending-mta-ip). */
  localAddress?: string;
}

export interface RecipientResult {
  recipient: string;
  /** `accepted`, or refused temporarily (4xx) or permanently (5xx). */
  status: 'accepted' | 'deferred' | 'rejected';
  /** The server's reply for this recipient, when there was one. */
  reply?: string | undefined;
}

export interface TransactionResult {
  /** Whether the message was accepted for at least one recipient. */
  ok: boolean;
  /** Whether the DATA command went out. */
  dataSent?: boolean;
  /**
   * Whether the whole message body went out (the final dot follows it) with no reply to its end:
   * the server may hold the message, so it must not be sent to another server now.
   */
  bodySent?: boolean;
  recipients: RecipientResult[];
  /** The final reply (to DATA), or the reply that stopped the transaction; undefined when none came. */
  reply?: string | undefined;
  /** Set when the transaction failed as a whole (MAIL FROM, DATA or the connection). */
  failure?: {
    message: string;
    reply?: string;
    replyCode?: number;
    temporary: boolean;
    command?: string;
    /** EMESSAGE when the message itself failed (refused at its end, or above the SIZE the server declared). */
    code?: string;
  };
}

/**
 * The single-line form of a (possibly multi-line) reply, safe to print: line breaks joined with
 * a space, any control, separator or bidi character left in it escaped (lib/text
 * escapeControls). Idempotent, and a no-op on every reply and message the session hands out
 * (they are made safe where gathered, with replyLine), so it can be applied to them again.
 */
export function oneLine(reply: string | undefined): string | undefined {
  return reply === undefined ? undefined : escapeControls(reply.replace(/\r?\n/g, ' ').trim());
}

/**
 * An error's message, safe to print. Nodemailer ends the message of an error caused by a reply
 * with ": " and the raw reply (smtp-connection _formatError): that part is replaced by the
 * reply as replyLine gives it, and the rest is escaped with safeText.
 */
function errorMessage(error: { message?: string; response?: string }): string {
  const message = error.message || String(error);
  const reply = replyLine(error.response);
  const quotesReply = error.response !== undefined && message.endsWith(`: ${error.response}`);
  const own = quotesReply ? message.slice(0, message.length - error.response!.length - 2) : message;
  const text = safeText(own.replace(/\r?\n/g, ' ').replace(/ {2,}/g, ' ').trim());
  return quotesReply && reply ? `${text}: ${reply}` : text;
}

/**
 * The logger for SMTPConnection: each message it logs formatted and made safe before the
 * caller's logger (or Nodemailer's console logger, for `true`) sees it. SMTPConnection puts
 * server replies in its messages (errors, "Server closed the idle connection: <reply>", the
 * `S:` lines of a debug trace), and Nodemailer's console logger prints each line of a message
 * as a log line of its own, so a reply with a line break would forge log lines. Server text
 * becomes one message on one line (safeText); the client's own commands and message lines of a
 * debug trace (tnx 'client' and 'message') are logged one message per line, each escaped.
 */
function safeLogger(logger: unknown): unknown {
  if (!logger) return false;
  const target = getLogger({ logger: logger as never }) as unknown as Record<string, (entry: unknown, message: string, text: string) => void>;
  const wrapped: Record<string, (entry: { tnx?: string } | undefined, message: unknown, ...args: unknown[]) => void> = {};
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
    wrapped[level] = (entry, message, ...args) => {
      const text = format(message, ...args);
      if (entry?.tnx === 'client' || entry?.tnx === 'message') {
        for (const line of text.split(/\r?\n/)) target[level]!(entry, '%s', safeText(line));
      } else {
        target[level]!(entry ?? {}, '%s', safeText(text.replace(/\r?\n/g, ' ')));
      }
    };
  }
  return wrapped;
}

/** The most certificates taken from a handshake: far more than any chain that can be judged (DANE stops at 12). */
const MAX_PEER_CERTS = 100;

/**
 * What the handshake showed: protocol, cipher, the certificates the server sent as DER, leaf
 * first and in the order sent (or with `wholeChain` false only the leaf: at the PKIX levels
 * nothing reads the ones above it), and OpenSSL's chain check.
 *
 * getPeerX509Certificate() gives the leaf and, through issuerCertificate, the other
 * certificates in the order the server sent them: what OpenSSL's build_chain() searches for
 * issuers, and what daneVerify expects. (getPeerCertificate(true) gave an issuer path of its
 * own instead, dropping certificates off it and adding issuers from the local CA store that the
 * server never sent, and built an object with every field and three digests per certificate.)
 * On the client Node takes the certificates out of the TLS session's list as it hands them
 * over, so it is called once per session, here.
 */
function peerOf(socket: TLSSocket, wholeChain: boolean): PeerTls {
  const chain: Buffer[] = [];
  let cert: X509Certificate | undefined = socket.getPeerX509Certificate();
  while (cert && chain.length < MAX_PEER_CERTS) {
    chain.push(cert.raw);
    if (!wholeChain) break;
    cert = cert.issuerCertificate;
  }
  const authorizationError = socket.authorizationError;
  return {
    protocol: socket.getProtocol() ?? '',
    cipher: socket.getCipher()?.name ?? '',
    chain,
    authorized: socket.authorized,
    ...(authorizationError ? { authorizationError: String((authorizationError as { code?: string }).code ?? authorizationError) } : {}),
  };
}

/** Secure contexts by what they are made of (tlsContextKey): building one (a CA bundle above all) costs more than a handshake's own work. */
const contexts = new Map<string, SecureContext>();
const MAX_CONTEXTS = 256;

/**
 * The connection's TLS options with a shared secure context in place of the CA, certificate,
 * key, protocol and cipher options it is made of. Nothing of the verification changes: the
 * chain is judged after the handshake, against the plan. A context that cannot be built is left
 * to the handshake, which fails with the same error as before.
 */
function withSecureContext(tls: ConnectionOptions): ConnectionOptions {
  const key = tlsContextKey(tls);
  let context = contexts.get(key);
  if (!context) {
    try {
      context = createSecureContext({
        ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
        ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
        ...(tls.key !== undefined ? { key: tls.key } : {}),
        ...(tls.minVersion !== undefined ? { minVersion: tls.minVersion } : {}),
        ...(tls.maxVersion !== undefined ? { maxVersion: tls.maxVersion } : {}),
        ...(tls.secureOptions !== undefined ? { secureOptions: tls.secureOptions } : {}),
        ...(tls.ciphers !== undefined ? { ciphers: tls.ciphers } : {}),
      });
    } catch {
      return tls;
    }
    contexts.set(key, context);
    if (contexts.size > MAX_CONTEXTS) contexts.delete(contexts.keys().next().value as string);
  }
  const { ca: _ca, cert: _cert, key: _key, minVersion: _min, maxVersion: _max, secureOptions: _options, ciphers: _ciphers, ...rest } = tls;
  return { ...rest, secureContext: context };
}

function offersStarttls(ehlo: string | string[] | undefined): boolean {
  if (!ehlo) return false;
  const lines = Array.isArray(ehlo) ? ehlo : ehlo.split(/\r?\n/).slice(1);
  return lines.some((line) => /^(\d{3}[ -])?STARTTLS\b/i.test(line.trim()));
}

/** This machine's host name when it is a fully qualified domain name (it has a dot), else undefined. */
function localFqdn(): string | undefined {
  let name = '';
  try {
    name = hostname();
  } catch {
    return undefined;
  }
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(name) ? name : undefined;
}

/** An address as an RFC 5321 section 4.1.3 address literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`. */
export function addressLiteral(address: string | undefined): string {
  if (!address) return '[127.0.0.1]';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return `[${v4[1]}]`;
  return address.includes(':') ? `[IPv6:${address}]` : `[${address}]`;
}

/** The command a reply answers, for messages; never an AUTH argument (it may carry a credential). */
function commandName(line: string): string {
  const verb = /^([A-Za-z]+)(?:\s|$)/.exec(line)?.[1]?.toUpperCase();
  const known = ['EHLO', 'HELO', 'LHLO', 'STARTTLS', 'AUTH', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'QUIT', 'VRFY'];
  return verb && known.includes(verb) ? verb : 'an AUTH exchange';
}

/**
 * The deadlines of one connection (Postfix's smtp_*_timeout, kept as deadlines as with
 * smtp_per_record_deadline): while a reply is awaited, it must be complete within
 * `commandTimeout` of the command, or of the reply before it when commands are pipelined; after
 * the 354 the whole body must be handed over within `dataTimeout`, and the reply to its end
 * must come within `dataTimeout`. Socket inactivity alone bounds nothing: a peer that trickles
 * one byte a second keeps it alive for ever.
 */
class Deadlines {
  /** Replies awaited: the greeting first. */
  private awaited = 1;
  private last = 'the greeting';
  private timer: NodeJS.Timeout | undefined;
  /** The body is on the wire and the reply to its end has not come. */
  bodyPending = false;
  private inBody = false;
  private done = false;

  constructor(
    private readonly fail: (why: string) => void,
    private readonly commandTimeout: number,
    private readonly dataTimeout: number,
  ) {
    this.arm(commandTimeout, () => `no complete greeting within ${commandTimeout} ms`);
  }

  command(line: string): void {
    this.awaited++;
    this.last = commandName(line);
    const what = this.last;
    this.arm(this.commandTimeout, () => `no complete reply to ${what} within ${this.commandTimeout} ms`);
  }

  reply(reply: string): void {
    if (this.awaited > 0) this.awaited--;
    if (this.bodyPending) {
      this.bodyPending = false;
    } else if (this.last === 'DATA' && /^3\d\d/.test(reply)) {
      this.inBody = true;
      this.arm(this.dataTimeout, () => `the message body was not taken within ${this.dataTimeout} ms`);
      return;
    }
    if (this.awaited > 0) {
      const what = this.last;
      this.arm(this.commandTimeout, () => `no complete reply to ${what} within ${this.commandTimeout} ms`);
    } else {
      this.stop();
    }
  }

  /** All of the body was handed over; the final dot follows it. */
  bodyEnd(): void {
    if (!this.inBody) return;
    this.inBody = false;
    this.bodyPending = true;
    this.awaited++;
    this.last = 'the end of the message';
    this.arm(this.dataTimeout, () => `no reply to the end of the message within ${this.dataTimeout} ms`);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The session is over (QUIT sent, closed, or failed): nothing is awaited any more. */
  finish(): void {
    this.done = true;
    this.stop();
  }

  private arm(ms: number, why: () => string): void {
    this.stop();
    if (this.done) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fail(why());
    }, ms);
    this.timer.unref();
  }
}

/** Where a deadline or the transport's close() ends the connection: SMTPConnection's, until the session's own wire takes the socket. */
interface FailRoute {
  fail(error: Error, code?: string): void;
}

/** What the session's own wire needs from open(): the inactivity timeout and the transaction log. */
interface WireSettings {
  socketTimeout: number;
  log?: (tnx: 'client' | 'server' | 'message', text: string) => void;
}

export class Session {
  readonly facts: SessionFacts;
  private readonly connection: SMTPConnection;
  private readonly deadlines: Deadlines;
  private readonly untrack: () => void;
  private readonly route: FailRoute;
  private readonly settings: WireSettings;
  /** The socket once this session carries the transactions itself (lib/smtp/transaction.ts). */
  private wire: Wire | undefined;
  /** What the last EHLO offered for transactions, read once when the wire takes the socket. */
  private extensions: SessionExtensions | undefined;
  private closed = false;
  private ended = false;
  private dataSent = false;
  private readonly closeListeners: Array<() => void> = [];

  private constructor(connection: SMTPConnection, facts: SessionFacts, deadlines: Deadlines, untrack: () => void, route: FailRoute, settings: WireSettings) {
    this.connection = connection;
    this.facts = facts;
    this.deadlines = deadlines;
    this.untrack = untrack;
    this.route = route;
    this.settings = settings;
    connection.on('end', () => this.markEnded());
    connection.on('error', () => this.markEnded());
  }

  private markEnded(): void {
    if (this.ended) return;
    this.ended = true;
    this.deadlines.finish();
    this.untrack();
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  /**
   * The session's own wire: the socket taken from SMTPConnection once the session is set up
   * (greeting, EHLO, STARTTLS, AUTH are SMTPConnection's), at the first transaction. The
   * deadlines, the transport's close() and the transaction log follow the socket.
   */
  private takeWire(): Wire | undefined {
    if (this.wire) return this.wire;
    if (this.ended) return undefined;
    const taken = takeSocket(this.connection);
    if (!taken) return undefined;
    const wire = new Wire(
      taken.socket,
      {
        command: (line) => {
          if (/^DATA\b/i.test(line)) this.dataSent = true;
          this.deadlines.command(line);
        },
        reply: (reply) => this.deadlines.reply(reply),
        bodyEnd: () => this.deadlines.bodyEnd(),
        ended: () => this.markEnded(),
        ...(this.settings.log ? { log: this.settings.log } : {}),
      },
      taken.leftover,
      this.settings.socketTimeout,
    );
    this.wire = wire;
    this.extensions = extensionsOf(this.connection);
    this.route.fail = (error, code = 'ETIMEDOUT') => wire.fail(wireError(error, code, undefined, 'CONN'));
    return wire;
  }

  /** Whether the connection is still open and usable (not closed by us or by the server). */
  get alive(): boolean {
    return !this.closed && !this.ended;
  }

  /** Calls `listener` once when the connection ends (at once if it already has); returns a function that removes it. */
  onClose(listener: () => void): () => void {
    if (this.ended) {
      listener();
      return () => undefined;
    }
    this.closeListeners.push(listener);
    return () => {
      const index = this.closeListeners.indexOf(listener);
      if (index >= 0) this.closeListeners.splice(index, 1);
    };
  }

  /** Whether the server's last EHLO reply offered SMTP AUTH (RFC 4954 section 3). */
  get offersAuth(): boolean {
    return ehloLinesOf(this.connection).some((line) => /^AUTH\b/i.test(line.trim()));
  }

  /** Whether the channel is encrypted. */
  get encrypted(): boolean {
    return this.facts.tls !== undefined;
  }

  /**
   * Connects, reads the greeting, does EHLO and (when asked and offered) STARTTLS and EHLO
   * again. Resolves with the facts, and a session ready for a transaction when it got that far.
   */
  static open(options: SessionOptions): Promise<{ facts: SessionFacts; session?: Session }> {
    const logger = safeLogger(options.logger);
    const connection = new WatchedConnection({
      host: options.address,
      port: options.port,
      secure: options.implicitTls === true,
      ignoreTLS: !options.starttls,
      opportunisticTLS: true,
      ...(options.tls.servername ? { servername: options.tls.servername } : {}),
      // no check during the handshake: verify judges the chain and names afterwards
      tls: {
        ...withSecureContext(options.tls),
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        ...(options.tlsSession ? { session: options.tlsSession } : {}),
      },
      ...(options.name ? { name: options.name } : {}),
      ...(options.connectionTimeout ? { connectionTimeout: options.connectionTimeout } : {}),
      ...(options.greetingTimeout ? { greetingTimeout: options.greetingTimeout } : {}),
      ...(options.socketTimeout ? { socketTimeout: options.socketTimeout } : {}),
      logger: logger as never,
      debug: options.debug === true,
      socketCloseTimeout: 0,
    });
    let starttlsSent = false;
    connection.on('error', () => {
      /* reported through the settle path below */
    });
    drainRepliesOnClose(connection);
    // The local end of the connection, for TLS reporting (RFC 8460 section 4.4, sending-mta-ip).
    let localAddress: string | undefined;
    onConnected(connection, (socket) => {
      localAddress = socket.localAddress;
    });
    if (!options.name) {
      // RFC 5321 section 4.1.4: EHLO carries the client's FQDN, or, when it has none, an address
      // literal of the client (section 4.1.3). Nodemailer's fallback is `[127.0.0.1]`, which is
      // nobody's address to a remote server: use the address this connection leaves from.
      const fqdn = localFqdn();
      onConnected(connection, (socket) => setEhloName(connection, fqdn ?? addressLiteral(socket.localAddress)));
    }
    const route: FailRoute = { fail: (error, code) => failConnection(connection, error, code) };
    const deadlines = new Deadlines(
      (why) => route.fail(Object.assign(new Error(why), { deadline: true })),
      options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT,
      options.dataTimeout ?? DEFAULT_DATA_TIMEOUT,
    );
    onCommand(connection, (command) => deadlines.command(command));
    onReply(connection, (reply) => deadlines.reply(reply));
    const untrack =
      options.tracker?.add({
        abort: (reason) => route.fail(Object.assign(new Error(reason), { closedByTransport: true }), 'ECONNECTION'),
        get bodySent() {
          return deadlines.bodyPending;
        },
      }) ?? (() => undefined);
    const ended = () => {
      deadlines.finish();
      untrack();
    };
    return new Promise((resolve) => {
      let settled = false;
      const settle = (error?: Error & { response?: string; code?: string }) => {
        if (settled) return;
        settled = true;
        const secure = isSecure(connection);
        const facts: SessionFacts = {
          starttlsOffered: false,
          starttlsSent,
          ...(localAddress ? { localAddress } : {}),
        };
        if (error) {
          facts.starttlsOffered = starttlsSent || offersStarttls(plaintextEhloOf(connection));
          facts.failure = classifyFailure(error, {
            implicitTls: options.implicitTls === true,
            upgrading: isUpgrading(connection),
            secure,
            // a reply arrived (the greeting at least): tells a dead TLS port from a refusal
            sawReply: lastReplyOf(connection) !== undefined,
          });
          connection.close();
          ended();
          resolve({ facts });
          return;
        }
        const socket = tlsSocketOf(connection);
        if (socket) {
          facts.tls = peerOf(socket, options.peerChain !== false);
          if (socket.isSessionReused()) facts.tls.resumed = true;
          // By the EHLO reply inside TLS the server's session ticket (TLS 1.3) has arrived.
          const kept = socket.getSession();
          if (kept) facts.tlsSession = kept;
          facts.starttlsOffered = !options.implicitTls;
          // RFC 8689 section 4.2.1: only the EHLO reply inside TLS counts.
          facts.requireTlsOffered = ehloLinesOf(connection).some((line) => /^REQUIRETLS\b/i.test(line.trim()));
        } else {
          // Still cleartext: either STARTTLS was not offered (or not wanted), or it was refused,
          // in which case SMTPConnection went on with the cleartext EHLO and the last reply is
          // the refusal.
          facts.starttlsOffered = offersStarttls(ehloLinesOf(connection));
          if (starttlsSent) {
            const reply = replyLine(lastReplyOf(connection));
            if (reply !== undefined) facts.starttlsReply = reply;
          }
        }
        // The transaction log, as SMTPConnection writes it with `debug`: through the same safe logger.
        const debugLog = options.debug === true && logger ? (logger as { debug: (entry: object, message: string, text: string) => void }).debug : undefined;
        const settings: WireSettings = {
          socketTimeout: options.socketTimeout || DEFAULT_SOCKET_TIMEOUT,
          ...(debugLog ? { log: (tnx: 'client' | 'server' | 'message', text: string) => debugLog({ tnx }, '%s', text) } : {}),
        };
        resolve({ facts, session: new Session(connection, facts, deadlines, untrack, route, settings) });
      };
      // Watch the commands SMTPConnection writes, to know when STARTTLS went out.
      onCommand(connection, (command) => {
        if (/^STARTTLS\b/i.test(command)) starttlsSent = true;
      });
      connection.once('error', (err: Error) => settle(err as Error & { response?: string }));
      connection.once('end', () => settle(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' })));
      try {
        connection.connect((err?: Error | null) => {
          if (err) settle(err as Error & { response?: string });
          else settle();
        });
      } catch (err) {
        settle(err as Error);
      }
    });
  }

  /**
   * SMTP AUTH. Rejects with Nodemailer's error, its `message` and `response` (the server's
   * reply) made safe to print.
   */
  login(auth: { user: string; pass: string }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.connection.login({ user: auth.user, pass: auth.pass }, (err) => {
        if (!err) {
          resolve();
          return;
        }
        const e = err as Error & { response?: string };
        const message = errorMessage(e);
        const response = replyLine(e.response);
        reject(Object.assign(e, { message, ...(response !== undefined ? { response } : {}) }));
      });
    });
  }

  /** One mail transaction: MAIL FROM (with REQUIRETLS when `requireTls`, RFC 8689 section 4.1), RCPT TO for each recipient, DATA. */
  async send(from: string, recipients: string[], message: Buffer, requireTls = false): Promise<TransactionResult> {
    this.dataSent = false;
    const wire = this.takeWire();
    if (!wire) {
      return transactionResult(recipients, wireError('Connection closed unexpectedly', 'ECONNECTION', undefined, 'API'), undefined, false, false);
    }
    const result = await transact(
      wire,
      { from, to: recipients, size: message.length, requireTls, secure: isSecure(this.connection) },
      this.extensions!,
      message,
    );
    return transactionResult(recipients, result.error, result.info, this.dataSent, this.deadlines.bodyPending);
  }

  /**
   * Whether this session keeps the process alive. An idle session kept for reuse must not: a
   * script that sends once exits at once, as with Nodemailer's own transport (the pool unrefs a
   * session it parks and refs it again when it hands it out).
   */
  keepAlive(keep: boolean): void {
    const socket = socketOf(this.connection);
    if (!socket) return;
    if (keep) socket.ref();
    else socket.unref();
  }

  /** Ends the session politely (QUIT), without waiting. */
  quit(): void {
    if (this.closed) return;
    this.closed = true;
    this.deadlines.finish();
    this.untrack();
    if (this.wire) {
      this.wire.quit(1000);
      return;
    }
    try {
      this.connection.quit();
    } catch {
      /* already gone */
    }
    setTimeout(() => this.connection.close(), 1000).unref();
  }

  /** Drops the connection at once. */
  close(): void {
    this.closed = true;
    this.deadlines.finish();
    this.untrack();
    if (this.wire) this.wire.destroy();
    else this.connection.close();
  }
}

/** Sorts an error that ended a session before it was ready into one of the failure kinds. */
export function classifyFailure(
  error: Error & { response?: string; code?: string; originalCode?: string; deadline?: boolean; closedByTransport?: boolean },
  state: { implicitTls: boolean; upgrading: boolean; secure: boolean; sawReply: boolean },
): SessionFailure {
  const reply = replyLine(error.response);
  const code = replyCode(reply);
  // the reply itself is not repeated in the words; what is left may still quote server text
  const detail = safeText(
    (error.message || String(error))
      .replace(/: \d{3}[ -].*$/s, '')
      .replace(/\s+/g, ' ')
      .trim(),
  );
  if (error.deadline || error.closedByTransport) {
    // A deadline passed or the transport was closed: inside TLS that ends the TLS session.
    return { kind: state.secure ? 'tls-session' : 'connect', message: error.deadline ? `timed out: ${detail}` : detail };
  }
  if (state.upgrading) {
    return { kind: 'handshake', message: `TLS handshake failed: ${detail}` };
  }
  if (reply && code) {
    const insideStarttls = state.secure && !state.implicitTls;
    return { kind: insideStarttls ? 'tls-reply' : 'reply', message: `the server answered ${reply}`, reply, replyCode: code };
  }
  if (state.implicitTls && !state.sawReply) {
    const system = error.originalCode ?? '';
    if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL/.test(system) || /CONNECT_TIMEOUT|Connection timeout/i.test(`${error.code} ${error.message}`)) {
      return { kind: 'connect', message: `connection failed: ${detail}` };
    }
    return { kind: 'handshake', message: `TLS handshake failed: ${detail}` };
  }
  if (state.secure) {
    return { kind: 'tls-session', message: `connection lost inside TLS: ${detail}` };
  }
  return { kind: 'connect', message: state.sawReply ? `connection lost: ${detail}` : `connection failed: ${detail}` };
}

/**
 * A transaction's outcome as the session reports it: each recipient accepted, deferred (4xx) or
 * rejected (5xx) with its own reply where the server gave one, and the failure that ended the
 * transaction, its reply and words made safe to print (lib/text).
 */
function transactionResult(
  recipients: string[],
  error: WireError | undefined,
  info: { accepted: string[]; rejectedErrors?: WireError[]; response: string } | undefined,
  dataSent: boolean,
  bodyPending: boolean,
): TransactionResult {
  if (!error && info) {
    const rejected = new Map<string, string | undefined>();
    for (const e of info.rejectedErrors ?? []) if (e.recipient) rejected.set(e.recipient, e.response);
    const final = replyLine(info.response);
    const results: RecipientResult[] = recipients.map((recipient) => {
      if (info.accepted.includes(recipient)) return { recipient, status: 'accepted', reply: final };
      const reply = replyLine(rejected.get(recipient));
      return { recipient, status: (replyCode(reply) ?? 500) >= 500 ? 'rejected' : 'deferred', reply };
    });
    return { ok: true, recipients: results, reply: final };
  }
  const e = error ?? wireError('Connection closed unexpectedly', 'ECONNECTION', undefined, 'CONN');
  const reply = replyLine(e.response);
  const message = errorMessage(e);
  const code = e.responseCode ?? replyCode(reply);
  if (e.rejectedErrors && e.rejectedErrors.length && e.command === 'RCPT TO') {
    // Every recipient refused: each with its own reply.
    const byRecipient = new Map(e.rejectedErrors.map((r) => [r.recipient, replyLine(r.response)]));
    const results: RecipientResult[] = recipients.map((recipient) => {
      const r = byRecipient.get(recipient) ?? reply;
      return { recipient, status: (replyCode(r) ?? 400) >= 500 ? 'rejected' : 'deferred', reply: r };
    });
    return { ok: false, recipients: results, reply };
  }
  const temporary = code === undefined || code < 500;
  // Recipients the server already refused at RCPT keep that answer (a 5xx rejected, a 4xx
  // deferred): the failure after it was not theirs. The rest share the failure.
  const refused = new Map((e.rejectedErrors ?? []).map((r) => [r.recipient, replyLine(r.response)]));
  return {
    ok: false,
    recipients: recipients.map((recipient): RecipientResult => {
      const own = refused.get(recipient);
      if (own) return { recipient, status: (replyCode(own) ?? 400) >= 500 ? 'rejected' : 'deferred', reply: own };
      return { recipient, status: temporary ? 'deferred' : 'rejected', reply: reply ?? message };
    }),
    reply,
    dataSent,
    // the body went out whole and nothing answered its end (a reply is an answer)
    bodySent: bodyPending && reply === undefined,
    failure: {
      message,
      ...(reply ? { reply } : {}),
      ...(code ? { replyCode: code } : {}),
      temporary,
      ...(e.command ? { command: e.command } : {}),
      ...(e.code === 'EMESSAGE' ? { code: 'EMESSAGE' } : {}),
    },
  };
}
