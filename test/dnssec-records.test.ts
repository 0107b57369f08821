/**
 * The validator's names and records (lib/dnssec/names.ts, lib/dnssec/records.ts): canonical
 * order of names (RFC 4034 §6.1), canonical RDATA and RRset order (§6.2, §6.3, as RFC 6840
 * §5.1 corrects it), key tags (appendix B, checked against the IANA root keys), the DNSSEC
 * RDATA parsers, and records taken from lib/dns's decoder.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../lib/dns/wire.js';
import { commonAncestor, compareNames, isSubdomain, nameFromText, nameToText, nameWire, readName, signedLabelCount, type Name } from '../lib/dnssec/names.js';
import {
  RRTYPE,
  canonicalRdata,
  canonicalRdataSet,
  fromResourceRecord,
  keyTag,
  parseDnskey,
  parseDs,
  parseNsec,
  parseNsec3,
  parseRrsig,
  parseTypeBitmap,
  type Rr,
} from '../lib/dnssec/records.js';

const n = nameFromText;
const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const wire = (text: string, lowercase = false) => nameWire(rawName(text), lowercase);
/** A name keeping the case it is written in (nameFromText lowercases, as lib/dns does). */
function rawName(text: string): Name {
  return text === '.'
    ? []
    : text
        .replace(/\.$/, '')
        .split('.')
        .map((label) => Buffer.from(label, 'latin1'));
}
const rr = (owner: string, type: number, rdata: Uint8Array, ttl = 300): Rr => ({ owner: n(owner), type, class: 1, ttl, rdata });

describe('names', () => {
  it('orders names canonically (RFC 4034 §6.1 example)', () => {
    const ordered = [
      'example.',
      'a.example.',
      'yljkjljk.a.example.',
      'Z.a.example.',
      'zABC.a.EXAMPLE.',
      'z.example.',
      '\\001.z.example.',
      '*.z.example.',
      '\\200.z.example.',
    ];
    const names = ordered.map((text) => n(text));
    const shuffled = [names[4]!, names[8]!, names[0]!, names[6]!, names[2]!, names[7]!, names[1]!, names[5]!, names[3]!];
    expect(shuffled.sort(compareNames).map(nameToText)).toEqual(names.map(nameToText));
    expect(compareNames(rawName('Z.A.EXAMPLE'), n('z.a.example'))).toBe(0);
  });

  it('tells ancestry, the common ancestor and the RRSIG label count', () => {
    expect(isSubdomain(n('a.b.example'), n('B.example'))).toBe(true);
    expect(isSubdomain(n('example'), n('example'))).toBe(true);
    expect(isSubdomain(n('ab.example'), n('b.example'))).toBe(false);
    expect(isSubdomain(n('a.example'), [])).toBe(true);
    expect(nameToText(commonAncestor(n('a.b.example'), n('c.b.example')))).toBe('b.example.');
    expect(nameToText(commonAncestor(n('a.example'), n('a.org')))).toBe('.');
    expect(signedLabelCount(n('*.a.example'))).toBe(2);
    expect(signedLabelCount(n('a.example'))).toBe(2);
    expect(signedLabelCount([])).toBe(0);
  });

  it('writes wire names lowercased or as they are', () => {
    expect(wire('WWW.Example.')).toEqual(Buffer.from('\x03WWW\x07Example\x00', 'latin1'));
    expect(wire('WWW.Example.', true)).toEqual(Buffer.from('\x03www\x07example\x00', 'latin1'));
    expect(nameWire([])).toEqual(Buffer.from([0]));
  });

  it.each([
    ['a compression pointer', hex('03 777777 c00c'), /compressed/],
    ['a reserved label type', hex('40'), /reserved/],
    ['a name running past its RDATA', hex('03 7777'), /past the end/],
    ['no terminating root label', hex('01 61'), /past the end/],
    [
      'a name over 255 octets',
      Buffer.concat([...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0])]),
      /255/,
    ],
  ])('readName refuses %s', (_, data, reason) => {
    expect(() => readName(data, 0)).toThrow(reason);
  });

  it('readName reads an uncompressed name and says where it ends', () => {
    const { name, end } = readName(Buffer.concat([Buffer.from([9]), wire('Mail.example.')]), 1);
    expect(nameToText(name)).toBe('mail.example.');
    expect(Buffer.from(name[0]!).toString('latin1')).toBe('Mail');
    expect(end).toBe(15);
  });
});

