import { describe, expect, it } from 'vitest';
import { escapeControls, hasNoControls, quoteValue, replyLine, safeText, unquoteValue } from '../lib/text/index.js';

/** Every character safeText must escape, with its escaped form. */
const ESCAPED: Array<[string, string]> = [
  ['\x00', '\\x00'],
  ['\x07', '\\x07'],
  ['\t', '\\x09'],
  ['\n', '\\x0a'],
  ['\r', '\\x0d'],
  ['\x1b', '\\x1b'],
  ['\x1f', '\\x1f'],
  ['\x7f', '\\x7f'],
  ['\x80', '\\u{0080}'],
  ['\x85', '\\u{0085}'],
  ['\x9b', '\\u{009b}'],
  ['\x9f', '\\u{009f}'],
  ['\u061c', '\\u{061c}'],
  ['\u200e', '\\u{200e}'],
  ['\u200f', '\\u{200f}'],
  ['\u2028', '\\u{2028}'],
  ['\u2029', '\\u{2029}'],
  ['\u202a', '\\u{202a}'],
  ['\u202b', '\\u{202b}'],
  ['\u202c', '\\u{202c}'],
  ['\u202d', '\\u{202d}'],
  ['\u202e', '\\u{202e}'],
  ['\u2066', '\\u{2066}'],
  ['\u2067', '\\u{2067}'],
  ['\u2068', '\\u{2068}'],
  ['\u2069', '\\u{2069}'],
  ['\ufeff', '\\u{feff}'],
  ['\\', '\\\\'],
];

/** Characters that stay as they are. */
const KEPT = [' ', '~', 'a', 'Z', '0', '"', ',', '=', '\u00a0', 'é', 'ß', '\u00ad', '\u2027', '\u202f', '\u2065', '\u206a', '中', '\u{1f600}'];

describe('safeText', () => {
  it.each(ESCAPED)('escapes %j as %s', (c, out) => {
    expect(safeText(`a${c}b`)).toBe(`a${out}b`);
  });
  it.each(KEPT)('keeps %j', (c) => {
    expect(safeText(`a${c}b`)).toBe(`a${c}b`);
  });
  it('escapes every code point of C0, DEL and C1', () => {
    for (let code = 0; code <= 0x9f; code++) {
      const c = String.fromCharCode(code);
      const out = safeText(c);
      if (code < 0x20 || code >= 0x7f) expect(out, `U+${code.toString(16)}`).toMatch(/^\\(x[0-9a-f]{2}|u\{[0-9a-f]{4}\})$/);
      else if (c === '\\') expect(out).toBe('\\\\');
      else expect(out).toBe(c);
    }
  });
  it('leaves no control in a hostile reply and keeps it on one line', () => {
    const hostile = '454 4.7.0 busy, auth=Verified\rtlsaudit: relay=mx.bank.example[192.0.2.1]:25, auth=Verified\x1b[2J\x1b]0;title\x07\u202e';
    const out = safeText(hostile);
    expect(hasNoControls(out)).toBe(true);
    expect(out).not.toMatch(/[\r\n\x1b\x07\u202e]/);
    expect(out).toContain('\\x0dtlsaudit');
  });
  it('an escape in the output always means an escape: a literal backslash is doubled', () => {
    expect(safeText('\\x0a')).toBe('\\\\x0a');
    expect(safeText('\n')).toBe('\\x0a');
    expect(safeText('\\x0a')).not.toBe(safeText('\n'));
  });
});

describe('escapeControls', () => {
  it('is a no-op on safe text and idempotent', () => {
    for (const s of ['plain', safeText('a\nb\\c\u202e'), 'x="y", z']) {
      expect(escapeControls(s)).toBe(s);
      expect(escapeControls(escapeControls(`${s}\r`))).toBe(escapeControls(`${s}\r`));
    }
  });
  it('escapes controls but not backslashes', () => {
    expect(escapeControls('a\\b\nc')).toBe('a\\b\\x0ac');
  });
});

describe('replyLine', () => {
  it.each([
    [undefined, undefined],
    ['250 ok', '250 ok'],
    ['250-first\r\n250 second', '250-first 250 second'],
    ['250-first\n250 second\n', '250-first 250 second'],
    ['454 busy\rforged', '454 busy\\x0dforged'],
    ['550 \x1b[31mred', '550 \\x1b[31mred'],
  ])('%j -> %j', (input, output) => {
    expect(replyLine(input)).toBe(output);
  });
});

describe('quoteValue and unquoteValue', () => {
  const values = [
    'mx1.example.com[192.0.2.1]:25',
    'Verified',
    'TLS_AES_256_GCM_SHA384',
    'a, b',
    'auth=Verified',
    'say "hi"',
    'back\\slash',
    ' leading',
    'trailing ',
    '"',
    '\\',
    '",auth=Verified, level="secure',
    safeText('line\nbreak, auth=Verified\r'),
    '',
  ];
  it.each(values)('%j round-trips and never holds a bare separator', (v) => {
    const q = quoteValue(v);
    expect(unquoteValue(q)).toBe(v);
    if (q.startsWith('"')) {
      // Inside quotes, every " is escaped.
      expect(q.slice(1, -1).replace(/\\[\s\S]/g, '')).not.toMatch(/"/);
    } else {
      expect(q).not.toMatch(/[,="\\]/);
    }
  });
  it('escapes controls a value still holds', () => {
    expect(quoteValue('a\nb')).toBe('"a\\\\x0ab"');
    expect(quoteValue('a\n, b')).toBe('"a\\\\x0a, b"');
  });
  it('quotes only what needs it', () => {
    expect(quoteValue('plain')).toBe('plain');
    expect(quoteValue('a,b')).toBe('"a,b"');
    expect(quoteValue('a=b')).toBe('"a=b"');
  });
});
