/**
 * The package as it is published: `npm run build` once, then the ESM and CommonJS builds, the
 * "exports" map seen from outside the repository, the .d.ts files, what `npm pack` would ship
 * (.npmignore alone decides it), the version, and the demo (which runs the built package against
 * local servers). Then the way an app gets it: a copy of the repository without dist/ (as a
 * fresh clone is) is packed with `npm pack` (its prepare script builds), the tarball is installed
 * into a scratch project and imported from ES modules and CommonJS. Last, the closing line
 * .ci/run prints (scripts/test-summary.mjs) for passing, failing and missing test reports.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
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
function run(file: string, args: string[], options: { cwd?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = options.env ?? process.env;
    execFile(file, args, { cwd: options.cwd ?? root, timeout: options.timeout ?? 20_000, maxBuffer: 16 * 1024 * 1024, env }, (error, stdout, stderr) => {
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

/** The one entry of `npm pack --json` output (scripts print to stderr under --json). */
function packList(stdout: string): { name: string; version: string; filename: string; files: string[] } {
  const [packed] = JSON.parse(stdout) as Array<{ name: string; version: string; filename: string; files: Array<{ path: string }> }>;
  expect(packed).toBeDefined();
  return { ...packed!, files: packed!.files.map((f) => f.path).sort() };
}

/** Every lib/ module, as its path under lib/ without ".ts" (e.g. "dns/wire"). */
function libModules(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) out.push(relative(at('lib'), path).split(sep).join('/').replace(/\.ts$/, ''));
    }
  };
  walk(at('lib'));
  return out.sort();
}

/**
 * The tarball's file list, exactly: each of the fixed files, every docs/*.md, and for each lib/
 * module its .js and .d.ts in dist/esm and dist/cjs (and dist/cjs/package.json); anything else
 * (a source, a test, a config file, a map, a stray build) fails.
 */
