import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';
import { INTEROP_TESTS } from './test/setup/suites.js';

/**
 * `npm run test:interop`: the test files that run real unbound, nsd, the ldns tools or
 * redis-server (test/setup/suites.ts); .ci/run installs them with apt-get. The same settings as
 * `npm test`'s (vitest.config.ts) but for the files run.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: INTEROP_TESTS,
    exclude: ['**/node_modules/**'],
    // Stops at once, with one line, when the system programs these files run are missing.
    globalSetup: ['test/setup/requirements.ts'],
  },
});
