/**
 * Before the tests of `npm run test:interop` (test/setup/suites.ts): the system tools they run
 * themselves are there (unbound, nsd, ldnsutils for the DNSSEC interop tests; redis-server for
 * the shared-store tests), or the run stops at once
 * with one line that says what to install, instead of failing after a minute inside many test
 * files. The tests are never skipped.
 */
import { accessSync, constants } from 'node:fs';
import { missingDnssecTools } from '../helpers/dnssec.js';

/** test/bullmq-retry.test.ts starts this redis-server on a loopback port of its own. */
const REDIS_SERVER = { name: 'redis-server', pkg: 'redis-server', path: '/usr/bin/redis-server' };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export default function setup(): void {
  const missing = [...missingDnssecTools(), ...(executable(REDIS_SERVER.path) ? [] : [REDIS_SERVER])];
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((m) => m.pkg))].join(' ');
  throw new Error(
    `npm run test:interop needs ${missing.map((m) => m.name).join(', ')}: install them first (Debian: apt-get install -y ${packages}); .ci/run does this itself`,
  );
}
