/**
 * A relay's host name resolves the way a user expects: through DNS first, then, when DNS has no
 * address for it, as getaddrinfo would, the hosts file included (`relay: 'localhost:2525'`).
 * Never when the DNS lookup failed (that stays a failure), and never for MX hosts. A relay's
 * failure speaks of the relay, not of MX. A relay written without brackets finds the policy
 * entry Postfix would find for that relayhost (`host:port` as written).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyError, type TlsPolicyOptions } from '../lib/index.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js';
import { loopbackBlock, startPeer, type Peer } from './helpers/smtp-peer.js';

let peer: Peer;
let dns: TestDnsServer;
let failing: TestDnsServer;
const ip = loopbackBlock();

beforeAll(async () => {
  peer = await startPeer({ host: '127.0.0.1', port: 0, behaviour: 'no-starttls' });
  dns = await startDnsServer({ host: ip(1), zone: [] });
  failing = await startDnsServer({ host: ip(2), zone: [], servfail: true });
});
afterAll(async () => {
  await Promise.all([peer?.close(), dns?.close(), failing?.close()]);
});

async function send(options: TlsPolicyOptions) {
  const transport = nodemailer.createTransport(tlsPolicy({ level: 'may', ipv6: false, ...options }));
  try {
    return { info: await transport.sendMail({ from: 's@origin.test', to: 'u@example.test', text: 'x' }), error: undefined };
  } catch (error) {
    return { info: undefined, error: error as TlsPolicyError };
  } finally {
    transport.close();
  }
}

describe('a relay named by the user', () => {
  it("relay 'localhost:port': DNS has no address, the hosts file has: delivered there", async () => {
    const before = peer.messages.length;
    const { info, error } = await send({ relay: `localhost:${peer.port}`, dns: createResolver({ servers: [dns.server] }) });
    expect(error).toBeUndefined();
    expect(info?.accepted).toEqual(['u@example.test']);
    expect(info?.deliveries[0]?.attempts[0]?.address).toBe('127.0.0.1');
    expect(peer.messages.length).toBe(before + 1);
  });
  it('a failed DNS lookup is not replaced by the hosts file', async () => {
    const before = peer.messages.length;
    const { error } = await send({ relay: `localhost:${peer.port}`, dns: createResolver({ servers: [failing.server], attempts: 1 }) });
    expect(error?.code).toBe('EDNS');
    expect(error?.message).toMatch(
      /^localhost: delivery at level may failed: relay localhost: no address to deliver to: DNS lookup of A for localhost failed: SERVFAIL/,
    );
    expect(peer.messages.length).toBe(before);
  });
  it('a relay name nobody knows: the failure speaks of the relay, not of MX', async () => {
    const { error } = await send({ relay: 'nosuch.invalid:25', dns: createResolver({ servers: [dns.server] }) });
    expect(error?.code).toBe('EDNS');
    expect(error?.message).toBe(
      'nosuch.invalid: delivery at level may failed: relay nosuch.invalid: no address to deliver to: nosuch.invalid has no address (IPv4)',
    );
  });
});

describe('the policy entry for a relay written as host:port', () => {
  it("a 'localhost:PORT encrypt' entry applies to relay 'localhost:PORT': no STARTTLS, so no MAIL FROM is sent", async () => {
    const before = peer.events.filter((e) => e.command === 'MAIL').length;
    const { info, error } = await send({
      relay: `localhost:${peer.port}`,
      dns: createResolver({ servers: [dns.server] }),
      policy: { [`localhost:${peer.port}`]: 'encrypt' },
    });
    expect(info).toBeUndefined();
    expect(error?.message).toMatch(/^localhost: delivery at level encrypt failed: /);
    expect(error?.deliveries?.[0]?.policySource).toBe(`<object> localhost:${peer.port}`);
    expect(peer.events.filter((e) => e.command === 'MAIL').length).toBe(before);
  });
  it('the same entry does not apply to the relay written [localhost]:PORT (Postfix looks that up as written)', async () => {
    const { info, error } = await send({
      relay: `[localhost]:${peer.port}`,
      dns: createResolver({ servers: [dns.server] }),
      policy: { [`localhost:${peer.port}`]: 'encrypt' },
    });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.level).toBe('may');
  });
});
