/**
 * The policy module, one row per rule: table syntax, keys, every attribute accepted and
 * rejected, lookup order, the fallback map, and Exim's host lists.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyHostLists,
  checkFallbackMap,
  checkHostList,
  checkPolicyTable,
  checkPolicyText,
  compareStrictness,
  createPolicyTable,
  defaultPolicy,
  fallbackFor,
  inHostList,
  isAuthenticatedLevel,
  isMandatoryLevel,
  isStricter,
  lookupKeys,
  lookupPolicy,
  parseFallbackMap,
  parseHostList,
  parseLevel,
  PolicyError,
  PolicyTable,
  type NextHop,
  type PolicyProblem,
} from '../lib/policy/index.js';
import { LEVELS, type Level, type Policy } from '../lib/types.js';
import { thrown } from './helpers/thrown.js';

const EXPECTED = 'expected one of none, may, encrypt, dane, dane-only, fingerprint, verify, secure';
const SHA256 = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
const SHA256_BARE = 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
const SHA1 = '01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67';

/** Problems of one table text named policy.txt. */
const problemsOf = (text: string): PolicyProblem[] => checkPolicyText(text, 'policy.txt').problems;

/** The single entry of a one-line table, without its source. */
function entryOf(line: string): Omit<Policy, 'source'> {
  const { problems, table } = checkPolicyText(line, 'policy.txt');
  expect(problems).toEqual([]);
  const entries = table!.entries();
  expect(entries).toHaveLength(1);
  const { source, ...rest } = entries[0]![1];
  expect(source).toBe('policy.txt:1');
  return rest;
}

describe('levels', () => {
  it.each([
    ['none', false, false],
    ['may', false, false],
    ['encrypt', false, true],
    ['dane', true, false],
    ['dane-only', true, true],
    ['fingerprint', true, true],
    ['verify', true, true],
    ['secure', true, true],
  ] as const)('%s: authenticated %s, mandatory %s', (level, authenticated, mandatory) => {
    expect(isAuthenticatedLevel(level)).toBe(authenticated);
    expect(isMandatoryLevel(level)).toBe(mandatory);
  });

  it.each([
    ['none', 'may', -1],
    ['may', 'encrypt', -1],
    ['encrypt', 'dane', -1],
    ['dane', 'dane-only', -1],
    ['dane-only', 'fingerprint', -1],
    ['dane-only', 'verify', -1],
    ['dane-only', 'secure', -1],
    ['fingerprint', 'verify', 0],
    ['verify', 'secure', 0],
    ['secure', 'fingerprint', 0],
    ['secure', 'none', 1],
    ['encrypt', 'encrypt', 0],
  ] as const)('compareStrictness(%s, %s) = %i', (a, b, want) => {
    expect(compareStrictness(a, b)).toBe(want);
    expect(compareStrictness(b, a)).toBe(-want || 0);
    expect(isStricter(a, b)).toBe(want > 0);
  });

  it.each([
    ['secure', 'secure'],
    ['VERIFY', 'verify'],
    ['Dane-Only', 'dane-only'],
    [' may ', 'may'],
  ])('parseLevel(%j) = %s', (s, want) => {
    expect(parseLevel(s, 'level option')).toBe(want);
  });

  it.each([
    ['verfy', `level option: unknown level "verfy" (${EXPECTED})`],
    ['MUST', `level option: unknown level "MUST" (${EXPECTED}; "MUST" is smtp_tls_per_site syntax, write "verify")`],
    ['MUST_NOPEERMATCH', `level option: unknown level "MUST_NOPEERMATCH" (${EXPECTED}; "MUST_NOPEERMATCH" is smtp_tls_per_site syntax, write "encrypt")`],
    ['halfdane', `level option: unknown level "halfdane" (${EXPECTED}; "halfdane" is only ever logged by Postfix, never configured)`],
    ['', `level option: unknown level "" (${EXPECTED})`],
  ])('parseLevel(%j) throws', (s, message) => {
    const err = thrown(() => parseLevel(s, 'level option'));
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).message).toBe(message);
    expect((err as PolicyError).code).toBe('EPOLICY');
    expect((err as PolicyError).file).toBe('level option');
    expect((err as PolicyError).line).toBe(0);
  });

  it('defaultPolicy builds the policy for destinations without an entry', () => {
    expect(defaultPolicy('may')).toEqual({ level: 'may', source: 'default' });
    expect(Object.isFrozen(defaultPolicy('encrypt'))).toBe(true);
    expect(() => defaultPolicy('strict')).toThrow('defaultLevel: unknown level "strict"');
  });
});

describe('table syntax (Postfix logical lines)', () => {
  it.each([
    ['comment and blank lines', '# a comment\n\n   # indented comment\nexample.com secure\n', [['example.com', 4]]],
    [
      'CRLF and a BOM',
      '\uFEFFexample.com secure\r\nexample.net may\r\n',
      [
        ['example.com', 1],
        ['example.net', 2],
      ],
    ],
    [
      'continuation lines keep the first line number',
      'example.com fingerprint\n  match=' + SHA256 + '\n\tmatch=' + SHA1 + '\nexample.net may\n',
      [
        ['example.com', 1],
        ['example.net', 4],
      ],
    ],
    [
      'comment and blank lines inside a continued entry',
      'example.com verify\n# note\n\n  match=hostname\nexample.net may\n',
      [
        ['example.com', 1],
        ['example.net', 5],
      ],
    ],
    ['commas separate attributes too', 'example.com verify,match=nexthop, servername=hostname\n', [['example.com', 1]]],
  ])('%s', (_name, text, want) => {
    const { problems, table } = checkPolicyText(text, 'policy.txt');
    expect(problems).toEqual([]);
    expect(table!.entries().map(([k, p]) => [k, Number(p.source.split(':')[1])])).toEqual(want);
  });

  it('joins continuation lines into one entry', () => {
    const table = createPolicyTable('[thumb.example.org] fingerprint\n  match=' + SHA256 + '\n  match=' + SHA1 + '|' + SHA256_BARE + '\n');
    expect(table.get('[thumb.example.org]')).toEqual({
      level: 'fingerprint',
      match: [SHA256, SHA1, SHA256_BARE],
      source: '<text>:1',
    });
  });

  it('accepts { name = value } groups, whose values may hold white space and commas', () => {
    expect(entryOf('example.com encrypt { protocols = >=TLSv1.2, <=TLSv1.3 } { exclude = aNULL RC4 }')).toEqual({
      level: 'encrypt',
      protocols: ['>=TLSv1.2', '<=TLSv1.3'],
      exclude: ['aNULL', 'RC4'],
    });
  });

  it.each([
    [' example.com secure\n', 1, 'continuation line (starting with white space) without an entry before it'],
    ['example.com\n', 1, `no level for example.com (${EXPECTED})`],
    ['example.com match=nexthop\n', 1, `no level for example.com before "match=nexthop" (${EXPECTED})`],
    ['\n\nexample.com verfy\n', 3, `unknown level "verfy" for example.com (${EXPECTED})`],
    ['example.com MUST\n', 1, `unknown level "MUST" for example.com (${EXPECTED}; "MUST" is smtp_tls_per_site syntax, write "verify")`],
    ['example.com secure # trailing\n', 1, '"#" after the entry for example.com does not start a comment (put comments on lines of their own)'],
    ['example.com secure match=nexthop #x y=z\n', 1, '"#" after the entry for example.com does not start a comment (put comments on lines of their own)'],
    ['example.com secure match\n', 1, 'malformed attribute "match" for example.com: missing "=" after attribute name'],
    ['example.com secure =nexthop\n', 1, 'malformed attribute "=nexthop" for example.com: missing attribute name'],
    ['example.com secure { match = nexthop\n', 1, 'malformed attribute "{ match = nexthop" for example.com: missing "}"'],
    ['example.com secure {match=nexthop}x\n', 1, 'malformed attribute "{match=nexthop}x" for example.com: text after "}"'],
  ])('rejects %j at line %i', (text, line, message) => {
    expect(problemsOf(text)).toEqual([{ file: 'policy.txt', line, message }]);
  });

  it('a problem on a continuation line is reported at that line, not at the line the entry starts on', () => {
    const text = [
      'example.com verify', // 1
      '  match=nexthop', // 2
      '# a comment inside the entry', // 3
      '  ciphers=strong   fallback=maybe', // 4
      '', // 5
      '\tservername=bad..name protocols=>=TLSv1', // 6
      '  { exclude = !RC4 } #x', // 7
      'example.net', // 8
      '  sekure cafile=', // 9
      'example.org may', // 10
      '  match=hostname shadow=verify match=..x', // 11
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      { file: 'policy.txt', line: 4, message: 'invalid fallback "maybe" for example.com (expected may, encrypt or none)' },
      { file: 'policy.txt', line: 4, message: 'unknown cipher grade "strong" for example.com (expected one of high, medium, low, export, null)' },
      {
        file: 'policy.txt',
        line: 6,
        message:
          'protocols ">=TLSv1" for example.com allows TLSv1 and TLSv1.1, which OpenSSL 3 negotiates only at security level 0, and level "verify" never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destination level encrypt',
      },
      {
        file: 'policy.txt',
        line: 6,
        message: 'servername "bad..name" for example.com is not a valid host name: empty label (expected hostname, nexthop or a DNS name)',
      },
      { file: 'policy.txt', line: 7, message: '"#" after the entry for example.com does not start a comment (put comments on lines of their own)' },
      { file: 'policy.txt', line: 7, message: 'invalid cipher exclusion "!RC4" for example.com (no leading "!", "+", "-" or "@")' },
      { file: 'policy.txt', line: 9, message: `unknown level "sekure" for example.net (${EXPECTED})` },
      {
        file: 'policy.txt',
        line: 11,
        message: 'invalid match "..x": empty label (expected hostname, nexthop, dot-nexthop, a domain or .domain) for example.org',
      },
    ]);
  });
});

