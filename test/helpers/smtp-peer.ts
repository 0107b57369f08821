/**
 * Real SMTP peers for tests: `smtp-server` instances on 127.0.0.x, each recording every
 * MAIL / RCPT / AUTH / DATA it saw and whether TLS was on when it saw it, so tests prove from
 * the server's side what crossed which channel. With `fast`, a peer records nothing but
 * counters (the bench's sink).
 *
 * Part of the test kit shared by test/, demo/ and bench/: the demo and the bench import this
 * file from plain `node`, which strips its types (Node >= 22.18), so it holds only erasable
 * TypeScript and imports no relative module at run time (only types from ./pki.js).
 */
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Socket } from 'node:net';
import type { ZoneRecord } from './dns-server.js';
import type { Issued, Pki } from './pki.js';

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
  /** At MAIL: the name the client gave in EHLO/HELO, and its address as the server saw it. */
  helo?: string;
  clientAddress?: string;
  /** At MAIL: the parameters after the address, e.g. ['SIZE', 'REQUIRETLS']. */
  params?: string[];
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
  /** Advertise REQUIRETLS (RFC 8689) after STARTTLS (smtp-server does not by default). */
  requireTls?: boolean;
  /** Close a connection idle this long (ms). Default 10 s. */
  socketTimeout?: number;
  /** The newest TLS version the peer speaks (an old server). Default: Node's. */
  maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /**
   * The peer's OpenSSL cipher string. A peer limited to TLSv1.1 needs `DEFAULT@SECLEVEL=0`: OpenSSL 3
   * refuses the versions before TLS 1.2 at any higher security level. Default: Node's.
   */
  ciphers?: string;
  /** How long close() waits for open sessions before it ends them (ms). Default 1 s. */
  closeTimeout?: number;
  /**
   * Record no events and keep no message data (each message's bytes are counted and dropped):
   * only `counts` and `connections` change. For load, where recording would be the cost.
   */
  fast?: boolean;
  /** Counters shared by several peers (a sink's totals), kept along with the peer's own `counts`. */
  totals?: PeerCounts;
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

/** Counters a peer keeps in every mode. */
export interface PeerCounts {
  /** TCP connections accepted (counted when the socket arrives, before any SMTP). */
  accepted: number;
  /** process.hrtime.bigint() when the first of them arrived. */
  firstAcceptedAt: bigint | undefined;
  /** TLS handshakes completed (STARTTLS or implicit). */
  secured: number;
  /**
   * Sessions open now, and the most open at once: up at each TCP connection, down when
   * smtp-server closes its session (an implicit-TLS connection whose handshake fails has none).
   */
  open: number;
  peakOpen: number;
  rcpts: number;
  messages: number;
  /** Message octets received. */
  bytes: number;
}

export interface Peer {
  host: string;
  port: number;
  /** The server's name in its greeting. */
  name: string;
  events: PeerEvent[];
  /** Messages received: raw data and whether TLS was on. */
  messages: { data: string; secure: boolean; from: string; to: string[] }[];
  /** Number of SMTP sessions started (TCP connections that reached the greeting stage). */
  connections: number;
  counts: PeerCounts;
  close(): Promise<void>;
}

export function newCounts(): PeerCounts {
  return { accepted: 0, firstAcceptedAt: undefined, secured: 0, open: 0, peakOpen: 0, rcpts: 0, messages: 0, bytes: 0 };
}

