/**
 * MTA-STS discovery, fetch and cache (lib/mtasts) against a real node:https policy host, the
 * tests' DNS server and the library's resolver: every fetch failure of RFC 8461 section 3.3, with
 * and without a cached policy (section 5.1), a changed id, mode none, and shared lookups.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyv } from 'keyv';
import { createResolver } from '../lib/dns/index.js';
import { MtaSts, FETCH_RETRY_MS } from '../lib/mtasts/index.js';
import { startDnsServer, type TestDnsServer, type ZoneData } from './helpers/dns-server.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { makePki, type Pki } from './helpers/pki.js';
import { policyText, startStsHosts, type StsHosts } from './helpers/sts-host.js';

let pki: Pki;
let hosts: StsHosts;
let dns: TestDnsServer;
/** TXT record per domain (undefined: none), and names whose lookups fail (SERVFAIL). */
const txt = new Map<string, string>();
const failing = new Set<string>();
let hostAddress: string;

beforeAll(async () => {
  pki = await makePki('MTA-STS fetch test CA');
  const ip = loopbackBlock();
  hostAddress = ip(2);
  hosts = await startStsHosts(hostAddress, await pki.leaf(['fallback.invalid']));
  dns = await startDnsServer({
    host: ip(1),
    zone: (name): ZoneData[] | undefined => {
      if (name.startsWith('_mta-sts.')) {
        const text = txt.get(name.slice('_mta-sts.'.length));
        return text === undefined ? undefined : [{ type: 'TXT', text }];
      }
      if (name.startsWith('mta-sts.')) return name.endsWith('.noaddress.test') ? [] : [{ type: 'A', address: hostAddress }];
      return undefined;
    },
    servfail: (name) => failing.has(name),
  });
});
afterAll(async () => {
  await Promise.all([hosts?.close(), dns?.close()]);
  pki?.close();
});

function sts(options: { store?: Keyv; timeout?: number; now?: () => number } = {}) {
  const resolver = createResolver({ servers: [dns.server], timeout: 1000, attempts: 1, cache: false });
  return new MtaSts(resolver, {
    store: options.store ?? new Keyv(),
    shared: options.store !== undefined,
    port: hosts.port,
    fetchTimeout: options.timeout ?? 3000,
    ca: pki.ca.certPem,
    ...(options.now ? { now: options.now } : {}),
  });
}

let n = 0;
/** A fresh domain with a TXT record and a site. */
async function site(
  behaviour: Parameters<StsHosts['set']>[1]['behaviour'],
  opts: { id?: string; certNames?: string[]; expired?: boolean } = {},
): Promise<string> {
  const domain = `d${++n}.fetch.test`;
  txt.set(domain, `v=STSv1; id=${opts.id ?? 'id1'};`);
  hosts.set(domain, { cert: await pki.leaf(opts.certNames ?? [`mta-sts.${domain}`], opts.expired ? { expired: true } : {}), behaviour });
  return domain;
}

const enforce = (mx = ['mx1.example.net']) => ({ kind: 'policy' as const, body: policyText('enforce', mx) });