describe('keys', () => {
  it.each([
    ['example.com', 'example.com'],
    ['EXAMPLE.Com.', 'example.com'],
    ['.example.org', '.example.org'],
    ['.Example.ORG.', '.example.org'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['.bücher.example', '.xn--bcher-kva.example'],
    ['_smtp.example.com', '_smtp.example.com'],
    ['[mx.example.net]', '[mx.example.net]'],
    ['[MX.Example.net.]:25', '[mx.example.net]:25'],
    ['[mx.example.net]:submission', '[mx.example.net]:587'],
    ['[mx.example.net]:smtps', '[mx.example.net]:465'],
    ['[192.0.2.1]', '[192.0.2.1]'],
    ['[192.0.2.1]:2525', '[192.0.2.1]:2525'],
    ['[ipv6:2001:db8::1]:25', '[2001:db8::1]:25'],
    ['[IPv6:2001:DB8:0:0:0:0:0:1]', '[2001:db8::1]'],
    ['[2001:db8::1]', '[2001:db8::1]'],
    ['[2001:0db8::0001]:587', '[2001:db8::1]:587'],
    ['[Bücher.example]', '[xn--bcher-kva.example]'],
    // host:port: Postfix's key for a relayhost written without brackets, with a port
    ['SMTP.Example.com.:587', 'smtp.example.com:587'],
    ['smtp.example.com:submission', 'smtp.example.com:587'],
    ['bücher.example:25', 'xn--bcher-kva.example:25'],
  ])('%s is stored as %s', (written, key) => {
    const table = createPolicyTable({ [written]: 'encrypt' });
    expect(table.keys()).toEqual([key]);
    expect(table.get(written)).toEqual({ level: 'encrypt', source: `<object> ${written}` });
  });

  it.each([
    ['*', 'no wildcard entry; set the default level for destinations without one'],
    ['192.0.2.1', 'an IP address must be in brackets, as [192.0.2.1]'],
    ['2001:db8::1', 'an IP address must be in brackets, as [2001:db8::1]'],
    ['192.0.2.1:25', 'an IP address must be in brackets, as [192.0.2.1]:25'],
    ['example.com:', 'bad port "" (expected a number or one of smtp, submission, submissions, smtps)'],
    ['example.com:0', 'port 0 out of range 1-65535'],
    ['example.com:imap', 'bad port "imap" (expected a number or one of smtp, submission, submissions, smtps)'],
    ['ex!ample.com:25', 'invalid character "!"'],
    [':25', 'empty name'],
    ['[example.com', 'missing "]"'],
    ['[example.com]587', 'garbage after "]"'],
    ['[example.com]:', 'empty port after "]:"'],
    ['[example.com]:0', 'port 0 out of range 1-65535'],
    ['[example.com]:70000', 'port 70000 out of range 1-65535'],
    ['[example.com]:imap', 'bad port "imap" (expected a number or one of smtp, submission, submissions, smtps)'],
    ['[ipv6:192.0.2.1]', 'malformed IPv6 address "192.0.2.1"'],
    ['[2001:db8::1::2]', 'malformed IPv6 address "2001:db8::1::2"'],
    ['[192.0.2.300]', 'malformed IPv4 address "192.0.2.300"'],
    ['[]', 'empty name'],
    ['foo..example', 'empty label'],
    ['.', 'empty name'],
    ['-foo.example', 'misplaced hyphen'],
    ['foo-.example', 'misplaced hyphen'],
    ['ex!ample.com', 'invalid character "!"'],
    ['a'.repeat(64) + '.example', 'label longer than 63 characters'],
    ['123', 'numeric name'],
    ['1.2.3', 'numeric name'],
  ])('rejects the key %j', (key, reason) => {
    expect(problemsOf(`${key} encrypt\n`)).toEqual([{ file: 'policy.txt', line: 1, message: `invalid destination "${key}": ${reason}` }]);
  });

  it.each([
    ['example.com secure\nEXAMPLE.COM. may\n', 2, 'example.com is listed twice, at lines 1 and 2'],
    ['[mx.example]:25 may\n# x\n[MX.example]:smtp encrypt\n', 3, '[mx.example]:25 is listed twice, at lines 1 and 3'],
    ['[ipv6:2001:db8::1] may\n[2001:DB8::1] encrypt\n', 2, '[2001:db8::1] is listed twice, at lines 1 and 2'],
    ['bücher.example may\nxn--bcher-kva.example may\n', 2, 'xn--bcher-kva.example is listed twice, at lines 1 and 2'],
  ])('duplicates name both lines: %j', (text, line, message) => {
    expect(problemsOf(text)).toEqual([{ file: 'policy.txt', line, message }]);
  });

  it('[host] and [host]:port, and example.com and .example.com, are different keys', () => {
    const table = createPolicyTable('[mx.example] may\n[mx.example]:25 encrypt\nexample.com may\n.example.com encrypt\n');
    expect(table.keys()).toEqual(['[mx.example]', '[mx.example]:25', 'example.com', '.example.com']);
  });
});

describe('attributes accepted', () => {
  it.each<[string, Omit<Policy, 'source'>]>([
    ['example.com none', { level: 'none' }],
    ['example.com MAY', { level: 'may' }],
    ['example.com may protocols=!SSLv2:!SSLv3', { level: 'may', protocols: ['!SSLv2', '!SSLv3'] }],
    ['example.com encrypt protocols=>=TLSv1.2', { level: 'encrypt', protocols: ['>=TLSv1.2'] }],
    ['example.com encrypt protocols=>=TLSv1', { level: 'encrypt', protocols: ['>=TLSv1'] }],
    ['example.com verify protocols=>=TLSv1.2', { level: 'verify', protocols: ['>=TLSv1.2'] }],
    ['example.com encrypt protocols=>=tlsv1.2:<=TLSV1.3', { level: 'encrypt', protocols: ['>=TLSv1.2', '<=TLSv1.3'] }],
    ['example.com encrypt protocols=>=0x0303:<=0304', { level: 'encrypt', protocols: ['>=TLSv1.2', '<=TLSv1.3'] }],
    ['example.com encrypt protocols=TLSv1.2:TLSv1.3', { level: 'encrypt', protocols: ['TLSv1.2', 'TLSv1.3'] }],
    ['example.com encrypt protocols=>=None', { level: 'encrypt', protocols: [] }],
    ['example.com encrypt protocols=', { level: 'encrypt', protocols: [] }],
    ['example.com verify ciphers=high', { level: 'verify', ciphers: 'high' }],
    ['example.com may ciphers=MEDIUM', { level: 'may', ciphers: 'medium' }],
    ['example.com encrypt ciphers=low', { level: 'encrypt', ciphers: 'low' }],
    ['example.com encrypt ciphers=export', { level: 'encrypt', ciphers: 'export' }],
    ['example.com encrypt ciphers=null', { level: 'encrypt', ciphers: 'null' }],
    ['example.com encrypt exclude=aNULL:RC4:MD5', { level: 'encrypt', exclude: ['aNULL', 'RC4', 'MD5'] }],
    ['example.com encrypt exclude=', { level: 'encrypt', exclude: [] }],
    ['example.com may servername=hostname', { level: 'may', servername: 'hostname' }],
    ['example.com may servername=NEXTHOP', { level: 'may', servername: 'nexthop' }],
    ['example.com encrypt servername=Mail.Example.COM', { level: 'encrypt', servername: 'mail.example.com' }],
    ['example.com encrypt servername=bücher.example', { level: 'encrypt', servername: 'xn--bcher-kva.example' }],
    ['example.com verify match=hostname', { level: 'verify', match: ['hostname'] }],
    ['example.com verify match=hostname:nexthop:dot-nexthop', { level: 'verify', match: ['hostname', 'nexthop', 'dot-nexthop'] }],
    ['.example.net secure match=.example.net:example.net', { level: 'secure', match: ['.example.net', 'example.net'] }],
    ['example.com secure match=example.com match=.example.com', { level: 'secure', match: ['example.com', '.example.com'] }],
    ['example.com secure match=mx.example.com:', { level: 'secure', match: ['mx.example.com'] }],
    ['[mx.example] fingerprint match=' + SHA256, { level: 'fingerprint', match: [SHA256] }],
    ['[mx.example] fingerprint match=' + SHA256 + '|' + SHA1, { level: 'fingerprint', match: [SHA256, SHA1] }],
    ['[mx.example] fingerprint match=' + SHA256_BARE, { level: 'fingerprint', match: [SHA256_BARE] }],
    ['[mx.example] fingerprint match=' + 'ab'.repeat(16), { level: 'fingerprint', match: ['ab'.repeat(16)] }],
    ['[mx.example] fingerprint match=' + 'ab'.repeat(64), { level: 'fingerprint', match: ['ab'.repeat(64)] }],
    ['[mx.example] fingerprint match=' + 'ab:cd' + 'ef'.repeat(18), { level: 'fingerprint', match: ['ab:cd' + 'ef'.repeat(18)] }],
    ['example.com verify cafile=/etc/ssl/private-ca.pem', { level: 'verify', caFile: '/etc/ssl/private-ca.pem' }],
    ['example.com secure cafile=ca.pem', { level: 'secure', caFile: 'ca.pem' }],
    ['example.com may cert_file=c.pem key_file=k.pem', { level: 'may', certFile: 'c.pem', keyFile: 'k.pem' }],
    ['example.com dane-only key_file=k.pem cert_file=c.pem', { level: 'dane-only', certFile: 'c.pem', keyFile: 'k.pem' }],
    ['example.com dane fallback=encrypt', { level: 'dane', fallback: 'encrypt' }],
    ['example.com dane-only fallback=may', { level: 'dane-only', fallback: 'may' }],
    ['example.com verify fallback=None', { level: 'verify', fallback: 'none' }],
    ['example.com secure fallback=encrypt', { level: 'secure', fallback: 'encrypt' }],
    ['[mx.example] fingerprint match=' + SHA1 + ' fallback=may', { level: 'fingerprint', match: [SHA1], fallback: 'may' }],
    ['example.com may shadow=encrypt', { level: 'may', shadow: 'encrypt' }],
    ['example.com encrypt shadow=dane', { level: 'encrypt', shadow: 'dane' }],
    ['example.com dane shadow=dane-only', { level: 'dane', shadow: 'dane-only' }],
    ['example.com dane-only shadow=verify', { level: 'dane-only', shadow: 'verify' }],
    ['example.com encrypt shadow=secure match=nexthop', { level: 'encrypt', shadow: 'secure', match: ['nexthop'] }],
    ['example.com may shadow=verify cafile=ca.pem', { level: 'may', shadow: 'verify', caFile: 'ca.pem' }],
    ['example.com encrypt shadow=fingerprint match=' + SHA1, { level: 'encrypt', shadow: 'fingerprint', match: [SHA1] }],
    ['example.com may tempfail_tryclear=yes', { level: 'may', tempfailTryclear: true }],
    ['example.com may tempfail_tryclear=FALSE', { level: 'may', tempfailTryclear: false }],
    ['example.com dane tempfail_tryclear=no', { level: 'dane', tempfailTryclear: false }],
    ['example.com verify tempfail_tryclear=true', { level: 'verify', tempfailTryclear: true }],
    ['example.com verify fallback=may tempfail_tryclear=true', { level: 'verify', fallback: 'may', tempfailTryclear: true }],
    ['example.com encrypt PROTOCOLS=TLSv1.3', { level: 'encrypt', protocols: ['TLSv1.3'] }],
    ['example.com verify CAfile=ca.pem Match=nexthop', { level: 'verify', caFile: 'ca.pem', match: ['nexthop'] }],
  ])('%s', (line, want) => {
    expect(entryOf(line)).toEqual(want);
  });

  it('freezes the policies and their lists', () => {
    const p = createPolicyTable('example.com secure match=nexthop:dot-nexthop\n').get('example.com')!;
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.match)).toBe(true);
  });
});