describe('key tags (RFC 4034 appendix B)', () => {
  // The IANA root KSKs as Debian's dns-root-data ships them, each with its key tag in a comment.
  const lines = readFileSync('/usr/share/dns/root.key', 'utf8')
    .split('\n')
    .filter((line) => line.includes('DNSKEY'));
  it.each(lines.map((line) => [/keytag (\d+)/.exec(line)![1]!, line] as const))('root KSK %s', (tag, line) => {
    const [flags, protocol, algorithm, key] = line.split(/\s+/).slice(3, 7);
    const rdata = Buffer.concat([Buffer.from([Number(flags) >> 8, Number(flags) & 0xff, Number(protocol), Number(algorithm)]), Buffer.from(key!, 'base64')]);
    expect(keyTag(rdata)).toBe(Number(tag));
    expect(parseDnskey(rr('.', RRTYPE.DNSKEY, rdata)).keyTag).toBe(Number(tag));
  });

  it('algorithm 1 takes the tag from the modulus (B.1)', () => {
    expect(keyTag(hex('0101 03 01 03 010001 aabbccddee'))).toBe(0xccdd);
  });
});

describe('canonical RDATA (RFC 4034 §6.2 as RFC 6840 §5.1 corrects it)', () => {
  const cases: [string, number, Buffer, Buffer][] = [
    ['MX lowercases its exchange', 15, Buffer.concat([hex('000a'), wire('Mail.EXAMPLE.')]), Buffer.concat([hex('000a'), wire('mail.example.')])],
    ['CNAME', 5, wire('WWW.Example.'), wire('www.example.')],
    [
      'SOA lowercases both names',
      6,
      Buffer.concat([wire('NS.Example.'), wire('Host.Example.'), Buffer.alloc(20, 1)]),
      Buffer.concat([wire('ns.example.'), wire('host.example.'), Buffer.alloc(20, 1)]),
    ],
    ['SRV', 33, Buffer.concat([hex('0001 0002 0019'), wire('MX.Example.')]), Buffer.concat([hex('0001 0002 0019'), wire('mx.example.')])],
    [
      'NAPTR skips its three strings',
      35,
      Buffer.concat([hex('0001 0002 01 55 00 02 4142'), wire('A.Example.')]),
      Buffer.concat([hex('0001 0002 01 55 00 02 4142'), wire('a.example.')]),
    ],
    [
      'RRSIG lowercases its signer',
      46,
      Buffer.concat([Buffer.alloc(18, 7), wire('Example.'), hex('c0ffee')]),
      Buffer.concat([Buffer.alloc(18, 7), wire('example.'), hex('c0ffee')]),
    ],
    [
      'A6 with a prefix name',
      38,
      Buffer.concat([hex('40 0000000000000001'), wire('Prefix.Example.')]),
      Buffer.concat([hex('40 0000000000000001'), wire('prefix.example.')]),
    ],
    ['A6 without one', 38, hex('00 20010db8000000000000000000000001'), hex('00 20010db8000000000000000000000001')],
    ['NSEC keeps the case of its next name', 47, Buffer.concat([wire('Next.Example.'), hex('000140')]), Buffer.concat([wire('Next.Example.'), hex('000140')])],
    ['HINFO holds no names', 13, hex('03 414243 03 444546'), hex('03 414243 03 444546')],
    ['TXT is untouched', 16, hex('03 414243'), hex('03 414243')],
    ['an unknown type is untouched', 65280, wire('Not.A.Name.'), wire('Not.A.Name.')],
  ];
  it.each(cases)('%s', (_, type, rdata, canonical) => {
    expect(canonicalRdata(type, rdata)).toEqual(canonical);
  });

  it.each([
    ['MX RDATA that ends inside its preference', 15, hex('00')],
    ['an MX exchange with a compression pointer', 15, hex('000a c00c')],
    ['NAPTR whose string runs past the RDATA', 35, hex('0001 0002 09 55')],
  ])('refuses %s', (_, type, rdata) => {
    expect(() => canonicalRdata(type, rdata)).toThrow();
  });

  it('orders an RRset by canonical RDATA and drops duplicates (§6.3)', () => {
    const set = [
      rr('a.example', 15, Buffer.concat([hex('000a'), wire('b.example.')])),
      rr('a.example', 15, Buffer.concat([hex('000a'), wire('B.EXAMPLE.')])),
      rr('a.example', 15, Buffer.concat([hex('0005'), wire('z.example.')])),
      rr('a.example', 15, Buffer.concat([hex('000a'), wire('a.example.')])),
    ];
    expect(canonicalRdataSet(set)).toEqual([
      Buffer.concat([hex('0005'), wire('z.example.')]),
      Buffer.concat([hex('000a'), wire('a.example.')]),
      Buffer.concat([hex('000a'), wire('b.example.')]),
    ]);
    // A prefix sorts first.
    expect(canonicalRdataSet([rr('x', 16, hex('02 4142')), rr('x', 16, hex('01 41'))])).toEqual([hex('01 41'), hex('02 4142')]);
  });
});

