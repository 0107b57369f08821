/**
 * One try of one query against one server: over UDP (RFC 1035 §4.2.1), or over TCP with
 * the two-octet length prefix (RFC 1035 §4.2.2, RFC 7766).
 *
 * Each UDP try uses a fresh socket, so a fresh random source port (RFC 5452 §9.2), connected
 * to the server so the kernel drops datagrams from elsewhere; the sender is checked again
 * here. Messages that do not answer the query (wrong ID, wrong question, too short) are
 * ignored and the try keeps waiting, as RFC 5452 §4 asks: they may be spoofed, and the real
 * answer may still arrive.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { ServerAddress } from './servers.js';
import { checkReply, type Flags, type Message } from './message.js';

export interface Query {
  id: number;
  name: string;
  type: number;
  buffer: Buffer;
}

export type TryOutcome =
  | { kind: 'reply'; message: Message; flags: Flags; rcode: number }
  /** Nothing usable arrived in time; `ignored` counts messages that did not answer the query. */
  | { kind: 'timeout'; ignored: number }
  /** The server answered with something unusable (`final`), or the network failed (not final). */
  | { kind: 'error'; why: string; final: boolean };

/** The textual form URL parsing gives an IP address, so `::1` and `0:0::1` compare equal. */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const canon = (ip: string) => {
    try {
      return new URL(`http://${ip.includes(':') ? `[${ip}]` : ip}/`).hostname;
    } catch {
      return ip;
    }
  };
  return canon(a) === canon(b);
}

export function udpTry(server: ServerAddress, query: Query, timeout: number): Promise<TryOutcome> {
  return new Promise((resolve) => {
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let ignored = 0;
    let settled = false;
    const finish = (outcome: TryOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('message');
      socket.on('error', () => {});
      try {
        socket.close();
      } catch {
        // Already closed.
      }
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', ignored }), timeout);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      finish({ kind: 'error', why: `UDP to ${server.label} failed (${error.code ?? error.message})`, final: false });
    });
    socket.on('message', (buffer, rinfo) => {
      if (!sameAddress(rinfo.address, server.address) || rinfo.port !== server.port) {
        ignored++;
        return;
      }
      const check = checkReply(buffer, query.id, query.name, query.type);
      if (check.ok) finish({ kind: 'reply', message: check.message, flags: check.flags, rcode: check.rcode });
      else if (check.ignore) ignored++;
      else finish({ kind: 'error', why: `${check.why} from ${server.label}`, final: true });
    });
    socket.connect(server.port, server.address, () => {
      socket.send(query.buffer, (error) => {
        if (error) {
          const code = (error as NodeJS.ErrnoException).code ?? error.message;
          finish({ kind: 'error', why: `UDP to ${server.label} failed (${code})`, final: false });
        }
      });
    });
  });
}

export function tcpTry(server: ServerAddress, query: Query, timeout: number): Promise<TryOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: server.address, port: server.port });
    let received = Buffer.alloc(0);
    let ignored = 0;
    let settled = false;
    const finish = (outcome: TryOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.on('error', () => {});
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', ignored }), timeout);
    socket.on('connect', () => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(query.buffer.length);
      socket.write(Buffer.concat([prefix, query.buffer]));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 2) {
        const length = received.readUInt16BE(0);
        if (received.length < 2 + length) return;
        const buffer = received.subarray(2, 2 + length);
        received = received.subarray(2 + length);
        const check = checkReply(buffer, query.id, query.name, query.type);
        if (check.ok) {
          finish({ kind: 'reply', message: check.message, flags: check.flags, rcode: check.rcode });
          return;
        }
        if (!check.ignore) {
          finish({ kind: 'error', why: `${check.why} over TCP from ${server.label}`, final: true });
          return;
        }
        ignored++;
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      finish({ kind: 'error', why: `TCP to ${server.label} failed (${error.code ?? error.message})`, final: false });
    });
    socket.on('close', () => {
      finish({ kind: 'error', why: `TCP connection to ${server.label} closed before a complete reply`, final: false });
    });
  });
}