describe('attributes rejected', () => {
  const K = 'example.com';
  it.each([
    // Postfix warns about and ignores any attribute with TLS disabled; here it is an error.
    ['none protocols=TLSv1.2', 'attribute "protocols" is not allowed at level "none" for example.com (TLS is disabled)'],
    ['none shadow=may', 'attribute "shadow" is not allowed at level "none" for example.com (TLS is disabled)'],
    ['none tempfail_tryclear=yes', 'attribute "tempfail_tryclear" is not allowed at level "none" for example.com (TLS is disabled)'],
    // match
    ['may match=nexthop', 'attribute "match" is not allowed at level "may" for example.com (only fingerprint, verify and secure use it)'],
    ['encrypt match=nexthop', 'attribute "match" is not allowed at level "encrypt" for example.com (only fingerprint, verify and secure use it)'],
    ['dane match=nexthop', 'attribute "match" is not allowed at level "dane" for example.com (only fingerprint, verify and secure use it)'],
    ['dane-only match=nexthop', 'attribute "match" is not allowed at level "dane-only" for example.com (only fingerprint, verify and secure use it)'],
    ['verify match=', 'attribute "match" has an empty value for example.com'],
    [
      'secure match=exa_mple!.com',
      'invalid match "exa_mple!.com": invalid character "!" (expected hostname, nexthop, dot-nexthop, a domain or .domain) for example.com',
    ],
    ['secure match=..example.com', 'invalid match "..example.com": empty label (expected hostname, nexthop, dot-nexthop, a domain or .domain) for example.com'],
    ['fingerprint', 'level "fingerprint" for example.com needs at least one match=<digest>'],
    ['encrypt shadow=fingerprint', 'shadow level "fingerprint" for example.com needs at least one match=<digest>'],
    ['fingerprint match=zz:11', 'malformed fingerprint "zz:11" (expected hex digit pairs, optionally separated by colons) for example.com'],
    ['fingerprint match=abc', 'malformed fingerprint "abc" (expected hex digit pairs, optionally separated by colons) for example.com'],
    [`fingerprint match=:${SHA1}`, `malformed fingerprint ":${SHA1}" (expected hex digit pairs, optionally separated by colons) for example.com`],
    [`fingerprint match=${SHA1}:`, `malformed fingerprint "${SHA1}:" (expected hex digit pairs, optionally separated by colons) for example.com`],
    ['fingerprint match=AB:CD', 'fingerprint "AB:CD" has 2 bytes, the length of no digest (expected 16, 20, 28, 32, 48, 64) for example.com'],
    [
      `fingerprint match=${SHA1}:${SHA1}`,
      `fingerprint "${SHA1}:${SHA1}" has 40 bytes, the length of no digest (expected 16, 20, 28, 32, 48, 64) for example.com`,
    ],
    // protocols, ciphers, exclude
    [
      'encrypt protocols=TLSv1.4',
      'unknown protocol "TLSv1.4" for example.com (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, with an optional "!", or ">=" / "<=" and a version)',
    ],
    [
      'encrypt protocols=>=SSLv2',
      'unknown protocol ">=SSLv2" for example.com (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, with an optional "!", or ">=" / "<=" and a version)',
    ],
    [
      'encrypt protocols=>=0305',
      'unknown protocol ">=0305" for example.com (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, with an optional "!", or ">=" / "<=" and a version)',
    ],
    [
      'encrypt protocols=>TLSv1.2',
      'unknown protocol ">TLSv1.2" for example.com (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, with an optional "!", or ">=" / "<=" and a version)',
    ],
    // TLSv1 and TLSv1.1 need OpenSSL 3's security level 0, lowered only at may and encrypt.
    ...(['dane', 'dane-only', 'verify', 'secure'] as const).map((level) => [
      `${level} protocols=<=TLSv1.2:!TLSv1`,
      `protocols "<=TLSv1.2:!TLSv1" for example.com allows TLSv1.1, which OpenSSL 3 negotiates only at security level 0, and level "${level}" never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destination level encrypt`,
    ]),
    [
      `fingerprint match=${SHA1} protocols=TLSv1`,
      'protocols "TLSv1" for example.com allows TLSv1, which OpenSSL 3 negotiates only at security level 0, and level "fingerprint" never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destination level encrypt',
    ],
    ['encrypt ciphers=strong', 'unknown cipher grade "strong" for example.com (expected one of high, medium, low, export, null)'],
    ['encrypt ciphers=HIGH:!aNULL', 'unknown cipher grade "HIGH:!aNULL" for example.com (expected one of high, medium, low, export, null)'],
    ['encrypt ciphers=', 'attribute "ciphers" has an empty value for example.com'],
    ['encrypt exclude=!RC4', 'invalid cipher exclusion "!RC4" for example.com (no leading "!", "+", "-" or "@")'],
    ['encrypt exclude=RC4:@STRENGTH', 'invalid cipher exclusion "@STRENGTH" for example.com (no leading "!", "+", "-" or "@")'],
    // servername
    ['encrypt servername=', 'attribute "servername" has an empty value for example.com'],
    [
      'encrypt servername=bad!name',
      'servername "bad!name" for example.com is not a valid host name: invalid character "!" (expected hostname, nexthop or a DNS name)',
    ],
    [
      'encrypt servername=192.0.2.1',
      'servername "192.0.2.1" for example.com is not a valid host name: numeric name (write an IP address in brackets, as [192.0.2.1]) (expected hostname, nexthop or a DNS name)',
    ],
    // cafile, cert_file, key_file
    ['encrypt cafile=ca.pem', 'attribute "cafile" is not allowed at level "encrypt" for example.com (only verify and secure check CA signatures)'],
    [
      'fingerprint match=' + SHA1 + ' cafile=ca.pem',
      'attribute "cafile" is not allowed at level "fingerprint" for example.com (only verify and secure check CA signatures)',
    ],
    ['dane cafile=ca.pem', 'attribute "cafile" is not allowed at level "dane" for example.com (only verify and secure check CA signatures)'],
    ['verify cafile=', 'attribute "cafile" has an empty value for example.com'],
    ['may cert_file=c.pem', 'attribute "cert_file" for example.com needs key_file too'],
    ['may key_file=k.pem', 'attribute "key_file" for example.com needs cert_file too'],
    // fallback
    [
      'may fallback=encrypt',
      'attribute "fallback" is not allowed at level "may" for example.com (only dane, dane-only, fingerprint, verify and secure have a fallback)',
    ],
    [
      'encrypt fallback=may',
      'attribute "fallback" is not allowed at level "encrypt" for example.com (only dane, dane-only, fingerprint, verify and secure have a fallback)',
    ],
    ['verify fallback=verify', 'invalid fallback "verify" for example.com (expected may, encrypt or none)'],
    ['verify fallback=', 'attribute "fallback" has an empty value for example.com'],
    // shadow
    ['may shadow=verfy', `unknown shadow level "verfy" for example.com (${EXPECTED})`],
    ['encrypt shadow=may', 'shadow level "may" for example.com is not stricter than level "encrypt"'],
    ['encrypt shadow=encrypt', 'shadow level "encrypt" for example.com is not stricter than level "encrypt"'],
    ['verify shadow=secure', 'shadow level "secure" for example.com is not stricter than level "verify"'],
    ['secure shadow=fingerprint', 'shadow level "fingerprint" for example.com is not stricter than level "secure"'],
    ['verify match=' + SHA1, `match "${SHA1}" for example.com is a fingerprint, but level "verify" matches names`],
    ['dane-only shadow=dane', 'shadow level "dane" for example.com is not stricter than level "dane-only"'],
    // tempfail_tryclear
    ['may tempfail_tryclear=maybe', 'invalid tempfail_tryclear "maybe" for example.com (expected yes, no, true or false)'],
    ['encrypt tempfail_tryclear=yes', 'attribute "tempfail_tryclear" is not allowed at level "encrypt" for example.com (it never sends in clear)'],
    [
      'verify fallback=encrypt tempfail_tryclear=yes',
      'attribute "tempfail_tryclear" is not allowed at level "verify" for example.com (fallback=encrypt never sends in clear)',
    ],
    [
      'dane-only fallback=none tempfail_tryclear=no',
      'attribute "tempfail_tryclear" is not allowed at level "dane-only" for example.com (fallback=none never sends in clear)',
    ],
    // names
    [
      'encrypt foo=bar',
      'unknown attribute "foo" for example.com (expected one of match, protocols, ciphers, exclude, servername, cafile, cert_file, key_file, fallback, shadow, tempfail_tryclear, policy_type, policy_domain, policy_ttl, policy_string, mx_host_pattern, policy_failure)',
    ],
    [
      'encrypt certFile=c.pem',
      'unknown attribute "certFile" for example.com (expected one of match, protocols, ciphers, exclude, servername, cafile, cert_file, key_file, fallback, shadow, tempfail_tryclear, policy_type, policy_domain, policy_ttl, policy_string, mx_host_pattern, policy_failure)',
    ],
    ['verify tafile=ta.pem', 'attribute "tafile" for example.com is a Postfix attribute this library does not support (use cafile)'],
    ['encrypt connection_reuse=yes', 'attribute "connection_reuse" for example.com is a Postfix attribute this library does not support'],
    // repeats
    ['encrypt ciphers=high ciphers=medium', 'attribute "ciphers" is given more than once for example.com'],
    ['encrypt protocols=TLSv1.2 protocols=TLSv1.3', 'attribute "protocols" is given more than once for example.com'],
    ['encrypt exclude=RC4 exclude=MD5', 'attribute "exclude" is given more than once for example.com'],
    ['encrypt servername=hostname servername=nexthop', 'attribute "servername" is given more than once for example.com'],
    ['verify fallback=may fallback=encrypt', 'attribute "fallback" is given more than once for example.com'],
    ['may shadow=encrypt shadow=dane', 'attribute "shadow" is given more than once for example.com'],
    ['verify cafile=a.pem cafile=b.pem', 'attribute "cafile" is given more than once for example.com'],
    ['may tempfail_tryclear=yes tempfail_tryclear=no', 'attribute "tempfail_tryclear" is given more than once for example.com'],
  ])(`${K} %s`, (rest, message) => {
    expect(problemsOf(`${K} ${rest}\n`)).toEqual([{ file: 'policy.txt', line: 1, message }]);
  });

  it('reports every problem of every line, in line order', () => {
    const text = [
      'example.com verfy', // 1
      'example.net encrypt match=nexthop ciphers=strong', // 2
      '# fine', // 3
      'example.org secure', // 4
      '[mx.example]:99999 may', // 5
      'example.net may', // 6
      'bad!key verfy', // 7
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      { file: 'policy.txt', line: 1, message: `unknown level "verfy" for example.com (${EXPECTED})` },
      {
        file: 'policy.txt',
        line: 2,
        message: 'attribute "match" is not allowed at level "encrypt" for example.net (only fingerprint, verify and secure use it)',
      },
      { file: 'policy.txt', line: 2, message: 'unknown cipher grade "strong" for example.net (expected one of high, medium, low, export, null)' },
      { file: 'policy.txt', line: 5, message: 'invalid destination "[mx.example]:99999": port 99999 out of range 1-65535' },
      { file: 'policy.txt', line: 6, message: 'example.net is listed twice, at lines 2 and 6' },
      { file: 'policy.txt', line: 7, message: 'invalid destination "bad!key": invalid character "!"' },
      { file: 'policy.txt', line: 7, message: `unknown level "verfy" for bad!key (${EXPECTED})` },
    ]);
  });

  it('throws one PolicyError whose message lists the first three problems', () => {
    const text = 'a.example verfy\nb.example may match=x\nc.example x\nd.example y\ne.example z\n';
    const err = thrown(() => createPolicyTable(text));
    expect(err).toBeInstanceOf(PolicyError);
    const e = err as PolicyError;
    expect(e.name).toBe('PolicyError');
    expect(e.code).toBe('EPOLICY');
    expect(e.temporary).toBe(false);
    expect(e.file).toBe('<text>');
    expect(e.line).toBe(1);
    expect(e.problems).toHaveLength(5);
    expect(e.message).toBe(
      `<text>:1: unknown level "verfy" for a.example (${EXPECTED}); ` +
        '<text>:2: attribute "match" is not allowed at level "may" for b.example (only fingerprint, verify and secure use it); ' +
        `<text>:3: unknown level "x" for c.example (${EXPECTED}); and 2 more`,
    );
  });

  it('a single problem is the whole message', () => {
    expect(() => createPolicyTable('example.com verfy\n')).toThrow(
      new PolicyError([{ file: '<text>', line: 1, message: `unknown level "verfy" for example.com (${EXPECTED})` }]),
    );
    expect(() => createPolicyTable('example.com verfy\n')).toThrow(`<text>:1: unknown level "verfy" for example.com (${EXPECTED})`);
  });
});

