/**
 * Promises proven from the peer's side: MX delivery over IPv6 (an MX whose only address is ::1,
 * and one with both families, where IPv4 is tried first as documented; with `ipv6: false` the
 * IPv6 address is never used), and implicit TLS (SMTPS) against a TLS-on-connect peer, where
 * nothing is sent before the handshake and `none` and `may` run as `encrypt`.
 */
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyOptions } from '../lib/index.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js';
import { makeLeaf, makePki, type Pki } from './helpers/pki.js';
import { loopbackBlock, startPeer, type Peer } from './helpers/smtp-peer.js';

let pki: Pki;
let v6only: Peer;
let dual4: Peer;
let dual6: Peer;
let smtps: Peer;
let dns: TestDnsServer;
const ip = loopbackBlock();

beforeAll(async () => {
  pki = await makePki();
  const cert = await pki.leaf(['mx.v6.test', 'mx.dual.test', 'smtps.test']);
  const tls = { cert: cert.chainPem, key: cert.keyPem };
  v6only = await startPeer({ host: '::1', port: 0, behaviour: 'starttls', ...tls });
  dual6 = await startPeer({ host: '::1', port: 0, behaviour: 'starttls', ...tls });
  dual4 = await startPeer({ host: ip(3), port: dual6.port, behaviour: 'starttls', ...tls });
  smtps = await startPeer({ host: ip(4), port: 0, behaviour: 'implicit-tls', ...tls });
  dns = await startDnsServer({
    host: ip(1),
    zone: [
      { name: 'v6.test', type: 'MX', exchange: 'mx.v6.test', preference: 10 },
      { name: 'mx.v6.test', type: 'AAAA', address: '::1' },
      { name: 'dual.test', type: 'MX', exchange: 'mx.dual.test', preference: 10 },
      { name: 'mx.dual.test', type: 'AAAA', address: '::1' },
      { name: 'mx.dual.test', type: 'A', address: ip(3) },
    ],
  });
});
afterAll(async () => {
  await Promise.all([v6only, dual4, dual6, smtps, dns].map((x) => x?.close()));
  pki?.close();
});

async function send(options: TlsPolicyOptions, to: string) {
  const transport = nodemailer.createTransport(
    tlsPolicy({ caFile: pki.caFile, dns: createResolver({ servers: [dns.server] }), connectionReuse: false, ...options }),
  );
  try {
    return { info: await transport.sendMail({ from: 's@origin.test', to, text: 'x' }), error: undefined };
  } catch (error) {
    return { info: undefined, error: error as Error };
  } finally {
    transport.close();
  }
}

const seen = (peer: Peer) => peer.events.filter((e) => e.command !== 'CONNECT').map((e) => [e.command, e.secure]);

describe('IPv6', () => {
  it('an MX whose only address is ::1 gets the mail over IPv6, inside TLS', async () => {
    const { info, error } = await send({ port: v6only.port, level: 'verify' }, 'u@v6.test');
    expect(error).toBeUndefined();
    const attempt = info!.deliveries[0]!.attempts[0]!;
    expect(attempt.address).toBe('::1');
    expect(attempt.audit.relay).toBe(`mx.v6.test[::1]:${v6only.port}`);
    expect(seen(v6only)).toEqual([
      ['MAIL', true],
      ['RCPT', true],
      ['DATA', true],
    ]);
  });
  it('an MX with both families: IPv4 first; the IPv6 peer sees nothing', async () => {
    const { info, error } = await send({ port: dual6.port, level: 'encrypt' }, 'u@dual.test');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts.map((a) => a.address)).toEqual([ip(3)]);
    expect(seen(dual4)).toEqual([
      ['MAIL', true],
      ['RCPT', true],
      ['DATA', true],
    ]);
    expect(dual6.connections).toBe(0);
  });
  it('ipv6: false never uses an IPv6 address', async () => {
    const { error } = await send({ port: v6only.port, level: 'encrypt', ipv6: false }, 'u@v6.test');
    expect(error?.message).toMatch(/mx\.v6\.test has no address \(IPv4\)/);
    expect(v6only.connections).toBe(1); // only the first test's session
  });
});

describe('implicit TLS (SMTPS) against a TLS-on-connect peer', () => {
  for (const level of ['none', 'may', 'encrypt'] as const) {
    it(`level ${level} runs as encrypt: every command inside TLS, nothing before the handshake`, async () => {
      const before = smtps.events.length;
      const { info, error } = await send(
        {
          relay: { host: smtps.host, port: smtps.port, secure: true },
          level: level === 'none' ? 'may' : level,
          ...(level === 'none' ? { policy: `[${smtps.host}]:${smtps.port} none\n` } : {}),
        },
        'u@example.test',
      );
      // A table entry of level none on an SMTPS next hop runs as encrypt too (smtp_tls_wrappermode).
      expect(error).toBeUndefined();
      const attempt = info!.deliveries[0]!.attempts[0]!;
      expect(attempt.level).toBe('encrypt');
      expect(attempt.audit.protocol).toMatch(/^TLSv1\.[23]$/);
      const events = smtps.events.slice(before);
      expect(events.map((e) => [e.command, e.secure])).toEqual([
        ['CONNECT', true],
        ['MAIL', true],
        ['RCPT', true],
        ['DATA', true],
      ]);
    });
  }
});

describe('a next hop written as an IP address', () => {
  it('at verify, [address] is matched against the certificate’s IP address names (as X509_check_ip), never its DNS names', async () => {
    const withIp = await pki.leaf(['mx.ip.test'], {});
    const address = ip(5);
    const ipCert = await makeLeaf(pki.ca, { names: ['mx.ip.test'], ips: [address] });
    const good = await startPeer({ host: address, port: 0, behaviour: 'starttls', cert: ipCert.chainPem, key: ipCert.keyPem });
    const other = await startPeer({ host: ip(6), port: 0, behaviour: 'starttls', cert: withIp.chainPem, key: withIp.keyPem });
    try {
      const ok = await send({ relay: `[${address}]:${good.port}`, level: 'verify' }, 'u@example.test');
      expect(ok.error).toBeUndefined();
      expect(ok.info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ auth: 'Verified', matched: address });
      const bad = await send({ relay: `[${ip(6)}]:${other.port}`, level: 'verify' }, 'u@example.test');
      expect(bad.error?.message).toMatch(new RegExp(`certificate names mx\\.ip\\.test matched none of ${ip(6).replace(/\./g, '\\.')}`));
      expect(other.events.filter((e) => e.command === 'MAIL')).toEqual([]);
    } finally {
      await Promise.all([good.close(), other.close()]);
    }
  });
});

describe('the EHLO name', () => {
  it('is the host name when it is fully qualified, else an address literal of the address the connection leaves from (RFC 5321 4.1.3), never [127.0.0.1] for everyone', async () => {
    const fqdn = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(hostname()) ? hostname() : undefined;
    const { error } = await send({ port: v6only.port, level: 'verify' }, 'u2@v6.test');
    expect(error).toBeUndefined();
    const mail = v6only.events.filter((e) => e.command === 'MAIL').at(-1)!;
    expect(mail.clientAddress).toBe('::1');
    // (smtp-server reports the name lowercased)
    expect(mail.helo).toBe((fqdn ?? '[IPv6:::1]').toLowerCase());
    const named = await send({ port: v6only.port, level: 'verify', name: 'mta.example.org' }, 'u3@v6.test');
    expect(named.error).toBeUndefined();
    expect(v6only.events.filter((e) => e.command === 'MAIL').at(-1)!.helo).toBe('mta.example.org');
  });
});
