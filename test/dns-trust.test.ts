/**
 * Which servers the resolver asks, and what a failure at a trusted (AD-believed) server
 * becomes: every shape of server list x every way a server fails x every record type the
 * delivery looks up, against real test DNS servers on loopback, with the servers' own query
 * logs saying who was asked.
 *
 * The rules (lib/dns/index.ts): with a trusted server configured, only trusted servers are
 * asked; SERVFAIL from a trusted server is final; a timeout, REFUSED or malformed reply from
 * one moves on to the next trusted server; with none trusted, every server is asked in order
 * as before, and answers are insecure.
 *
 * "Untrusted" in a list that also holds a trusted server is a server not on loopback under
 * the default trustAd 'loopback' (tests bind only to loopback, so it is a documentation
 * address nothing listens on): the resolver must never ask it, and `queriesSent` equals what
 * the loopback servers logged. A list of untrusted servers only is made with trustAd: false.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver, type DnsResult } from '../lib/dns/index.js';
import { startDnsServer, type DnsServerOptions, type TestDnsServer, type ZoneRecord } from './helpers/dns-server.js';

const HASH = '8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d';
const ZONE: ZoneRecord[] = [
  { name: 'example.com', type: 'MX', exchange: 'mx1.example.com', preference: 10 },
  { name: 'example.com', type: 'TXT', text: 'v=spf1 -all' },
  { name: 'mx1.example.com', type: 'A', address: '192.0.2.10' },
  { name: 'mx1.example.com', type: 'AAAA', address: '2001:db8::10' },
  { name: '_25._tcp.mx1.example.com', type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: HASH },
  { name: 'www.example.com', type: 'CNAME', target: 'mx1.example.com' },
];

/** The lookups the delivery makes, and what a healthy server answers to each. */
const LOOKUPS = [
  { type: 'MX', name: 'example.com', records: [{ exchange: 'mx1.example.com', preference: 10 }] },
  { type: 'A', name: 'mx1.example.com', records: [{ address: '192.0.2.10', family: 4 }] },
  { type: 'AAAA', name: 'mx1.example.com', records: [{ address: '2001:db8::10', family: 6 }] },
  { type: 'TLSA', name: '_25._tcp.mx1.example.com', records: [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.from(HASH, 'hex') }] },
  { type: 'CNAME', name: 'www.example.com', records: [{ target: 'mx1.example.com' }] },
  { type: 'TXT', name: 'example.com', records: [{ strings: ['v=spf1 -all'], text: 'v=spf1 -all' }] },
] as const;

type Failure = 'SERVFAIL' | 'timeout' | 'malformed' | 'REFUSED';
const FAILURES: Record<Failure, { options: DnsServerOptions; reason: (server: string) => string }> = {
  SERVFAIL: { options: { servfail: true }, reason: (s) => `SERVFAIL from ${s}` },
  timeout: { options: { drop: true }, reason: (s) => `no reply from ${s} after` },
  malformed: { options: { malformed: true }, reason: (s) => `malformed reply (answer 1: RDLENGTH 100 of the A record` },
  REFUSED: { options: { rcode: () => 5 }, reason: (s) => `REFUSED from ${s}` },
};

/** Not on loopback, so not trusted under trustAd 'loopback'; TEST-NET-3, nothing answers there. */
const REMOTE = '203.0.113.53:53';
const TIMEOUT = 150;
const ATTEMPTS = 2;

let failing: Record<Failure, TestDnsServer>;
let healthy: TestDnsServer;

beforeAll(async () => {
  const entries = await Promise.all(
    (Object.keys(FAILURES) as Failure[]).map(
      async (failure) => [failure, await startDnsServer({ zone: ZONE, ad: true, ...FAILURES[failure].options })] as const,
    ),
  );
  failing = Object.fromEntries(entries) as Record<Failure, TestDnsServer>;
  healthy = await startDnsServer({ host: '127.0.0.2', zone: ZONE, ad: true });
});

afterAll(async () => {
  await Promise.all([...Object.values(failing ?? {}), healthy].map((server) => server?.close()));
});

/** How many queries `server` logged for this lookup. */
const asked = (server: TestDnsServer, name: string, type: string, since: number) =>
  server.queries.slice(since).filter((query) => query.name === name && query.type === type).length;

interface Shape {
  shape: string;
  /** The resolver's servers, given the failing one. */
  servers: (bad: TestDnsServer) => string[];
  trustAd?: false;
  /** What every lookup comes to. */
  expect: (failure: Failure) => 'failed' | 'secure' | 'insecure';
  /** Queries the failing and the healthy server get for one lookup. */
  queries: (failure: Failure) => { bad: number; healthy: number };
}

const triesAtBad = (failure: Failure) => (failure === 'timeout' ? ATTEMPTS : 1);

const SHAPES: Shape[] = [
  {
    shape: 'one trusted server',
    servers: (bad) => [bad.server],
    expect: () => 'failed',
    queries: (failure) => ({ bad: triesAtBad(failure), healthy: 0 }),
  },
  {
    shape: 'trusted, then untrusted',
    servers: (bad) => [bad.server, REMOTE],
    expect: () => 'failed',
    queries: (failure) => ({ bad: triesAtBad(failure), healthy: 0 }),
  },
  {
    shape: 'untrusted, then trusted',
    servers: (bad) => [REMOTE, bad.server],
    expect: () => 'failed',
    queries: (failure) => ({ bad: triesAtBad(failure), healthy: 0 }),
  },
  {
    shape: 'two trusted',
    servers: (bad) => [bad.server, healthy.server],
    // SERVFAIL from a validating resolver is its verdict on the data: final.
    expect: (failure) => (failure === 'SERVFAIL' ? 'failed' : 'secure'),
    queries: (failure) => ({ bad: 1, healthy: failure === 'SERVFAIL' ? 0 : 1 }),
  },
  {
    shape: 'untrusted only (trustAd: false)',
    servers: (bad) => [bad.server, healthy.server],
    trustAd: false,
    expect: () => 'insecure',
    queries: () => ({ bad: 1, healthy: 1 }),
  },
];

