/**
 * The TLS-RPT counter store in a real redis-server, through an ioredis client (test/helpers/redis.ts):
 * the same contract and two-process count as test/tlsrpt-store.test.ts's memory and SQLite rows
 * (test/helpers/tlsrpt-store-cases.ts), and the MTA-STS cache the same client holds. Runs under
 * npm run test:interop.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStores } from '../lib/store/index.js';
import { startRedis, type RedisProcess } from './helpers/redis.js';
import { counterStoreContract, twoProcessesCount } from './helpers/tlsrpt-store-cases.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';

let redis: RedisProcess;
let client: Redis;
let pki: Pki;
let world: World;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.port, '127.0.0.1');
  pki = await makePki('TLS-RPT Redis store test CA');
  world = await makeWorld(
    pki,
    [{ name: 'mx.shared.test', behaviour: 'starttls' }],
    [{ name: 'redis.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 }],
  );
}, 30_000);
afterAll(async () => {
  await client?.quit();
  await Promise.all([redis?.stop(), world?.close()]);
});

describe('the counter store in Redis (ioredis)', () => {
  counterStoreContract(() => ({ redis: client }));
});

describe('the store option', () => {
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

describe('two processes counting into one Redis', () => {
  twoProcessesCount(
    () => ({ world, pki }),
    'redis.test',
    () => ({ redis: redis.port }),
    () => ({ redis: client }),
  );
});