describe('object form', () => {
  it('accepts a level or { level, ...camelCase attributes }', () => {
    const table = createPolicyTable({
      'example.com': 'secure',
      '.example.org': { level: 'encrypt' },
      '[mx.example.net]:25': { level: 'fingerprint', match: [SHA256, SHA1 + '|' + SHA256_BARE] },
      'example.edu': {
        level: 'verify',
        match: 'hostname:nexthop',
        protocols: ['>=TLSv1.2', '!SSLv3'],
        ciphers: 'high',
        exclude: 'RC4:MD5',
        servername: 'hostname',
        caFile: 'ca.pem',
        certFile: 'c.pem',
        keyFile: 'k.pem',
        fallback: 'may',
        tempfailTryclear: true,
      },
      'example.info': { level: 'may', shadow: 'dane', tempfailTryclear: 'no' },
    });
    expect(table.source).toBe('<object>');
    expect(table.entries()).toEqual([
      ['example.com', { level: 'secure', source: '<object> example.com' }],
      ['.example.org', { level: 'encrypt', source: '<object> .example.org' }],
      ['[mx.example.net]:25', { level: 'fingerprint', match: [SHA256, SHA1, SHA256_BARE], source: '<object> [mx.example.net]:25' }],
      [
        'example.edu',
        {
          level: 'verify',
          match: ['hostname', 'nexthop'],
          protocols: ['>=TLSv1.2', '!SSLv3'],
          ciphers: 'high',
          exclude: ['RC4', 'MD5'],
          servername: 'hostname',
          caFile: 'ca.pem',
          certFile: 'c.pem',
          keyFile: 'k.pem',
          fallback: 'may',
          tempfailTryclear: true,
          source: '<object> example.edu',
        },
      ],
      ['example.info', { level: 'may', shadow: 'dane', tempfailTryclear: false, source: '<object> example.info' }],
    ]);
  });

  it.each<[Record<string, unknown>, number, string]>([
    [{ 'example.com': 'verfy' }, 1, `unknown level "verfy" for example.com (${EXPECTED})`],
    [{ 'a.example': 'may', 'example.com': { match: 'nexthop' } }, 2, `no level for example.com (${EXPECTED})`],
    [{ 'example.com': { level: 3 } }, 1, 'level for example.com must be a string'],
    [{ 'example.com': 3 }, 1, 'entry for example.com must be a level name or { level, ... }'],
    [
      { 'example.com': { level: 'may', match: 'nexthop' } },
      1,
      'attribute "match" is not allowed at level "may" for example.com (only fingerprint, verify and secure use it)',
    ],
    [{ 'example.com': { level: 'fingerprint' } }, 1, 'level "fingerprint" for example.com needs at least one match=<digest>'],
    [{ 'example.com': { level: 'may', certFile: 'c.pem' } }, 1, 'attribute "certFile" for example.com needs keyFile too'],
    [{ 'example.com': { level: 'may', keyFile: 'k.pem' } }, 1, 'attribute "keyFile" for example.com needs certFile too'],
    [
      { 'example.com': { level: 'may', cert_file: 'c.pem' } },
      1,
      'unknown attribute "cert_file" for example.com (expected one of level, match, protocols, ciphers, exclude, servername, caFile, certFile, keyFile, fallback, shadow, tempfailTryclear, policyType, policyDomain, policyTtl, policyString, mxHostPattern, policyFailure)',
    ],
    [{ 'example.com': { level: 'may', tempfailTryclear: 1 } }, 1, 'attribute "tempfailTryclear" for example.com must be a boolean'],
    [{ 'example.com': { level: 'may', caFile: ['a'] } }, 1, 'attribute "caFile" for example.com must be a string'],
    [{ 'example.com': { level: 'verify', match: [1] } }, 1, 'attribute "match" for example.com must be a string or an array of strings'],
    [
      { 'example.com': { level: 'encrypt', tempfailTryclear: true } },
      1,
      'attribute "tempfailTryclear" is not allowed at level "encrypt" for example.com (it never sends in clear)',
    ],
    [
      { 'example.com': { level: 'may', tempfailTryclear: 'sometimes' } },
      1,
      'invalid tempfailTryclear "sometimes" for example.com (expected yes, no, true or false)',
    ],
    [{ 'example.com': 'may', 'EXAMPLE.COM.': 'encrypt' }, 2, 'example.com is listed twice, at entries 1 and 2'],
    [{ 'example.com:0': 'may' }, 1, 'invalid destination "example.com:0": port 0 out of range 1-65535'],
  ])('rejects %j', (obj, line, message) => {
    expect(checkPolicyTable(obj as never)).toEqual({ problems: [{ file: '<object>', line, message }], table: undefined });
  });
});

