import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // The examples import the library by its package name, as an app does; the tests run them
    // against the source (tsconfig.json's `paths` says the same to tsc).
    alias: [{ find: /^nodemailer-tls-policy$/, replacement: fileURLToPath(new URL('./lib/index.ts', import.meta.url)) }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Stops at once, with one line, when the DNSSEC tests' system tools are missing.
    globalSetup: ['test/setup/requirements.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
