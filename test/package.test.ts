/**
 * The package as it is published: `npm run build` once, then the ESM and CommonJS builds, the
 * "exports" map seen from outside the repository, the .d.ts files, what `npm pack` would ship,
 * the version, and the demo (which runs the built package against local servers).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../lib/version.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (...parts: string[]) => join(root, ...parts);
const pkg = JSON.parse(readFileSync(at('package.json'), 'utf8')) as {
  name: string;
  version: string;
  main: string;
  module: string;
  types: string;
  exports: Record<string, Record<string, Record<string, string>> | string>;
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its exit code and output (never rejects on a non-zero exit). */
function run(file: string, args: string[], options: { cwd?: string; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd ?? root, timeout: options.timeout ?? 20_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(Object.assign(error, { stdout, stderr }));
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** The same Node as this test, with an inline script. */
function node(args: string[], cwd?: string): Promise<Run> {
  return run(process.execPath, args, cwd ? { cwd } : {});
}

const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

let outside: string;

beforeAll(async () => {
  const build = await run('npm', ['run', 'build'], { timeout: 60_000 });
  expect(build.code, show(build)).toBe(0);
  // A directory outside the repository where the package is installed (as a symlink).
  outside = mkdtempSync(join(tmpdir(), 'ntp-package-'));
  mkdirSync(join(outside, 'node_modules'));
  symlinkSync(root, join(outside, 'node_modules', pkg.name), 'dir');
}, 60_000);

afterAll(() => {
  if (outside) rmSync(outside, { recursive: true, force: true });
});

type Api = { tlsPolicy: unknown; TlsPolicyError: unknown; LEVELS: unknown; VERSION: unknown };

function checkApi(api: Api): void {
  expect(typeof api.tlsPolicy).toBe('function');
  expect(typeof api.TlsPolicyError).toBe('function');
  const TlsPolicyError = api.TlsPolicyError as new (message: string, code: string, temporary: boolean) => Error & { code: string };
  const error = new TlsPolicyError('x', 'ETLS', true);
  expect(error).toBeInstanceOf(Error);
  expect(error.code).toBe('ETLS');
  expect(api.LEVELS).toEqual(['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure']);
  expect(api.VERSION).toBe(pkg.version);
  // A transport can be made (no network: only the options are checked).
  const transport = (api.tlsPolicy as (o: object) => { name: string; version: string })({ level: 'verify', resolver: { servers: ['127.0.0.1:53'] } });
  expect(transport.name).toBe('TLSPolicy');
  expect(transport.version).toBe(pkg.version);
}

describe('built package', () => {
  it('dist/esm/index.js (ES module) exposes tlsPolicy, TlsPolicyError, LEVELS', async () => {
    // A computed specifier: typechecking must not need dist/ (npm test typechecks before any build).
    const api = (await import(/* @vite-ignore */ pathToFileURL(at('dist/esm/index.js')).href)) as Api;
    checkApi(api);
  });

  it('dist/cjs/index.js (CommonJS, through require) exposes the same', () => {
    const require = createRequire(import.meta.url);
    const api = require(at('dist/cjs/index.js')) as Api;
    checkApi(api);
    expect(readFileSync(at('dist/cjs/index.js'), 'utf8')).not.toMatch(/^\s*(import|export)\s/m);
  });

  it('both builds run under plain Node (no test runner in between)', async () => {
    const script = `
      const cjs = require('./dist/cjs/index.js');
      import('./dist/esm/index.js').then((esm) => {
        console.log(JSON.stringify({ cjs: Object.keys(cjs).sort(), esm: Object.keys(esm).sort() }));
      });`;
    const r = await node(['-e', script]);
    expect(r.code, show(r)).toBe(0);
    const { cjs, esm } = JSON.parse(r.stdout) as { cjs: string[]; esm: string[] };
    expect(esm).toEqual(expect.arrayContaining(['tlsPolicy', 'TlsPolicyError', 'LEVELS', 'VERSION']));
    expect(cjs).toEqual(esm);
  });

  it('"exports" resolves for require and import from outside the repository', async () => {
    const cjs = await node(
      ['-e', `const m = require('${pkg.name}'); console.log(JSON.stringify({ file: require.resolve('${pkg.name}'), tlsPolicy: typeof m.tlsPolicy, levels: m.LEVELS, version: m.VERSION, pkg: require('${pkg.name}/package.json').version }))`],
      outside,
    );
    expect(cjs.code, show(cjs)).toBe(0);
    const c = JSON.parse(cjs.stdout) as { file: string; tlsPolicy: string; levels: string[]; version: string; pkg: string };
    expect(c.file).toBe(at('dist/cjs/index.js'));
    expect(c).toMatchObject({ tlsPolicy: 'function', version: pkg.version, pkg: pkg.version });
    expect(c.levels).toContain('verify');

    const esm = await node(
      [
        '--input-type=module',
        '-e',
        `const m = await import('${pkg.name}'); console.log(JSON.stringify({ file: import.meta.resolve('${pkg.name}'), tlsPolicy: typeof m.tlsPolicy, levels: m.LEVELS, version: m.VERSION }))`,
      ],
      outside,
    );
    expect(esm.code, show(esm)).toBe(0);
    const e = JSON.parse(esm.stdout) as { file: string; tlsPolicy: string; levels: string[]; version: string };
    expect(fileURLToPath(e.file)).toBe(at('dist/esm/index.js'));
    expect(e).toMatchObject({ tlsPolicy: 'function', version: pkg.version });
    expect(e.levels).toEqual(c.levels);

    // Anything not exported stays private.
    const deep = await node(['-e', `require('${pkg.name}/dist/cjs/transport.js')`], outside);
    expect(deep.code).not.toBe(0);
    expect(deep.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('every file package.json points at exists, .d.ts files included', () => {
    const dot = pkg.exports['.'] as Record<string, Record<string, string>>;
    const targets = [pkg.main, pkg.module, pkg.types, dot.import!.types!, dot.import!.default!, dot.require!.types!, dot.require!.default!];
    for (const target of targets) expect(existsSync(at(target)), target).toBe(true);
    expect(dot.import!.types).toBe('./dist/esm/index.d.ts');
    expect(dot.require!.types).toBe('./dist/cjs/index.d.ts');
    for (const flavour of ['esm', 'cjs']) {
      const dts = readFileSync(at('dist', flavour, 'index.d.ts'), 'utf8');
      expect(dts).toContain('tlsPolicy');
      expect(existsSync(at('dist', flavour, 'transport.d.ts'))).toBe(true);
    }
    // dist/cjs is read as CommonJS although the package is "type": "module".
    expect(JSON.parse(readFileSync(at('dist/cjs/package.json'), 'utf8'))).toEqual({ type: 'commonjs' });
  });

  it('npm pack ships dist, README.md and package.json, and no sources, tests, bench or demo', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts']);
    expect(r.code, show(r)).toBe(0);
    const [packed] = JSON.parse(r.stdout) as Array<{ name: string; version: string; files: Array<{ path: string }> }>;
    expect(packed).toMatchObject({ name: pkg.name, version: pkg.version });
    const files = packed!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/esm/index.js', 'dist/cjs/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.d.ts']));
    const unwanted = files.filter(
      (f) => /^(test|bench|demo|lib|scripts|\.ci)\//.test(f) || (/\.(ts|mts|cts)$/.test(f) && !/\.d\.(ts|mts|cts)$/.test(f)) || /^tsconfig|^vitest\.config/.test(f),
    );
    expect(unwanted).toEqual([]);
  });

  it("lib/version.ts's VERSION is package.json's version", () => {
    expect(VERSION).toBe(pkg.version);
  });

  it('the demo runs: exit 0, a Verified delivery and an encrypt deferral for a missing STARTTLS', async () => {
    const started = Date.now();
    const r = await run(process.execPath, [at('demo/demo.mjs')], { timeout: 25_000 });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('auth=Verified');
    expect(r.stdout).toMatch(/error ETLS \(temporary\): .*encrypt.*offered no STARTTLS/);
    expect(r.stdout).toMatch(/level=encrypt, policy=verify, .*fallback_reason=/);
    expect(r.stderr).toBe('');
    // It removed its certificates.
    const ca = /test CA (\S+)/.exec(r.stdout)?.[1];
    expect(ca).toBeDefined();
    expect(existsSync(dirname(ca!))).toBe(false);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