describe('inputs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('undefined, null and the empty string give an empty table', () => {
    for (const input of [undefined, null, '']) {
      const t = createPolicyTable(input);
      expect(t).toBeInstanceOf(PolicyTable);
      expect(t.size).toBe(0);
      expect(t.source).toBe('<none>');
    }
  });

  it('a string with white space is text; a PolicyTable passes through', () => {
    const t = createPolicyTable('example.com secure');
    expect(t.get('example.com')).toEqual({ level: 'secure', source: '<text>:1' });
    expect(createPolicyTable(t)).toBe(t);
  });

  it('reads { file } and a bare path, naming the file in sources and messages', () => {
    const good = join(dir, 'tls_policy');
    writeFileSync(good, '# policy\nexample.com secure\n[mx.example]:587 encrypt\n');
    for (const input of [{ file: good }, good]) {
      const t = createPolicyTable(input);
      expect(t.source).toBe(good);
      expect(t.get('example.com')).toEqual({ level: 'secure', source: `${good}:2` });
      expect(t.get('[mx.example]:587')).toEqual({ level: 'encrypt', source: `${good}:3` });
    }
    const bad = join(dir, 'bad_policy');
    writeFileSync(bad, 'example.com secure\n\nexample.net verfy\n');
    expect(() => createPolicyTable({ file: bad })).toThrow(`${bad}:3: unknown level "verfy" for example.net (${EXPECTED})`);
  });

  it('a file that cannot be read is a problem at line 0', () => {
    const missing = join(dir, 'missing');
    expect(checkPolicyTable({ file: missing })).toEqual({
      problems: [{ file: missing, line: 0, message: 'cannot read the policy file: ENOENT' }],
      table: undefined,
    });
    expect(() => createPolicyTable(missing)).toThrow(`${missing}: cannot read the policy file: ENOENT`);
  });

  it('rejects other input types', () => {
    expect(checkPolicyTable(42 as never).problems).toEqual([{ file: '<input>', line: 0, message: 'a policy must be text, an object or { file }, not number' }]);
  });
});

