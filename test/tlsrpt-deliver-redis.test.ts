/**
 * TLS reports from a fleet sharing a real redis-server (test/helpers/redis.ts): four workers
 * sending at once deliver a domain's report once to a real HTTPS collector, as with the SQLite
 * file in test/tlsrpt-deliver.test.ts (test/helpers/tlsrpt-fleet.ts). Runs under npm run
 * test:interop.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startRedis, type RedisProcess } from './helpers/redis.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { startCollector, type Collector } from './helpers/tlsrpt-collector.js';
import { fleetDeliversOnce } from './helpers/tlsrpt-fleet.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';

let pki: Pki;
let world: World;
let collector: Collector;
let redis: RedisProcess;
let client: Redis;

beforeAll(async () => {
  pki = await makePki('TLS-RPT Redis delivery test CA');
  collector = await startCollector(loopbackBlock()(2), await pki.leaf(['collector.test']));
  redis = await startRedis();
  client = new Redis(redis.port, '127.0.0.1');
  world = await makeWorld(
    pki,
    [{ name: 'mx.clear.test', behaviour: 'no-starttls' }],
    [
      { name: 'collector.test', type: 'A', address: collector.address },
      { name: 'fleet-redis.test', type: 'MX', exchange: 'mx.clear.test', preference: 10 },
      { name: '_smtp._tls.fleet-redis.test', type: 'TXT', text: `v=TLSRPTv1; rua=https://collector.test:${collector.port}/fleet-redis.test` },
    ],
  );
}, 30_000);
afterAll(async () => {
  await client?.quit();
  await Promise.all([world?.close(), collector?.close(), redis?.stop()]);
});

describe('once per domain and day, with many workers sharing the store', () => {
  it('Redis: four workers sending at once deliver the report once', async () => {
    await fleetDeliversOnce({ world, pki, collector }, 'fleet-redis.test', { redis: client });
  });
});
