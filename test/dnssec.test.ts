/**
 * Our Resolver (lib/dns) against a real validating resolver: Unbound validating a tree signed
 * with ldns and served by NSD (test/helpers/dnssec.ts). Checks that the AD bit Unbound sets
 * or clears, and its SERVFAIL for bogus data, come out as the statuses DANE relies on.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createResolver, type DnsResult, type ResolverOptions } from '../lib/dns/index.js';
import { startDnssec, type DnssecTree, type DnssecZoneSpec } from './helpers/dnssec.js';

const HASH1 = '0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c';
const HASH2 = 'f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff00';
const HASH3 = 'aa'.repeat(32);

const SPEC: DnssecZoneSpec[] = [
  {
    origin: 'example.test',
    records: [
      '@ MX 10 mx1',
      '@ MX 20 mx2.example.test.',
      'mx1 A 127.0.0.2',
      `_25._tcp.mx1 TLSA 3 1 1 ${HASH1}`,
      'mx2 A 127.0.0.3',
      `_25._tcp.mx2 TLSA 3 1 1 ${HASH2}`,
      'bad A 127.0.0.9',
      'www CNAME mx1',
      'alias CNAME host.other.test.',
      'out CNAME mx.insecure.test.',
      'txt TXT "v=spf1 -all"',
    ],
    tamper: [
      { owner: '_25._tcp.mx2', type: 'TLSA' },
      { owner: 'bad.example.test.', type: 'A' },
    ],
  },
  { origin: 'sub.example.test', records: ['mx A 127.0.0.10', `_25._tcp.mx TLSA 2 0 1 ${HASH3}`] },
  { origin: 'other.test', records: ['host A 127.0.0.5'] },
  { origin: 'insecure.test', signed: false, records: ['@ MX 0 mx', 'mx A 127.0.0.4', `_25._tcp.mx TLSA 3 1 1 ${HASH1}`] },
  { origin: 'island.insecure.test', records: ['mx A 127.0.0.6'] },
  { origin: 'expired.test', signed: 'expired', records: ['mx A 127.0.0.7'] },
  { origin: 'hole.test', blackhole: true, records: ['mx A 127.0.0.8'] },
];

const TIMEOUT = 400;
const ATTEMPTS = 2;

let tree: DnssecTree;
let setupMs = 0;

beforeAll(async () => {
  const started = Date.now();
  tree = await startDnssec(SPEC);
  setupMs = Date.now() - started;
});

afterAll(async () => {
  await tree?.close();
});

function resolver(options: ResolverOptions = {}) {
  return createResolver({ servers: [tree.resolver], timeout: TIMEOUT, attempts: ATTEMPTS, cache: false, ...options });
}

const nsdAddress = () => tree.nsd.split(':')[0];

/**
 * An answer, exactly, except that Unbound's TTLs count down in whole seconds: one that crossed
 * a second boundary while Unbound validated says one second less.
 */
function expectAnswer<T>(result: DnsResult<T>, expected: Record<string, unknown> & { ttl: number }, why = ''): void {
  if (result.status === 'failed') throw new Error(`expected an answer, got: ${result.reason}\n${why}${tree.logs()}`);
  expect([expected.ttl, expected.ttl - 1], `ttl of ${result.name}`).toContain(result.ttl);
  expect({ ...result, ttl: expected.ttl }).toEqual(expected);
}

function answer(name: string, status: 'secure' | 'insecure', records: unknown[], extra: Record<string, unknown> = {}) {
  return { status, rcode: 'NOERROR', name, records, ttl: 300, cnames: [], canonical: name, ...extra };
}

describe('the tree', () => {
  it('runs NSD and Unbound on loopback', () => {
    expect(tree.resolver).toMatch(/^127\.\d+\.\d+\.\d+:\d+$/);
    expect(tree.nsd).toMatch(/^127\.\d+\.\d+\.\d+:\d+$/);
    expect(tree.resolver.split(':')[0]).not.toBe(nsdAddress());
    expect(tree.blackholes).toHaveLength(1);
    expect(tree.zones.map((zone) => [zone.origin, zone.parent, zone.signed, zone.ds !== undefined])).toEqual([
      ['test', '', true, true],
      ['example.test', 'test', true, true],
      ['sub.example.test', 'example.test', true, true],
      ['other.test', 'test', true, true],
      ['insecure.test', 'test', false, false],
      ['island.insecure.test', 'insecure.test', true, true],
      ['expired.test', 'test', 'expired', true],
      ['hole.test', 'test', true, true],
    ]);
    console.log(`startDnssec: ${setupMs} ms for ${tree.zones.length} zones`, tree.timings);
    expect(setupMs).toBeLessThan(15_000);
  });
});

