import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import dns2 from 'dns2';
import {
  Resolver,
  believesAd,
  createResolver,
  isLoopback,
  normalizeName,
  parseResolvConf,
  parseServer,
  parseTlsa,
  type ResolverOptions,
} from '../lib/dns/index.js';
import { startDnsServer, type DnsServerOptions, type TestDnsServer, type ZoneRecord } from './helpers/dns-server.js';

const { Packet } = dns2;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function server(options: DnsServerOptions): Promise<TestDnsServer> {
  const started = await startDnsServer(options);
  cleanups.push(() => started.close());
  return started;
}

function resolverFor(servers: TestDnsServer[], options: ResolverOptions = {}): Resolver {
  return createResolver({ servers: servers.map((s) => s.server), timeout: 300, attempts: 2, ...options });
}

/** A UDP server answering each query with whatever `reply` returns (nothing for null). */
async function rawUdpServer(reply: (query: Buffer) => Buffer[] | null): Promise<{ server: string; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (message, peer) => {
    received.push(message);
    for (const buffer of reply(message) ?? []) socket.send(buffer, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { server: `127.0.0.1:${socket.address().port}`, received };
}

/** A well-formed reply to `query` built by `fill`, with dns2's codec. */
function replyTo(query: Buffer, fill: (response: InstanceType<typeof Packet>) => void): Buffer {
  const request = Packet.parse(query);
  const response = Packet.createResponseFromRequest(request);
  response.header.ra = 1;
  fill(response);
  return response.toBuffer();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ZONE: ZoneRecord[] = [
  { name: 'example.com', type: 'MX', exchange: 'mx1.example.com', preference: 10 },
  { name: 'example.com', type: 'MX', exchange: 'MX2.Example.COM', preference: 20 },
  { name: 'mx1.example.com', type: 'A', address: '192.0.2.10' },
  { name: 'mx1.example.com', type: 'AAAA', address: '2001:db8::10' },
  { name: 'mx2.example.com', type: 'A', address: '192.0.2.20', ttl: 120 },
  { name: 'nullmx.example.org', type: 'MX', exchange: '', preference: 0 },
];

describe('query format', () => {
  it('asks with RD=1, CD=0, EDNS0 DO=1 and a 1232-octet UDP payload size, over UDP, with random IDs', async () => {
    const srv = await server({ zone: ZONE });
    const resolver = resolverFor([srv], { cache: false });
    for (let i = 0; i < 8; i++) await resolver.mx('example.com');
    expect(srv.queries).toHaveLength(8);
    for (const query of srv.queries) {
      expect(query).toMatchObject({ name: 'example.com', type: 'MX', transport: 'udp', rd: true, cd: false, do: true, udpPayloadSize: 1232 });
    }
    expect(new Set(srv.queries.map((q) => q.id)).size).toBeGreaterThan(1);
  });
});

describe('classification', () => {
  it('is secure when a loopback server sets AD (default trustAd: loopback)', async () => {
    const srv = await server({ zone: ZONE, ad: true });
    const result = await resolverFor([srv]).mx('example.com');
    expect(result).toEqual({
      status: 'secure',
      rcode: 'NOERROR',
      name: 'example.com',
      records: [
        { exchange: 'mx1.example.com', preference: 10 },
        { exchange: 'mx2.example.com', preference: 20 },
      ],
      ttl: 300,
      cnames: [],
      canonical: 'example.com',
    });
  });

  it('is insecure when AD is not set', async () => {
    const srv = await server({ zone: ZONE, ad: false });
    const result = await resolverFor([srv]).a('mx2.example.com');
    expect(result).toEqual({
      status: 'insecure',
      rcode: 'NOERROR',
      name: 'mx2.example.com',
      records: [{ address: '192.0.2.20', family: 4 }],
      ttl: 120,
      cnames: [],
      canonical: 'mx2.example.com',
    });
  });

  it('does not believe AD from a server it does not trust (trustAd: false)', async () => {
    const srv = await server({ zone: ZONE, ad: true });
    const result = await resolverFor([srv], { trustAd: false }).mx('example.com');
    expect(result.status).toBe('insecure');
  });

  // Tests bind only to loopback, so a non-loopback server is checked without asking it anything:
  // the warnings come at construction, and the AD decision is believesAd().
  it("does not believe AD from a non-loopback server by default ('validate'), nor in 'trust-ad', but does with trustAd: true", () => {
    const remote = '192.0.2.53';
    expect([believesAd(remote, 'loopback'), believesAd(remote, true), believesAd(remote, false)]).toEqual([false, true, false]);
    expect([believesAd('127.0.0.53', 'loopback'), believesAd('::1', 'loopback'), believesAd('127.0.0.53', false)]).toEqual([true, true, false]);
    const warnings: string[] = [];
    // By default such a server's answers are validated here: nothing to warn about.
    expect(createResolver({ servers: [remote], logger: { warn: (m) => warnings.push(m) } }).dnssec).toBe('validate');
    expect(warnings).toEqual([]);
    createResolver({ servers: [remote], dnssec: 'trust-ad', logger: { warn: (m) => warnings.push(m) } });
    createResolver({ servers: [remote], trustAd: true, logger: { warn: (m) => warnings.push(m) } });
    createResolver({ servers: ['127.0.0.53'], trustAd: true, logger: { warn: (m) => warnings.push(m) } });
    expect(warnings).toEqual([
      `DNS server ${remote}:53 is not on loopback, so its AD bit is not believed and its answers are never secure ` +
        '(DANE needs a validating resolver on loopback, or trustAd: true)',
      `DNS server ${remote}:53 is not on loopback but its AD bit is trusted (trustAd: true): ` +
        'the AD bit is only as trustworthy as the path to the resolver',
    ]);
  });

  it('warns about trusting a non-loopback server only when told to trust it', () => {
    const warnings: string[] = [];
    const logger = { warn: (m: string) => warnings.push(m) };
    createResolver({ servers: ['127.0.0.1', '[::1]:5353'], trustAd: true, logger });
    expect(warnings).toEqual([]);
    createResolver({ servers: ['192.0.2.53'], trustAd: true, logger });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('DNS server 192.0.2.53:53 is not on loopback');
    expect(warnings[0]).toContain('the AD bit is only as trustworthy as the path to the resolver');
    createResolver({ servers: ['192.0.2.53'], trustAd: false, logger });
    expect(warnings).toHaveLength(1);
  });

  it('returns NXDOMAIN as an answer with no records, cached for the SOA negative TTL', async () => {
    const srv = await server({ zone: ZONE, ad: true, soa: { ttl: 900, minimum: 45 } });
    const result = await resolverFor([srv]).mx('nonexistent.example.com');
    expect(result).toEqual({
      status: 'secure',
      rcode: 'NXDOMAIN',
      name: 'nonexistent.example.com',
      records: [],
      ttl: 45,
      cnames: [],
      canonical: 'nonexistent.example.com',
    });
  });

  it('returns NODATA as NOERROR with no records, insecure without AD', async () => {
    const srv = await server({ zone: ZONE, soa: { ttl: 30, minimum: 3600 } });
    const result = await resolverFor([srv]).aaaa('mx2.example.com');
    expect(result).toEqual({
      status: 'insecure',
      rcode: 'NOERROR',
      name: 'mx2.example.com',
      records: [],
      ttl: 30,
      cnames: [],
      canonical: 'mx2.example.com',
    });
  });

  it('treats SERVFAIL as failed, naming the server, and does not ask the same server again', async () => {
    const srv = await server({ zone: ZONE, ad: true, servfail: ['example.com'] });
    const result = await resolverFor([srv]).mx('example.com');
    expect(result).toEqual({
      status: 'failed',
      name: 'example.com',
      reason: `DNS lookup of MX for example.com failed: SERVFAIL from ${srv.server}`,
      temporary: true,
    });
    expect(srv.queries).toHaveLength(1);
  });

  it('adds an RFC 8914 extended error to the reason', async () => {
    const srv = await server({ zone: ZONE, servfail: true, ede: { infoCode: 6, extraText: 'signature expired' } });
    const result = await resolverFor([srv]).tlsa('_25._tcp.mx1.example.com');
    expect(result).toMatchObject({
      status: 'failed',
      reason: `DNS lookup of TLSA for _25._tcp.mx1.example.com failed: SERVFAIL from ${srv.server} (DNSSEC_BOGUS: signature expired)`,
    });
  });

  it('treats REFUSED as failed', async () => {
    const srv = await server({ zone: ZONE, rcode: () => 5 });
    const result = await resolverFor([srv]).a('mx1.example.com');
    expect(result).toEqual({
      status: 'failed',
      name: 'mx1.example.com',
      reason: `DNS lookup of A for mx1.example.com failed: REFUSED from ${srv.server}`,
      temporary: true,
    });
  });

  it('fails with the reason after the tries time out', async () => {
    const srv = await server({ zone: ZONE, drop: true });
    const started = Date.now();
    const result = await resolverFor([srv], { timeout: 200, attempts: 2 }).mx('example.com');
    expect(result).toEqual({
      status: 'failed',
      name: 'example.com',
      reason: `DNS lookup of MX for example.com failed: no reply from ${srv.server} after 2 tries of 200 ms`,
      temporary: true,
    });
    expect(srv.queries).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  });

  it('fails when a reply comes too late', async () => {
    const srv = await server({ zone: ZONE, delay: 400 });
    const result = await resolverFor([srv], { timeout: 150, attempts: 1 }).mx('example.com');
    expect(result).toMatchObject({ status: 'failed', reason: `DNS lookup of MX for example.com failed: no reply from ${srv.server} after 1 try of 150 ms` });
  });

  it('moves on to the next server when one does not answer', async () => {
    const dead = await server({ zone: ZONE, drop: true });
    const alive = await server({ host: '127.0.0.2', zone: ZONE, ad: true });
    const result = await resolverFor([dead, alive], { timeout: 200 }).mx('example.com');
    expect(result.status).toBe('secure');
    expect(dead.queries).toHaveLength(1);
    expect(alive.queries).toHaveLength(1);
  });

  // With a trusted server, SERVFAIL is final (test/dns-trust.test.ts); with none, as here,
  // the next server is asked.
  it('moves on to the next server after SERVFAIL when no server is trusted, and reports every server when all fail', async () => {
    const first = await server({ zone: ZONE, servfail: true });
    const second = await server({ host: '127.0.0.3', zone: ZONE, drop: true });
    const result = await resolverFor([first, second], { timeout: 100, attempts: 2, trustAd: false }).mx('example.com');
    expect(result).toMatchObject({
      status: 'failed',
      reason: `DNS lookup of MX for example.com failed: SERVFAIL from ${first.server}; ` + `no reply from ${second.server} after 2 tries of 100 ms`,
    });
    expect(first.queries).toHaveLength(1);
    expect(second.queries).toHaveLength(2);
  });

  it('reports a refused UDP port at once', async () => {
    const srv = await server({ zone: ZONE });
    const port = srv.port;
    await srv.close();
    const started = Date.now();
    const result = await createResolver({ servers: [`127.0.0.1:${port}`], timeout: 1500, attempts: 1 }).mx('example.com');
    expect(result).toMatchObject({
      status: 'failed',
      reason: `DNS lookup of MX for example.com failed: UDP to 127.0.0.1:${port} failed (ECONNREFUSED)`,
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('retries over TCP when the UDP reply is truncated', async () => {
    const srv = await server({ zone: ZONE, ad: true, truncate: true });
    const resolver = resolverFor([srv]);
    const result = await resolver.mx('example.com');
    expect(result.status).toBe('secure');
    expect(result.status !== 'failed' && result.records).toEqual([
      { exchange: 'mx1.example.com', preference: 10 },
      { exchange: 'mx2.example.com', preference: 20 },
    ]);
    expect(srv.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(resolver.stats).toMatchObject({ queriesSent: 2, tcpRetries: 1 });
  });

  it('retries over TCP when the answer exceeds 1232 octets', async () => {
    const big: ZoneRecord[] = Array.from({ length: 12 }, (_, i) => ({
      name: 'big.example.com',
      type: 'TXT',
      text: `${i}`.padStart(3, '0') + 'x'.repeat(150),
    }));
    const srv = await server({ zone: big });
    const result = await resolverFor([srv]).txt('big.example.com');
    expect(result.status).toBe('insecure');
    if (result.status === 'failed') return;
    expect(result.records).toHaveLength(12);
    expect(result.records[11]).toEqual({ strings: ['011' + 'x'.repeat(150)], text: '011' + 'x'.repeat(150) });
    expect(srv.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });

  it('fails on a malformed reply that carries the query ID', async () => {
    const raw = await rawUdpServer((query) => {
      // Header claiming one question and five answers, then nothing.
      const junk = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0, 7, 101, 120, 97]);
      query.copy(junk, 0, 0, 2);
      return [junk];
    });
    const result = await createResolver({ servers: [raw.server], timeout: 300, attempts: 2 }).mx('example.com');
    expect(result.status).toBe('failed');
    if (result.status !== 'failed') return;
    expect(result.reason).toMatch(new RegExp(`^DNS lookup of MX for example\\.com failed: malformed reply \\(.+\\) from ${raw.server.replace(/\./g, '\\.')}$`));
    // A server that sent garbage is not asked again.
    expect(raw.received).toHaveLength(1);
  });

  it('ignores messages too short to be replies, and times out', async () => {
    const raw = await rawUdpServer(() => [Buffer.from('garbage')]);
    const result = await createResolver({ servers: [raw.server], timeout: 150, attempts: 2 }).a('example.com');
    expect(result).toMatchObject({
      status: 'failed',
      reason: `DNS lookup of A for example.com failed: no reply from ${raw.server} after 2 tries of 150 ms (ignored 2 messages that did not answer the query)`,
    });
  });

  it('ignores a reply with a wrong ID and takes the right one that follows', async () => {
    const srv = await server({ zone: ZONE, ad: true, wrongId: 'first' });
    const result = await resolverFor([srv]).mx('example.com');
    expect(result.status).toBe('secure');
    expect(srv.queries).toHaveLength(1);
  });

  it('fails when only replies with a wrong ID arrive', async () => {
    const srv = await server({ zone: ZONE, wrongId: 'only' });
    const result = await resolverFor([srv], { timeout: 150, attempts: 1 }).mx('example.com');
    expect(result).toMatchObject({
      status: 'failed',
      reason: `DNS lookup of MX for example.com failed: no reply from ${srv.server} after 1 try of 150 ms (ignored 1 message that did not answer the query)`,
    });
  });

  it('ignores a reply to another question', async () => {
    const raw = await rawUdpServer((query) => {
      const request = Packet.parse(query);
      request.questions[0]!.name = 'evil.example.net';
      const response = Packet.createResponseFromRequest(request);
      response.answers.push(new Packet.Resource({ name: 'evil.example.net', type: 1, class: 1, ttl: 60, address: '203.0.113.66' }));
      return [response.toBuffer()];
    });
    const result = await createResolver({ servers: [raw.server], timeout: 150, attempts: 1 }).a('example.com');
    expect(result).toMatchObject({ status: 'failed', reason: expect.stringContaining('ignored 1 message that did not answer the query') });
  });

  it('fails on a referral from a server that does not recurse', async () => {
    const raw = await rawUdpServer((query) => [
      replyTo(query, (response) => {
        response.header.ra = 0;
        response.authorities.push(new Packet.Resource({ name: 'com', type: 2, class: 1, ttl: 172800, ns: 'a.gtld-servers.net' }));
      }),
    ]);
    const result = await createResolver({ servers: [raw.server], timeout: 300 }).mx('example.com');
    expect(result).toMatchObject({
      status: 'failed',
      reason: `DNS lookup of MX for example.com failed: referral from ${raw.server} (not a recursive resolver)`,
    });
  });

  it('takes an error reply without a question section', async () => {
    const raw = await rawUdpServer((query) => {
      const header = Buffer.from([0, 0, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0]);
      query.copy(header, 0, 0, 2);
      return [header];
    });
    const result = await createResolver({ servers: [raw.server], timeout: 300 }).mx('example.com');
    expect(result).toMatchObject({ status: 'failed', reason: `DNS lookup of MX for example.com failed: SERVFAIL from ${raw.server}` });
  });

  it('fails on TLSA RDATA shorter than three octets', async () => {
    const raw = await rawUdpServer((query) => [
      replyTo(query, (response) => {
        response.answers.push(new Packet.Resource({ name: '_25._tcp.mx.example.com', type: 52, class: 1, ttl: 60, data: Buffer.from([3, 1]) }));
      }),
    ]);
    const result = await createResolver({ servers: [raw.server], timeout: 300 }).tlsa('_25._tcp.mx.example.com');
    expect(result).toMatchObject({
      status: 'failed',
      reason: `DNS lookup of TLSA for _25._tcp.mx.example.com failed: malformed reply from ${raw.server} (TLSA RDATA is 2 octets, at least 3 are needed)`,
    });
  });
});

describe('records', () => {
  it('parses a null MX as exchange ""', async () => {
    const srv = await server({ zone: ZONE, ad: true });
    const result = await resolverFor([srv]).mx('NullMX.Example.ORG.');
    expect(result).toEqual({
      status: 'secure',
      rcode: 'NOERROR',
      name: 'nullmx.example.org',
      records: [{ exchange: '', preference: 0 }],
      ttl: 300,
      cnames: [],
      canonical: 'nullmx.example.org',
    });
  });

  it('parses TLSA RDATA: usage, selector, matching type and association data', async () => {
    const digest = Buffer.from('8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d', 'hex');
    const fullCert = Buffer.alloc(700, 0x5a);
    const srv = await server({
      ad: true,
      zone: {
        '_25._tcp.mx1.example.com': [
          { type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: digest, ttl: 3600 },
          { type: 'TLSA', usage: 2, selector: 0, matchingType: 0, data: fullCert },
          { type: 'TLSA', usage: 255, selector: 7, matchingType: 9, data: Buffer.alloc(0) },
        ],
      },
    });
    const result = await resolverFor([srv]).tlsa('_25._tcp.mx1.example.com');
    expect(result).toEqual({
      status: 'secure',
      rcode: 'NOERROR',
      name: '_25._tcp.mx1.example.com',
      records: [
        { usage: 3, selector: 1, matchingType: 1, data: digest },
        { usage: 2, selector: 0, matchingType: 0, data: fullCert },
        { usage: 255, selector: 7, matchingType: 9, data: Buffer.alloc(0) },
      ],
      ttl: 300,
      cnames: [],
      canonical: '_25._tcp.mx1.example.com',
    });
  });

  it('parseTlsa reads the RFC 6698 layout and rejects short RDATA', () => {
    expect(parseTlsa(Buffer.from([3, 1, 1, 0xab, 0xcd]))).toEqual({ usage: 3, selector: 1, matchingType: 1, data: Buffer.from([0xab, 0xcd]) });
    expect(() => parseTlsa(Buffer.from([3, 1]))).toThrow('TLSA RDATA is 2 octets, at least 3 are needed');
  });

  it('returns AAAA addresses in RFC 5952 form', async () => {
    const srv = await server({ zone: ZONE });
    const result = await resolverFor([srv]).aaaa('mx1.example.com');
    expect(result.status !== 'failed' && result.records).toEqual([{ address: '2001:db8::10', family: 6 }]);
  });

  it('reads CNAME records without following them', async () => {
    const srv = await server({ zone: [{ name: 'www.example.com', type: 'CNAME', target: 'Host.Example.NET', ttl: 77 }] });
    const result = await resolverFor([srv]).cname('www.example.com');
    expect(result).toEqual({
      status: 'insecure',
      rcode: 'NOERROR',
      name: 'www.example.com',
      records: [{ target: 'host.example.net' }],
      ttl: 77,
      cnames: [],
      canonical: 'www.example.com',
    });
  });

  it('answers generic queries by type name or number', async () => {
    const srv = await server({ zone: ZONE });
    const resolver = resolverFor([srv]);
    const byName = await resolver.query('example.com', 'MX');
    const byNumber = await resolver.query('mx2.example.com', 1);
    expect(byName.status !== 'failed' && byName.records[0]).toEqual({ exchange: 'mx1.example.com', preference: 10 });
    expect(byNumber.status !== 'failed' && byNumber.records).toEqual([{ address: '192.0.2.20', family: 4 }]);
  });
});

describe('CNAME chains', () => {
  const chain: ZoneRecord[] = [
    { name: 'mail.example.com', type: 'CNAME', target: 'alias.example.net', ttl: 600 },
    { name: 'alias.example.net', type: 'CNAME', target: 'mx1.example.com', ttl: 45 },
    { name: 'mx1.example.com', type: 'A', address: '192.0.2.10' },
    { name: 'dangling.example.com', type: 'CNAME', target: 'gone.example.net' },
    { name: 'nodata.example.com', type: 'CNAME', target: 'mx1.example.com' },
  ];

  it('follows the chain in the answer section to the records of the last name', async () => {
    const srv = await server({ zone: chain, ad: true });
    const result = await resolverFor([srv]).a('mail.example.com');
    expect(result).toEqual({
      status: 'secure',
      rcode: 'NOERROR',
      name: 'mail.example.com',
      records: [{ address: '192.0.2.10', family: 4 }],
      ttl: 45,
      cnames: ['alias.example.net', 'mx1.example.com'],
      canonical: 'mx1.example.com',
    });
  });

  it('is insecure when the reply carrying the chain has no AD', async () => {
    const srv = await server({ zone: chain, ad: false });
    const result = await resolverFor([srv]).a('mail.example.com');
    expect(result).toMatchObject({ status: 'insecure', cnames: ['alias.example.net', 'mx1.example.com'] });
  });

  it('reports NXDOMAIN for a chain ending at a name that does not exist', async () => {
    const srv = await server({ zone: chain, soa: { ttl: 20, minimum: 20 } });
    const result = await resolverFor([srv]).mx('dangling.example.com');
    expect(result).toEqual({
      status: 'insecure',
      rcode: 'NXDOMAIN',
      name: 'dangling.example.com',
      records: [],
      ttl: 20,
      cnames: ['gone.example.net'],
      canonical: 'gone.example.net',
    });
  });

  it('reports NODATA for a chain ending at a name without the type', async () => {
    const srv = await server({ zone: chain, soa: { ttl: 20, minimum: 20 } });
    const result = await resolverFor([srv]).mx('nodata.example.com');
    expect(result).toMatchObject({ rcode: 'NOERROR', records: [], cnames: ['mx1.example.com'], canonical: 'mx1.example.com' });
  });

  it('ignores records owned by names off the chain', async () => {
    const raw = await rawUdpServer((query) => [
      replyTo(query, (response) => {
        response.answers.push(new Packet.Resource({ name: 'other.example.com', type: 1, class: 1, ttl: 60, address: '203.0.113.1' }));
        response.answers.push(new Packet.Resource({ name: 'target.example.com', type: 1, class: 1, ttl: 60, address: '203.0.113.2' }));
        response.authorities.push(
          new Packet.Resource({
            name: 'example.com',
            type: 6,
            class: 1,
            ttl: 60,
            primary: 'ns.example.com',
            admin: 'h.example.com',
            serial: 1,
            refresh: 1,
            retry: 1,
            expiration: 1,
            minimum: 60,
          }),
        );
      }),
    ]);
    const result = await createResolver({ servers: [raw.server], timeout: 300 }).a('target.example.com');
    expect(result.status !== 'failed' && result.records).toEqual([{ address: '203.0.113.2', family: 4 }]);
    const none = await createResolver({ servers: [raw.server], timeout: 300 }).a('lonely.example.com');
    expect(none).toMatchObject({ rcode: 'NOERROR', records: [], ttl: 60 });
  });
});

describe('cache', () => {
  it('answers a second lookup from the cache without a query', async () => {
    const srv = await server({ zone: ZONE, ad: true });
    const resolver = resolverFor([srv]);
    const first = await resolver.mx('example.com');
    const second = await resolver.mx('EXAMPLE.com.');
    expect(second).toEqual(first);
    expect(srv.queries).toHaveLength(1);
    expect(resolver.stats).toEqual({ queriesSent: 1, cacheHits: 1, cacheMisses: 1, inflightJoins: 0, tcpRetries: 0 });
  });

  it('does not share mutable arrays with the cache', async () => {
    const srv = await server({ zone: ZONE });
    const resolver = resolverFor([srv]);
    const first = await resolver.mx('example.com');
    if (first.status !== 'failed') first.records.length = 0;
    const second = await resolver.mx('example.com');
    expect(second.status !== 'failed' && second.records).toHaveLength(2);
  });

  it('asks again once the TTL has run out', async () => {
    const srv = await server({ zone: [{ name: 'short.example.com', type: 'A', address: '192.0.2.1', ttl: 1 }] });
    const resolver = resolverFor([srv]);
    await resolver.a('short.example.com');
    const cached = await resolver.a('short.example.com');
    expect(cached).toMatchObject({ ttl: 1 });
    expect(srv.queries).toHaveLength(1);
    await sleep(1100);
    await resolver.a('short.example.com');
    expect(srv.queries).toHaveLength(2);
  });

  it('reports the remaining TTL on a cache hit', async () => {
    const srv = await server({ zone: [{ name: 'ttl.example.com', type: 'A', address: '192.0.2.1', ttl: 3 }] });
    const resolver = resolverFor([srv]);
    expect(await resolver.a('ttl.example.com')).toMatchObject({ ttl: 3 });
    await sleep(1100);
    expect(await resolver.a('ttl.example.com')).toMatchObject({ ttl: 2 });
    expect(srv.queries).toHaveLength(1);
  });

  it('caches negative answers for min(SOA TTL, SOA MINIMUM)', async () => {
    const srv = await server({ zone: ZONE, soa: { ttl: 1, minimum: 600 } });
    const resolver = resolverFor([srv]);
    expect(await resolver.mx('missing.example.com')).toMatchObject({ rcode: 'NXDOMAIN', ttl: 1 });
    expect(await resolver.mx('missing.example.com')).toMatchObject({ rcode: 'NXDOMAIN', ttl: 1 });
    expect(await resolver.aaaa('mx2.example.com')).toMatchObject({ rcode: 'NOERROR', records: [], ttl: 1 });
    expect(await resolver.aaaa('mx2.example.com')).toMatchObject({ rcode: 'NOERROR', records: [], ttl: 1 });
    expect(srv.queries).toHaveLength(2);
    await sleep(1100);
    await resolver.mx('missing.example.com');
    expect(srv.queries).toHaveLength(3);
  });

  it('does not cache a negative answer without an SOA', async () => {
    const raw = await rawUdpServer((query) => [replyTo(query, (response) => (response.header.rcode = 3))]);
    const resolver = createResolver({ servers: [raw.server], timeout: 300 });
    expect(await resolver.mx('nosoa.example.com')).toMatchObject({ rcode: 'NXDOMAIN', ttl: 0 });
    await resolver.mx('nosoa.example.com');
    expect(raw.received).toHaveLength(2);
  });

  it('does not cache failures', async () => {
    const srv = await server({ zone: ZONE, servfail: true });
    const resolver = resolverFor([srv]);
    expect((await resolver.mx('example.com')).status).toBe('failed');
    expect((await resolver.mx('example.com')).status).toBe('failed');
    expect(srv.queries).toHaveLength(2);
  });

  it('sends one query for identical concurrent lookups', async () => {
    const srv = await server({ zone: ZONE, ad: true, delay: 100 });
    const resolver = resolverFor([srv]);
    const [one, two, other] = await Promise.all([resolver.mx('example.com'), resolver.mx('Example.com'), resolver.a('mx1.example.com')]);
    expect(one).toEqual(two);
    expect(one.status).toBe('secure');
    expect(other.status).toBe('secure');
    expect(srv.queries.map((q) => `${q.type} ${q.name}`)).toEqual(['MX example.com', 'A mx1.example.com']);
    expect(resolver.stats).toMatchObject({ queriesSent: 2, inflightJoins: 1, cacheHits: 0 });
  });

  it('shares in-flight lookups even with the cache off, but asks afresh afterwards', async () => {
    const srv = await server({ zone: ZONE, delay: 50 });
    const resolver = resolverFor([srv], { cache: false });
    await Promise.all([resolver.mx('example.com'), resolver.mx('example.com')]);
    await resolver.mx('example.com');
    expect(srv.queries).toHaveLength(2);
  });

  it('clear() empties the cache and resets the counters', async () => {
    const srv = await server({ zone: ZONE });
    const resolver = resolverFor([srv]);
    await resolver.mx('example.com');
    resolver.clear();
    expect(resolver.stats).toEqual({ queriesSent: 0, cacheHits: 0, cacheMisses: 0, inflightJoins: 0, tcpRetries: 0 });
    await resolver.mx('example.com');
    expect(srv.queries).toHaveLength(2);
  });
});

describe('addresses()', () => {
  it('combines A and AAAA, A first, with the weaker status', async () => {
    const srv = await server({ zone: ZONE, ad: (_name, type) => type === 'A' });
    const result = await resolverFor([srv]).addresses('mx1.example.com');
    expect(result).toEqual({
      status: 'insecure',
      rcode: 'NOERROR',
      name: 'mx1.example.com',
      records: [
        { address: '192.0.2.10', family: 4 },
        { address: '2001:db8::10', family: 6 },
      ],
      ttl: 300,
      cnames: [],
      canonical: 'mx1.example.com',
    });
    expect(srv.queries.map((q) => q.type).sort()).toEqual(['A', 'AAAA']);
  });

  it('is secure when both are', async () => {
    const srv = await server({ zone: ZONE, ad: true, soa: { ttl: 60, minimum: 60 } });
    const result = await resolverFor([srv]).addresses('mx2.example.com');
    expect(result).toMatchObject({ status: 'secure', rcode: 'NOERROR', records: [{ address: '192.0.2.20', family: 4 }], ttl: 60 });
  });

  it('asks only for the families wanted', async () => {
    const srv = await server({ zone: ZONE });
    const resolver = resolverFor([srv]);
    expect(await resolver.addresses('mx1.example.com', { ipv6: false })).toMatchObject({ records: [{ address: '192.0.2.10', family: 4 }] });
    expect(await resolver.addresses('mx1.example.com', { ipv4: false })).toMatchObject({ records: [{ address: '2001:db8::10', family: 6 }] });
    expect(srv.queries.map((q) => q.type)).toEqual(['A', 'AAAA']);
    expect(() => resolver.addresses('mx1.example.com', { ipv4: false, ipv6: false })).toThrow(TypeError);
    expect(() => resolver.addresses('')).toThrow(TypeError);
  });

  it('is NXDOMAIN only when both are', async () => {
    const srv = await server({ zone: ZONE });
    expect(await resolverFor([srv]).addresses('nowhere.example.com')).toMatchObject({ rcode: 'NXDOMAIN', records: [] });
  });

  it('uses the half that answered when the other failed', async () => {
    const srv = await server({ zone: ZONE, ad: true, servfail: (_name, type) => type === 'AAAA' });
    const result = await resolverFor([srv]).addresses('mx2.example.com');
    expect(result).toMatchObject({ status: 'secure', records: [{ address: '192.0.2.20', family: 4 }] });
  });

  it('fails when one half failed and the other found nothing', async () => {
    const srv = await server({ zone: ZONE, servfail: (_name, type) => type === 'A' });
    const result = await resolverFor([srv]).addresses('mx2.example.com', {});
    expect(result).toMatchObject({ status: 'failed', reason: `DNS lookup of A for mx2.example.com failed: SERVFAIL from ${srv.server}` });
  });

  it('fails with both reasons when both failed', async () => {
    const srv = await server({ zone: ZONE, servfail: true });
    const result = await resolverFor([srv]).addresses('mx1.example.com');
    expect(result).toEqual({
      status: 'failed',
      name: 'mx1.example.com',
      reason:
        `DNS lookup of A for mx1.example.com failed: SERVFAIL from ${srv.server}; ` +
        `DNS lookup of AAAA for mx1.example.com failed: SERVFAIL from ${srv.server}`,
      temporary: true,
    });
  });
});

describe('names and arguments', () => {
  it('lowercases, drops the trailing dot and converts IDNs to A-labels', async () => {
    const srv = await server({ zone: [{ name: 'xn--bcher-kva.example', type: 'MX', exchange: 'mx.xn--bcher-kva.example', preference: 5 }] });
    const result = await resolverFor([srv]).mx('Bücher.Example.');
    expect(result).toMatchObject({ name: 'xn--bcher-kva.example', records: [{ exchange: 'mx.xn--bcher-kva.example', preference: 5 }] });
    expect(srv.queries[0]!.name).toBe('xn--bcher-kva.example');
  });

  it('normalizeName keeps service labels and numeric names as they are', () => {
    expect(normalizeName('_25._TCP.MX.Example.COM.')).toBe('_25._tcp.mx.example.com');
    expect(normalizeName('10.2.0.192.in-addr.arpa')).toBe('10.2.0.192.in-addr.arpa');
    expect(normalizeName('1.2.3')).toBe('1.2.3');
    expect(normalizeName('münchen.de')).toBe('xn--mnchen-3ya.de');
  });

  it('throws for bad names and types, without sending anything', () => {
    const resolver = createResolver({ servers: ['127.0.0.1:9'] });
    expect(() => resolver.mx('')).toThrow(TypeError);
    expect(() => resolver.mx('.')).toThrow(TypeError);
    expect(() => resolver.mx('a..example')).toThrow(TypeError);
    expect(() => resolver.mx('a b.example')).toThrow(TypeError);
    expect(() => resolver.mx(`${'a'.repeat(64)}.example`)).toThrow(TypeError);
    expect(() => resolver.query('example.com', 'BOGUS' as 'MX')).toThrow(TypeError);
    expect(() => resolver.query('example.com', 41)).toThrow(TypeError);
    expect(() => resolver.query('example.com', 252)).toThrow(TypeError);
    expect(resolver.stats.queriesSent).toBe(0);
  });

  it('parses server specifications', () => {
    expect(parseServer('127.0.0.1')).toEqual({ address: '127.0.0.1', port: 53, family: 4, label: '127.0.0.1:53' });
    expect(parseServer('127.0.0.1:5353')).toEqual({ address: '127.0.0.1', port: 5353, family: 4, label: '127.0.0.1:5353' });
    expect(parseServer('[::1]:53')).toEqual({ address: '::1', port: 53, family: 6, label: '[::1]:53' });
    expect(parseServer('::1')).toEqual({ address: '::1', port: 53, family: 6, label: '[::1]:53' });
    expect(() => parseServer('dns.example.com')).toThrow(TypeError);
    expect(() => parseServer('127.0.0.1:0')).toThrow(TypeError);
    expect(() => parseServer('127.0.0.1:70000')).toThrow(TypeError);
    expect(() => createResolver({ servers: [] })).toThrow(TypeError);
    expect(() => createResolver({ servers: ['127.0.0.1'], timeout: 0 })).toThrow(TypeError);
  });

  it('reads nameserver lines from resolv.conf text', () => {
    const text = [
      '# comment',
      'search example.com',
      'nameserver 127.0.0.53',
      'nameserver ::1 # trailing comment',
      '; nameserver 192.0.2.9',
      'nameserver not-an-address',
      'options edns0 trust-ad',
    ].join('\n');
    expect(parseResolvConf(text)).toEqual(['127.0.0.53', '::1']);
    expect(createResolver().servers.length).toBeGreaterThan(0);
  });

  it('knows which addresses are loopback', () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('127.255.0.9')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopback('128.0.0.1')).toBe(false);
    expect(isLoopback('192.0.2.1')).toBe(false);
    expect(isLoopback('::2')).toBe(false);
    expect(isLoopback('fe80::1')).toBe(false);
  });
});

describe('IPv6', () => {
  it('asks a server on [::1] and trusts its AD bit', async () => {
    const srv = await server({ host: '::1', zone: ZONE, ad: true, truncate: true });
    expect(srv.server).toBe(`[::1]:${srv.port}`);
    const result = await resolverFor([srv]).mx('example.com');
    expect(result.status).toBe('secure');
    expect(srv.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });
});
