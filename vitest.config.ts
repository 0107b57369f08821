import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { INTEROP_TESTS } from './test/setup/suites.js';

/**
 * `npm test`: every test file but those of `npm run test:interop` (vitest.interop.config.ts), so
 * that it passes on a machine with Node and npm only.
 */
export default defineConfig({
  resolve: {
    // The examples import the library by its package name, as an app does; the tests run them
    // against the source (tsconfig.json's `paths` says the same to tsc).
    alias: [{ find: /^nodemailer-tls-policy$/, replacement: fileURLToPath(new URL('./lib/index.ts', import.meta.url)) }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...INTEROP_TESTS, '**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
