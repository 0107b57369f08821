/**
 * Trust anchors (lib/dnssec/anchors.ts): the built-in IANA root KSKs checked against Debian's
 * dns-root-data, anchor files in Unbound's zone-file form and BIND's statements, a parsed
 * anchor used to validate a signed key set, and one row per bad line with its line number.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT_ANCHOR_LINES, TrustAnchorError, parseTrustAnchors, rootTrustAnchors } from '../lib/dnssec/anchors.js';
import { Budget } from '../lib/dnssec/budget.js';
import { dsMatches, validateDnskeys } from '../lib/dnssec/keys.js';
import { nameToText } from '../lib/dnssec/names.js';
import { thrown } from './helpers/thrown.js';
import { makeDs, sign, testKey } from './helpers/dnssec-signer.js';

const ROOT_DS = readFileSync('/usr/share/dns/root.ds', 'utf8');
const ROOT_KEY = readFileSync('/usr/share/dns/root.key', 'utf8');

describe('the built-in root anchors', () => {
  it('are the DS records of /usr/share/dns/root.ds (tags 20326 and 38696, algorithm 8, SHA-256)', () => {
    const [root] = rootTrustAnchors();
    expect(rootTrustAnchors()).toHaveLength(1);
    expect(nameToText(root!.zone)).toBe('.');
    expect(root!.ds.map((ds) => [ds.keyTag, ds.algorithm, ds.digestType])).toEqual([
      [20326, 8, 2],
      [38696, 8, 2],
    ]);
    expect(ROOT_DS.trim().split('\n')).toEqual([...ROOT_ANCHOR_LINES]);
    expect(parseTrustAnchors(ROOT_DS)).toEqual(rootTrustAnchors());
  });

  it('match the root KSKs of /usr/share/dns/root.key', () => {
    const [keys] = parseTrustAnchors(ROOT_KEY, 'root.key');
    const [root] = rootTrustAnchors();
    expect(keys!.keys.map((key) => key.keyTag)).toEqual([20326, 38696]);
    for (const ds of root!.ds) expect(keys!.keys.filter((key) => dsMatches(ds, key))).toHaveLength(1);
  });
});

const KEY_B64 = 'mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==';

describe('zone-file anchors (Unbound)', () => {
  it('reads DS and DNSKEY lines with TTLs, classes, comments, parentheses and $ORIGIN', () => {
    const text = [
      '; autotrust trust anchor file',
      ';;id: . 1',
      'example.\t3600\tIN\tDNSKEY\t257 3 13 ' + KEY_B64 + ' ;{id = 42 (ksk), size = 256b} ;;state=2 [  VALID  ] ;;count=0',
      'example. IN 3600 DS 12345 13 2 (',
      '    0123456789abcdef0123456789abcdef',
      '    0123456789abcdef0123456789abcdef ) ; split digest',
      '$ORIGIN org.',
      '$TTL 300',
      'test DS 2 ECDSAP256SHA256 4 ' + 'ab'.repeat(48),
      '     DS 3 8 2 ' + 'cd'.repeat(32),
      '@ DNSKEY 256 3 15 ' + KEY_B64.slice(0, 44),
    ].join('\n');
    const anchors = parseTrustAnchors(text);
    expect(anchors.map((anchor) => [nameToText(anchor.zone), anchor.ds.length, anchor.keys.length])).toEqual([
      ['example.', 1, 1],
      ['test.org.', 2, 0],
      ['org.', 0, 1],
    ]);
    expect(anchors[0]!.keys[0]).toMatchObject({ flags: 257, protocol: 3, algorithm: 13, ttl: 3600 });
    expect(Buffer.from(anchors[0]!.ds[0]!.digest).toString('hex')).toBe('0123456789abcdef'.repeat(4));
    expect(anchors[1]!.ds[0]).toMatchObject({ keyTag: 2, algorithm: 13, digestType: 4 });
    expect(anchors[1]!.ds[1]).toMatchObject({ keyTag: 3, algorithm: 8, digestType: 2 });
  });

  it.each([
    ['an A record', '. IN DS 20326 8 2 ' + 'ab'.repeat(32) + '\n\nexample. IN A 192.0.2.1', 3, /A record: trust anchors are DS or DNSKEY/],
    ['a DS without its digest', '. IN DS 20326 8 2', 1, /DS digest is not hexadecimal/],
    ['a DS digest that is not hex', '. IN DS 20326 8 2 xyz0', 1, /not hexadecimal/],
    ['a key tag out of range', '. IN DS 70000 8 2 abcd', 1, /DS key tag "70000"/],
    ['an unknown algorithm mnemonic', '. IN DS 1 RSAMD9 2 abcd', 1, /algorithm "RSAMD9"/],
    ['a DNSKEY with bad base64', '\n. IN DNSKEY 257 3 8 not*base64', 2, /not base64/],
    ['a relative name without $ORIGIN', 'example IN DS 1 8 2 abcd', 1, /relative name "example" without an \$ORIGIN/],
    ['class CH', '. CH DS 1 8 2 abcd', 1, /class CH/],
    ['unbalanced parentheses', '. IN DS 1 8 2 ( abcd', 1, /unbalanced parentheses/],
    ['$INCLUDE', '$INCLUDE other.keys', 1, /\$INCLUDE is not supported/],
    ['a line with no type', '. 3600 IN', 1, /without a type/],
  ])('refuses %s, naming the line', (_, text, line, reason) => {
    const error = thrown(() => parseTrustAnchors(text, 'anchors.txt'));
    expect(error).toBeInstanceOf(TrustAnchorError);
    expect(error).toMatchObject({ line, source: 'anchors.txt' });
    expect((error as Error).message).toMatch(new RegExp(`^anchors\\.txt:${line}: `));
    expect((error as Error).message).toMatch(reason);
  });
});

describe('BIND anchors', () => {
  it('reads trust-anchors, managed-keys and trusted-keys with their comments', () => {
    const text = [
      '# named.conf.anchors',
      'trust-anchors {',
      '  // the root',
      '  . initial-key 257 3 8 "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5e',
      '      mLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tar',
      '      pVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws',
      '      9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU=";',
      '  . static-ds 20326 8 2 "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D";',
      '  /* a private zone */ "example." initial-ds 12345 13 2 "' + 'ab'.repeat(32) + '";',
      '  example static-key 256 3 13 "' + KEY_B64 + '";',
      '};',
      'managed-keys { org. initial-key 257 3 13 "' + KEY_B64 + '"; };',
      'trusted-keys {',
      '  "net." 257 3 13 "' + KEY_B64 + '";',
      '};',
    ].join('\n');
    const anchors = parseTrustAnchors(text);
    expect(anchors.map((anchor) => [nameToText(anchor.zone), anchor.ds.length, anchor.keys.length])).toEqual([
      ['.', 1, 1],
      ['example.', 1, 1],
      ['org.', 0, 1],
      ['net.', 0, 1],
    ]);
    expect(anchors[0]!.keys[0]!.keyTag).toBe(20326);
    expect(dsMatches(anchors[0]!.ds[0]!, anchors[0]!.keys[0]!)).toBe(true);
  });

  it.each([
    ['an unknown statement', 'trust-anchors { };\noptions { };', 2, /expected trust-anchors, managed-keys or trusted-keys, found "options"/],
    ['an unknown kind', 'trust-anchors {\n  . dynamic-key 257 3 8 "AAAA";\n};', 2, /expected initial-key/],
    ['a missing semicolon', 'trust-anchors {\n  . static-ds 1 8 2 "abcd"\n};', 2, /expected ';'/],
    ['a missing closing semicolon', 'trust-anchors {\n  . static-ds 1 8 2 "abcd";\n}', 3, /expected ';', found the end/],
    ['a string that never ends', 'trust-anchors {\n  . static-ds 1 8 2 "abcd;\n};', 2, /never ends/],
    ['a comment that never ends', 'trust-anchors {\n /* . static-ds 1 8 2 "abcd";\n};', 2, /never ends/],
    ['a bad digest', 'trust-anchors {\n\n  . static-ds 1 8 2 "abc";\n};', 3, /not hexadecimal/],
    [
      'a bad digest after a key split over lines',
      'trust-anchors {\n  . initial-key 257 3 13 "AAAA\n  AAAA";\n  . static-ds 1 8 2 "abc";\n};',
      4,
      /not hexadecimal/,
    ],
  ])('refuses %s, naming the line', (_, text, line, reason) => {
    const error = thrown(() => parseTrustAnchors(text, 'named.conf'));
    expect(error).toBeInstanceOf(TrustAnchorError);
    expect(error).toMatchObject({ line });
    expect((error as Error).message).toMatch(reason);
  });
});