const ROWS = SHAPES.flatMap((shape) => (Object.keys(FAILURES) as Failure[]).map((failure) => ({ ...shape, failure })));

// The lookups of one row run concurrently: each is a different name and type, so each
// counts only its own queries in the servers' logs.
describe.each(ROWS)('$shape; the first trusted server fails with $failure', (row) => {
  it.concurrent.for(LOOKUPS)('$type $name', async (lookup, { expect }) => {
    const bad = failing[row.failure];
    const since = { bad: bad.queries.length, healthy: healthy.queries.length };
    const resolver = createResolver({
      servers: row.servers(bad),
      timeout: TIMEOUT,
      attempts: ATTEMPTS,
      cache: false,
      ...(row.trustAd === false ? { trustAd: false } : {}),
    });
    const result = (await resolver.query(lookup.name, lookup.type)) as DnsResult<unknown>;
    const status = row.expect(row.failure);
    if (status === 'failed') {
      expect(result).toMatchObject({ status: 'failed', name: lookup.name, temporary: true });
      expect(result.status === 'failed' && result.reason).toContain(
        `DNS lookup of ${lookup.type} for ${lookup.name} failed: ${FAILURES[row.failure].reason(bad.server)}`,
      );
    } else {
      expect(result).toMatchObject({ status, rcode: 'NOERROR', name: lookup.name, records: lookup.records });
    }
    const expected = row.queries(row.failure);
    expect({
      bad: asked(bad, lookup.name, lookup.type, since.bad),
      healthy: asked(healthy, lookup.name, lookup.type, since.healthy),
    }).toEqual(expected);
    // Nothing else was asked: the untrusted server on REMOTE never was.
    expect(resolver.stats.queriesSent).toBe(expected.bad + expected.healthy);
  });
});

describe('who is asked, and what is said about it', () => {
  it('a trusted and an untrusted server: only the trusted one is asked, and a warning names the other', () => {
    const warnings: string[] = [];
    const resolver = createResolver({ servers: ['127.0.0.1:5353', REMOTE, '[::1]:53'], logger: { warn: (m) => warnings.push(m) } });
    expect(resolver.servers).toEqual(['127.0.0.1:5353', REMOTE, '[::1]:53']);
    expect(resolver.trustedServers).toEqual(['127.0.0.1:5353', '[::1]:53']);
    expect(resolver.askedServers).toEqual(['127.0.0.1:5353', '[::1]:53']);
    expect(warnings).toEqual([
      `DNS server ${REMOTE} will not be asked: it is not on loopback, so its AD bit is not believed (trustAd: 'loopback'), ` +
        'and an answer from it could only replace a failure at a trusted server, turning a failed DNSSEC lookup into an insecure one',
    ]);
  });

  it('no trusted server: every server is asked, in order', () => {
    expect(createResolver({ servers: [REMOTE, '127.0.0.1'], trustAd: false })).toMatchObject({ trustedServers: [], askedServers: [REMOTE, '127.0.0.1:53'] });
    expect(createResolver({ servers: [REMOTE, '198.51.100.1'] })).toMatchObject({ trustedServers: [], askedServers: [REMOTE, '198.51.100.1:53'] });
    expect(createResolver({ servers: [REMOTE, '127.0.0.1'], trustAd: true })).toMatchObject({
      trustedServers: [REMOTE, '127.0.0.1:53'],
      askedServers: [REMOTE, '127.0.0.1:53'],
    });
  });

  it('SERVFAIL after a trusted server timed out: failed at once, with both reasons', async () => {
    const dead = failing.timeout;
    const servfail = failing.SERVFAIL;
    const resolver = createResolver({ servers: [dead.server, servfail.server, healthy.server], timeout: TIMEOUT, attempts: ATTEMPTS, cache: false });
    const before = healthy.queries.length;
    expect(await resolver.mx('example.com')).toEqual({
      status: 'failed',
      name: 'example.com',
      reason: `DNS lookup of MX for example.com failed: no reply from ${dead.server} after 1 try of ${TIMEOUT} ms; SERVFAIL from ${servfail.server}`,
      temporary: true,
    });
    expect(healthy.queries.length).toBe(before);
  });

  it('every trusted server failed: failed, with every reason', async () => {
    const resolver = createResolver({ servers: [failing.REFUSED.server, failing.malformed.server], timeout: TIMEOUT, attempts: ATTEMPTS, cache: false });
    const result = await resolver.a('mx1.example.com');
    expect(result.status === 'failed' && result.reason).toMatch(
      new RegExp(
        `^DNS lookup of A for mx1\\.example\\.com failed: REFUSED from ${failing.REFUSED.server}; ` +
          `malformed reply \\(answer 1: .*\\) from ${failing.malformed.server}$`,
      ),
    );
  });

  it('a trusted server that answers without AD gives an insecure answer (the validator says so): not a failure', async () => {
    const plain = await startDnsServer({ zone: ZONE, ad: false });
    try {
      const result = await createResolver({ servers: [plain.server, healthy.server], timeout: TIMEOUT, cache: false }).mx('example.com');
      expect(result).toMatchObject({ status: 'insecure', records: [{ exchange: 'mx1.example.com', preference: 10 }] });
      expect(plain.queries).toHaveLength(1);
    } finally {
      await plain.close();
    }
  });
});
