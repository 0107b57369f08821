/**
 * Connection reuse: an idle session is handed only to the next message whose plan
 * for that address is the same, as Postfix's connection cache does. Proven from the peers'
 * side: connections accepted, and the channel each message crossed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer, { type Transporter } from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyOptions } from '../lib/index.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';

let pki: Pki;
let world: World;

beforeAll(async () => {
  pki = await makePki();
  world = await makeWorld(
    pki,
    [
      { name: 'mx.shared.test', behaviour: 'starttls' },
      { name: 'mx.sleepy.test', behaviour: 'starttls', socketTimeout: 300 },
    ],
    [
      { name: 'a.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 },
      { name: 'b.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 },
      { name: 'sleepy.test', type: 'MX', exchange: 'mx.sleepy.test', preference: 10 },
    ],
  );
});
afterAll(async () => {
  await world?.close();
});

function transport(options: TlsPolicyOptions = {}) {
  const t = tlsPolicy({ port: world.port, caFile: pki.caFile, dns: createResolver({ servers: [world.dns.server] }), ...options });
  return { t, mailer: nodemailer.createTransport(t) };
}
const send = async (mailer: Transporter, to: string) => await mailer.sendMail({ from: 's@origin.test', to, subject: 'reuse', text: 'x' });

describe('connection reuse', () => {
  it('messages to the same address under the same plan share one session', async () => {
    const peer = world.peers.get('mx.shared.test')!;
    const before = { connections: peer.connections, messages: peer.messages.length };
    const { t, mailer } = transport({ level: 'verify' });
    const infos = [];
    for (let i = 0; i < 3; i++) infos.push(await send(mailer, `u${i}@a.test`));
    expect(peer.connections - before.connections).toBe(1);
    expect(peer.messages.slice(before.messages).map((m) => m.secure)).toEqual([true, true, true]);
    expect(infos.map((i) => i.deliveries[0]!.attempts[0]!.reused)).toEqual([false, true, true]);
    expect(infos.map((i) => i.deliveries[0]!.attempts[0]!.audit.auth)).toEqual(['Verified', 'Verified', 'Verified']);
    expect(t.connections).toEqual({ idle: 1, reused: 2, tlsSessions: 1, resumed: 0 });
    expect(t.isIdle()).toBe(true);
    mailer.close();
    expect(t.connections.idle).toBe(0);
  });

  it('a session verified for one plan is never handed to another plan', async () => {
    const peer = world.peers.get('mx.shared.test')!;
    const before = peer.connections;
    // a.test at may, b.test at verify: same address, different plans
    const { t, mailer } = transport({ level: 'may', policy: 'b.test verify' });
    const first = await send(mailer, 'u@a.test');
    const second = await send(mailer, 'u@b.test');
    const third = await send(mailer, 'v@a.test');
    expect(peer.connections - before).toBe(2);
    expect([first, second, third].map((i) => [i.deliveries[0]!.attempts[0]!.reused, i.deliveries[0]!.attempts[0]!.audit.auth])).toEqual([
      [false, 'Trusted'],
      [false, 'Verified'],
      [true, 'Trusted'],
    ]);
    t.close();
  });

  it('connectionReuse: false opens a session per message', async () => {
    const peer = world.peers.get('mx.shared.test')!;
    const before = peer.connections;
    const { t, mailer } = transport({ connectionReuse: false });
    await send(mailer, 'u@a.test');
    await send(mailer, 'u@a.test');
    expect(peer.connections - before).toBe(2);
    expect(t.connections.idle).toBe(0);
  });

  it('a session the server closed while idle is not used; the next message gets a new one', async () => {
    const peer = world.peers.get('mx.sleepy.test')!;
    const before = peer.connections;
    const { t, mailer } = transport({ level: 'encrypt' });
    await send(mailer, 'u@sleepy.test');
    await new Promise((r) => setTimeout(r, 700)); // the peer drops idle connections after 300 ms
    expect(t.connections.idle).toBe(0);
    const info = await send(mailer, 'v@sleepy.test');
    expect(info.accepted).toEqual(['v@sleepy.test']);
    expect(info.deliveries[0]!.attempts[0]!.reused).toBe(false);
    expect(peer.connections - before).toBe(2);
    t.close();
  });

  it('at most maxConnectionsPerKey sessions per address and plan; the other sends wait for one', async () => {
    const peer = world.peers.get('mx.shared.test')!;
    const before = { connections: peer.connections, messages: peer.messages.length };
    const { t, mailer } = transport({ connectionReuse: { maxConnectionsPerKey: 2 } });
    const infos = await Promise.all(Array.from({ length: 6 }, (_, i) => send(mailer, `p${i}@a.test`)));
    expect(infos.flatMap((i) => i.accepted).sort()).toEqual(['p0@a.test', 'p1@a.test', 'p2@a.test', 'p3@a.test', 'p4@a.test', 'p5@a.test']);
    expect(peer.connections - before.connections).toBe(2);
    expect(peer.messages.length - before.messages).toBe(6);
    expect(infos.filter((i) => i.deliveries[0]!.attempts[0]!.reused).length).toBe(4);
    t.close();
  });

  it('idle sessions close after idleTimeout', async () => {
    const { t, mailer } = transport({ connectionReuse: { idleTimeout: 100 } });
    await send(mailer, 'u@a.test');
    expect(t.connections.idle).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(t.connections.idle).toBe(0);
  });
});

describe('a reused session that dies after DATA', () => {
  it('is not retried on a new session: the server may hold the message (no duplicate)', async () => {
    const { SMTPServer } = await import('smtp-server');
    const bodies: string[] = [];
    let dataCalls = 0;
    const server = new SMTPServer({
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, callback) {
        const call = ++dataCalls;
        let body = '';
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => {
          bodies.push(body);
          if (call === 2) {
            // the whole message arrived; the connection drops before the final reply
            for (const c of (server as unknown as { connections: Set<{ _socket: { destroy(): void } }> }).connections) c._socket.destroy();
            return;
          }
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.server.address() as { port: number }).port;
    try {
      const { t, mailer } = transport({ level: 'may', relay: { host: '127.0.0.1', port } });
      await send(mailer, 'a@dup.test');
      await expect(send(mailer, 'b@dup.test')).rejects.toMatchObject({ temporary: true, pending: ['b@dup.test'] });
      expect(bodies.filter((b) => b.includes('reuse')).length).toBe(2); // one body per message, none twice
      t.close();
    } finally {
      server.close();
    }
  });
});