function checkShipped(files: string[]): void {
  const fixed = ['LICENSE', 'README.md', 'bin/nodemailer-tls-policy.mjs', 'dist/cjs/package.json', 'package.json'];
  const docs = readdirSync(at('docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
  expect(docs.length).toBeGreaterThan(0);
  const built = libModules().flatMap((m) => ['esm', 'cjs'].flatMap((flavour) => [`dist/${flavour}/${m}.js`, `dist/${flavour}/${m}.d.ts`]));
  expect(built).toContain('dist/esm/index.js');
  expect(files).toEqual([...fixed, ...docs, ...built].sort());
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
      [
        '-e',
        `const m = require('${pkg.name}'); console.log(JSON.stringify({ file: require.resolve('${pkg.name}'), tlsPolicy: typeof m.tlsPolicy, levels: m.LEVELS, version: m.VERSION, pkg: require('${pkg.name}/package.json').version }))`,
      ],
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

  it('npm pack ships exactly dist/ (built from every lib/ module), bin/, docs/, README.md, LICENSE and package.json', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts']);
    expect(r.code, show(r)).toBe(0);
    const packed = packList(r.stdout);
    expect(packed).toMatchObject({ name: pkg.name, version: pkg.version });
    checkShipped(packed.files);
    // With "files" in package.json, npm would not let the top-level .npmignore override it.
    expect(pkg).not.toHaveProperty('files');
  });

  it('ships no source maps, and no built file names one (lib/, which maps would point into, is not shipped)', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts']);
    expect(r.code, show(r)).toBe(0);
    const files = packList(r.stdout).files;
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    const built = files.filter((f) => /\.(js|d\.ts)$/.test(f) && f.startsWith('dist/'));
    expect(built.length).toBeGreaterThan(10);
    expect(built.filter((f) => readFileSync(at(f), 'utf8').includes('sourceMappingURL'))).toEqual([]);
    expect(files.some((f) => f.startsWith('lib/'))).toBe(false);
  });

  it("lib/version.ts's VERSION is package.json's version", () => {
    expect(VERSION).toBe(pkg.version);
  });

  it('the demo runs: exit 0, a Verified delivery and an encrypt deferral for a missing STARTTLS', async () => {
    const r = await run(process.execPath, [at('demo/demo.mjs')], { timeout: 25_000 });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('auth=Verified');
    expect(r.stdout).toMatch(/error ETLS \(temporary\): .*encrypt.*offered no STARTTLS/);
    expect(r.stdout).toMatch(/level=encrypt, policy=verify, .*fallback_reason=/);
    // DANE: Verified by a TLSA record; a TLSA mismatch deferred. MTA-STS: delivered at secure; an MX outside the policy deferred.
    expect(r.stdout).toMatch(/relay=mx\.dane\.example\[[^\n]*auth=Verified, level=dane/);
    expect(r.stdout).toMatch(/error ETLS \(temporary\): badtlsa\.example: .*TLSA 3 1 1 .* matched no certificate/);
    expect(r.stdout).toMatch(/relay=mx\.sts\.example\[[^\n]*auth=Verified, level=secure/);
    expect(r.stdout).toMatch(/error ETLS \(temporary\): stsrogue\.example: .*matches no mx pattern of the MTA-STS policy/);
    expect(r.stdout).toMatch(/mx\.badtlsa\.example 0, .*mx\.stsrogue\.example 0/);
    expect(r.stderr).toBe('');
    // It removed its certificates.
    const ca = /test CA (\S+)/.exec(r.stdout)?.[1];
    expect(ca).toBeDefined();
    expect(existsSync(dirname(ca!))).toBe(false);
  });
});

/** What a fresh clone has: everything but .git and what .gitignore keeps out (dist/ among it). */
const NOT_IN_A_CLONE = new Set(['.git', 'node_modules', 'dist', 'coverage', '.tmp']);

describe('an app installs the package from a clean checkout', () => {
  let scratch: string;
  let tarball: string;
  let packedFiles: string[];

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'ntp-install-'));
    const checkout = join(scratch, 'checkout');
    cpSync(root, checkout, {
      recursive: true,
      filter: (source) => {
        const path = relative(root, source);
        return !NOT_IN_A_CLONE.has(path.split(sep)[0]!) && !path.endsWith('.tgz') && path !== join('bench', 'results', 'latest.json');
      },
    });
    expect(existsSync(join(checkout, 'dist'))).toBe(false);
    expect(existsSync(join(checkout, 'lib', 'index.ts'))).toBe(true);
    // The devDependencies the build needs, as `npm ci` (or npm's own install of a git dependency) provides them.
    symlinkSync(at('node_modules'), join(checkout, 'node_modules'), 'dir');
    mkdirSync(join(scratch, 'out'));
    // With scripts: `npm pack` runs prepare, which builds dist/.
    const pack = await run('npm', ['pack', '--json', '--pack-destination', join(scratch, 'out')], { cwd: checkout, timeout: 120_000 });
    expect(pack.code, show(pack)).toBe(0);
    const packed = packList(pack.stdout);
    packedFiles = packed.files;
    tarball = join(scratch, 'out', packed.filename);
    expect(existsSync(tarball)).toBe(true);

    const app = join(scratch, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ntp-scratch-app', version: '1.0.0', private: true }, null, 2));
    // nodemailer comes from npm's cache (filled by `npm ci`); the registry is asked only for what the cache lacks.
    const install = await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app, timeout: 120_000 });
    expect(install.code, show(install)).toBe(0);
  }, 240_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('npm pack from a checkout without dist/ ships the same complete file list', () => {
    checkShipped(packedFiles);
  });

  const app = () => join(scratch, 'app');
  const installed = () => join(app(), 'node_modules', pkg.name);

  it('the installed package is the tarball (not a link to the repository), with its dependency nodemailer beside it', () => {
    expect(readFileSync(join(installed(), 'package.json'), 'utf8')).toBe(readFileSync(at('package.json'), 'utf8'));
    expect(existsSync(join(installed(), 'lib'))).toBe(false);
    expect(existsSync(join(installed(), 'dist', 'esm', 'index.js'))).toBe(true);
    expect(existsSync(join(app(), 'node_modules', 'nodemailer', 'package.json'))).toBe(true);
  });

  /**
   * One program per way an app loads the package. Each prints the resolved entry file, the
   * export names, and what tlsPolicy() made once handed to nodemailer.createTransport().
   * (A TypeScript consumer, compiled with tsc against the installed .d.ts, joins this table.)
   */
  const consumers: Array<{ name: string; file: string; entry: string; source: string }> = [
    {
      name: 'ES module (import)',
      file: 'consumer.mjs',
      entry: 'dist/esm/index.js',
      source: `
        import nodemailer from 'nodemailer';
        import * as api from '${pkg.name}';
        const transport = nodemailer.createTransport(api.tlsPolicy({ level: 'verify', resolver: { servers: ['127.0.0.1:53'] } }));
        console.log(JSON.stringify({ entry: import.meta.resolve('${pkg.name}'), exports: Object.keys(api).sort(), name: transport.transporter.name, version: api.VERSION, levels: api.LEVELS, error: new api.TlsPolicyError('x', 'ETLS', true) instanceof Error }));
      `,
    },
    {
      name: 'CommonJS (require)',
      file: 'consumer.cjs',
      entry: 'dist/cjs/index.js',
      source: `
        const nodemailer = require('nodemailer');
        const api = require('${pkg.name}');
        const transport = nodemailer.createTransport(api.tlsPolicy({ level: 'verify', resolver: { servers: ['127.0.0.1:53'] } }));
        console.log(JSON.stringify({ entry: require('node:url').pathToFileURL(require.resolve('${pkg.name}')).href, exports: Object.keys(api).sort(), name: transport.transporter.name, version: api.VERSION, levels: api.LEVELS, error: new api.TlsPolicyError('x', 'ETLS', true) instanceof Error }));
      `,
    },
  ];

  for (const consumer of consumers) {
    it(`an app loads it as ${consumer.name}: the built entry, the exports, a transport from tlsPolicy()`, async () => {
      writeFileSync(join(app(), consumer.file), consumer.source);
      const r = await node([consumer.file], app());
      expect(r.code, show(r)).toBe(0);
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { entry: string; exports: string[]; name: string; version: string; levels: string[]; error: boolean };
      expect(fileURLToPath(out.entry)).toBe(join(installed(), consumer.entry));
      expect(out.exports).toEqual(expect.arrayContaining(['tlsPolicy', 'TlsPolicyError', 'LEVELS', 'VERSION']));
      expect(out).toMatchObject({ name: 'TLSPolicy', version: pkg.version, error: true });
      expect(out.levels).toEqual(['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure']);
    });
  }

  it('both ways see the same export names', async () => {
    const names = await Promise.all(
      consumers.map(async (consumer) => {
        writeFileSync(join(app(), consumer.file), consumer.source);
        const r = await node([consumer.file], app());
        expect(r.code, show(r)).toBe(0);
        return (JSON.parse(r.stdout) as { exports: string[] }).exports;
      }),
    );
    expect(names[1]).toEqual(names[0]);
  });

  /**
   * TypeScript users write the README's code with @types/nodemailer and no casts: tsc (strict)
   * compiles it against the installed .d.ts files, both as an ES module (.mts, the "import"
   * types) and as CommonJS (.cts, the "require" types); sendMail resolves to TlsPolicySentInfo
   * and takes queuedAt; the transport is an EventEmitter.
   */
  it.each([
    ['ES module', 'consumer-types.mts'],
    ['CommonJS', 'consumer-types.cts'],
  ])('a TypeScript app (%s) compiles the README usage without casts', async (_kind, file) => {
    mkdirSync(join(app(), 'node_modules', '@types'), { recursive: true });
    const nodeTypes = join(app(), 'node_modules', '@types', 'node');
    if (!existsSync(nodeTypes)) symlinkSync(at('node_modules', '@types', 'node'), nodeTypes, 'dir');
    writeFileSync(
      join(app(), file),
      `import nodemailer from 'nodemailer';
import { tlsPolicy, TlsPolicyError, type TlsPolicySentInfo } from '${pkg.name}';

const transport = nodemailer.createTransport(
  tlsPolicy({ level: 'may', policy: 'example.com secure match=.example.com fallback=none\\n', fallbackLevels: 'verify=encrypt' }),
);
transport.on('idle', () => undefined);

export async function send(firstAttemptAt: Date): Promise<string[]> {
  try {
    const info = await transport.sendMail({ from: 'me@my.example', to: 'you@example.com', subject: 'hi', text: 'hello', queuedAt: firstAttemptAt });
    const typed: TlsPolicySentInfo = info;
    return [...typed.pending, info.deliveries[0]?.attempts[0]?.auditLine ?? ''];
  } catch (error) {
    if (error instanceof TlsPolicyError) return error.pending;
    throw error;
  }
}
`,
    );
    writeFileSync(
      join(app(), 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          types: ['node'],
          skipLibCheck: false,
        },
        files: [file],
      }),
    );
    const tsc = join(dirname(createRequire(import.meta.url).resolve('@typescript/native/package.json')), 'bin', 'tsc');
    const r = await node([tsc, '-p', 'tsconfig.json', '--pretty', 'false'], app());
    expect(r.code, show(r)).toBe(0);
  });

  it('the command is installed in node_modules/.bin and runs from the tarball (--version)', async () => {
    const r = await node([join(app(), 'node_modules', '.bin', 'nodemailer-tls-policy'), '--version'], app());
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(pkg.version);
  });
});

