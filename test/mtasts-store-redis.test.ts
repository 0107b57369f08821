/**
 * The MTA-STS cache shared by two processes through a real redis-server (Keyv's @keyv/redis
 * store; test/helpers/redis.ts): the steps of test/mtasts-store.test.ts
 * (test/helpers/mtasts-store-cases.ts). Runs under npm run test:interop.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { cachedPolicyAcrossProcesses } from './helpers/mtasts-store-cases.js';
import { startRedis, type RedisProcess } from './helpers/redis.js';

let redis: RedisProcess;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});

describe('a Redis store shared by two processes', () => {
  cachedPolicyAcrossProcesses('redis.test', () => ({ redis: redis.port }));
});
