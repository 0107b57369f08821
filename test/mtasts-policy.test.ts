/**
 * MTA-STS texts (lib/mtasts/policy.ts), one row per rule of RFC 8461 sections 3.1, 3.2 and 4.1.
 */
import { describe, expect, it } from 'vitest';
import { MAX_AGE_LIMIT, mxMatches, parseStsPolicy, parseStsRecord } from '../lib/mtasts/index.js';

describe('the _mta-sts TXT record (RFC 8461 section 3.1)', () => {
  const rows: Array<[string, string[], string | RegExp]> = [
    ['a plain record', ['v=STSv1; id=20160831085700Z;'], '20160831085700Z'],
    ['without the final ";"', ['v=STSv1; id=abc'], 'abc'],
    ['no spaces', ['v=STSv1;id=abc;'], 'abc'],
    ['white space before the ";" after the version', ['v=STSv1 ;id=abc'], 'abc'],
    ['an extension field is ignored', ['v=STSv1; id=abc; ext_1=some.value'], 'abc'],
    ['of a repeated id the first is used', ['v=STSv1; id=first; id=second'], 'first'],
    ['other TXT records beside it are discarded', ['v=spf1 -all', 'v=STSv1; id=abc', 'hello'], 'abc'],
    ['an id of 32 characters', [`v=STSv1; id=${'a'.repeat(32)}`], 'a'.repeat(32)],
    ['no TXT record', [], /no TXT record$/],
    ['only other records', ['v=spf1 -all'], /no TXT record starts with "v=STSv1;"/],
    ['two MTA-STS records', ['v=STSv1; id=a', 'v=STSv1; id=b'], /2 TXT records start with "v=STSv1;"/],
    ['the version is case-sensitive', ['v=stsv1; id=abc'], /no TXT record starts with/],
    ['a version without a field delimiter', ['v=STSv1 id=abc'], /no TXT record starts with/],
    ['no id', ['v=STSv1; ext=1'], /has no id/],
    ['an id of 33 characters', [`v=STSv1; id=${'a'.repeat(33)}`], /invalid id/],
    ['an id with a dash', ['v=STSv1; id=2024-01-01'], /invalid id/],
    ['an empty id', ['v=STSv1; id='], /invalid id/],
    ['a field without "="', ['v=STSv1; id=abc; junk'], /field without "="/],
    ['an extension value with a space', ['v=STSv1; id=abc; ext=a b'], /invalid value for ext/],
    ['an invalid field name', ['v=STSv1; id=abc; _x=1'], /invalid field name/],
  ];
  it.each(rows)('%s', (_name, texts, expected) => {
    const result = parseStsRecord(texts);
    if (typeof expected === 'string') expect(result).toEqual({ record: { id: expected } });
    else {
      expect('none' in result).toBe(true);
      expect((result as { none: string }).none).toMatch(expected);
    }
  });
});