describe(".ci/run's closing line (scripts/test-summary.mjs)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ntp-summary-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const summary = (file: string) => node([at('scripts/test-summary.mjs'), file], dir);
  const report = (fields: object) => ({ numTotalTests: 0, numPendingTests: 0, numTodoTests: 0, testResults: [], ...fields });

  // One row per outcome: the report's content (undefined: no file), the lines printed, the exit status.
  const cases: Array<{ name: string; content: string | undefined; lines: Array<string | RegExp>; code: number }> = [
    { name: 'a passing run', content: JSON.stringify(report({ numPassedTests: 5, numFailedTests: 0, success: true })), lines: ['5 passed, 0 failed'], code: 0 },
    {
      name: 'failing tests',
      content: JSON.stringify(report({ numPassedTests: 3, numFailedTests: 2, success: false })),
      lines: ['3 passed, 2 failed'],
      code: 1,
    },
    {
      name: 'skipped and todo tests',
      content: JSON.stringify(report({ numPassedTests: 3, numFailedTests: 0, numPendingTests: 1, numTodoTests: 1, success: true })),
      lines: ['3 passed, 0 failed', '2 skipped or todo'],
      code: 0,
    },
    {
      name: 'a test file that failed before its tests ran',
      content: JSON.stringify(
        report({
          numPassedTests: 4,
          numFailedTests: 0,
          success: false,
          testResults: [
            { name: '/x/test/ok.test.ts', status: 'passed', assertionResults: [{ status: 'passed' }] },
            { name: 'test/broken.test.ts', status: 'failed', message: 'Cannot find module', assertionResults: [] },
          ],
        }),
      ),
      lines: ['4 passed, 0 failed', '1 test file(s) failed outside their tests: test/broken.test.ts'],
      code: 1,
    },
    {
      name: 'an error outside any test',
      content: JSON.stringify(report({ numPassedTests: 4, numFailedTests: 0, success: false })),
      lines: ['4 passed, 0 failed', /^vitest reported the run as failed although no test failed/],
      code: 1,
    },
    {
      name: 'no report (the typecheck failed first)',
      content: undefined,
      lines: [/^no test summary: the test report report\.json is missing, so the tests did not run to the end \(npm test typechecks first/],
      code: 1,
    },
    { name: 'a report cut short', content: '{"numPassedTests": 4, "numF', lines: [/^no test summary: the test report report\.json is not JSON \(/], code: 1 },
    {
      name: 'JSON that is not a vitest report',
      content: '{"passed": 4}',
      lines: [/^no test summary: the test report report\.json is not a vitest JSON report/],
      code: 1,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.lines.map(String).join(' / ')} (exit ${c.code})`, async () => {
      rmSync(join(dir, 'report.json'), { force: true });
      if (c.content !== undefined) writeFileSync(join(dir, 'report.json'), c.content);
      const r = await summary('report.json');
      expect(r.code, show(r)).toBe(c.code);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(c.lines.length);
      c.lines.forEach((line, i) => (typeof line === 'string' ? expect(lines[i]).toBe(line) : expect(lines[i]).toMatch(line)));
    });
  }

  it("reads vitest's own JSON report: a run with a passing test, a failing one and a file that cannot load", async () => {
    const project = join(dir, 'vitest-project');
    mkdirSync(join(project, 'test'), { recursive: true });
    symlinkSync(at('node_modules'), join(project, 'node_modules'), 'dir');
    writeFileSync(join(project, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(project, 'test', 'some.test.ts'),
      "import { expect, it } from 'vitest';\nit('passes', () => expect(1).toBe(1));\nit('fails', () => expect(1).toBe(2));\n",
    );
    writeFileSync(join(project, 'test', 'broken.test.ts'), "import './missing.js';\nimport { it } from 'vitest';\nit('never runs', () => {});\n");
    const vitest = await run(
      process.execPath,
      [at('node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', project, '--reporter=json', '--outputFile=report.json'],
      { cwd: project, timeout: 60_000 },
    );
    expect(vitest.code, show(vitest)).toBe(1);
    const r = await node([at('scripts/test-summary.mjs'), 'report.json'], project);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout.trimEnd().split('\n')).toEqual(['1 passed, 1 failed', '1 test file(s) failed outside their tests: test/broken.test.ts']);
  });

  /**
   * The lines of .ci/run after `npm ci` (the two test commands and their summaries), run by bash
   * with an `npm` on PATH that plays the test runs: both commands run, the exit status is the
   * first failing one's, and each summary is printed after a failing run too, never from an
   * earlier run's report.
   */
  const tail = () => {
    const script = readFileSync(at('.ci', 'run'), 'utf8');
    const start = script.search(/^npm ci\b.*$/m);
    expect(start).toBeGreaterThan(0);
    return 'set -euo pipefail\n' + script.slice(script.indexOf('\n', start) + 1);
  };
  const passing = JSON.stringify(report({ numPassedTests: 7, numFailedTests: 0, success: true }));
  const failing = JSON.stringify(report({ numPassedTests: 6, numFailedTests: 1, success: false }));
  const interopPassing = JSON.stringify(report({ numPassedTests: 3, numFailedTests: 0, success: true }));
  const interopFailing = JSON.stringify(report({ numPassedTests: 2, numFailedTests: 1, success: false }));
  /** What the fake npm does for one command: its exit status and the report it writes (undefined: none). */
  interface Play {
    code: number;
    writes: string | undefined;
  }
  const runs: Array<{ name: string; test: Play; interop: Play; stdout: RegExp[]; code: number }> = [
    {
      name: 'both commands pass',
      test: { code: 0, writes: passing },
      interop: { code: 0, writes: interopPassing },
      stdout: [/^npm test: 7 passed, 0 failed$/m, /^npm run test:interop: 3 passed, 0 failed$/m],
      code: 0,
    },
    {
      name: 'a test of npm test fails',
      test: { code: 1, writes: failing },
      interop: { code: 0, writes: interopPassing },
      stdout: [/^npm test: 6 passed, 1 failed$/m, /^npm run test:interop: 3 passed, 0 failed$/m],
      code: 1,
    },
    {
      name: 'an interop test fails',
      test: { code: 0, writes: passing },
      interop: { code: 1, writes: interopFailing },
      stdout: [/^npm test: 7 passed, 0 failed$/m, /^npm run test:interop: 2 passed, 1 failed$/m],
      code: 1,
    },
    {
      name: 'the typecheck fails (no report; an earlier passing one is left in .tmp)',
      test: { code: 2, writes: undefined },
      interop: { code: 0, writes: interopPassing },
      stdout: [/^npm test: no test summary: the test report \.tmp\/vitest\.json is missing/m, /^npm run test:interop: 3 passed, 0 failed$/m],
      code: 2,
    },
    {
      name: 'the interop packages are missing (no report; an earlier passing one is left in .tmp)',
      test: { code: 0, writes: passing },
      interop: { code: 1, writes: undefined },
      stdout: [/^npm test: 7 passed, 0 failed$/m, /^npm run test:interop: no test summary: the test report \.tmp\/vitest-interop\.json is missing/m],
      code: 1,
    },
    {
      name: 'npm test exits 0 but the report has a failure',
      test: { code: 0, writes: failing },
      interop: { code: 0, writes: interopPassing },
      stdout: [/^npm test: 6 passed, 1 failed$/m],
      code: 1,
    },
    {
      name: 'npm run test:interop exits 0 but the report has a failure',
      test: { code: 0, writes: passing },
      interop: { code: 0, writes: interopFailing },
      stdout: [/^npm run test:interop: 2 passed, 1 failed$/m],
      code: 1,
    },
  ];
  const play = (p: Play, report: string, fake: string) =>
    `  ${p.writes !== undefined ? `cp ${fake} .tmp/${report}` : 'echo "no report" >&2'}\n  exit ${p.code}\n`;
  for (const c of runs) {
    it(`.ci/run when ${c.name}: exit ${c.code}, summaries printed`, async () => {
      const work = mkdtempSync(join(dir, 'ci-'));
      mkdirSync(join(work, 'scripts'));
      cpSync(at('scripts', 'test-summary.mjs'), join(work, 'scripts', 'test-summary.mjs'));
      mkdirSync(join(work, '.tmp'));
      writeFileSync(join(work, '.tmp', 'vitest.json'), passing);
      writeFileSync(join(work, '.tmp', 'vitest-interop.json'), interopPassing);
      if (c.test.writes !== undefined) writeFileSync(join(work, 'fake-report.json'), c.test.writes);
      if (c.interop.writes !== undefined) writeFileSync(join(work, 'fake-interop-report.json'), c.interop.writes);
      const bin = join(work, 'fake-bin');
      mkdirSync(bin);
      writeFileSync(
        join(bin, 'npm'),
        '#!/usr/bin/env bash\necho "npm $*"\n' +
          'if [ "$1" = test ]; then\n' +
          play(c.test, 'vitest.json', 'fake-report.json') +
          'fi\nif [ "$1 $2" = "run test:interop" ]; then\n' +
          play(c.interop, 'vitest-interop.json', 'fake-interop-report.json') +
          'fi\nexit 0\n',
        { mode: 0o755 },
      );
      writeFileSync(join(work, 'tail.sh'), tail());
      const env = { ...process.env, PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin` };
      const r = await run('bash', ['tail.sh'], { cwd: work, env });
      expect(r.code, show(r)).toBe(c.code);
      expect(r.stdout).toContain('npm test -- --reporter=default --reporter=json --outputFile=.tmp/vitest.json');
      expect(r.stdout).toContain('npm run test:interop -- --reporter=default --reporter=json --outputFile=.tmp/vitest-interop.json');
      for (const line of c.stdout) expect(r.stdout).toMatch(line);
      // Exactly two summaries, the test command's first.
      expect(r.stdout.match(/^npm (test|run test:interop): /gm)).toEqual(['npm test: ', 'npm run test:interop: ']);
    });
  }
});