describe('secure answers (AD from a loopback resolver)', () => {
  it('A and TLSA in a signed zone', async () => {
    const dns = resolver();
    expectAnswer(await dns.a('mx1.example.test'), answer('mx1.example.test', 'secure', [{ address: '127.0.0.2', family: 4 }]));
    expectAnswer(
      await dns.tlsa('_25._tcp.mx1.example.test'),
      answer('_25._tcp.mx1.example.test', 'secure', [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.from(HASH1, 'hex') }]),
    );
  });

  it('MX records', async () => {
    const result = await resolver().mx('Example.Test.');
    if (result.status !== 'failed') result.records.sort((a, b) => a.preference - b.preference);
    expectAnswer(
      result,
      answer('example.test', 'secure', [
        { exchange: 'mx1.example.test', preference: 10 },
        { exchange: 'mx2.example.test', preference: 20 },
      ]),
    );
  });

  it('a signed child of a signed child (DS in example.test)', async () => {
    const dns = resolver();
    expectAnswer(await dns.a('mx.sub.example.test'), answer('mx.sub.example.test', 'secure', [{ address: '127.0.0.10', family: 4 }]));
    expectAnswer(
      await dns.tlsa('_25._tcp.mx.sub.example.test'),
      answer('_25._tcp.mx.sub.example.test', 'secure', [{ usage: 2, selector: 0, matchingType: 1, data: Buffer.from(HASH3, 'hex') }]),
    );
  });

  it('addresses(): A secure and AAAA secure NODATA', async () => {
    expectAnswer(await resolver().addresses('mx2.example.test'), answer('mx2.example.test', 'secure', [{ address: '127.0.0.3', family: 4 }], { ttl: 60 }));
  });

  it('TXT', async () => {
    expectAnswer(await resolver().txt('txt.example.test'), answer('txt.example.test', 'secure', [{ strings: ['v=spf1 -all'], text: 'v=spf1 -all' }]));
  });

  it('NXDOMAIN, proven by NSEC', async () => {
    expectAnswer(await resolver().a('nope.example.test'), {
      status: 'secure',
      rcode: 'NXDOMAIN',
      name: 'nope.example.test',
      records: [],
      ttl: 60,
      cnames: [],
      canonical: 'nope.example.test',
    });
    expectAnswer(await resolver().tlsa('_25._tcp.mx9.example.test'), {
      status: 'secure',
      rcode: 'NXDOMAIN',
      name: '_25._tcp.mx9.example.test',
      records: [],
      ttl: 60,
      cnames: [],
      canonical: '_25._tcp.mx9.example.test',
    });
  });

  it('NODATA, proven by NSEC', async () => {
    expectAnswer(await resolver().aaaa('mx1.example.test'), answer('mx1.example.test', 'secure', [], { ttl: 60 }));
    expectAnswer(await resolver().mx('mx1.example.test'), answer('mx1.example.test', 'secure', [], { ttl: 60 }));
  });
});

describe('CNAME chains', () => {
  it('inside a signed zone: secure', async () => {
    expectAnswer(
      await resolver().a('www.example.test'),
      answer('www.example.test', 'secure', [{ address: '127.0.0.2', family: 4 }], { cnames: ['mx1.example.test'], canonical: 'mx1.example.test' }),
    );
  });

  it('from a signed zone to another signed zone: secure, with the chain', async () => {
    expectAnswer(
      await resolver().a('alias.example.test'),
      answer('alias.example.test', 'secure', [{ address: '127.0.0.5', family: 4 }], { cnames: ['host.other.test'], canonical: 'host.other.test' }),
    );
  });

  it('from a signed zone to an unsigned zone: insecure', async () => {
    expectAnswer(
      await resolver().a('out.example.test'),
      answer('out.example.test', 'insecure', [{ address: '127.0.0.4', family: 4 }], { cnames: ['mx.insecure.test'], canonical: 'mx.insecure.test' }),
    );
  });
});

describe('insecure answers', () => {
  it('an unsigned child zone (insecure delegation, no DS proven by NSEC)', async () => {
    const dns = resolver();
    expectAnswer(await dns.a('mx.insecure.test'), answer('mx.insecure.test', 'insecure', [{ address: '127.0.0.4', family: 4 }]));
    expectAnswer(
      await dns.tlsa('_25._tcp.mx.insecure.test'),
      answer('_25._tcp.mx.insecure.test', 'insecure', [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.from(HASH1, 'hex') }]),
    );
    expectAnswer(await dns.mx('insecure.test'), answer('insecure.test', 'insecure', [{ exchange: 'mx.insecure.test', preference: 0 }]));
    expectAnswer(await dns.a('nope.insecure.test'), {
      status: 'insecure',
      rcode: 'NXDOMAIN',
      name: 'nope.insecure.test',
      records: [],
      ttl: 60,
      cnames: [],
      canonical: 'nope.insecure.test',
    });
  });

  it('a signed zone under an unsigned parent (an island: no chain of trust)', async () => {
    expectAnswer(await resolver().a('mx.island.insecure.test'), answer('mx.island.insecure.test', 'insecure', [{ address: '127.0.0.6', family: 4 }]));
  });

  it('with trustAd false everything is insecure; bogus data still fails', async () => {
    const dns = resolver({ trustAd: false });
    expectAnswer(await dns.a('mx1.example.test'), answer('mx1.example.test', 'insecure', [{ address: '127.0.0.2', family: 4 }]));
    expectAnswer(
      await dns.tlsa('_25._tcp.mx1.example.test'),
      answer('_25._tcp.mx1.example.test', 'insecure', [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.from(HASH1, 'hex') }]),
    );
    const mx = await dns.mx('example.test');
    expect(mx.status).toBe('insecure');
    expectAnswer(
      await dns.a('alias.example.test'),
      answer('alias.example.test', 'insecure', [{ address: '127.0.0.5', family: 4 }], { cnames: ['host.other.test'], canonical: 'host.other.test' }),
    );
    expectAnswer(await dns.a('nope.example.test'), {
      status: 'insecure',
      rcode: 'NXDOMAIN',
      name: 'nope.example.test',
      records: [],
      ttl: 60,
      cnames: [],
      canonical: 'nope.example.test',
    });
    expectAnswer(await dns.aaaa('mx1.example.test'), answer('mx1.example.test', 'insecure', [], { ttl: 60 }));
    // trustAd: true on loopback believes AD as 'loopback' does.
    expectAnswer(await resolver({ trustAd: true }).a('mx1.example.test'), answer('mx1.example.test', 'secure', [{ address: '127.0.0.2', family: 4 }]));
  });
});