describe('DNSSEC RDATA', () => {
  it('parses DNSKEY and DS', () => {
    const key = parseDnskey(rr('example', RRTYPE.DNSKEY, hex('0101 03 0d 0102030405')));
    expect(key).toMatchObject({ flags: 257, protocol: 3, algorithm: 13 });
    expect(Buffer.from(key.publicKey)).toEqual(hex('0102030405'));
    const ds = parseDs(rr('example', RRTYPE.DS, hex('4f66 08 02 e06d44')));
    expect(ds).toMatchObject({ keyTag: 20326, algorithm: 8, digestType: 2 });
    expect(Buffer.from(ds.digest)).toEqual(hex('e06d44'));
    expect(() => parseDnskey(rr('example', RRTYPE.DNSKEY, hex('0101 03')))).toThrow(/ends inside/);
    expect(() => parseDs(rr('example', RRTYPE.DNSKEY, hex('4f66 08 02')))).toThrow(/DNSKEY record where a DS/);
  });

  it('parses RRSIG', () => {
    const rdata = Buffer.concat([hex('000f 0d 02 00000e10 6b340fc7 6b0f25c7 7db6'), wire('Example.'), hex('aabb')]);
    const sig = parseRrsig(rr('mx.example', RRTYPE.RRSIG, rdata));
    expect(sig).toMatchObject({ typeCovered: 15, algorithm: 13, labels: 2, originalTtl: 3600, expiration: 0x6b340fc7, inception: 0x6b0f25c7, keyTag: 0x7db6 });
    expect(nameToText(sig.signer)).toBe('example.');
    expect(Buffer.from(sig.signature)).toEqual(hex('aabb'));
    expect(sig.signedFields.length).toBe(rdata.length - 2);
    expect(() => parseRrsig(rr('x', RRTYPE.RRSIG, hex('000f 0d 02')))).toThrow(/ends inside/);
  });

  it('parses NSEC and its type bit maps (RFC 4034 §4.3 example)', () => {
    const rdata = Buffer.concat([
      wire('host.example.com.'),
      hex('0006 40 01 00 00 00 03 04 1b 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 20'),
    ]);
    const nsec = parseNsec(rr('alfa.example.com', RRTYPE.NSEC, rdata));
    expect(nameToText(nsec.next)).toBe('host.example.com.');
    expect([...nsec.types].sort((a, b) => a - b)).toEqual([1, 15, 46, 47, 1234]);
  });

  it.each([
    ['a window header cut short', hex('00')],
    ['a bitmap of 0 octets', hex('00 00')],
    ['a bitmap of 33 octets', Buffer.concat([hex('00 21'), Buffer.alloc(33)])],
    ['windows out of order', hex('01 01 80 00 01 80')],
    ['a bitmap running past the RDATA', hex('00 04 80')],
  ])('refuses a type bit map with %s', (_, bitmap) => {
    expect(() => parseTypeBitmap(bitmap)).toThrow();
  });

  it('parses NSEC3 (RFC 5155 §3.2)', () => {
    const nsec3 = parseNsec3(
      rr(
        '0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example',
        RRTYPE.NSEC3,
        hex('01 01 000c 04 aabbccdd 14 2a3f1c2a9d0e5f7b86e1c5f7b0a3d4e5f6a7b8c9 0007 22 00 00 00 00 02 90'),
      ),
    );
    expect(nsec3).toMatchObject({ hashAlgorithm: 1, flags: 1, iterations: 12 });
    expect(Buffer.from(nsec3.salt)).toEqual(hex('aabbccdd'));
    expect(nsec3.nextHashed.length).toBe(20);
    expect([...nsec3.types].sort((a, b) => a - b)).toEqual([2, 6, 46, 48, 51]);
    expect(() => parseNsec3(rr('x.example', RRTYPE.NSEC3, hex('01 00 0000 04 aabb')))).toThrow(/salt/);
    expect(() => parseNsec3(rr('x.example', RRTYPE.NSEC3, hex('01 00 0000 00 14 aabb')))).toThrow(/next hashed/);
  });
});

describe('records from the wire decoder', () => {
  it('rebuilds compressed names in RDATA, keeps the DNSSEC types as received', () => {
    // A reply to `MX example.` with an MX whose exchange points into the question, and an RRSIG.
    const question = Buffer.concat([wire('example.'), hex('000f 0001')]);
    const mx = Buffer.concat([hex('c00c 000f 0001 0000012c 0009 000a 046d61696c c00c')]);
    const sigRdata = Buffer.concat([hex('000f 0d 01 0000012c 6b340fc7 6b0f25c7 7db6'), wire('Example.'), hex('aabb')]);
    const sig = Buffer.concat([hex('c00c 002e 0001 0000012c'), Buffer.from([0, sigRdata.length]), sigRdata]);
    const message = decodeMessage(Buffer.concat([hex('1234 8180 0001 0002 0000 0000'), question, mx, sig]));
    expect(message.errors).toEqual([]);
    const [mxRr, sigRr] = message.answers.map(fromResourceRecord);
    expect(nameToText(mxRr!.owner)).toBe('example.');
    expect(Buffer.from(mxRr!.rdata)).toEqual(Buffer.concat([hex('000a'), wire('mail.example.')]));
    expect(Buffer.from(sigRr!.rdata)).toEqual(sigRdata);
    expect(sigRr!.type).toBe(RRTYPE.RRSIG);
  });
});
