/**
 * The one place that reads what Nodemailer's SMTPConnection keeps private.
 *
 * The session needs facts SMTPConnection does not publish: the socket (to read the TLS peer
 * chain, protocol and cipher after the handshake and before MAIL FROM / AUTH), the EHLO lines
 * (was STARTTLS offered?), whether a STARTTLS upgrade is under way when an error arrives (a
 * handshake failure), the last reply, and the commands it writes (to see STARTTLS go out). These fields are stable across Nodemailer 6 to 10.6;
 * package.json pins the range, and test/smtp-internals.test.ts breaks if any of them changes.
 */
import type { Socket } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { TLSSocket } from 'node:tls';
import type { SessionExtensions } from './wire.js';

/** The private fields read, with the types they have in Nodemailer 10.6. */
export interface ConnectionInternals {
  _socket: Socket | TLSSocket | false;
  _ehloLines?: string[];
  _plaintextEhlo?: string | false;
  upgrading?: boolean;
  secure: boolean;
  lastServerResponse: string | false;
}

function internals(connection: object): ConnectionInternals {
  return connection as unknown as ConnectionInternals;
}

/** The TLS socket of a secured connection, or undefined while it is cleartext. */
export function tlsSocketOf(connection: object): TLSSocket | undefined {
  const c = internals(connection);
  const socket = c._socket;
  if (!c.secure || !socket || !(socket as TLSSocket).encrypted) return undefined;
  return socket as TLSSocket;
}

/** The extension lines of the last EHLO reply the session acted on (without the greeting line). */
export function ehloLinesOf(connection: object): string[] {
  return internals(connection)._ehloLines ?? [];
}

/** The cleartext EHLO reply kept while STARTTLS is attempted (false/undefined otherwise). */
export function plaintextEhloOf(connection: object): string | undefined {
  const value = internals(connection)._plaintextEhlo;
  return typeof value === 'string' ? value : undefined;
}

/** Whether a STARTTLS handshake is under way. */
export function isUpgrading(connection: object): boolean {
  return internals(connection).upgrading === true;
}

/** Whether the connection is encrypted (implicit TLS, or after STARTTLS). */
export function isSecure(connection: object): boolean {
  return internals(connection).secure === true;
}

/** The last reply the server sent, as one string (multi-line replies joined with newlines). */
export function lastReplyOf(connection: object): string | undefined {
  const value = internals(connection).lastServerResponse;
  return typeof value === 'string' ? value : undefined;
}

/** Calls `listener` with every command line SMTPConnection writes (to see STARTTLS go out). */
export function onCommand(connection: object, listener: (command: string) => void): void {
  const c = connection as { _sendCommand: (command: string) => unknown };
  const original = c._sendCommand;
  c._sendCommand = function (this: unknown, command: string) {
    listener(command);
    return original.call(this, command);
  };
}

const replyListener = Symbol('replyListener');
const lastReply = Symbol('lastReply');
type Watched = { [replyListener]?: (reply: string) => void; [lastReply]?: string | false };

/**
 * SMTPConnection whose `lastServerResponse` is an accessor on the prototype, so that onReply
 * can watch every reply without reshaping the instance: SMTPConnection assigns the field (in its
 * constructor and for each reply), and an assignment runs the inherited setter. Redefining the
 * instance's own data property as an accessor instead (as onReply once did) turns the object
 * into a dictionary-mode object in V8, and every field SMTPConnection reads on itself, many per
 * command, then becomes a slow lookup.
 */
export class WatchedConnection extends SMTPConnection {}
Object.defineProperty(WatchedConnection.prototype, 'lastServerResponse', {
  configurable: true,
  enumerable: true,
  get(this: Watched): string | false {
    return this[lastReply] ?? false;
  },
  set(this: Watched, next: string | false) {
    this[lastReply] = next;
    if (typeof next === 'string') this[replyListener]?.(next);
  },
});

/**
 * Calls `listener` with every reply SMTPConnection takes in, as it records it in
 * `lastServerResponse` (each complete reply, and an unterminated one left when the server
 * closes). The connection must be a WatchedConnection; one listener per connection.
 */
export function onReply(connection: object, listener: (reply: string) => void): void {
  if (!(connection instanceof WatchedConnection)) throw new TypeError('onReply: the connection is not a WatchedConnection');
  (connection as Watched)[replyListener] = listener;
}

/**
 * Makes a connection act on every complete reply it has received before it handles the server
 * closing. SMTPConnection takes queued replies in one at a time on the next turn of the event
 * loop, so a server that answers and closes at once (`421` to DATA, then FIN) has its reply
 * dropped and the send fails with "Connection closed unexpectedly"; with this, the reply is the
 * failure, as RFC 5321 section 3.8 expects a client to report it.
 */
