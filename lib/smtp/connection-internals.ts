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
import type { TLSSocket } from 'node:tls';

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