/** Zeroes counters in place, but for the sessions open now (`open`, and `peakOpen` from there). */
export function resetCounts(counts: PeerCounts): void {
  Object.assign(counts, { ...newCounts(), open: counts.open, peakOpen: counts.open });
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
  const record = !options.fast;
  const name = options.name ?? `peer-${options.host}`;
  const peer: Peer = {
    host: options.host,
    port: options.port,
    name,
    events,
    messages,
    connections: 0,
    counts: newCounts(),
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const counted = options.totals ? [peer.counts, options.totals] : [peer.counts];
  const count = (field: 'secured' | 'rcpts' | 'messages' | 'bytes', n = 1) => {
    for (const c of counted) c[field] += n;
  };
  const b = options.behaviour;
  const serverOptions: SMTPServerOptions = {
    name,
    secure: b === 'implicit-tls',
    hideSTARTTLS: b === 'no-starttls',
    ...(options.requireTls ? { hideREQUIRETLS: false } : {}),
    ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
    ...(options.ciphers ? { ciphers: options.ciphers } : {}),
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: options.auth ? [] : ['AUTH'],
    logger: false,
    // No reverse lookup of the client's address: the peers need no DNS but the test's own.
    disableReverseLookup: true,
    ...(options.requestCert ? { requestCert: true, rejectUnauthorized: false } : {}),
    socketTimeout: options.socketTimeout ?? 10_000,
    closeTimeout: options.closeTimeout ?? 1000,
    onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void) {
      peer.connections += 1;
      if (record) events.push({ command: 'CONNECT', secure: session.secure });
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
      count('secured');
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
      if (record) events.push({ command: 'AUTH', secure: session.secure, value: auth.username });
      if (auth.password === 'secret') callback(null, { user: auth.username });
      else callback(replyError('535 5.7.8 Authentication credentials invalid'));
    },
    onMailFrom(address, session, callback) {
      if (record)
        events.push({
          command: 'MAIL',
          secure: session.secure,
          value: address.address,
          servername: (session as { servername?: string }).servername,
          helo: session.hostNameAppearsAs,
          clientAddress: session.remoteAddress,
          params: Object.keys((address as { args?: Record<string, unknown> | false }).args || {}),
          ...(options.requestCert ? { clientCert: (session as { clientCert?: string }).clientCert ?? '' } : {}),
        });
      if (options.mailReply) callback(replyError(options.mailReply));
      else callback();
    },
    onRcptTo(address, session, callback) {
      count('rcpts');
      if (record) events.push({ command: 'RCPT', secure: session.secure, value: address.address });
      const reply = options.rcptReplies?.[address.address];
      if (reply) callback(replyError(reply));
      else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (c: Buffer) => {
        bytes += c.length;
        if (record) chunks.push(c);
      });
      stream.on('end', () => {
        count('messages');
        count('bytes', bytes);
        if (!record) {
          callback(null, 'Ok: discarded');
          return;
        }
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
  // smtp-server calls onClose once per session, however the socket ended.
  serverOptions.onClose = () => {
    for (const c of counted) c.open -= 1;
  };
  const server = new SMTPServer(serverOptions);
  server.on('error', () => undefined);
  server.server.on('connection', () => {
    const at = process.hrtime.bigint();
    for (const c of counted) {
      c.accepted += 1;
      c.firstAcceptedAt ??= at;
      c.open += 1;
      if (c.open > c.peakOpen) c.peakOpen = c.open;
    }
  });
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

/** An SMTP host of a test world: a peer named `name` (its MX host name, and its greeting). */
export interface HostSpec extends Omit<PeerOptions, 'port' | 'host' | 'cert' | 'key' | 'name'> {
  name: string;
  /** The certificate the peer presents; default a leaf for `name` from the `pki` given. */
  cert?: Issued;
}

export interface Hosts {
  /** By host name, in the order given. */
  peers: Map<string, Peer>;
  /** The port every peer listens on. */
  port: number;
  /** An A record for each host name, for a zone. */
  records: Array<Extract<ZoneRecord, { type: 'A' | 'AAAA' }>>;
  close(): Promise<void>;
}

/**
 * Starts a peer for each host on one shared port, at `ip(2)`, `ip(3)`, ... in order (`ip(1)`
 * is left for the world's DNS server). `ip` defaults to a fresh loopbackBlock().
 */
export async function startHosts(hosts: HostSpec[], options: { pki?: Pki; ip?: (n: number) => string } = {}): Promise<Hosts> {
  const ip = options.ip ?? loopbackBlock();
  const specs: Array<Omit<PeerOptions, 'port'>> = [];
  for (const [i, h] of hosts.entries()) {
    const { cert: given, ...rest } = h;
    const cert = given ?? (await options.pki?.leaf([h.name]));
    specs.push({ ...rest, host: ip(i + 2), ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}) });
  }
  const started = await startPeers(specs);
  return {
    peers: new Map(hosts.map((h, i) => [h.name, started[i]!])),
    port: started[0]?.port ?? 25,
    records: hosts.map((h, i) => ({ name: h.name, type: 'A' as const, address: ip(i + 2) })),
    close: async () => {
      await Promise.all(started.map((p) => p.close()));
    },
  };
}
