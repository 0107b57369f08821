/**
 * The split between `npm test` (Node and npm only) and `npm run test:interop` (real unbound, nsd,
 * ldns tools and redis-server): every test file runs under exactly one of the two, and no file of
 * `npm test` starts one of those programs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INTEROP_TESTS } from './setup/suites.js';
import plain from '../vitest.config.js';
import interop from '../vitest.interop.config.js';

const root = new URL('../', import.meta.url);
const files = readdirSync(new URL('test/', root))
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => `test/${f}`);
const source = (file: string) => readFileSync(new URL(file, root), 'utf8');
/** What starts a system program in the tests: the helpers that spawn them. */
const SYSTEM_HELPERS = /from '\.\/helpers\/(dnssec|redis)\.js'/;

describe('npm test and npm run test:interop', () => {
  it('the interop list names existing test files, each once', () => {
    expect(new Set(INTEROP_TESTS).size).toBe(INTEROP_TESTS.length);
    for (const f of INTEROP_TESTS) expect(files).toContain(f);
  });

  it('npm test excludes exactly the interop files; the interop config includes exactly them', () => {
    expect(plain.test?.include).toEqual(['test/**/*.test.ts']);
    expect(plain.test?.exclude).toEqual([...INTEROP_TESTS, '**/node_modules/**']);
    expect(interop.test?.include).toEqual(INTEROP_TESTS);
    expect(plain.test?.globalSetup).toBeUndefined();
    expect(interop.test?.globalSetup).toEqual(['test/setup/requirements.ts']);
  });

  it.each(files.filter((f) => !INTEROP_TESTS.includes(f)))('%s (npm test) starts no unbound, nsd, ldns tool or redis-server', (file) => {
    expect(source(file)).not.toMatch(SYSTEM_HELPERS);
  });

  it.each(INTEROP_TESTS)('%s (npm run test:interop) runs one of them', (file) => {
    expect(source(file)).toMatch(SYSTEM_HELPERS);
  });
});