describe('failures', () => {
  it('a tampered TLSA RRset is bogus: SERVFAIL, while the host A stays secure', async () => {
    const dns = resolver();
    expect(await dns.tlsa('_25._tcp.mx2.example.test')).toEqual({
      status: 'failed',
      name: '_25._tcp.mx2.example.test',
      reason:
        `DNS lookup of TLSA for _25._tcp.mx2.example.test failed: SERVFAIL from ${tree.resolver} ` +
        `(DNSSEC_BOGUS: validation failure <_25._tcp.mx2.example.test. TLSA IN>: signature crypto failed from ${nsdAddress()})`,
      temporary: true,
    });
    expectAnswer(await dns.a('mx2.example.test'), answer('mx2.example.test', 'secure', [{ address: '127.0.0.3', family: 4 }]));
    // Asked again, Unbound answers from its bogus cache, without the text.
    expect(await resolver({ trustAd: false }).tlsa('_25._tcp.mx2.example.test')).toEqual({
      status: 'failed',
      name: '_25._tcp.mx2.example.test',
      reason: `DNS lookup of TLSA for _25._tcp.mx2.example.test failed: SERVFAIL from ${tree.resolver} (DNSSEC_BOGUS)`,
      temporary: true,
    });
    await vi.waitFor(() => expect(tree.logs()).toContain('validation failure <_25._tcp.mx2.example.test. TLSA IN>: signature crypto failed'));
  });

  it('a tampered A record (absolute owner in the spec) is bogus', async () => {
    expect(await resolver().a('bad.example.test')).toEqual({
      status: 'failed',
      name: 'bad.example.test',
      reason:
        `DNS lookup of A for bad.example.test failed: SERVFAIL from ${tree.resolver} ` +
        `(DNSSEC_BOGUS: validation failure <bad.example.test. A IN>: signature crypto failed from ${nsdAddress()})`,
      temporary: true,
    });
  });

  it('an expired zone is bogus', async () => {
    expect(await resolver().a('mx.expired.test')).toEqual({
      status: 'failed',
      name: 'mx.expired.test',
      reason:
        `DNS lookup of A for mx.expired.test failed: SERVFAIL from ${tree.resolver} ` +
        `(SIGNATURE_EXPIRED: validation failure <mx.expired.test. A IN>: signature expired from ${nsdAddress()} ` +
        'for key expired.test. while building chain of trust)',
      temporary: true,
    });
  });

  it('a black-holed zone times out within the resolver budget', async () => {
    const started = Date.now();
    const result = await resolver().a('mx.hole.test');
    const elapsed = Date.now() - started;
    expect(result).toEqual({
      status: 'failed',
      name: 'mx.hole.test',
      reason: `DNS lookup of A for mx.hole.test failed: no reply from ${tree.resolver} after 2 tries of 400 ms`,
      temporary: true,
    });
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT * ATTEMPTS - 20);
    expect(elapsed).toBeLessThan(TIMEOUT * ATTEMPTS + 400);
  });
});

describe('startDnssec errors', () => {
  it('names the zone-file error of a signed zone (ldns-signzone)', async () => {
    await expect(startDnssec([{ origin: 'broken.test', records: ['mx1 A not-an-address'] }])).rejects.toThrow(/ldns-signzone .*broken\.test/s);
  });

  it('names an unsigned zone NSD could not load', async () => {
    await expect(startDnssec([{ origin: 'broken.test', signed: false, records: ['mx1 A not-an-address'] }])).rejects.toThrow(
      /nsd does not serve broken\.test[\s\S]*broken\.test/,
    );
  });

  it('refuses to tamper with what is not there', async () => {
    await expect(startDnssec([{ origin: 'x.test', records: ['a A 127.0.0.1'], tamper: [{ owner: 'b', type: 'A' }] }])).rejects.toThrow(
      'startDnssec: nothing to tamper with: no b.x.test A in x.test',
    );
  });

  it('refuses origins outside test.', async () => {
    await expect(startDnssec([{ origin: 'example.com' }])).rejects.toThrow('startDnssec: origin example.com is not under test.');
  });
});