describe('lookup', () => {
  const table = createPolicyTable(
    [
      'example.com secure', // 1
      '.example.com encrypt', // 2
      '.b.example.com verify', // 3
      '.com may', // 4
      'xn--bcher-kva.example dane', // 5
      '[smtp.example.net]:587 fingerprint match=' + SHA1, // 6
      '[smtp.example.net] encrypt', // 7
      '[relay.example.org]:25 verify', // 8
      '[2001:db8::25] dane-only', // 9
      '[192.0.2.25]:2525 encrypt', // 10
      '.example.org none', // 11
      'smtp.example.org:587 secure', // 12
      'mail.example.net secure', // 13
    ].join('\n'),
    // a one-line string without white space would be a file name, so the text has newlines
  );
  const dflt = defaultPolicy('may');

  it.each<[NextHop, string[]]>([
    [{ kind: 'domain', domain: 'a.b.example.com' }, ['a.b.example.com', '.b.example.com', '.example.com', '.com']],
    [{ kind: 'domain', domain: 'Example.COM.' }, ['example.com', '.com']],
    [{ kind: 'domain', domain: 'bücher.example' }, ['xn--bcher-kva.example', '.example']],
    [{ kind: 'domain', domain: 'localhost' }, ['localhost']],
    [{ kind: 'domain', domain: 'bad domain' }, ['bad domain']],
    [{ kind: 'host', host: 'SMTP.example.net', port: 587 }, ['[smtp.example.net]:587', '[smtp.example.net]']],
    [{ kind: 'host', host: '[smtp.example.net]', port: 25 }, ['[smtp.example.net]:25', '[smtp.example.net]']],
    [{ kind: 'host', host: 'smtp.example.net' }, ['[smtp.example.net]']],
    [{ kind: 'host', host: '2001:DB8:0::25', port: 25 }, ['[2001:db8::25]:25', '[2001:db8::25]']],
    [{ kind: 'host', host: 'ipv6:2001:db8::25', port: 25 }, ['[2001:db8::25]:25', '[2001:db8::25]']],
    // a relay written without brackets: Postfix's keys for that form first (tls_policy_lookup())
    [
      { kind: 'relay', host: 'smtp.b.example.com', port: 25, written: 'host' },
      ['smtp.b.example.com', '.b.example.com', '.example.com', '.com', '[smtp.b.example.com]:25', '[smtp.b.example.com]'],
    ],
    [{ kind: 'relay', host: 'SMTP.example.com', port: 587, written: 'host:port' }, ['smtp.example.com:587', '[smtp.example.com]:587', '[smtp.example.com]']],
    [{ kind: 'relay', host: '192.0.2.25', port: 25, written: 'host' }, ['[192.0.2.25]:25', '[192.0.2.25]']],
    [{ kind: 'relay', host: '192.0.2.25', port: 2525, written: 'host:port' }, ['[192.0.2.25]:2525', '[192.0.2.25]']],
  ])('lookupKeys(%j)', (nexthop, keys) => {
    expect(lookupKeys(nexthop)).toEqual(keys);
  });

  it.each<[NextHop, Level, string]>([
    [{ kind: 'domain', domain: 'example.com' }, 'secure', '<text>:1'],
    [{ kind: 'domain', domain: 'mx.example.com' }, 'encrypt', '<text>:2'],
    [{ kind: 'domain', domain: 'a.b.example.com' }, 'verify', '<text>:3'],
    [{ kind: 'domain', domain: 'b.example.com' }, 'encrypt', '<text>:2'],
    [{ kind: 'domain', domain: 'x.y.b.example.com' }, 'verify', '<text>:3'],
    [{ kind: 'domain', domain: 'other.com' }, 'may', '<text>:4'],
    [{ kind: 'domain', domain: 'BÜCHER.example.' }, 'dane', '<text>:5'],
    [{ kind: 'domain', domain: 'example.org' }, 'may', 'default'],
    [{ kind: 'domain', domain: 'sub.example.org' }, 'none', '<text>:11'],
    [{ kind: 'domain', domain: 'example.net' }, 'may', 'default'],
    [{ kind: 'domain', domain: 'smtp.example.net' }, 'may', 'default'],
    [{ kind: 'host', host: 'smtp.example.net', port: 587 }, 'fingerprint', '<text>:6'],
    [{ kind: 'host', host: 'smtp.example.net', port: 25 }, 'encrypt', '<text>:7'],
    [{ kind: 'host', host: 'smtp.example.net', port: 465 }, 'encrypt', '<text>:7'],
    [{ kind: 'host', host: 'relay.example.org', port: 25 }, 'verify', '<text>:8'],
    [{ kind: 'host', host: 'relay.example.org', port: 587 }, 'may', 'default'],
    [{ kind: 'host', host: 'relay.example.org' }, 'may', 'default'],
    [{ kind: 'host', host: 'sub.example.com', port: 25 }, 'may', 'default'],
    [{ kind: 'host', host: '2001:db8:0:0:0:0:0:25', port: 25 }, 'dane-only', '<text>:9'],
    [{ kind: 'host', host: '192.0.2.25', port: 2525 }, 'encrypt', '<text>:10'],
    [{ kind: 'host', host: '192.0.2.25', port: 25 }, 'may', 'default'],
    // unbracketed relays: host walks its parents before the bracketed keys; host:port is one key
    [{ kind: 'relay', host: 'mx.b.example.com', port: 25, written: 'host' }, 'verify', '<text>:3'],
    [{ kind: 'relay', host: 'smtp.example.net', port: 587, written: 'host' }, 'fingerprint', '<text>:6'],
    [{ kind: 'relay', host: 'mail.example.net', port: 25, written: 'host' }, 'secure', '<text>:13'],
    [{ kind: 'relay', host: 'mail.example.net', port: 25 }, 'may', 'default'],
    [{ kind: 'relay', host: 'smtp.example.org', port: 587, written: 'host:port' }, 'secure', '<text>:12'],
    [{ kind: 'relay', host: 'smtp.example.org', port: 25, written: 'host:port' }, 'may', 'default'],
    [{ kind: 'relay', host: 'smtp.example.org', port: 587 }, 'may', 'default'],
    [{ kind: 'relay', host: 'smtp.example.net', port: 587, written: 'host:port' }, 'fingerprint', '<text>:6'],
  ])('%j -> %s (%s)', (nexthop, level, source) => {
    const p = lookupPolicy(table, nexthop, dflt);
    expect(p.level).toBe(level);
    expect(p.source).toBe(source);
  });

  it('returns the default policy object itself when nothing matches, also without a table', () => {
    expect(lookupPolicy(table, { kind: 'domain', domain: 'example.net' }, dflt)).toBe(dflt);
    expect(lookupPolicy(undefined, { kind: 'domain', domain: 'example.com' }, dflt)).toBe(dflt);
  });
});

