/**
 * `nodemailer-tls-policy tls-reports --redis URL` over a real redis-server (test/helpers/redis.ts)
 * that transports counted into: the same sessions and the same report as the SQLite row of
 * test/cli.test.ts (test/helpers/tls-reports-seed.ts). Runs under npm run test:interop.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startRedis, type RedisProcess } from './helpers/redis.js';
import { expectPendingReports, seed } from './helpers/tls-reports-seed.js';

let redis: RedisProcess;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.port, '127.0.0.1');
  await seed({ redis: client });
}, 30_000);

afterAll(async () => {
  await client?.quit();
  await redis?.stop();
});

describe('tls-reports --redis', () => {
  it('the reports of ended days with a failure, due or being retried with the reason; not today, not a day without a failure', async () => {
    await expectPendingReports(['--redis', `redis://127.0.0.1:${redis.port}`], `Redis redis://127.0.0.1:${redis.port}`);
  });
});
