/**
 * Real SMTP peers for tests: `smtp-server` instances on 127.0.0.x, each recording every
 * MAIL / RCPT / AUTH / DATA it saw and whether TLS was on when it saw it, so tests prove from
 * the server's side what crossed which channel.
 */
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Socket } from 'node:net';

export type PeerBehaviour =
  /** STARTTLS offered and working. */
  | 'starttls'
  /** STARTTLS not offered. */
  | 'no-starttls'
  /** STARTTLS offered, answered 454. */
  | 'starttls-454'
  /** STARTTLS offered, answered 554. */
  | 'starttls-554'
  /** STARTTLS offered, accepted, then the TLS handshake fails (server aborts it). */
  | 'handshake-fail'
  /** TLS established, then the connection is dropped before the EHLO reply. */
  | 'drop-after-tls'
  /** TLS established, then the server answers 421 inside TLS. */
  | 'reply-421-after-tls'
  /** TLS from the first byte (SMTPS). */
  | 'implicit-tls';

export interface PeerEvent {
  command: 'CONNECT' | 'AUTH' | 'MAIL' | 'RCPT' | 'DATA';
  secure: boolean;
  value?: string | undefined;
  /** SNI name the client sent, when TLS. */
  servername?: string | undefined;
  /** With `requestCert`: the subject CN of the client certificate presented, '' for none. */
  clientCert?: string;
}

export interface PeerOptions {
  host: string;
  port: number;
  behaviour: PeerBehaviour;
  cert?: string;
  key?: string;
  /** Accept AUTH (any user with password 'secret'); AUTH is offered without TLS too. */
  auth?: boolean;
  /** Replies for RCPT by address: e.g. { 'bad@x.test': '550 5.1.1 no such user' }. */
  rcptReplies?: Record<string, string>;
  /** Reply to MAIL FROM, e.g. '451 4.3.0 try later'. */
  mailReply?: string;
  /** The server's name in its greeting. */
  name?: string;
  /** Close a connection idle this long (ms). Default 10 s. */
  socketTimeout?: number;
  /**
   * Replies written to the socket byte for byte (smtp-server's own replies have their control
   * characters replaced), each followed by CRLF, instead of running the command: e.g.
   * `{ STARTTLS: '454 4.7.0 busy\rforged' }`; a CRLF inside makes a multi-line reply.
   * GREETING replaces the greeting (the session then waits for the client to leave).
   */
  rawReplies?: Partial<Record<'GREETING' | 'EHLO' | 'STARTTLS' | 'AUTH' | 'MAIL' | 'RCPT' | 'DATA', string>>;
  /** Ask the client for a certificate during the TLS handshake (any is accepted) and record its CN. */
  requestCert?: boolean;
}

export interface Peer {
  host: string;
  port: number;
  events: PeerEvent[];
  /** Messages received: raw data and whether TLS was on. */
  messages: { data: string; secure: boolean; from: string; to: string[] }[];
  /** Number of TCP connections accepted. */
  connections: number;
  close(): Promise<void>;
}

interface ServerConnection {
  session: SMTPServerSession;
  send(code: number, text: string): void;
  handler_STARTTLS: unknown;
  _socket: Socket;
  [handler: `handler_${string}`]: unknown;
}

/** smtp-server's connection object for a session (to replace its STARTTLS handler). */
function connectionOf(server: SMTPServer, session: SMTPServerSession): ServerConnection {
  for (const connection of (server as unknown as { connections: Set<ServerConnection> }).connections) {
    if (connection.session === session) return connection;
  }
  throw new Error('test peer: no connection for session');
}

function replyError(reply: string): Error & { responseCode: number } {
  const code = Number(reply.slice(0, 3));
  return Object.assign(new Error(reply.slice(4)), { responseCode: code });
}