describe('fetching (RFC 8461 section 3.3)', () => {
  it('a good policy is fetched, parsed and cached for max_age', async () => {
    const domain = await site(enforce(['mx1.example.net', '*.example.org']));
    const s = sts();
    const r = await s.lookup(domain);
    expect(r.policy).toMatchObject({ id: 'id1', mode: 'enforce', mx: ['mx1.example.net', '*.example.org'], maxAge: 86400, from: 'fetched' });
    expect(r.fetch).toMatchObject({ ok: true, status: 200, contentType: 'text/plain', host: `mta-sts.${domain}` });
    expect(r.failure).toBeUndefined();
    expect((await s.cached(domain))?.expiresAt).toBeGreaterThan(Date.now() + 86_000_000);
    expect(hosts.requests(domain)).toBe(1);
  });

  const failures: Array<[string, Parameters<typeof site>[0], Parameters<typeof site>[1], string, RegExp]> = [
    [
      'a content type other than text/plain',
      { kind: 'policy', body: policyText('enforce', ['a.example']), contentType: 'text/html' },
      {},
      'sts-policy-fetch-error',
      /content type "text\/html" is not text\/plain/,
    ],
    [
      'a redirect (not followed)',
      { kind: 'status', status: 301, location: 'https://elsewhere.test/' },
      {},
      'sts-policy-fetch-error',
      /HTTP status 301 \(redirects are not followed/,
    ],
    ['404', { kind: 'status', status: 404 }, {}, 'sts-policy-fetch-error', /HTTP status 404/],
    ['a body over 64 KiB, declared', { kind: 'oversized', bytes: 70_000, declareLength: true }, {}, 'sts-policy-fetch-error', /bytes, more than 65536/],
    ['a body over 64 KiB, streamed', { kind: 'oversized', bytes: 70_000, declareLength: false }, {}, 'sts-policy-fetch-error', /more than 65536 bytes/],
    [
      'a body slower than the deadline',
      { kind: 'slow', body: policyText('enforce', ['a.example']), everyMs: 100 },
      {},
      'sts-policy-fetch-error',
      /no complete answer within 1000 ms/,
    ],
    ['a connection closed without an answer', { kind: 'reset' }, {}, 'sts-policy-fetch-error', /socket hang up|ECONNRESET/],
    [
      'a certificate for another name',
      enforce(),
      { certNames: ['www.elsewhere.test'] },
      'sts-webpki-invalid',
      /certificate of mta-sts\.d\d+\.fetch\.test did not verify/,
    ],
    ['an expired certificate', enforce(), { expired: true }, 'sts-webpki-invalid', /did not verify: certificate has expired/],
    [
      'an invalid policy',
      { kind: 'policy', body: 'version: STSv1\nmode: enforce\nmax_age: 60\n' },
      {},
      'sts-policy-invalid',
      /mode enforce without any mx line/,
    ],
  ];
  it.each(failures)('%s: no policy, the failure recorded', async (_name, behaviour, opts, resultType, reason) => {
    const domain = await site(behaviour, opts);
    const r = await sts({ timeout: 1000 }).lookup(domain);
    expect(r.policy).toBeUndefined();
    expect(r.failure?.resultType).toBe(resultType);
    expect(r.failure?.reason).toMatch(reason);
    expect(r.notes.join(' ')).toMatch(/no policy is cached, so d\d+\.fetch\.test is treated as having no MTA-STS policy/);
  });

  it('a certificate from a CA the fetch does not trust is sts-webpki-invalid', async () => {
    const other = await makePki('another CA');
    try {
      const domain = `d${++n}.fetch.test`;
      txt.set(domain, 'v=STSv1; id=x');
      hosts.set(domain, { cert: await other.leaf([`mta-sts.${domain}`]), behaviour: enforce() });
      const r = await sts().lookup(domain);
      expect(r.failure?.resultType).toBe('sts-webpki-invalid');
      expect(r.failure?.reason).toMatch(/unable to verify|self.signed|local issuer/i);
    } finally {
      other.close();
    }
  });

  it('nothing listening on the policy host: no policy', async () => {
    const domain = `d${++n}.noaddress.test`;
    txt.set(domain, 'v=STSv1; id=x');
    const r = await sts().lookup(domain);
    expect(r.policy).toBeUndefined();
    expect(r.failure).toMatchObject({ resultType: 'sts-policy-fetch-error' });
    expect(r.failure?.reason).toMatch(/mta-sts\.d\d+\.noaddress\.test has no address/);
  });

  it('a domain without a TXT record has no policy and nothing is fetched', async () => {
    const domain = `d${++n}.fetch.test`;
    hosts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: enforce() });
    const r = await sts().lookup(domain);
    expect(r).toMatchObject({ domain, notes: [expect.stringMatching(/no TXT record, so .* has no MTA-STS policy/)] });
    expect(r.policy).toBeUndefined();
    expect(r.failure).toBeUndefined();
    expect(hosts.requests(domain)).toBe(0);
  });
});

