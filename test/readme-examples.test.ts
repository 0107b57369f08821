/**
 * The README's first example is what a new user copies: its tlsPolicy({...}) call must construct
 * as written (the policy table indented inside a template literal included), and the table
 * text rules it relies on hold: inline text is dedented, a file is read as Postfix reads it.
 * The "Trying it locally" script runs as written (a CA made with openssl, a real smtp-server,
 * real sends; `nodemailer-tls-policy` is the source, by vitest.config.ts's alias) and prints
 * what the README shows.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { tlsPolicy, type TlsPolicyTransport } from '../lib/index.js';
import { checkPolicyTable, checkPolicyText } from '../lib/policy/index.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The `tlsPolicy({ ... })` call of a code block, as written (balanced parentheses). */
function tlsPolicyCall(block: string): string {
  const start = block.indexOf('tlsPolicy(');
  let depth = 0;
  for (let i = start + 'tlsPolicy'.length; i < block.length; i++) {
    if (block[i] === '(') depth++;
    else if (block[i] === ')' && --depth === 0) return block.slice(start, i + 1);
  }
  throw new Error('no complete tlsPolicy(...) call');
}

describe("the README's first example", () => {
  const block = /## Swap it into existing Nodemailer code\s+```js\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  it('constructs as written, its policy table included', () => {
    expect(block).toContain('tlsPolicy(');
    const call = tlsPolicyCall(block);
    const made = new Function('tlsPolicy', `return ${call};`)(tlsPolicy) as TlsPolicyTransport;
    made.close();
    expect(made.name).toBe('TLSPolicy');
  });
});

describe('table text indented inside a template literal', () => {
  const indented = `
      example.com   secure  match=.example.com  fallback=none
      .example.org  encrypt
        exclude=aNULL
      partner.net   encrypt shadow=verify
    `;
  it('inline text: the common indentation is stripped; a line indented further stays a continuation line', () => {
    const { problems, table } = checkPolicyTable(indented);
    expect(problems).toEqual([]);
    expect(table?.keys()).toEqual(['example.com', '.example.org', 'partner.net']);
    expect(table?.get('.example.org')?.exclude).toEqual(['aNULL']);
  });
  it('a file is read as Postfix reads it: an indented first line is a continuation line without an entry', () => {
    expect(checkPolicyText(indented, 'tls_policy').problems[0]).toEqual({
      file: 'tls_policy',
      line: 2,
      message: 'continuation line (starting with white space) without an entry before it',
    });
  });
});

describe('"Trying it locally"', () => {
  const section = /\n## Trying it locally\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
  const script = /```js\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const shown = /```text\n([\s\S]*?)```/.exec(section)?.[1] ?? '';

  it('runs as written and prints what the README shows', async () => {
    expect(script).toContain("from 'nodemailer-tls-policy'");
    const dir = fileURLToPath(new URL('../.tmp/readme-try-locally/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `try-locally-${process.pid}.mjs`);
    writeFileSync(file, script);
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
    try {
      await import(pathToFileURL(file).href);
    } finally {
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    // The README's output, line by line: any port for 40123, any cipher.
    const patterns = shown
      .trimEnd()
      .split('\n')
      .map((line) =>
        line
          .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
          .replace(/40123/g, '\\d+')
          .replace(/cipher=TLS_AES_256_GCM_SHA384/g, 'cipher=\\S+'),
      );
    expect(printed.join('\n').split('\n')).toHaveLength(patterns.length);
    printed
      .join('\n')
      .split('\n')
      .forEach((line, i) => expect(line).toMatch(new RegExp(`^${patterns[i]}$`)));
  }, 60_000);
});