describe('a parsed anchor validates a key set', () => {
  const NOW = 1_750_000_000;
  const key = testKey('private.', 13);
  const set = [key.dnskey];
  const sig = sign(set, key, { inception: NOW - 3600, expiration: NOW + 3600 });
  const ds = makeDs(key);
  const dsLine = `private. 3600 IN DS ${key.key.keyTag} 13 2 ${Buffer.from(ds.rdata.subarray(4)).toString('hex')}`;
  const keyLine = `private. IN DNSKEY 257 3 13 ${Buffer.from(key.key.publicKey).toString('base64')}`;
  it.each([
    ['a DS line', dsLine, 'secure'],
    ['a DNSKEY line', keyLine, 'secure'],
    ['a BIND static-ds', `trust-anchors { private. static-ds ${dsLine.split(' ').slice(4).join(' ')}; };`.replace(/(\d+ 13 2 )(\w+)/, '$1"$2"'), 'secure'],
    ['a DS for another key', dsLine.replace(/ [0-9a-f]{64}$/, ` ${'00'.repeat(32)}`), 'bogus'],
  ])('%s', (_, text, expected) => {
    const [anchor] = parseTrustAnchors(text);
    expect(validateDnskeys(set, [sig], anchor!, { now: NOW, budget: new Budget() }).status).toBe(expected);
  });
});