describe('fallback levels', () => {
  it.each<[string | Record<string, string> | undefined, Record<string, string>]>([
    ['dane=encrypt, verify=may', { dane: 'encrypt', verify: 'may' }],
    ['dane=encrypt\n\tdane-only=encrypt,fingerprint=may  secure=ENCRYPT', { dane: 'encrypt', 'dane-only': 'encrypt', fingerprint: 'may', secure: 'encrypt' }],
    ['', {}],
    [undefined, {}],
    [
      { dane: 'encrypt', Verify: 'may' },
      { dane: 'encrypt', verify: 'may' },
    ],
  ])('parseFallbackMap(%j)', (input, want) => {
    const map = parseFallbackMap(input);
    expect(map).toEqual(want);
    expect(Object.isFrozen(map)).toBe(true);
  });

  it.each<[string | Record<string, unknown>, PolicyProblem[]]>([
    ['dane', [{ file: 'fallbackLevels', line: 1, message: 'malformed item "dane" (expected policy_level=fallback_level)' }]],
    ['=may', [{ file: 'fallbackLevels', line: 1, message: 'malformed item "=may" (expected policy_level=fallback_level)' }]],
    [
      'dane=encrypt encrypt=may',
      [{ file: 'fallbackLevels', line: 2, message: 'level "encrypt" cannot have a fallback level (only dane, dane-only, fingerprint, verify, secure can)' }],
    ],
    [
      'may=encrypt',
      [{ file: 'fallbackLevels', line: 1, message: 'level "may" cannot have a fallback level (only dane, dane-only, fingerprint, verify, secure can)' }],
    ],
    ['verfy=may', [{ file: 'fallbackLevels', line: 1, message: 'unknown level "verfy" (expected one of dane, dane-only, fingerprint, verify, secure)' }]],
    ['dane=none', [{ file: 'fallbackLevels', line: 1, message: 'invalid fallback level "none" for dane (expected encrypt or may)' }]],
    ['dane=verify', [{ file: 'fallbackLevels', line: 1, message: 'invalid fallback level "verify" for dane (expected encrypt or may)' }]],
    ['dane=', [{ file: 'fallbackLevels', line: 1, message: 'invalid fallback level "" for dane (expected encrypt or may)' }]],
    ['dane=may,verify=may,dane=encrypt', [{ file: 'fallbackLevels', line: 3, message: 'dane is given twice, at items 1 and 3' }]],
    [{ dane: 3 }, [{ file: 'fallbackLevels', line: 1, message: 'invalid fallback level 3 for dane (expected encrypt or may)' }]],
    [
      'x y=z dane=may',
      [
        { file: 'fallbackLevels', line: 1, message: 'malformed item "x" (expected policy_level=fallback_level)' },
        { file: 'fallbackLevels', line: 2, message: 'unknown level "y" (expected one of dane, dane-only, fingerprint, verify, secure)' },
      ],
    ],
  ])('rejects %j', (input, problems) => {
    expect(checkFallbackMap(input as never).problems).toEqual(problems);
  });

  it('throws a PolicyError named after the setting', () => {
    expect(() => parseFallbackMap('dane=none', 'smtp_tls_fallback_level')).toThrow(
      'smtp_tls_fallback_level:1: invalid fallback level "none" for dane (expected encrypt or may)',
    );
  });

  const map = parseFallbackMap('dane=encrypt verify=may secure=encrypt');
  it.each<[Omit<Policy, 'source'>, string | undefined]>([
    [{ level: 'verify' }, 'may'],
    [{ level: 'secure' }, 'encrypt'],
    [{ level: 'dane' }, 'encrypt'],
    [{ level: 'dane-only' }, undefined],
    [{ level: 'fingerprint', match: [SHA1] }, undefined],
    [{ level: 'verify', fallback: 'encrypt' }, 'encrypt'],
    [{ level: 'dane-only', fallback: 'may' }, 'may'],
    [{ level: 'verify', fallback: 'none' }, undefined],
    [{ level: 'secure', fallback: 'none' }, undefined],
    [{ level: 'encrypt' }, undefined],
    [{ level: 'may' }, undefined],
    [{ level: 'none' }, undefined],
  ])('fallbackFor(%j)', (policy, want) => {
    expect(fallbackFor({ ...policy, source: 'test' }, map)).toBe(want);
  });

  it('without a global map only the attribute counts', () => {
    expect(fallbackFor({ level: 'verify', source: 't' })).toBeUndefined();
    expect(fallbackFor({ level: 'verify', fallback: 'may', source: 't' })).toBe('may');
  });

  it('the table attribute and the map work together', () => {
    const table = createPolicyTable('example.com verify fallback=none\nexample.net verify\n');
    const d = defaultPolicy('may');
    expect(fallbackFor(lookupPolicy(table, { kind: 'domain', domain: 'example.com' }, d), map)).toBeUndefined();
    expect(fallbackFor(lookupPolicy(table, { kind: 'domain', domain: 'example.net' }, d), map)).toBe('may');
  });
});

