/**
 * DANE that is silently inactive is the failure users cannot see. When a DANE level is
 * configured (the level option, a policy entry, or a shadow level) and no trusted validating
 * resolver answers, the logger says so once and verify() rejects with the reason. Without DANE
 * configured, verify() still checks that the resolver answers at all.
 *
 * Real parts: dns2-based DNS servers on loopback that set the AD bit or not; a port where nothing
 * listens for a resolver that never answers.
 */
import { createSocket } from 'node:dgram';
import { format } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyError, type TlsPolicyOptions } from '../lib/index.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js';
import { loopbackBlock } from './helpers/smtp-peer.js';

const ip = loopbackBlock();
let validating: TestDnsServer;
let plain: TestDnsServer;
let silent: string;
let closeSilent: () => void;

beforeAll(async () => {
  validating = await startDnsServer({ host: ip(1), ad: true, zone: [{ name: 'example.test', type: 'MX', exchange: 'mx.example.test', preference: 10 }] });
  plain = await startDnsServer({ host: ip(2), ad: false, zone: [] });
  // A UDP socket that takes queries and never answers.
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, ip(3), () => resolve()));
  silent = `${ip(3)}:${socket.address().port}`;
  closeSilent = () => socket.close();
});
afterAll(async () => {
  closeSilent?.();
  await Promise.all([validating?.close(), plain?.close()]);
});

function recordingLogger() {
  const warnings: string[] = [];
  const logger = {
    info: () => undefined,
    debug: () => undefined,
    error: () => undefined,
    trace: () => undefined,
    fatal: () => undefined,
    warn: (...args: unknown[]) => warnings.push(format(...(args.slice(1) as [string, ...unknown[]]))),
  };
  return { logger, warnings };
}

async function verify(options: TlsPolicyOptions): Promise<TlsPolicyError | undefined> {
  const transport = nodemailer.createTransport(tlsPolicy(options));
  try {
    await transport.verify();
    return undefined;
  } catch (error) {
    return error as TlsPolicyError;
  } finally {
    transport.close();
  }
}

const DANE_CONFIGS: Array<[string, TlsPolicyOptions]> = [
  ['level dane', { level: 'dane' }],
  ['level dane-only', { level: 'dane-only' }],
  ['a policy entry at dane', { level: 'may', policy: 'example.test dane\n' }],
  ['a shadow level dane', { level: 'encrypt', policy: 'example.test encrypt shadow=dane-only\n' }],
];

describe('DANE configured, no DNS server trusted', () => {
  for (const [what, options] of DANE_CONFIGS) {
    it(`${what}: warned at construction, and verify() rejects with the reason`, async () => {
      const { logger, warnings } = recordingLogger();
      const error = await verify({ ...options, logger, dns: createResolver({ servers: [validating.server], trustAd: false }) });
      expect(warnings.filter((w) => /DANE is configured, but no DNS server is trusted to validate DNSSEC/.test(w))).toHaveLength(1);
      expect(error?.code).toBe('EDNSSEC');
      expect(error?.message).toMatch(/^DANE is configured, but no DNS server's AD bit is believed, so no answer can be DNSSEC-secure: trustAd is false/);
    });
  }
});

describe('DANE configured, a trusted server that does not validate', () => {
  it('verify() rejects: the server answered without the AD bit', async () => {
    const error = await verify({ level: 'dane', dns: createResolver({ servers: [plain.server] }) });
    expect(error?.code).toBe('EDNSSEC');
    expect(error?.message).toBe(
      `DANE is configured, but DNS server ${plain.server} answered the SOA query for . without the AD bit, so it does not validate DNSSEC`,
    );
  });
  it('the logger warns once, beside the first delivery, not again', async () => {
    const { logger, warnings } = recordingLogger();
    const transport = nodemailer.createTransport(
      tlsPolicy({ level: 'dane', logger, dns: createResolver({ servers: [plain.server] }), connectionTimeout: 500 }),
    );
    for (let i = 0; i < 3; i++) await transport.sendMail({ from: 's@origin.test', to: 'u@nowhere.test', text: 'x' }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    transport.close();
    expect(warnings.filter((w) => /^DANE is configured, but DNS server .* without the AD bit/.test(w))).toHaveLength(1);
  });
  it('a trusted server that does not answer: verify() says so', async () => {
    const error = await verify({ level: 'dane', dns: createResolver({ servers: [silent], timeout: 200, attempts: 1 }) });
    expect(error?.code).toBe('EDNSSEC');
    expect(error?.message).toMatch(/^DANE is configured, but no trusted DNS server answered the SOA query for \.: .*no reply from/);
  });
});

describe('verify() when all is well, and without DANE', () => {
  it('DANE configured and a trusted validating server: verify() resolves, nothing is warned', async () => {
    const { logger, warnings } = recordingLogger();
    expect(await verify({ level: 'dane', logger, dns: createResolver({ servers: [validating.server] }) })).toBeUndefined();
    expect(warnings.filter((w) => /DANE/.test(w))).toEqual([]);
  });
  it('no DANE configured: no DNSSEC check, but the resolver must answer', async () => {
    expect(await verify({ level: 'may', dns: createResolver({ servers: [plain.server] }) })).toBeUndefined();
    const error = await verify({ level: 'may', dns: createResolver({ servers: [silent], timeout: 200, attempts: 1 }) });
    expect(error?.code).toBe('EDNS');
    expect(error?.message).toMatch(/^the DNS resolver does not answer, so no MX host can be found: DNS lookup of MX for invalid failed: no reply from/);
  });
});
