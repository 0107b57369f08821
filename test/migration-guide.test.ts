/**
 * The migration guide's mapping tables name only things that exist: every option it names in its
 * "this library" column is an option tlsPolicy() accepts, every `attribute=` a policy table
 * attribute, every `--flag` one the command line documents. A renamed or removed option fails
 * here instead of leaving a Postfix or Exim administrator with a name that does nothing.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { USAGE } from '../lib/cli/index.js';
import { KNOWN_OPTIONS } from '../lib/config.js';
import { ATTRIBUTES } from '../lib/policy/entry.js';

const GUIDE = 'docs/migrating-from-postfix-and-exim.md';

/** The backticked code spans of the second column of every table row, with the row's line number. */
function libraryColumnSpans(): Array<{ line: number; span: string; cell: string }> {
  const out: Array<{ line: number; span: string; cell: string }> = [];
  readFileSync(GUIDE, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (!text.startsWith('|') || /^\|\s*-/.test(text)) return;
      const cells = text.split(/(?<!\\)\|/).slice(1, -1);
      const cell = cells[1]?.trim();
      if (!cell) return;
      for (const m of cell.matchAll(/`([^`]+)`/g)) out.push({ line: i + 1, span: m[1]!, cell });
    });
  return out;
}

/** What a span names, if anything: an option, an attribute, or a command-line flag. */
function named(span: string, cell: string): { kind: 'option' | 'attribute' | 'flag'; name: string } | undefined {
  if (span.startsWith('--')) return { kind: 'flag', name: span.split(/\s/)[0]! };
  const attribute = /^([a-z_]+)=/.exec(span);
  if (attribute) return { kind: 'attribute', name: attribute[1]! };
  // `auth: { user, pass }`, `resolver.trustAd`, `daneInsecureMxPolicy: 'may'`: the option before ':' or '.'
  const prefixed = /^([a-z][A-Za-z0-9]*)(?::|\.)/.exec(span);
  if (prefixed) return { kind: 'option', name: prefixed[1]! };
  if (!/^[a-z][A-Za-z0-9]*$/.test(span)) return undefined;
  // A camelCase identifier is always an option name; a plain word only when the cell calls it one.
  if (/[A-Z]/.test(span) || new RegExp('`' + span + '`(?:, `[A-Za-z]+`)* options?\\b').test(cell)) return { kind: 'option', name: span };
  return undefined;
}

describe(`${GUIDE}: every name in the "this library" column exists`, () => {
  const spans = libraryColumnSpans().flatMap(({ line, span, cell }) => {
    const n = named(span, cell);
    return n ? [{ line, span, ...n }] : [];
  });

  it('finds the names (the table was read)', () => {
    expect(spans.filter((s) => s.kind === 'option').length).toBeGreaterThan(30);
    expect(spans.filter((s) => s.kind === 'attribute').length).toBeGreaterThan(5);
    expect(spans.filter((s) => s.kind === 'flag').length).toBeGreaterThan(10);
  });

  it('options are options of tlsPolicy()', () => {
    const unknown = spans.filter((s) => s.kind === 'option' && !KNOWN_OPTIONS.has(s.name)).map((s) => `line ${s.line}: ${s.span}`);
    expect(unknown).toEqual([]);
  });

  it('attributes are policy table attributes', () => {
    const unknown = spans.filter((s) => s.kind === 'attribute' && !(ATTRIBUTES as readonly string[]).includes(s.name)).map((s) => `line ${s.line}: ${s.span}`);
    expect(unknown).toEqual([]);
  });

  it('flags are in the command line help', () => {
    const unknown = spans.filter((s) => s.kind === 'flag' && !new RegExp(`${s.name}(?![\\w-])`).test(USAGE)).map((s) => `line ${s.line}: ${s.span}`);
    expect(unknown).toEqual([]);
  });
});
