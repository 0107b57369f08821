/**
 * The MTA-STS cache outlives one process (RFC 8461 section 5.1's downgrade resistance): a policy
 * one process fetched is enforced by another, through a SQLite file (`store: { file }`) across a
 * restart, while an attacker has moved the MX to a host of their own and blocks the TXT record
 * and the policy host. A process with an empty cache is the control: it delivers to the attacker,
 * so the test can fail. The same through a real redis-server: test/mtasts-store-redis.test.ts
 * (npm run test:interop); the steps are test/helpers/mtasts-store-cases.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { cachedPolicyAcrossProcesses } from './helpers/mtasts-store-cases.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ntp-sts-store-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a SQLite file, across a restart', () => {
  cachedPolicyAcrossProcesses('file.test', () => ({ file: join(dir, 'sts.sqlite') }));
});