export async function startPeer(options: PeerOptions): Promise<Peer> {
  const events: PeerEvent[] = [];
  const messages: Peer['messages'] = [];
  const peer: Peer = {
    host: options.host,
    port: options.port,
    events,
    messages,
    connections: 0,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const b = options.behaviour;
  const serverOptions: SMTPServerOptions = {
    name: options.name ?? `peer-${options.host}`,
    secure: b === 'implicit-tls',
    hideSTARTTLS: b === 'no-starttls',
    ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: options.auth ? [] : ['AUTH'],
    logger: false,
    ...(options.requestCert ? { requestCert: true, rejectUnauthorized: false } : {}),
    socketTimeout: options.socketTimeout ?? 10_000,
    closeTimeout: 1000,
    onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void) {
      peer.connections += 1;
      events.push({ command: 'CONNECT', secure: session.secure });
      const connection = connectionOf(server, session);
      if (b === 'starttls-454' || b === 'starttls-554') {
        const [code, text] = b === 'starttls-454' ? [454, '4.7.0 TLS not available due to local problem'] : [554, '5.7.0 TLS not available'];
        connection.handler_STARTTLS = (_command: unknown, cb: () => void) => {
          connection.send(code, text);
          cb();
        };
      }
      if (b === 'handshake-fail') {
        // Says yes to STARTTLS, then answers the ClientHello with bytes that are not TLS.
        connection.handler_STARTTLS = (_command: unknown, cb: () => void) => {
          connection.send(220, 'Ready to start TLS');
          connection._socket.once('data', () => connection._socket.end('this is not a TLS record\r\n'));
          cb();
        };
      }
      for (const [command, reply] of Object.entries(options.rawReplies ?? {})) {
        if (command === 'GREETING') continue;
        connection[`handler_${command}`] = (_command: unknown, cb: () => void) => {
          connection._socket.write(`${reply}\r\n`);
          cb();
        };
      }
      if (options.rawReplies?.GREETING !== undefined) {
        // the callback is never called, so smtp-server never greets
        connection._socket.write(`${options.rawReplies.GREETING}\r\n`);
        return;
      }
      callback();
    },
    onSecure(socket: Socket, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      if (options.requestCert) {
        const cert = (socket as unknown as { getPeerCertificate(): { subject?: { CN?: string } } }).getPeerCertificate();
        (session as { clientCert?: string }).clientCert = cert?.subject?.CN ?? '';
      }
      if (b === 'drop-after-tls') {
        socket.destroy();
        return;
      }
      if (b === 'reply-421-after-tls') {
        callback(replyError('421 4.3.2 Service shutting down'));
        return;
      }
      callback();
    },
    onAuth(auth, session, callback) {
      events.push({ command: 'AUTH', secure: session.secure, value: auth.username });
      if (auth.password === 'secret') callback(null, { user: auth.username });
      else callback(replyError('535 5.7.8 Authentication credentials invalid'));
    },
    onMailFrom(address, session, callback) {
      events.push({
        command: 'MAIL',
        secure: session.secure,
        value: address.address,
        servername: (session as { servername?: string }).servername,
        ...(options.requestCert ? { clientCert: (session as { clientCert?: string }).clientCert ?? '' } : {}),
      });
      if (options.mailReply) callback(replyError(options.mailReply));
      else callback();
    },
    onRcptTo(address, session, callback) {
      events.push({ command: 'RCPT', secure: session.secure, value: address.address });
      const reply = options.rcptReplies?.[address.address];
      if (reply) callback(replyError(reply));
      else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        events.push({ command: 'DATA', secure: session.secure });
        messages.push({
          data: Buffer.concat(chunks).toString('utf8'),
          secure: session.secure,
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        });
        callback(null, 'Ok: queued');
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.server.removeListener('error', onError);
      resolve();
    });
  });
  if (options.port === 0) {
    peer.port = (server.server.address() as { port: number }).port;
  }
  return peer;
}

/** A random 127.x.y.0 block for one test file, so files running in parallel do not collide. */
export function loopbackBlock(): (n: number) => string {
  const a = 1 + Math.floor(Math.random() * 250);
  const b = 1 + Math.floor(Math.random() * 250);
  return (n: number) => `127.${a}.${b}.${n}`;
}

/**
 * Starts several peers on one shared port (the transport's `port` option applies to every MX),
 * each on its own loopback address. Retries with another port if one is taken.
 */
export async function startPeers(specs: Array<Omit<PeerOptions, 'port'>>): Promise<Peer[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const started: Peer[] = [];
    try {
      for (const spec of specs) started.push(await startPeer({ ...spec, port }));
      return started;
    } catch (err) {
      await Promise.all(started.map((p) => p.close()));
      if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no free port for the test peers');
}