describe('Exim host lists', () => {
  const host = (name: string, address: string) => ({ name, address });

  it.each<[string[], string, string, boolean]>([
    [['*'], 'mx.example.com', '192.0.2.1', true],
    [[], 'mx.example.com', '192.0.2.1', false],
    [['mx.example.com'], 'MX.Example.com.', '192.0.2.1', true],
    [['mx.example.com'], 'mx2.example.com', '192.0.2.1', false],
    [['*.example.com'], 'mx.example.com', '192.0.2.1', true],
    [['*.example.com'], 'a.b.example.com', '192.0.2.1', true],
    [['*.example.com'], 'example.com', '192.0.2.1', false],
    [['*.example.com'], 'badexample.com', '192.0.2.1', false],
    [['*example.com'], 'badexample.com', '192.0.2.1', true],
    [['*.bücher.example'], 'mx.xn--bcher-kva.example', '192.0.2.1', true],
    [['*.xn--bcher-kva.example'], 'mx.bücher.example', '192.0.2.1', true],
    [['192.0.2.1'], 'mx.example.com', '192.0.2.1', true],
    [['192.0.2.1'], 'mx.example.com', '192.0.2.2', false],
    [['192.0.2.0/24'], 'mx.example.com', '192.0.2.200', true],
    [['192.0.2.0/24'], 'mx.example.com', '192.0.3.1', false],
    [['192.168.23.236/31'], 'mx', '192.168.23.237', true],
    [['192.168.23.236/31'], 'mx', '192.168.23.238', false],
    [['10.0.0.0/8'], 'mx', '10.255.255.255', true],
    [['0.0.0.0/0'], 'mx', '203.0.113.9', true],
    [['0.0.0.0/0'], 'mx', '2001:db8::1', false],
    [['192.0.2.0/24'], 'mx', '::ffff:192.0.2.7', true],
    [['2001:db8::/32'], 'mx', '2001:db8:ffff::1', true],
    [['2001:db8::/32'], 'mx', '2001:db9::1', false],
    [['2001:db8::1'], 'mx', '2001:DB8:0:0:0:0:0:1', true],
    [['2001:db8::/126'], 'mx', '2001:db8::3', true],
    [['2001:db8::/126'], 'mx', '2001:db8::4', false],
    [['192.0.2.1'], 'mx', '', false],
    // negation: the first match wins
    [['!mx1.example.com', '*.example.com'], 'mx1.example.com', '192.0.2.1', false],
    [['!mx1.example.com', '*.example.com'], 'mx2.example.com', '192.0.2.1', true],
    [['*.example.com', '!mx1.example.com'], 'mx1.example.com', '192.0.2.1', true],
    [['!192.0.2.5', '192.0.2.0/24'], 'mx', '192.0.2.5', false],
    [['!192.0.2.5', '192.0.2.0/24'], 'mx', '192.0.2.6', true],
    [['! 192.0.2.5', '192.0.2.0/24'], 'mx', '192.0.2.5', false],
    // a list whose last item is negative ends with an implicit *
    [['!*.example.com'], 'mx.example.net', '192.0.2.1', true],
    [['!*.example.com'], 'mx.example.com', '192.0.2.1', false],
    [['!*.example.com', 'mx.example.org'], 'mx.example.net', '192.0.2.1', false],
    [['!192.0.2.0/24', '!*.example.com'], 'mx.example.net', '198.51.100.1', true],
  ])('%j has %s [%s]: %s', (patterns, name, address, want) => {
    expect(inHostList(parseHostList(patterns, 'hostsRequireTls'), host(name, address))).toBe(want);
  });

  it.each<[string, string]>([
    ['192.0.2.0/33', 'bad mask length "33" (expected 0-32) in pattern "192.0.2.0/33"'],
    ['2001:db8::/129', 'bad mask length "129" (expected 0-128) in pattern "2001:db8::/129"'],
    ['192.0.2.0/', 'bad mask length "" (expected 0-32) in pattern "192.0.2.0/"'],
    ['192.0.2/24', 'malformed IPv4 address in CIDR in pattern "192.0.2/24"'],
    ['2001:db8::g/32', 'malformed IPv6 address in CIDR in pattern "2001:db8::g/32"'],
    ['1.2.3', 'malformed IPv4 address in pattern "1.2.3"'],
    ['192.0.2.256', 'malformed IPv4 address in pattern "192.0.2.256"'],
    ['2001:db8:::1', 'malformed IPv6 address in pattern "2001:db8:::1"'],
    ['', 'empty pattern (it matches only local SMTP input in Exim, never a server) in pattern ""'],
    ['!', 'empty pattern (it matches only local SMTP input in Exim, never a server) in pattern "!"'],
    ['^mx\\d+\\.example\\.com$', 'regular expressions are not supported in pattern "^mx\\d+\\.example\\.com$"'],
    ['net24-lsearch;/etc/nets', 'lookups are not supported in pattern "net24-lsearch;/etc/nets"'],
    ['@[]', '"@" patterns are not supported in pattern "@[]"'],
    ['+relay_hosts', 'named lists are not supported in pattern "+relay_hosts"'],
    ['/etc/exim/hosts', 'file names are not supported in pattern "/etc/exim/hosts"'],
    ['<; 192.0.2.1', 'a list separator is not needed in an array in pattern "<; 192.0.2.1"'],
    ['*.exa mple.com', 'invalid wildcard: invalid character " " in pattern "*.exa mple.com"'],
    ['mx..example.com', 'invalid host name: empty label in pattern "mx..example.com"'],
  ])('rejects %j', (pattern, message) => {
    expect(checkHostList(['*.ok.example', pattern], 'hostsAvoidTls').problems).toEqual([{ file: 'hostsAvoidTls', line: 2, message }]);
  });

  it('a bad CIDR throws a PolicyError naming the option, from parseHostList and applyHostLists', () => {
    expect(() => parseHostList(['192.0.2.0/33'], 'hostsRequireTls')).toThrow(
      'hostsRequireTls:1: bad mask length "33" (expected 0-32) in pattern "192.0.2.0/33"',
    );
    expect(() =>
      applyHostLists({ level: 'may', source: 'default' }, host('mx', '192.0.2.1'), { hostsRequireTls: ['*'], hostsAvoidTls: ['10.0.0.0/99'] }),
    ).toThrow('hostsAvoidTls:1: bad mask length "99" (expected 0-32) in pattern "10.0.0.0/99"');
  });

  const MX = host('mx1.example.com', '192.0.2.1');
  it.each<[Policy, { hostsRequireTls?: string[]; hostsAvoidTls?: string[] }, Policy]>([
    // hostsRequireTls raises none and may to encrypt
    [{ level: 'none', source: 'default' }, { hostsRequireTls: ['*.example.com'] }, { level: 'encrypt', source: 'hostsRequireTls' }],
    [
      { level: 'may', protocols: ['>=TLSv1.2'], tempfailTryclear: true, source: 't:1' },
      { hostsRequireTls: ['192.0.2.0/24'] },
      { level: 'encrypt', protocols: ['>=TLSv1.2'], source: 'hostsRequireTls' },
    ],
    [{ level: 'may', shadow: 'encrypt', source: 't:1' }, { hostsRequireTls: ['*'] }, { level: 'encrypt', source: 'hostsRequireTls' }],
    [
      { level: 'may', shadow: 'verify', caFile: 'ca.pem', source: 't:1' },
      { hostsRequireTls: ['*'] },
      { level: 'encrypt', shadow: 'verify', caFile: 'ca.pem', source: 'hostsRequireTls' },
    ],
    // a level that already requires TLS stays
    // ... marked requireTls, so that no fallback to may can take TLS away
    [{ level: 'encrypt', source: 't:1' }, { hostsRequireTls: ['*'] }, { level: 'encrypt', requireTls: true, source: 't:1, hostsRequireTls' }],
    [{ level: 'verify', source: 't:1' }, { hostsRequireTls: ['*'] }, { level: 'verify', requireTls: true, source: 't:1, hostsRequireTls' }],
    // dane stays dane (TLSA still authenticates) but is marked: without usable TLSA it becomes encrypt, never may
    [{ level: 'dane', source: 't:1' }, { hostsRequireTls: ['*'] }, { level: 'dane', requireTls: true, source: 't:1, hostsRequireTls' }],
    // not in the list: unchanged
    [{ level: 'may', source: 't:1' }, { hostsRequireTls: ['*.example.net'] }, { level: 'may', source: 't:1' }],
    [{ level: 'may', source: 't:1' }, { hostsRequireTls: ['!mx1.example.com', '*'] }, { level: 'may', source: 't:1' }],
    // hostsAvoidTls lowers may to none
    [{ level: 'may', servername: 'hostname', source: 't:1' }, { hostsAvoidTls: ['mx1.example.com'] }, { level: 'none', source: 'hostsAvoidTls' }],
    [{ level: 'none', source: 'default' }, { hostsAvoidTls: ['*'] }, { level: 'none', source: 'default' }],
    [{ level: 'may', source: 't:1' }, { hostsAvoidTls: ['!192.0.2.1', '*'] }, { level: 'may', source: 't:1' }],
    // ... but never a level that requires TLS, nor dane
    [{ level: 'encrypt', source: 't:1' }, { hostsAvoidTls: ['*'] }, { level: 'encrypt', source: 't:1' }],
    [{ level: 'secure', source: 't:1' }, { hostsAvoidTls: ['*'] }, { level: 'secure', source: 't:1' }],
    [{ level: 'dane', source: 't:1' }, { hostsAvoidTls: ['*'] }, { level: 'dane', source: 't:1' }],
    // in both: hostsRequireTls wins, as in Exim
    [
      { level: 'may', source: 't:1' },
      { hostsRequireTls: ['*'], hostsAvoidTls: ['*'] },
      { level: 'encrypt', source: 'hostsRequireTls' },
    ],
    [
      { level: 'none', source: 't:1' },
      { hostsRequireTls: ['192.0.2.1'], hostsAvoidTls: ['*.example.com'] },
      { level: 'encrypt', source: 'hostsRequireTls' },
    ],
    [
      { level: 'may', source: 't:1' },
      { hostsRequireTls: ['10.0.0.0/8'], hostsAvoidTls: ['*.example.com'] },
      { level: 'none', source: 'hostsAvoidTls' },
    ],
    [{ level: 'may', source: 't:1' }, {}, { level: 'may', source: 't:1' }],
  ])('applyHostLists(%j, mx1.example.com[192.0.2.1], %j)', (policy, lists, want) => {
    const got = applyHostLists(policy, MX, lists);
    expect(got).toEqual(want);
    if (got !== policy) expect(Object.isFrozen(got)).toBe(true);
  });

  it('returns the same policy object when nothing changes', () => {
    const p: Policy = { level: 'verify', source: 't:1' };
    expect(applyHostLists(p, MX, { hostsAvoidTls: ['*'] })).toBe(p);
    expect(applyHostLists(p, MX, { hostsRequireTls: ['other.example'] })).toBe(p);
  });
});

describe('every level parses in the table', () => {
  it.each(LEVELS.filter((l) => l !== 'fingerprint'))('%s', (level) => {
    expect(entryOf(`example.com ${level}`)).toEqual({ level });
  });
});
