/**
 * The `{ file }` store (node:sqlite) shared by processes: a process that opens the file while
 * another holds its lock (as when two workers start at once, one switching the journal to WAL)
 * waits for the lock instead of failing with "database is locked".
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openStores } from '../lib/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ntp-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('opening a file another process holds locked waits for the lock, then works', async () => {
  const file = join(dir, 'locked.sqlite');
  // Another process takes the file's exclusive lock (a journal switch takes one) and holds it 400 ms.
  const holder = spawn(
    process.execPath,
    [
      '--no-warnings',
      '-e',
      `const { DatabaseSync } = require('node:sqlite');
       const db = new DatabaseSync(${JSON.stringify(file)});
       db.exec('BEGIN EXCLUSIVE');
       process.stdout.write('locked\\n');
       setTimeout(() => { db.exec('COMMIT'); db.close(); }, 400);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  const stores = openStores({ file });
  await stores.cache.set('k', 'v');
  expect(await stores.cache.get('k')).toBe('v');
  await new Promise((resolve) => holder.once('exit', resolve));
});
