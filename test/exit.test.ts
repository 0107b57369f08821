/**
 * A script that sends once exits at once, as with Nodemailer's own transport: a session kept
 * idle for reuse, and every timer of the transport, must not keep the event loop alive. Checked
 * with the resources Node counts as keeping the process alive (an unref'd socket is not one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy } from '../lib/index.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';

let pki: Pki;
let world: World;
beforeAll(async () => {
  pki = await makePki();
  world = await makeWorld(
    pki,
    [{ name: 'mx.exit.test', behaviour: 'starttls' }],
    [{ name: 'exit.test', type: 'MX', exchange: 'mx.exit.test', preference: 10 }],
  );
});
afterAll(() => world?.close());

const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

describe('nothing of an idle transport keeps the process alive', () => {
  it('a session parked for reuse is unref’d; handed out again it is ref’d', async () => {
    const transport = nodemailer.createTransport(
      tlsPolicy({ port: world.port, caFile: pki.caFile, dns: createResolver({ servers: [world.dns.server] }), connectionReuse: { idleTimeout: 60_000 } }),
    );
    try {
      const before = sockets();
      await transport.sendMail({ from: 's@origin.test', to: 'u@exit.test', text: 'one' });
      await new Promise((r) => setTimeout(r, 50));
      // The peer's end of the parked session lives in this process too and counts; the client's does not.
      expect(sockets() - before).toBe(1);
      expect(transport.transporter).toMatchObject({ connections: { idle: 1 } });
      await transport.sendMail({ from: 's@origin.test', to: 'u@exit.test', text: 'two' });
      expect(transport.transporter).toMatchObject({ connections: { idle: 1, reused: 1 } });
      await new Promise((r) => setTimeout(r, 50));
      expect(sockets() - before).toBe(1);
    } finally {
      transport.close();
    }
  });
});
