/**
 * The Nodemailer transport contract, as Nodemailer's own transports keep it: an EventEmitter
 * that emits `idle` when it can take more work (the Mailer forwards it), `isIdle()`, and types
 * that work with @types/nodemailer as users write them, with no casts (this file compiles under
 * `npm test`'s typecheck: a wrong type fails the suite).
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicySentInfo } from '../lib/index.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';

let pki: Pki;
let world: World;
beforeAll(async () => {
  pki = await makePki();
  world = await makeWorld(
    pki,
    [{ name: 'mx.contract.test', behaviour: 'starttls' }],
    [{ name: 'contract.test', type: 'MX', exchange: 'mx.contract.test', preference: 10 }],
  );
});
afterAll(() => world?.close());

describe('the transport contract', () => {
  it('types: createTransport(tlsPolicy(...)).sendMail resolves to TlsPolicySentInfo and takes queuedAt', async () => {
    const transport = nodemailer.createTransport(tlsPolicy({ port: world.port, caFile: pki.caFile, dns: createResolver({ servers: [world.dns.server] }) }));
    try {
      const info = await transport.sendMail({ from: 's@origin.test', to: 'u@contract.test', text: 'x', queuedAt: new Date(Date.now() - 1000) });
      expectTypeOf(info).toEqualTypeOf<TlsPolicySentInfo>();
      expect(info.pending).toEqual([]);
      expect(info.accepted).toEqual(['u@contract.test']);
    } finally {
      transport.close();
    }
  });

  it("emits 'idle' when it is ready and after sends, and the Mailer forwards it", async () => {
    const raw = tlsPolicy({ port: world.port, caFile: pki.caFile, dns: createResolver({ servers: [world.dns.server] }), maxConcurrentDestinations: 2 });
    const transport = nodemailer.createTransport(raw);
    let idleEvents = 0;
    transport.on('idle', () => idleEvents++);
    try {
      await new Promise((resolve) => setImmediate(resolve));
      expect(idleEvents).toBe(1); // ready for work
      expect(transport.isIdle()).toBe(true);
      const sends = [1, 2, 3].map((i) => transport.sendMail({ from: 's@origin.test', to: `u${i}@contract.test`, text: 'x' }));
      expect(raw.isIdle()).toBe(false); // three in flight, two at a time
      await Promise.all(sends);
      await new Promise((resolve) => setImmediate(resolve));
      expect(raw.isIdle()).toBe(true);
      expect(idleEvents).toBeGreaterThanOrEqual(2);
    } finally {
      transport.close();
    }
    expect(raw.isIdle()).toBe(false); // closed: it takes no more work
  });
});
