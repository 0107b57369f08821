/**
 * A scriptable SMTP server on a raw socket, for peers smtp-server cannot play: replies that
 * trickle in one byte at a time and never end, silence or a dropped connection right after the
 * final dot, a 421 to DATA. It speaks just enough SMTP (greeting, EHLO, STARTTLS, MAIL, RCPT,
 * DATA with dot-unstuffing, RSET, NOOP, QUIT) and records, per connection, every command, whether
 * TLS was on, and each message body it received whole (up to and including the final dot).
 *
 * `script(command, state)` may return the reply to send instead of the default one:
 *   - a string: sent as it is (CRLF is added to each line when missing);
 *   - { trickle: text, every: ms }: the text sent one byte per `every` ms, forever when
 *     `forever` is set (the text repeats), to keep a client's inactivity timer alive;
 *   - 'silence': no reply at all (the connection stays open);
 *   - 'drop': the connection is destroyed;
 *   - { reply, thenClose: true }: the reply, then the server closes the connection (as a real
 *     server does after a 421).
 * The command `.` stands for the end of a message (the final dot).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export type RawReply = string | 'silence' | 'drop' | { trickle: string; every: number; forever?: boolean } | { reply: string; thenClose: true };

export interface RawConnection {
  commands: string[];
  /** Whether TLS was on when each command arrived. */
  secure: boolean[];
  /** Message bodies received in full (the final dot seen), dot-unstuffed. */
  messages: string[];
}

export interface RawPeerState {
  connection: RawConnection;
  secure: boolean;
  /** How many connections this peer accepted before this one. */
  index: number;
}

export interface RawPeerOptions {
  host: string;
  port?: number;
  /** PEM certificate and key: STARTTLS is offered when given. */
  cert?: string;
  key?: string;
  script?: (command: string, state: RawPeerState) => RawReply | undefined;
}

export interface RawPeer {
  host: string;
  port: number;
  connections: RawConnection[];
  /** Every message body received whole, over all connections. */
  messages(): string[];
  close(): Promise<void>;
}

export async function startRawPeer(options: RawPeerOptions): Promise<RawPeer> {
  const connections: RawConnection[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((raw) => {
    const connection: RawConnection = { commands: [], secure: [], messages: [] };
    const index = connections.length;
    connections.push(connection);
    let socket: Socket = raw;
    let secure = false;
    let inData = false;
    let body: string[] = [];
    let buffer = '';
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    const write = (text: string) => {
      if (!socket.destroyed) socket.write(text);
    };
    // Replies go out in order: a reply that trickles holds back the ones after it, as a real
    // server that answers pipelined commands one at a time would.
    let busy = false;
    const queue: RawReply[] = [];
    const send = (reply: RawReply) => {
      queue.push(reply);
      if (!busy) flush();
    };
    const flush = () => {
      while (!busy && queue.length > 0) emit(queue.shift()!);
    };
    const emit = (reply: RawReply) => {
      if (reply === 'silence') {
        busy = true; // nothing after it is ever answered
        return;
      }
      if (reply === 'drop') {
        socket.destroy();
        raw.destroy();
        return;
      }
      if (typeof reply === 'string') {
        write(
          reply
            .split(/\r?\n/)
            .filter((l) => l !== '')
            .map((l) => `${l}\r\n`)
            .join(''),
        );
        return;
      }
      if ('reply' in reply) {
        emit(reply.reply);
        socket.end();
        return;
      }
      busy = true;
      let i = 0;
      const timer = setInterval(() => {
        if (socket.destroyed) {
          clearInterval(timer);
          timers.delete(timer);
          return;
        }
        if (i >= reply.trickle.length) {
          if (!reply.forever) {
            clearInterval(timer);
            timers.delete(timer);
            busy = false;
            flush();
            return;
          }
          i = 0;
        }
        write(reply.trickle[i++]!);
      }, reply.every);
      timers.add(timer);
    };
    const state = (): RawPeerState => ({ connection, secure, index });
    const handle = (line: string) => {
      if (inData) {
        if (line === '.') {
          inData = false;
          connection.messages.push(body.join('\r\n'));
          body = [];
          connection.commands.push('.');
          connection.secure.push(secure);
          send(options.script?.('.', state()) ?? '250 2.0.0 Ok: queued');
          return;
        }
        body.push(line.startsWith('.') ? line.slice(1) : line);
        return;
      }
      const verb = line.split(' ')[0]!.toUpperCase();
      connection.commands.push(line);
      connection.secure.push(secure);
      const scripted = options.script?.(line, state());
      if (scripted !== undefined) {
        send(scripted);
        return;
      }
      switch (verb) {
        case 'EHLO':
          send(['250-raw-peer', ...(options.cert && !secure ? ['250-STARTTLS'] : []), '250-PIPELINING', '250 8BITMIME'].join('\r\n'));
          return;
        case 'HELO':
          send('250 raw-peer');
          return;
        case 'STARTTLS': {
          if (!options.cert || secure) {
            send('502 5.5.1 no');
            return;
          }
          write('220 2.0.0 go ahead\r\n');
          socket.removeListener('data', onData);
          const tlsSocket = new TLSSocket(socket, { isServer: true, cert: options.cert, key: options.key! });
          tlsSocket.on('error', () => socket.destroy());
          tlsSocket.on('data', onData);
          socket = tlsSocket;
          secure = true;
          buffer = '';
          return;
        }
        case 'MAIL':
        case 'RCPT':
        case 'RSET':
        case 'NOOP':
          send('250 2.1.0 Ok');
          return;
        case 'DATA':
          inData = true;
          send('354 End data with <CR><LF>.<CR><LF>');
          return;
        case 'QUIT':
          send('221 2.0.0 Bye');
          socket.end();
          return;
        default:
          send('502 5.5.2 Command not recognized');
      }
    };
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let at: number;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        handle(line);
      }
    };
    raw.on('data', onData);
    raw.on('error', () => undefined);
    send(options.script?.('CONNECT', state()) ?? '220 raw-peer ESMTP');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    host: options.host,
    port,
    connections,
    messages: () => connections.flatMap((c) => c.messages),
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
