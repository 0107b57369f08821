/**
 * The TLS-RPT counter stores behind the `store` option (lib/store/counters.ts): the same contract
 * in memory and in a SQLite file (in a real redis-server: test/tlsrpt-store-redis.test.ts, npm
 * run test:interop): counts add up, notes are kept, a claim is taken by exactly one of many,
 * records expire. Then the reason they exist: two processes, each with its own transport, count
 * their sessions into one store concurrently, and one report is built with the sum of the
 * sessions the real SMTP peer saw (test/helpers/tlsrpt-store-cases.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { thrown } from './helpers/thrown.js';
import { counterStoreContract, twoProcessesCount } from './helpers/tlsrpt-store-cases.js';
import { type StoreOption } from '../lib/store/index.js';
import { tlsPolicy, type TlsPolicyOptions } from '../lib/index.js';

let dir: string;
let pki: Pki;
let world: World;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ntp-tlsrpt-store-'));
  pki = await makePki('TLS-RPT store test CA');
  world = await makeWorld(
    pki,
    [{ name: 'mx.shared.test', behaviour: 'starttls' }],
    [{ name: 'file.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 }],
  );
}, 30_000);
afterAll(async () => {
  await world?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => StoreOption | undefined]> = [
  ['memory', () => undefined],
  ['a SQLite file', () => ({ file: join(dir, 'contract.sqlite') })],
];

describe.each(stores)('the counter store in %s', (_name, option) => {
  counterStoreContract(option);
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
});

describe('two processes counting into one SQLite file', () => {
  twoProcessesCount(
    () => ({ world, pki }),
    'file.test',
    () => ({ file: join(dir, 'shared.sqlite') }),
    () => ({ file: join(dir, 'shared.sqlite') }),
  );
});
