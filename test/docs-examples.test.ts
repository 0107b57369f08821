/**
 * Every code block in README.md, docs/ and examples/<name>/README.md is what a user copies, so
 * each is checked as written:
 * - js and ts blocks compile together with the library's types (tsc, strict), each block a
 *   module of its own; a block that continues an earlier one (it uses `transport`) gets that
 *   transport declared, and a fragment gets the library's import, nothing else; an example's
 *   block imports the example's files (`./x.js`) from its folder;
 * - a js block that only makes transports (tlsPolicy(...) calls, no sending, no file) runs;
 * - a sh block's commands exist: `npm run X` names a script of package.json, `npx vitest run`
 *   names test files that exist, and each `npx nodemailer-tls-policy ...` command (probe,
 *   check-policy, tls-reports) parses with the CLI's own argument parser. System commands
 *   (apt-get, dig) are the system's.
 * Blocks without a language, and text blocks, show output or shapes, not code.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCheckPolicyArgs, parseProbeArgs, parseTlsReportsArgs } from '../lib/cli/index.js';
import { tlsPolicy, type TlsPolicyOptions, type TlsPolicyTransport } from '../lib/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
  ...readdirSync(join(root, 'examples'))
    .map((d) => join('examples', d, 'README.md'))
    .filter((f) => existsSync(join(root, f))),
];

interface Block {
  file: string;
  line: number;
  lang: string;
  code: string;
}

const blocks: Block[] = docs.flatMap((file) => {
  const text = readFileSync(join(root, file), 'utf8');
  const out: Block[] = [];
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(text); m; m = fence.exec(text)) {
    out.push({ file, line: text.slice(0, m.index).split('\n').length, lang: m[1]!, code: m[2]! });
  }
  return out;
});
const code = blocks.filter((b) => b.lang === 'js' || b.lang === 'ts');
const shell = blocks.filter((b) => b.lang === 'sh');

const scratch = join(root, '.tmp', 'docs-blocks');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A block as a module of its own: the imports and the transport it relies on, when it does not have them. */
function asModule(block: Block): string {
  const lines = [`// ${block.file}:${block.line}`];
  const has = (re: RegExp) => re.test(block.code);
  if (has(/\bnodemailer\./) && !has(/import nodemailer/)) lines.push("import nodemailer from 'nodemailer';");
  if (has(/\btlsPolicy\(/) && !has(/import \{[^}]*tlsPolicy/)) lines.push("import { tlsPolicy } from 'nodemailer-tls-policy';");
  if (has(/\btransport\./) && !has(/const transport\b/)) {
    if (!lines.some((l) => l.startsWith('import nodemailer'))) lines.push("import nodemailer from 'nodemailer';");
    if (!lines.some((l) => l.includes('{ tlsPolicy }'))) lines.push("import { tlsPolicy } from 'nodemailer-tls-policy';");
    lines.push('const transport = nodemailer.createTransport(tlsPolicy({}));');
  }
  // An example's README sits beside its files: its relative imports are read from that folder.
  const code = block.file.startsWith('examples') ? block.code.replace(/from '\.\//g, `from '../../${dirname(block.file)}/`) : block.code;
  lines.push(code, 'export {};');
  return lines.join('\n');
}

describe('js and ts blocks', () => {
  it('there are blocks to check', () => {
    expect(code.length).toBeGreaterThanOrEqual(6);
  });

  it('every one compiles against the library (tsc, strict)', async () => {
    mkdirSync(scratch, { recursive: true });
    const files = code.map((block, i) => {
      const name = `block-${i}-${block.file.replace(/\W/g, '_')}-${block.line}.ts`;
      writeFileSync(join(scratch, name), asModule(block));
      return name;
    });
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          types: ['node'],
          skipLibCheck: true,
          paths: { 'nodemailer-tls-policy': ['../../lib/index.ts'] },
        },
        files,
      }),
    );
    const tsc = join(dirname(createRequire(import.meta.url).resolve('@typescript/native/package.json')), 'bin', 'tsc');
    const result = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: scratch }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number | undefined) ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
  }, 60_000);

  const constructions = code.filter((b) => b.lang === 'js' && /\btlsPolicy\(/.test(b.code) && !/sendMail|import |'\/[a-z]/.test(b.code));
  it.each(constructions.map((b) => [`${b.file}:${b.line}`, b] as const))('%s makes its transports as written', (_where, block) => {
    const made: TlsPolicyTransport[] = [];
    const track = (options: TlsPolicyOptions) => {
      const t = tlsPolicy(options);
      made.push(t);
      return t;
    };
    new Function('tlsPolicy', 'process', block.code)(track, process);
    for (const t of made) t.close();
    expect(made.length).toBeGreaterThan(0);
  });
});

describe('sh blocks', () => {
  const scripts = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
  const commands = shell.flatMap((b) =>
    b.code
      .split('\n')
      .map((line) => line.replace(/\s+#.*$/, '').trim())
      .filter((line) => line !== '')
      .flatMap((line) => line.split(/\s*&&\s*/).map((command) => [`${b.file}:${b.line}: ${command}`, command] as const)),
  );
  // The operator's own policy file, which the probe reads while it parses its arguments.
  const table = join(scratch, 'tls_policy');
  it.each(commands)('%s', (_where, command) => {
    mkdirSync(scratch, { recursive: true });
    writeFileSync(table, 'example.com secure\n');
    const words = command.match(/'[^']*'|\S+/g)!.map((w) => w.replace(/^'(.*)'$/, '$1').replace('/etc/postfix/tls_policy', table));
    if (words[0] === 'npm' && words[1] === 'run') return expect(scripts).toContain(words[2]);
    if (words[0] === 'npm') return expect(['install', 'test', 'ci']).toContain(words[1]);
    if (words[0] === 'npx' && words[1] === 'vitest' && words[2] === 'run') {
      expect(words.length).toBeGreaterThan(3);
      for (const file of words.slice(3)) expect(existsSync(join(root, file)), `${file} exists`).toBe(true);
      return;
    }
    if (words[0] === 'npx' && words[1] === 'nodemailer-tls-policy') {
      const [verb, ...rest] = words.slice(2);
      if (verb === 'probe') return expect(parseProbeArgs(rest)).toMatchObject({ target: expect.any(Object) });
      if (verb === 'check-policy') return expect(parseCheckPolicyArgs(rest)).toMatchObject({ file: rest[0] });
      if (verb === 'tls-reports') return expect(parseTlsReportsArgs(rest)).toMatchObject({ store: expect.any(Object) });
      throw new Error(`unknown command ${verb}`);
    }
    // The system's own commands.
    return expect(['apt-get', 'dig']).toContain(words[0]);
  });
});
