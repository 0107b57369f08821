/**
 * The TLS-RPT counter stores behind the `store` option (lib/store/counters.ts): the same contract
 * in memory, in a SQLite file and in a real redis-server (through an ioredis client): counts add
 * up, notes are kept, a claim is taken by exactly one of many, records expire. Then the reason
 * they exist: two processes, each with its own transport, count their sessions into one store
 * concurrently, and one report is built with the sum of the sessions the real SMTP peer saw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { startRedis, type RedisProcess } from './helpers/redis.js';
import { runTsChild } from './helpers/ts-child.js';
import { thrown } from './helpers/thrown.js';
import { tlsrptProblems } from './helpers/tlsrpt-schema.js';
import { openStores, type CounterStore, type StoreOption } from '../lib/store/index.js';
import { tlsPolicy, type TlsPolicyOptions } from '../lib/index.js';
import { utcDay } from '../lib/tlsrpt/index.js';

let redis: RedisProcess;
let client: Redis;
let dir: string;
let pki: Pki;
let world: World;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.port, '127.0.0.1');
  dir = mkdtempSync(join(tmpdir(), 'ntp-tlsrpt-store-'));
  pki = await makePki('TLS-RPT store test CA');
  world = await makeWorld(
    pki,
    [{ name: 'mx.shared.test', behaviour: 'starttls' }],
    [
      { name: 'redis.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 },
      { name: 'file.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 },
    ],
  );
}, 30_000);
afterAll(async () => {
  await client?.quit();
  await Promise.all([redis?.stop(), world?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => StoreOption | undefined]> = [
  ['memory', () => undefined],
  ['a SQLite file', () => ({ file: join(dir, 'contract.sqlite') })],
  ['Redis (ioredis)', () => ({ redis: client })],
];

describe.each(stores)('the counter store in %s', (_name, option) => {
  let store: CounterStore;
  beforeAll(() => {
    store = openStores(option()).counters;
  });
  const bucket = `${utcDay(Date.now())}|${Math.random().toString(36).slice(2)}.test`;

  it('adds concurrent increments without losing one, and keeps the last note', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.add(bucket, 'f1', 1, `note ${i}`)));
    await store.add(bucket, 'f2', 3);
    await store.add(bucket, 'f1', 2, 'last');
    const { counts, notes } = await store.read(bucket);
    expect(Object.fromEntries(counts)).toEqual({ f1: 52, f2: 3 });
    expect(Object.fromEntries(notes)).toEqual({ f1: 'last' });
    expect(await store.buckets()).toContain(bucket);
  });

  it('drops a bucket', async () => {
    await store.drop(bucket);
    expect(Object.fromEntries((await store.read(bucket)).counts)).toEqual({});
    expect(await store.buckets()).not.toContain(bucket);
  });

  it('a claim is taken by exactly one of many at once; only its holder releases it; an expired one can be taken again', async () => {
    const key = `claim-${bucket}`;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claim(key, `t${i}`, 60_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const holder = `t${results.indexOf(true)}`;
    await store.release(key, 'someone else');
    expect(await store.claim(key, 'late', 60_000)).toBe(false);
    await store.release(key, holder);
    expect(await store.claim(key, 'next', 1)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.claim(key, 'after expiry', 60_000)).toBe(true);
  });

  it('keeps records until they expire', async () => {
    await store.setRecord(`r-${bucket}`, { state: 'sent', n: 1 }, 60_000);
    await store.setRecord(`gone-${bucket}`, { state: 'x' }, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.getRecord(`r-${bucket}`)).toEqual({ state: 'sent', n: 1 });
    expect(await store.getRecord(`gone-${bucket}`)).toBeUndefined();
  });
});

describe('the store option', () => {
  it.each([
    [{ redis: {} }, /option store\.redis must be an ioredis \(or iovalkey\) client; the value given has no get, set, del, hgetall/],
    [{ redis: null }, /option store\.redis must be an ioredis/],
    [{ file: join(dir ?? tmpdir(), 'no-such-dir', 'x.sqlite') }, /option store: the file .* cannot be opened as SQLite/],
  ])('%j is refused', (store, message) => {
    const error = thrown(() => tlsPolicy({ store } as TlsPolicyOptions)) as Error;
    expect(error).toMatchObject({ code: 'ECONFIG', temporary: false });
    expect(error.message).toMatch(message);
  });

  it('{ redis } also holds the MTA-STS cache, under the library prefix; clearing it leaves the counters', async () => {
    const { cache } = openStores({ redis: client });
    await cache.set('probe-key', { a: 1 }, 60_000);
    expect(await cache.get('probe-key')).toEqual({ a: 1 });
    expect(await client.keys('*probe-key')).toEqual(['nodemailer-tls-policy:probe-key']);
    await cache.delete('probe-key');
    expect(await cache.get('probe-key')).toBeUndefined();
    // clearing the cache leaves the counters alone
    const { counters } = openStores({ redis: client });
    await counters.add('2000-01-01|keep.test', 'f', 1);
    await cache.set('gone-key', 1);
    await (cache as unknown as { clear(): Promise<void> }).clear();
    expect(await cache.get('gone-key')).toBeUndefined();
    expect(Object.fromEntries((await counters.read('2000-01-01|keep.test')).counts)).toEqual({ f: 1 });
    await counters.drop('2000-01-01|keep.test');
  });
});

/** `count` sessions from a process of its own, into `store`. */
function sendFrom(store: { redis: number } | { file: string }, to: string, count: number): Promise<{ accepted: number }> {
  const args = { dns: world.dns.server, port: world.port, caFile: pki.caFile, to, count, store };
  return runTsChild<{ accepted: number }>('tlsrpt-sender.ts', args, 60_000);
}

describe.each([
  ['one Redis', 'redis.test', () => ({ redis: redis.port }), () => ({ redis: client })],
  ['one SQLite file', 'file.test', () => ({ file: join(dir, 'shared.sqlite') }), () => ({ file: join(dir, 'shared.sqlite') })],
] as const)('two processes counting into %s', (_name, domain, childStore, ownStore) => {
  it('count every session once: one report with the sum of both, as the SMTP peer saw them', async () => {
    const peer = world.peers.get('mx.shared.test')!;
    const before = peer.connections;
    const first = utcDay(Date.now());
    const [a, b] = await Promise.all([sendFrom(childStore(), `u@${domain}`, 7), sendFrom(childStore(), `u@${domain}`, 5)]);
    const last = utcDay(Date.now());
    expect(a.accepted + b.accepted).toBe(12);
    expect(peer.connections - before).toBe(12);
    const reader = tlsPolicy({ store: ownStore(), tlsRpt: { organization: 'Reader', contact: 'r@origin.test' } });
    try {
      const days = first === last ? [first] : [first, last];
      const reports = (await Promise.all(days.map((day) => reader.tlsReports.build(domain, day)))).filter((r) => r !== undefined);
      // One report (two when the sends crossed midnight UTC), with the sum of both processes' sessions.
      for (const report of reports) expect(tlsrptProblems(report)).toEqual([]);
      const policies = reports.flatMap((r) => r.policies);
      expect(policies.map((p) => p.policy)).toEqual(days.map(() => ({ 'policy-type': 'no-policy-found', 'policy-domain': domain })).slice(0, policies.length));
      expect(policies.reduce((n, p) => n + p.summary['total-successful-session-count'], 0)).toBe(12);
      expect(policies.reduce((n, p) => n + p.summary['total-failure-session-count'], 0)).toBe(0);
    } finally {
      reader.close();
    }
  }, 120_000);
});