describe('the cache (RFC 8461 section 5.1, 8.3, 10.2)', () => {
  it('with a policy cached, every failure to get a live policy applies the cached one', async () => {
    const store = new Keyv();
    const domain = await site(enforce(['mx.cached.test']));
    const s = sts({ store, timeout: 1000 });
    expect((await s.lookup(domain)).policy?.from).toBe('fetched');
    const cases: Array<[string, () => void, RegExp]> = [
      ['the TXT lookup fails', () => failing.add(`_mta-sts.${domain}`), /the TXT lookup of _mta-sts\.d\d+\.fetch\.test failed/],
      ['the TXT record is gone', () => txt.delete(domain), /has no valid MTA-STS record \(no TXT record\)/],
      [
        'a new id whose policy answers 404',
        () => (txt.set(domain, 'v=STSv1; id=id2'), hosts.set(domain, { cert: hostsCert, behaviour: { kind: 'status', status: 404 } })),
        /announces id id2 \(the cached policy has id id1\), but the policy could not be used: fetching it failed: .*HTTP status 404/,
      ],
      [
        'a new id whose certificate is wrong',
        () => (txt.set(domain, 'v=STSv1; id=id3'), hosts.set(domain, { cert: wrongCert, behaviour: enforce(['mx.attacker.test']) })),
        /id id3 .* did not verify/,
      ],
      [
        'a new id whose policy is invalid',
        () => (txt.set(domain, 'v=STSv1; id=id4'), hosts.set(domain, { cert: hostsCert, behaviour: { kind: 'policy', body: 'mode: enforce\n' } })),
        /id id4 .*invalid/,
      ],
    ];
    const hostsCert = await pki.leaf([`mta-sts.${domain}`]);
    const wrongCert = await pki.leaf(['mta-sts.attacker.test']);
    for (const [name, breakIt, note] of cases) {
      failing.clear();
      txt.set(domain, 'v=STSv1; id=id1');
      hosts.set(domain, { cert: hostsCert, behaviour: enforce(['mx.cached.test']) });
      breakIt();
      const r = await s.lookup(domain);
      expect(r.policy, name).toMatchObject({ id: 'id1', mode: 'enforce', mx: ['mx.cached.test'], from: 'cache' });
      expect(r.notes.join(' '), name).toMatch(note);
      expect(r.notes.join(' '), name).toMatch(/the cached policy \(id id1, mode enforce, until .*\) applies \(RFC 8461 section 5\.1\)/);
    }
    failing.clear();
  });

  it('an unchanged id uses the cache without a fetch; a changed id fetches the new policy', async () => {
    const domain = await site(enforce(['mx1.change.test']));
    const s = sts();
    await s.lookup(domain);
    const again = await s.lookup(domain);
    expect(again.policy).toMatchObject({ id: 'id1', from: 'cache' });
    expect(hosts.requests(domain)).toBe(1);
    txt.set(domain, 'v=STSv1; id=id2');
    hosts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: { kind: 'policy', body: policyText('testing', ['mx2.change.test'], 600) } });
    const changed = await s.lookup(domain);
    expect(changed.policy).toMatchObject({ id: 'id2', mode: 'testing', mx: ['mx2.change.test'], maxAge: 600, from: 'fetched' });
    expect(hosts.requests(domain)).toBe(2);
    expect((await s.cached(domain))?.id).toBe('id2');
  });

  it('a failed fetch of an id is not tried again for a few minutes', async () => {
    const domain = await site({ kind: 'status', status: 500 });
    const s = sts();
    expect((await s.lookup(domain)).failure?.resultType).toBe('sts-policy-fetch-error');
    hosts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: enforce() });
    const second = await s.lookup(domain);
    expect(second.policy).toBeUndefined();
    expect(second.notes.join(' ')).toMatch(new RegExp(`failed to fetch less than ${FETCH_RETRY_MS / 60_000} minutes ago`));
    expect(hosts.requests(domain)).toBe(1);
    // A new id is a new policy: fetched at once.
    txt.set(domain, 'v=STSv1; id=fixed');
    expect((await s.lookup(domain)).policy).toMatchObject({ id: 'fixed', from: 'fetched' });
  });

  it('mode none removes the cached policy', async () => {
    const domain = await site(enforce());
    const s = sts();
    await s.lookup(domain);
    txt.set(domain, 'v=STSv1; id=gone');
    hosts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: { kind: 'policy', body: policyText('none', []) } });
    const r = await s.lookup(domain);
    expect(r.policy).toBeUndefined();
    expect(r.notes.join(' ')).toMatch(/has mode none: .* has no MTA-STS policy, and the cached one was removed/);
    expect(await s.cached(domain)).toBeUndefined();
  });

  it('an expired cached policy is not applied', async () => {
    let now = Date.now();
    const domain = await site({ kind: 'policy', body: policyText('enforce', ['mx.short.test'], 60) });
    const s = sts({ now: () => now });
    await s.lookup(domain);
    failing.add(`_mta-sts.${domain}`);
    now += 61_000;
    const r = await s.lookup(domain);
    failing.clear();
    expect(r.policy).toBeUndefined();
    expect(r.notes.join(' ')).toMatch(/no policy is cached/);
  });

  it('an unchanged id extends the cached policy (no fetch), so a policy in use does not expire', async () => {
    let now = Date.now();
    const domain = await site({ kind: 'policy', body: policyText('enforce', ['mx.extend.test'], 100) });
    const s = sts({ now: () => now });
    const first = await s.lookup(domain);
    now += 60_000; // past half of max_age
    const later = await s.lookup(domain);
    expect(later.policy?.expiresAt).toBe(now + 100_000);
    expect(later.policy!.expiresAt).toBeGreaterThan(first.policy!.expiresAt);
    expect(hosts.requests(domain)).toBe(1);
  });

  it('identical concurrent lookups share one fetch', async () => {
    const domain = await site(enforce());
    const s = sts();
    const results = await Promise.all(Array.from({ length: 10 }, () => s.lookup(domain)));
    expect(results.every((r) => r.policy?.id === 'id1')).toBe(true);
    expect(hosts.requests(domain)).toBe(1);
  });

  it('senders sharing one store fetch a new id once between them, success or failure', async () => {
    // A read's answer takes a while to arrive, as over a network, so every sender reads the claim
    // before any sender's write lands: the race the token re-read settles.
    const keyv = new Keyv();
    const store = {
      get: async (key: string) => {
        const value: unknown = await keyv.get(key);
        await new Promise((resolve) => setTimeout(resolve, 20));
        return value;
      },
      set: (key: string, value: unknown, ttl?: number) => keyv.set(key, value, ttl),
      delete: (key: string) => keyv.delete(key),
    } as unknown as Keyv;
    const domain = await site(enforce(['mx.fleet.test']));
    const fleet = Array.from({ length: 4 }, () => sts({ store, timeout: 1000 }));
    const results = await Promise.all(fleet.map((s) => s.lookup(domain)));
    expect(results.map((r) => r.policy?.id)).toEqual(['id1', 'id1', 'id1', 'id1']);
    expect(results.filter((r) => r.fetch).length).toBe(1);
    expect(results.filter((r) => /fetched by another sender sharing the store/.test(r.notes.join(' '))).length).toBe(3);
    expect(hosts.requests(domain)).toBe(1);

    txt.set(domain, 'v=STSv1; id=broken');
    hosts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: { kind: 'status', status: 503 } });
    const failed = await Promise.all(fleet.map((s) => s.lookup(domain)));
    expect(hosts.requests(domain)).toBe(2);
    expect(failed.map((r) => r.policy?.id)).toEqual(['id1', 'id1', 'id1', 'id1']);
    expect(failed.filter((r) => /another sender sharing the store failed to fetch/.test(r.notes.join(' '))).length).toBe(3);
  });

  it("the cache is keyed by recipient domain: one domain's broken policy does not touch another with the same MX hosts", async () => {
    const good = await site(enforce(['mx.shared.test']));
    const broken = await site({ kind: 'policy', body: 'garbage' });
    const s = sts();
    expect((await s.lookup(good)).policy?.mx).toEqual(['mx.shared.test']);
    expect((await s.lookup(broken)).failure?.resultType).toBe('sts-policy-invalid');
    expect((await s.lookup(good)).policy).toMatchObject({ id: 'id1', from: 'cache' });
  });
});