export function drainRepliesOnClose(connection: object): void {
  const c = connection as { _onClose: () => void; _processResponse: () => unknown; _responseQueue: string[]; _destroyed: boolean };
  const original = c._onClose;
  c._onClose = function (this: typeof c) {
    // _processResponse takes one reply a call (and returns early on a partial one).
    for (let guard = this._responseQueue.length; guard > 0 && this._responseQueue.length > 0 && !this._destroyed; guard--) {
      const before = this._responseQueue.length;
      this._processResponse();
      if (this._responseQueue.length >= before) break;
    }
    return original.call(this);
  };
}

/** Fails the connection as its own timers do: 'error' is emitted, it closes, a send in flight gets `error`. */
export function failConnection(connection: object, error: Error, code = 'ETIMEDOUT'): void {
  const c = connection as { _onError: (err: Error, type: string, data: false, command: string) => void };
  c._onError(error, code, false, 'CONN');
}

/** The connection's socket (the TLS socket once secured), for ref()/unref(); undefined before it connects. */
export function socketOf(connection: object): Socket | TLSSocket | undefined {
  const socket = internals(connection)._socket;
  return socket || undefined;
}

/**
 * Calls `listener` with the socket once the TCP connection is up, before the greeting is read
 * (SMTPConnection's `_onConnect`), so the EHLO name can still be chosen from the local address.
 */
export function onConnected(connection: object, listener: (socket: Socket) => void): void {
  const c = connection as { _onConnect: () => unknown; _socket: Socket };
  const original = c._onConnect;
  c._onConnect = function (this: typeof c) {
    listener(this._socket);
    return original.call(this);
  };
}

/** Sets the name SMTPConnection sends in EHLO/HELO (read when EHLO is written). */
export function setEhloName(connection: object, name: string): void {
  (connection as { name: string }).name = name;
}

/** What the transaction uses of the server's last EHLO reply, as SMTPConnection parsed it. */
export function extensionsOf(connection: object): SessionExtensions {
  const c = connection as { _supportedExtensions?: string[]; _maxAllowedSize?: number };
  const ext = c._supportedExtensions ?? [];
  return {
    pipelining: ext.includes('PIPELINING'),
    size: ext.includes('SIZE'),
    smtpUtf8: ext.includes('SMTPUTF8'),
    requireTls: ext.includes('REQUIRETLS'),
    maxSize: Number(c._maxAllowedSize) || 0,
  };
}

/**
 * Takes the socket of a ready, idle connection away from SMTPConnection (lib/smtp/transaction.ts
 * carries the session on from there): its listeners and timers are removed, so it neither reads
 * nor acts on the socket again. Returns the socket and the bytes SMTPConnection had taken in and
 * not yet acted on (nothing, from a server that sends only what it is asked for).
 */
export function takeSocket(connection: object): { socket: Socket | TLSSocket; leftover: string } | undefined {
  const c = connection as {
    _socket: Socket | TLSSocket | false;
    _onSocketData: (...args: unknown[]) => void;
    _onSocketTimeout: (...args: unknown[]) => void;
    _onSocketClose: (...args: unknown[]) => void;
    _onSocketEnd: (...args: unknown[]) => void;
    _onSocketError: (...args: unknown[]) => void;
    _onConnectionSocketError: (...args: unknown[]) => void;
    _clearPhase: () => void;
    _responseQueue: string[];
    _remainder: string;
    _responseActions: unknown[];
    _destroyed: boolean;
    _closing: boolean;
  };
  const socket = c._socket;
  if (!socket || socket.destroyed || c._destroyed) return undefined;
  socket.removeListener('data', c._onSocketData);
  socket.removeListener('timeout', c._onSocketTimeout);
  socket.removeListener('close', c._onSocketClose);
  socket.removeListener('end', c._onSocketEnd);
  socket.removeListener('error', c._onSocketError);
  socket.removeListener('error', c._onConnectionSocketError);
  socket.setTimeout(0);
  c._clearPhase();
  const leftover = c._responseQueue.map((reply) => `${reply.replace(/\n/g, '\r\n')}\r\n`).join('') + c._remainder;
  c._responseQueue = [];
  c._remainder = '';
  c._responseActions = [];
  // SMTPConnection no longer owns the socket: close() (which checks _closing) and every method
  // that reads or writes (which check _destroyed) bail out.
  c._destroyed = true;
  c._closing = true;
  return { socket, leftover };
}
