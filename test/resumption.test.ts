/**
 * TLS session resumption (Postfix's TLS session cache; issue 13): the TLS session of a session
 * that carried mail is offered again on the next connection to the same address under the same
 * plan, never under another; the chain it was verified with is judged again; an entry is dropped
 * when TLS fails under its key. Real smtp-server peers, which resume TLS 1.3 tickets.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver, tlsPolicy, type TlsPolicyOptions, type TlsPolicyTransport } from '../lib/index.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { startPeer } from './helpers/smtp-peer.js';
import { tlsaData } from './helpers/pki.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import { TicketCache } from '../lib/smtp/tickets.js';

let pki: Pki;
let world: World;
let certs: Map<string, Awaited<ReturnType<Pki['leaf']>>>;
const HOSTS = ['mx.one.test', 'mx.dane.test', 'mx.swap.test'];

beforeAll(async () => {
  pki = await makePki('resumption test CA');
  certs = new Map();
  for (const h of HOSTS) certs.set(h, await pki.leaf([h]));
  const records = (port: number): ZoneRecord[] => [
    { name: 'one.test', type: 'MX', exchange: 'mx.one.test', preference: 10 },
    { name: 'other.test', type: 'MX', exchange: 'mx.one.test', preference: 10 },
    { name: 'dane.test', type: 'MX', exchange: 'mx.dane.test', preference: 10 },
    { name: 'swap.test', type: 'MX', exchange: 'mx.swap.test', preference: 10 },
    { name: `_${port}._tcp.mx.dane.test`, type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: tlsaData(certs.get('mx.dane.test')!.der, 1, 1) },
  ];
  world = await makeWorld(
    pki,
    HOSTS.map((name) => ({ name, behaviour: 'starttls' as const, cert: certs.get(name)! })),
    records,
    { ad: true },
  );
});
afterAll(async () => {
  await world?.close();
});

function transport(options: TlsPolicyOptions = {}) {
  const made = tlsPolicy({
    port: world.port,
    caFile: pki.caFile,
    dns: createResolver({ servers: [world.dns.server] }),
    connectionReuse: false,
    mtaSts: false,
    ...options,
  });
  return { made, mailer: nodemailer.createTransport(made) };
}
const send = (mailer: ReturnType<typeof transport>['mailer'], to: string) => mailer.sendMail({ from: 's@origin.test', to, text: 'x' });
const secured = (host: string) => world.peers.get(host)!.counts.secured;

describe('TLS session resumption', () => {
  it('the second connection under the same plan resumes, and is judged on the chain verified the first time', async () => {
    const { made, mailer } = transport({ level: 'verify' });
    try {
      const before = secured('mx.one.test');
      const first = await send(mailer, 'u@one.test');
      const second = await send(mailer, 'u@one.test');
      expect(first.deliveries[0]!.attempts[0]!.audit).toMatchObject({ resumed: '', auth: 'Verified', matched: 'mx.one.test' });
      expect(second.deliveries[0]!.attempts[0]!.audit).toMatchObject({ resumed: 'yes', auth: 'Verified', matched: 'mx.one.test', level: 'verify' });
      // the same certificate digest as the full handshake: the chain kept with the session
      expect(second.deliveries[0]!.attempts[0]!.audit.cert_digest).toBe(first.deliveries[0]!.attempts[0]!.audit.cert_digest);
      expect(secured('mx.one.test')).toBe(before + 2);
      expect(made.connections).toMatchObject({ tlsSessions: 1, resumed: 1 });
    } finally {
      made.close();
    }
  });

  it('DANE: a resumed session is matched against the TLSA records again: Verified', async () => {
    const { made, mailer } = transport({ level: 'dane' });
    try {
      await send(mailer, 'u@dane.test');
      const second = await send(mailer, 'u@dane.test');
      expect(second.deliveries[0]!.attempts[0]!.audit).toMatchObject({ resumed: 'yes', level: 'dane', auth: 'Verified' });
      expect(second.deliveries[0]!.attempts[0]!.audit.matched).toMatch(/^3 1 1 /);
    } finally {
      made.close();
    }
  });

  it('a session kept under one plan is never offered under another (same address, other level)', async () => {
    const { made, mailer } = transport({ policy: 'one.test verify\nother.test encrypt' });
    try {
      await send(mailer, 'u@one.test');
      const other = await send(mailer, 'u@other.test');
      expect(other.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'encrypt', resumed: '' });
      const again = await send(mailer, 'u@other.test');
      expect(again.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'encrypt', resumed: 'yes' });
      expect(made.connections.tlsSessions).toBe(2);
    } finally {
      made.close();
    }
  });

  it('tlsSessionCache: false never resumes', async () => {
    const { made, mailer } = transport({ level: 'verify', tlsSessionCache: false });
    try {
      await send(mailer, 'u@one.test');
      const second = await send(mailer, 'u@one.test');
      expect(second.deliveries[0]!.attempts[0]!.audit.resumed).toBe('');
      expect(made.connections).toMatchObject({ tlsSessions: 0, resumed: 0 });
    } finally {
      made.close();
    }
  });

  it('a server that now shows a certificate for another name fails verification, and the kept session is dropped', async () => {
    const { made, mailer } = transport({ level: 'verify' });
    let replaced: Awaited<ReturnType<typeof startPeer>> | undefined;
    try {
      await send(mailer, 'u@swap.test');
      expect(made.connections.tlsSessions).toBe(1);
      // The same address and port, another server (new ticket keys) with a certificate for another name.
      const old = world.peers.get('mx.swap.test')!;
      await old.close();
      const wrong = await pki.leaf(['mx.elsewhere.test']);
      replaced = await startPeer({ host: old.host, port: old.port, behaviour: 'starttls', cert: wrong.chainPem, key: wrong.keyPem });
      const failed = await send(mailer, 'u@swap.test').catch((e: { deliveries: Array<{ attempts: Array<{ audit: Record<string, string> }> }> }) => e);
      expect('deliveries' in failed && failed.deliveries[0]!.attempts[0]!.audit).toMatchObject({ resumed: '', result_type: 'certificate-host-mismatch' });
      expect(made.connections.tlsSessions).toBe(0);
      expect(replaced.events.some((e) => e.command === 'MAIL')).toBe(false);
    } finally {
      made.close();
      await replaced?.close();
    }
  });

  it.each([
    [{ tlsSessionCache: 'yes' }, /option tlsSessionCache must be true, false or \{ max, lifetime \}/],
    [{ tlsSessionCache: { size: 5 } }, /unknown option tlsSessionCache\.size \(known: max, lifetime\)/],
    [{ tlsSessionCache: { max: 0 } }, /option tlsSessionCache\.max must be a whole number above 0, not 0/],
  ])('%j is refused', (options, message) => {
    let error: unknown;
    try {
      (tlsPolicy(options as TlsPolicyOptions) as TlsPolicyTransport).close();
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ECONFIG' });
    expect((error as Error).message).toMatch(message);
  });
});

describe('TicketCache (pure)', () => {
  const entry = (n: number) => ({ ticket: Buffer.from([n]), chain: [Buffer.from([n])], authorized: true });
  it('an entry lives at most `lifetime` ms', () => {
    let now = 1000;
    const cache = new TicketCache({ lifetime: 100 }, () => now);
    cache.set('k', entry(1));
    now += 99;
    expect(cache.get('k')?.ticket).toEqual(Buffer.from([1]));
    now += 1;
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
  it('at most `max` entries: the least recently stored go first', () => {
    const cache = new TicketCache({ max: 2 });
    cache.set('a', entry(1));
    cache.set('b', entry(2));
    cache.set('a', entry(3)); // stored again: now the newest
    cache.set('c', entry(4));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.ticket).toEqual(Buffer.from([3]));
    expect(cache.get('c')?.ticket).toEqual(Buffer.from([4]));
  });
});