describe('the policy file (RFC 8461 section 3.2)', () => {
  const good = 'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n';
  it('a policy with CRLF line ends, its lines kept for TLS-RPT', () => {
    expect(parseStsPolicy(good)).toEqual({
      policy: {
        mode: 'enforce',
        maxAge: 86400,
        mx: ['mail.example.com', '*.example.net'],
        lines: ['version: STSv1', 'mode: enforce', 'mx: mail.example.com', 'mx: *.example.net', 'max_age: 86400'],
      },
    });
  });
  const rows: Array<[string, string, Partial<{ mode: string; maxAge: number; mx: string[] }> | RegExp]> = [
    ['LF line ends', 'version: STSv1\nmode: testing\nmx: a.example\nmax_age: 5\n', { mode: 'testing', maxAge: 5, mx: ['a.example'] }],
    ['no line end after the last field', 'version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 5', { mode: 'enforce' }],
    ['fields in any order', 'max_age: 7\nmx: a.example\nmode: enforce\nversion: STSv1\n', { maxAge: 7 }],
    ['no space after the colon', 'version:STSv1\nmode:enforce\nmx:a.example\nmax_age:7\n', { mode: 'enforce', maxAge: 7 }],
    ['mode none needs no mx', 'version: STSv1\nmode: none\nmax_age: 7\n', { mode: 'none', mx: [] }],
    ['unknown fields are ignored', 'version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 7\nsomething_else: any text here\n', { mode: 'enforce' }],
    ['of a repeated mode the first is used', 'version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 7\n', { mode: 'testing' }],
    ['of a repeated max_age the first is used', 'version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 7\nmax_age: 9\n', { maxAge: 7 }],
    ['mx patterns are lower-cased, a final dot dropped', 'version: STSv1\nmode: enforce\nmx: MX.Example.COM.\nmax_age: 7\n', { mx: ['mx.example.com'] }],
    ['a max_age above one year is one year', 'version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n', { maxAge: MAX_AGE_LIMIT }],
    ['trailing white space on a line', 'version: STSv1  \nmode: enforce\t\nmx: a.example \nmax_age: 7 \n', { mode: 'enforce', maxAge: 7 }],
    ['no version', 'mode: enforce\nmx: a.example\nmax_age: 7\n', /no "version: STSv1" line/],
    ['another version', 'version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 7\n', /version is "STSv2"/],
    ['no mode', 'version: STSv1\nmx: a.example\nmax_age: 7\n', /no mode line/],
    ['an unknown mode', 'version: STSv1\nmode: strict\nmx: a.example\nmax_age: 7\n', /mode "strict"/],
    ['the mode is case-sensitive', 'version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 7\n', /mode "Enforce"/],
    ['no max_age', 'version: STSv1\nmode: enforce\nmx: a.example\n', /no max_age line/],
    ['a negative max_age', 'version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n', /max_age "-1"/],
    ['a max_age of 11 digits', 'version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n', /max_age "12345678901"/],
    ['enforce without mx', 'version: STSv1\nmode: enforce\nmax_age: 7\n', /mode enforce without any mx line/],
    ['testing without mx', 'version: STSv1\nmode: testing\nmax_age: 7\n', /mode testing without any mx line/],
    ['a wildcard inside a pattern', 'version: STSv1\nmode: enforce\nmx: mx.*.example\nmax_age: 7\n', /mx "mx\.\*\.example"/],
    ['a bare wildcard', 'version: STSv1\nmode: enforce\nmx: *\nmax_age: 7\n', /mx "\*"/],
    ['a U-label pattern', 'version: STSv1\nmode: enforce\nmx: mx.bücher.example\nmax_age: 7\n', /A-labels/],
    ['an empty line inside', 'version: STSv1\n\nmode: enforce\nmx: a.example\nmax_age: 7\n', /line 2 is empty/],
    ['a line without a colon', 'version: STSv1\nmode enforce\nmx: a.example\nmax_age: 7\n', /line 2 is not "key: value"/],
    ['an HTML page', '<html><body>Not here</body></html>\n', /line 1/],
    ['an empty body', '', /no "version: STSv1" line/],
  ];
  it.each(rows)('%s', (_name, body, expected) => {
    const result = parseStsPolicy(body);
    if (expected instanceof RegExp) {
      expect('invalid' in result, JSON.stringify(result)).toBe(true);
      expect((result as { invalid: string }).invalid).toMatch(expected);
    } else {
      expect('policy' in result, JSON.stringify(result)).toBe(true);
      expect((result as { policy: object }).policy).toMatchObject(expected);
    }
  });
});

describe('MX host patterns (RFC 8461 section 4.1)', () => {
  const rows: Array<[string[], string, boolean]> = [
    [['mail.example.com'], 'mail.example.com', true],
    [['mail.example.com'], 'MAIL.Example.com.', true],
    [['mail.example.com'], 'mail2.example.com', false],
    [['mail.example.com'], 'x.mail.example.com', false],
    [['*.example.com'], 'mx1.example.com', true],
    [['*.example.com'], 'example.com', false],
    [['*.example.com'], 'a.mx1.example.com', false],
    [['*.example.com'], 'mx1.example.com.evil.test', false],
    [['*.example.com'], 'mx1example.com', false],
    [['a.example', '*.b.example'], 'x.b.example', true],
    [[], 'a.example', false],
  ];
  it.each(rows)('%j matches %s: %s', (patterns, host, expected) => {
    expect(mxMatches(patterns, host)).toBe(expected);
  });
});
