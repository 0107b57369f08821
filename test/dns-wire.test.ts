/**
 * The DNS wire decoder (lib/dns/wire.ts) and the reply checks built on it (checkReply): one
 * row per rule, then a fuzz run over real replies (zones signed in the test, answered with their
 * DNSSEC records by a recursive and an authoritative server; the test DNS server's dns2-encoded
 * ones; a real Unbound and NSD's in test/dns-wire-interop.test.ts) mutated tens of thousands of times plus
 * crafted hostile ones, asserting that decoding always returns, that its work stays within
 * workBudget(length), and that every name it returns is in the safe presentation form.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dns2 from 'dns2';
import { createResolver } from '../lib/dns/index.js';
import { checkReply } from '../lib/dns/message.js';
import { MAX_POINTERS_PER_NAME, decodeMessage, encodeQuery, formatIPv6, workBudget, type Message } from '../lib/dns/wire.js';
import { normalizeName } from '../lib/dns/names.js';
import { T, a, mx as mxRdata, rr as rrOf, txt, wireKeepCase } from './helpers/dnssec-signer.js';
import { signTree, startSignedDns, tlsa, type SignedDnsServer } from './helpers/signed-dns.js';
import { EXAMPLE_TEST_QUESTIONS, exchange, expectCleanSeeds, expectMutationsSafe, problems } from './helpers/wire-fuzz.js';
import { pointerChainReply, startDnsServer, type TestDnsServer } from './helpers/dns-server.js';

const { Packet } = dns2;

/* ----------------------------------------------------------------------------------------
 * Building messages octet by octet.
 */

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => Buffer.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
/** An uncompressed name from labels given as strings (latin1) or octets; [] is the root. */
function wireName(...labels: (string | number[])[]): Buffer {
  const parts = labels.map((label) => {
    const octets = typeof label === 'string' ? Buffer.from(label, 'latin1') : Buffer.from(label);
    return Buffer.concat([Buffer.from([octets.length]), octets]);
  });
  return Buffer.concat([...parts, Buffer.from([0])]);
}
const ptr = (offset: number) => Buffer.from([0xc0 | (offset >> 8), offset & 0xff]);
/** Labels then a pointer (no terminating zero). */
function labelsThen(pointer: Buffer, ...labels: string[]): Buffer {
  return Buffer.concat([wireName(...labels).subarray(0, -1), pointer]);
}

interface HeaderSpec {
  id?: number;
  /** Octets 2 and 3 of the header; default QR, RD, RA and NOERROR. */
  flags?: number;
  qd?: number;
  an?: number;
  ns?: number;
  ar?: number;
}
function header(spec: HeaderSpec = {}): Buffer {
  return Buffer.concat([u16(spec.id ?? 0x1234), u16(spec.flags ?? 0x8180), u16(spec.qd ?? 1), u16(spec.an ?? 0), u16(spec.ns ?? 0), u16(spec.ar ?? 0)]);
}
const question = (name: Buffer, type = 1, klass = 1) => Buffer.concat([name, u16(type), u16(klass)]);
function rr(name: Buffer, type: number, rdata: Buffer, options: { klass?: number; ttl?: number; rdlength?: number } = {}): Buffer {
  return Buffer.concat([name, u16(type), u16(options.klass ?? 1), u32(options.ttl ?? 300), u16(options.rdlength ?? rdata.length), rdata]);
}
const QNAME = wireName('example', 'com');
/** A reply to `A example.com` (ID 0x1234) with the given records. */
function reply(records: { an?: Buffer[]; ns?: Buffer[]; ar?: Buffer[] }, spec: HeaderSpec = {}): Buffer {
  const an = records.an ?? [];
  const ns = records.ns ?? [];
  const ar = records.ar ?? [];
  return Buffer.concat([header({ an: an.length, ns: ns.length, ar: ar.length, ...spec }), question(QNAME), ...an, ...ns, ...ar]);
}
const Q = 12; // offset of the question name
const fatal = (message: Message) => message.errors.find((error) => error.fatal);

/* ----------------------------------------------------------------------------------------
 * Names.
 */

describe('names', () => {
  /** Two questions: `first` at offset 12, then `second` (which may point into `first`). */
  function names(first: Buffer, second?: Buffer): Message {
    const parts = [header({ qd: second ? 2 : 1 }), question(first)];
    if (second) parts.push(question(second));
    return decodeMessage(Buffer.concat(parts));
  }

  const rows: { rule: string; first: Buffer; second?: Buffer; names?: string[]; error?: RegExp }[] = [
    { rule: 'labels joined by dots, no trailing dot', first: QNAME, names: ['example.com'] },
    { rule: 'ASCII letters lowercased (RFC 4343)', first: wireName('ExAmPlE', 'COM'), names: ['example.com'] },
    { rule: 'the root is the empty string', first: wireName(), names: [''] },
    { rule: 'a dot inside a label is \\.', first: wireName('a.b', 'example'), names: ['a\\.b.example'] },
    { rule: 'a backslash inside a label is \\\\', first: wireName('a\\b', 'example'), names: ['a\\\\b.example'] },
    { rule: 'a space is \\032', first: wireName('a b', 'example'), names: ['a\\032b.example'] },
    { rule: 'controls are \\DDD (LF, CR, ESC, NUL)', first: wireName([0x0a, 0x0d, 0x1b, 0x00], 'x'), names: ['\\010\\013\\027\\000.x'] },
    { rule: 'DEL and 8-bit octets are \\DDD, not lowercased', first: wireName([0x7f, 0xc4, 0xff], 'x'), names: ['\\127\\196\\255.x'] },
    { rule: 'printable specials stay as they are', first: wireName('_25', '*', 'a-b', '@$();"'), names: ['_25.*.a-b.@$();"'] },
    { rule: 'a pointer to an earlier name', first: QNAME, second: ptr(Q), names: ['example.com', 'example.com'] },
    { rule: 'labels, then a pointer to an earlier suffix', first: QNAME, second: labelsThen(ptr(Q + 8), 'www'), names: ['example.com', 'www.com'] },
    { rule: 'a pointer into the header is an error', first: QNAME, second: ptr(4), error: /pointer at offset \d+ into the header \(offset 4\)/ },
    { rule: 'a pointer to itself is an error (a loop)', first: ptr(Q), error: /to offset 12, not before offset 12/ },
    { rule: 'a forward pointer is an error', first: ptr(40), error: /to offset 40, not before offset 12 \(RFC 1035 §4\.1\.4/ },
    { rule: 'a label of type 01 (0x40) is an error', first: Buffer.from([0x40, 0x61, 0]), error: /reserved type 0x40/ },
    { rule: 'a label of type 10 (0x80) is an error', first: Buffer.from([0x80, 0x61, 0]), error: /reserved type 0x80/ },
    { rule: 'a label running past the end is an error', first: Buffer.from([10, 0x61, 0x62]), error: /label at offset 12 running past the end of the message/ },
  ];
  it.each(rows)('$rule', ({ first, second, names: expected, error }) => {
    const message = names(first, second);
    if (expected) {
      expect(message.errors).toEqual([]);
      expect(message.questions.map((q) => q.name)).toEqual(expected);
    } else {
      expect(fatal(message)?.reason).toMatch(error!);
    }
  });

  it('a name cut off is an error: inside a pointer, before its terminating zero', () => {
    expect(fatal(decodeMessage(Buffer.concat([header(), Buffer.from([0xc0])])))?.reason).toMatch(/ends inside a compression pointer/);
    expect(fatal(decodeMessage(Buffer.concat([header(), Buffer.from([1, 0x61])])))?.reason).toMatch(
      /question name at offset 12 runs past the end of the message/,
    );
  });

  it('a pointer must point before the place it jumped to: no loop through two names', () => {
    // X (in a raw RDATA, never read as a name itself) points forward at Y; Y, the owner of
    // the next record, points back at X. From Y the jump to X is backwards, the one from X is not.
    const x = Q + QNAME.length + 4 + 2 + 10;
    const y = x + 2;
    const message = decodeMessage(reply({ an: [rr(ptr(Q), 65280, ptr(y)), rr(ptr(x), 1, Buffer.from([192, 0, 2, 1]))] }));
    expect(fatal(message)).toMatchObject({
      section: 'answer',
      index: 1,
      reason: expect.stringContaining(`pointer at offset ${x} to offset ${y}, not before offset ${x}`),
    });
  });

  it('a name of 255 octets decodes; 256 is an error', () => {
    // 255 = 3 labels of 63 (64 each) + one of 61 (62) + the root (1).
    const max = wireName('a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61));
    expect(max.length).toBe(255);
    expect(names(max).questions[0]!.name).toBe(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.'));
    const over = wireName('a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(62));
    expect(fatal(names(over))?.reason).toMatch(/longer than 255 octets/);
  });

  it('counts the length through pointers: a suffix reached by a pointer still counts', () => {
    const long = wireName('a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)); // 255
    // 'x' + pointer to the 255-octet name: 257 octets once decompressed.
    expect(fatal(names(long, labelsThen(ptr(Q), 'x')))?.reason).toMatch(/longer than 255 octets/);
  });

  it(`follows ${MAX_POINTERS_PER_NAME} pointers in one name, not one more`, () => {
    // A chain of pointers, each to the one before, inside a raw RDATA (type 65280), ending at the root.
    function chain(length: number): Message {
      const start = Q + QNAME.length + 4 + QNAME.length + 2 + 2 + 4 + 2; // first octet of the RDATA
      const links = [Buffer.from([0])];
      for (let i = 0; i < length; i++) links.push(ptr(i === 0 ? start : start + 1 + 2 * (i - 1)));
      const rdata = Buffer.concat(links);
      const last = start + 1 + 2 * (length - 1);
      return decodeMessage(reply({ an: [rr(QNAME, 65280, rdata), rr(ptr(last), 1, Buffer.from([192, 0, 2, 1]))] }));
    }
    const ok = chain(MAX_POINTERS_PER_NAME - 1);
    expect(ok.errors).toEqual([]);
    expect(ok.answers[1]).toMatchObject({ name: '', data: { address: '192.0.2.1', family: 4 } });
    const over = chain(MAX_POINTERS_PER_NAME);
    expect(fatal(over)).toMatchObject({
      section: 'answer',
      index: 1,
      reason: expect.stringMatching(`follows more than ${MAX_POINTERS_PER_NAME} compression pointers`),
    });
  });
});

/* ----------------------------------------------------------------------------------------
 * Work.
 */

describe('work', () => {
  it('the 64 KB pointer-chain reply is malformed after at most one name of work', () => {
    const message = pointerChainReply(0x1234, question(QNAME));
    expect(message.length).toBeGreaterThan(65000);
    expect(message.readUInt16BE(6)).toBeGreaterThan(3000);
    const decoded = decodeMessage(message);
    expect(fatal(decoded)).toMatchObject({ section: 'answer', index: 1, reason: expect.stringContaining('compression pointers') });
    // The question (2 labels), the first owner (1 pointer to those 2 labels), then the first
    // A record's owner: MAX_POINTERS_PER_NAME + 1 pointers, and it stops.
    expect(decoded.work).toBe(2 + 3 + MAX_POINTERS_PER_NAME + 1);
    expect(checkReply(message, 0x1234, 'example.com', 1)).toMatchObject({
      ok: false,
      ignore: false,
      why: expect.stringMatching(/^malformed reply \(answer 2: .*compression pointers\)$/),
    });
  });

  it('many records pointing at one deep name stop at the work bound', () => {
    // A 127-label name (255 octets) in a raw RDATA, then empty records owned by pointers to
    // it: each owner costs 128 units for 12 octets, more than the budget allows per octet.
    const deep = wireName(...Array.from({ length: 127 }, () => 'a'));
    const deepAt = Q + QNAME.length + 4 + QNAME.length + 10;
    const records = [rr(QNAME, 65280, deep)];
    for (let i = 0; i < 4000; i++) records.push(rr(ptr(deepAt), 65280, Buffer.alloc(0)));
    const message = reply({ an: records });
    const decoded = decodeMessage(message);
    expect(decoded.errors).toHaveLength(1);
    expect(decoded.errors[0]).toMatchObject({ fatal: true, work: true, reason: expect.stringContaining('units of work') });
    expect(decoded.work).toBe(workBudget(message.length));
    expect(checkReply(message, 0x1234, 'example.com', 1)).toMatchObject({ ok: false, ignore: false, why: expect.stringContaining('units of work') });
  });

  it('a real-sized reply stays far below the bound', () => {
    const records = [];
    for (let i = 0; i < 10; i++) records.push(rr(ptr(Q), 15, Buffer.concat([u16(10 * i), labelsThen(ptr(Q), `mx${i}`)])));
    const message = reply({ an: records });
    const decoded = decodeMessage(message);
    expect(decoded.errors).toEqual([]);
    // Question: 2 labels. Each record: owner 1 pointer + 2 labels; exchange 1 label + 1 pointer + 2 labels.
    expect(decoded.work).toBe(2 + 10 * (3 + 4));
  });
});

/* ----------------------------------------------------------------------------------------
 * RDATA.
 */

describe('RDATA', () => {
  const owner = ptr(Q);
  const one = (record: Buffer) => decodeMessage(reply({ an: [record] })).answers[0]!;
  const rows: { rule: string; record: Buffer; data?: unknown; error?: RegExp }[] = [
    { rule: 'A: 4 octets', record: rr(owner, 1, Buffer.from([192, 0, 2, 1])), data: { address: '192.0.2.1', family: 4 } },
    { rule: 'A: RDLENGTH 3 is an error', record: rr(owner, 1, Buffer.from([192, 0, 2])), error: /A RDATA of example\.com is 3 octets, not 4/ },
    { rule: 'A: RDLENGTH 5 is an error', record: rr(owner, 1, Buffer.from([192, 0, 2, 1, 9])), error: /is 5 octets, not 4/ },
    { rule: 'A of another class is kept raw', record: rr(owner, 1, Buffer.from([1, 2]), { klass: 3 }), data: { type: 1, data: Buffer.from([1, 2]) } },
    {
      rule: 'AAAA: 16 octets, RFC 5952 text',
      record: rr(owner, 28, Buffer.from('20010db8000000000000000000000010', 'hex')),
      data: { address: '2001:db8::10', family: 6 },
    },
    { rule: 'AAAA: RDLENGTH 15 is an error', record: rr(owner, 28, Buffer.alloc(15)), error: /AAAA RDATA of example\.com is 15 octets, not 16/ },
    {
      rule: 'MX: preference and a compressed exchange',
      record: rr(owner, 15, Buffer.concat([u16(10), labelsThen(ptr(Q), 'MX1')])),
      data: { exchange: 'mx1.example.com', preference: 10 },
    },
    { rule: 'MX: the root exchange (null MX) is ""', record: rr(owner, 15, Buffer.concat([u16(0), wireName()])), data: { exchange: '', preference: 0 } },
    {
      rule: 'MX: RDLENGTH longer than the fields is an error',
      record: rr(owner, 15, Buffer.concat([u16(10), ptr(Q), Buffer.from([0])])),
      error: /MX RDATA of example\.com is 5 octets but its fields take 4/,
    },
    {
      rule: 'MX: an exchange running past RDLENGTH is an error',
      record: rr(owner, 15, Buffer.concat([u16(10), wireName('mx1', 'example', 'com')]), { rdlength: 6 }),
      error: /MX exchange .* past the end of its RDATA/,
    },
    { rule: 'MX: two octets are not enough', record: rr(owner, 15, u16(10)), error: /MX exchange at offset \d+ runs past the end of its RDATA/ },
    {
      rule: 'MX: an exchange with a forward pointer is an error',
      record: rr(owner, 15, Buffer.concat([u16(10), ptr(200)])),
      error: /MX exchange .* not before offset/,
    },
    { rule: 'CNAME: a target', record: rr(owner, 5, labelsThen(ptr(Q), 'www')), data: { target: 'www.example.com' } },
    {
      rule: 'CNAME: a target with a dot in a label stays one label',
      record: rr(owner, 5, wireName('evil.com', 'example')),
      data: { target: 'evil\\.com.example' },
    },
    {
      rule: 'CNAME: trailing octets are an error',
      record: rr(owner, 5, Buffer.concat([ptr(Q), Buffer.from([1])])),
      error: /CNAME RDATA of example\.com is 3 octets but its fields take 2/,
    },
    { rule: 'NS: a host', record: rr(owner, 2, wireName('ns', 'example', 'net')), data: { host: 'ns.example.net' } },
    { rule: 'PTR: a host', record: rr(owner, 12, ptr(Q)), data: { host: 'example.com' } },
    {
      rule: 'SOA: two names and five numbers',
      record: rr(owner, 6, Buffer.concat([labelsThen(ptr(Q), 'ns'), labelsThen(ptr(Q), 'hostmaster'), u32(1), u32(3600), u32(600), u32(86400), u32(60)])),
      data: { primary: 'ns.example.com', admin: 'hostmaster.example.com', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60 },
    },
    {
      rule: 'SOA: 19 octets of numbers is an error',
      record: rr(owner, 6, Buffer.concat([ptr(Q), ptr(Q), Buffer.alloc(19)])),
      error: /SOA MINIMUM at offset \d+ needs 4 octets but its RDATA ends/,
    },
    {
      rule: 'SOA: 21 octets of numbers is an error',
      record: rr(owner, 6, Buffer.concat([ptr(Q), ptr(Q), Buffer.alloc(21)])),
      error: /SOA RDATA of example\.com is 25 octets but its fields take 24/,
    },
    {
      rule: 'TXT: character-strings, UTF-8',
      record: rr(owner, 16, Buffer.concat([Buffer.from([3]), Buffer.from('v=1'), Buffer.from([4]), Buffer.from('é!!')])),
      data: { strings: ['v=1', 'é!!'], text: 'v=1é!!' },
    },
    { rule: 'TXT: an empty string is a string', record: rr(owner, 16, Buffer.from([0])), data: { strings: [''], text: '' } },
    { rule: 'TXT: empty RDATA is an error', record: rr(owner, 16, Buffer.alloc(0)), error: /TXT RDATA of example\.com is empty/ },
    {
      rule: 'TXT: a string past RDLENGTH is an error',
      record: rr(owner, 16, Buffer.from([5, 0x61, 0x62])),
      error: /5-octet string running past its RDLENGTH 3/,
    },
    {
      rule: 'TLSA: usage, selector, matching type, data',
      record: rr(owner, 52, Buffer.from([3, 1, 1, 0xab, 0xcd])),
      data: { usage: 3, selector: 1, matchingType: 1, data: Buffer.from([0xab, 0xcd]) },
    },
    { rule: 'TLSA: 2 octets is an error', record: rr(owner, 52, Buffer.from([3, 1])), error: /^TLSA RDATA is 2 octets, at least 3 are needed$/ },
    // RRSIG (46): the signer name is never compressed (RFC 4034 §3.1.7); octets that look like a pointer stay raw.
    {
      rule: 'other types (RRSIG) are raw, never decompressed',
      record: rr(owner, 46, Buffer.from([0xc0, 0x0c, 0xc0, 0xff])),
      data: { type: 46, data: Buffer.from([0xc0, 0x0c, 0xc0, 0xff]) },
    },
    { rule: 'an unknown type is raw', record: rr(owner, 65280, Buffer.from([1, 2, 3])), data: { type: 65280, data: Buffer.from([1, 2, 3]) } },
  ];
  it.each(rows)('$rule', ({ record, data, error }) => {
    const decoded = one(record);
    if (data !== undefined) {
      expect(decoded.error).toBeUndefined();
      expect(decoded.data).toEqual(data);
    } else {
      expect(decoded.data).toBeUndefined();
      expect(decoded.error).toMatch(error!);
    }
  });

  it('RDATA that does not decode marks only its record; the next one is read', () => {
    const message = decodeMessage(reply({ an: [rr(ptr(Q), 1, Buffer.from([1, 2, 3])), rr(ptr(Q), 1, Buffer.from([192, 0, 2, 7]))] }));
    expect(message.errors).toEqual([{ section: 'answer', index: 0, offset: expect.any(Number), reason: expect.stringContaining('not 4'), fatal: false }]);
    expect(message.answers[1]!.data).toEqual({ address: '192.0.2.7', family: 4 });
  });

  it('an RDLENGTH past the end of the message ends decoding', () => {
    const message = decodeMessage(reply({ an: [rr(ptr(Q), 1, Buffer.from([192, 0, 2, 1]), { rdlength: 40 })] }));
    expect(fatal(message)).toMatchObject({
      section: 'answer',
      index: 0,
      reason: expect.stringContaining('RDLENGTH 40 of the A record for example.com runs 36 octets past the end of the message'),
    });
  });

  it('a TTL with the top bit set counts as 0 (RFC 2181 §8)', () => {
    expect(one(rr(ptr(Q), 1, Buffer.from([192, 0, 2, 1]), { ttl: 0x80000001 })).ttl).toBe(0);
    expect(one(rr(ptr(Q), 1, Buffer.from([192, 0, 2, 1]), { ttl: 0x7fffffff })).ttl).toBe(0x7fffffff);
  });

  it('reads OPT: payload size, extended RCODE, version, DO and Extended DNS Errors', () => {
    const ede = Buffer.concat([u16(15), u16(2 + 9), u16(6), Buffer.from('bad sig\0\0')]);
    const opt = rr(wireName(), 41, Buffer.concat([ede, u16(10), u16(2), Buffer.from([1, 2])]), { klass: 1232, ttl: 0x01008000 });
    const message = decodeMessage(reply({ ar: [opt] }, { flags: 0x8182 }));
    expect(message.errors).toEqual([]);
    expect(message.edns).toMatchObject({
      udpPayloadSize: 1232,
      extendedRcode: 1,
      version: 0,
      do: true,
      extendedErrors: [{ infoCode: 6, extraText: 'bad sig' }],
    });
    expect(message.edns!.options.map((o) => o.code)).toEqual([15, 10]);
    // RFC 6891 §6.1.3: RCODE = extended RCODE << 4 | header RCODE.
    expect(message.rcode).toBe(0x12);
  });

  it('an OPT whose options overrun its RDATA, or that is not owned by the root, is a record error and no EDNS', () => {
    const overrun = rr(wireName(), 41, Buffer.concat([u16(15), u16(9), u16(6)]), { klass: 1232 });
    const owned = rr(ptr(Q), 41, Buffer.alloc(0), { klass: 1232 });
    for (const opt of [overrun, owned]) {
      const message = decodeMessage(reply({ ar: [opt] }));
      expect(message.errors).toMatchObject([{ section: 'additional', fatal: false }]);
      expect(message.edns).toBeUndefined();
    }
  });

  it.each([
    ['20010db8000000000000000000000010', '2001:db8::10'],
    ['00000000000000000000000000000001', '::1'],
    ['00000000000000000000000000000000', '::'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['20010000000000010000000000000001', '2001:0:0:1::1'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    ['20010db8000000000000000100000000', '2001:db8::1:0:0'],
    ['fe800000000000000000000000000000', 'fe80::'],
    ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'],
    ['ABCD0DB8000000000000000000000000', 'abcd:db8::'],
  ])('AAAA %s is %s (RFC 5952)', (hex, text) => {
    expect(formatIPv6(Buffer.from(hex, 'hex'))).toBe(text);
  });
});

/* ----------------------------------------------------------------------------------------
 * Queries and names given to the resolver.
 */

describe('queries', () => {
  it('encodes RD, one question of class IN and an OPT with DO and 1232 octets, as dns2 reads it', () => {
    const query = encodeQuery(0xbeef, '_25._tcp.mx.example.com', 52);
    expect(query.subarray(0, 12)).toEqual(Buffer.from([0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]));
    const parsed = Packet.parse(query);
    expect(parsed.questions).toEqual([{ name: '_25._tcp.mx.example.com', type: 52, class: 1 }]);
    expect(parsed.additionals).toHaveLength(1);
    expect(parsed.additionals[0]).toMatchObject({ type: 41, class: 1232, ttl: 0x8000 });
    const own = decodeMessage(query);
    expect(own.errors).toEqual([]);
    expect(own.header).toMatchObject({ qr: false, rd: true, ad: false, cd: false });
  });

  it("sets CD for a validating stub (RFC 4035 §3.2.2) and clears DO when asked ('off')", () => {
    const validating = encodeQuery(7, 'example.com', 48, { checkingDisabled: true });
    expect(validating[3]).toBe(0x10);
    expect(decodeMessage(validating).header).toMatchObject({ rd: true, ad: false, cd: true });
    expect(Packet.parse(validating).additionals[0]).toMatchObject({ type: 41, class: 1232, ttl: 0x8000 });
    const plain = encodeQuery(7, 'example.com', 1, { dnssecOk: false });
    expect(decodeMessage(plain).header.cd).toBe(false);
    expect(Packet.parse(plain).additionals[0]).toMatchObject({ type: 41, class: 1232, ttl: 0 });
  });

  it('encodes escaped labels as their octets, and the root as one zero octet', () => {
    const query = encodeQuery(1, 'a\\.b\\032c.example', 1);
    expect(query.subarray(12, 12 + 15)).toEqual(
      Buffer.concat([Buffer.from([5]), Buffer.from('a.b c'), Buffer.from([7]), Buffer.from('example'), Buffer.from([0])]),
    );
    expect(decodeMessage(query).questions[0]!.name).toBe('a\\.b\\032c.example');
    expect(encodeQuery(1, '', 6).subarray(12, 17)).toEqual(Buffer.from([0, 0, 6, 0, 1]));
  });

  it.each([
    ['MX1.Example.COM.', 'mx1.example.com'],
    ['a\\.b.example', 'a\\.b.example'],
    ['a\\046b.example', 'a\\.b.example'],
    ['\\065\\066.example', 'ab.example'],
    ['a\\ b.example', 'a\\032b.example'],
    ['a\\\\b.example.', 'a\\\\b.example'],
    ['x\\255.example', 'x\\255.example'],
    ['x\\..example', 'x\\..example'],
    ['Bücher.example', 'xn--bcher-kva.example'],
  ])('normalizeName(%j) is %j, the form names are decoded in', (input, output) => {
    expect(normalizeName(input)).toBe(output);
    // A name read back from the wire is the same string.
    expect(decodeMessage(encodeQuery(1, output, 1)).questions[0]!.name).toBe(output);
  });

  it.each([
    ['a\\', /lone backslash/],
    ['a\\256.example', /above 255/],
    ['a..example', /empty label/],
    ['.example', /empty label/],
    ['a b.example', /spaces or control characters/],
    ['a\nb.example', /spaces or control characters/],
    [`${'a\\046'.repeat(32)}.example`, /longer than 63 octets/],
    [Array.from({ length: 128 }, () => 'a').join('.'), /longer than 255 octets/],
  ])('normalizeName(%j) throws %s', (input, error) => {
    expect(() => normalizeName(input)).toThrow(error);
  });
});

/* ----------------------------------------------------------------------------------------
 * Reply checks (lib/dns/message.ts checkReply): ignore, malformed, or taken.
 */

describe('checkReply', () => {
  const a = rr(ptr(Q), 1, Buffer.from([192, 0, 2, 1]));
  const rows: { rule: string; message: Buffer; result: Record<string, unknown> }[] = [
    { rule: 'a reply to the query is taken', message: reply({ an: [a] }), result: { ok: true, rcode: 0 } },
    { rule: 'under 12 octets: ignored', message: Buffer.from([0x12, 0x34, 0x81]), result: { ok: false, ignore: true } },
    { rule: 'another ID: ignored', message: reply({ an: [a] }, { id: 0x4321 }), result: { ok: false, ignore: true, why: 'a reply with a wrong ID' } },
    {
      rule: 'a query (QR clear): ignored',
      message: reply({ an: [a] }, { flags: 0x0100 }),
      result: { ok: false, ignore: true, why: 'a query instead of a reply' },
    },
    {
      rule: 'another question: ignored',
      message: Buffer.concat([header({ an: 0 }), question(wireName('evil', 'example'))]),
      result: { ok: false, ignore: true, why: 'a reply to another question' },
    },
    {
      rule: 'another type: ignored',
      message: Buffer.concat([header({ an: 0 }), question(QNAME, 28)]),
      result: { ok: false, ignore: true, why: 'a reply to another question' },
    },
    {
      rule: 'the name compared without case',
      message: Buffer.concat([header({ an: 0 }), question(wireName('EXAMPLE', 'Com'))]),
      result: { ok: true },
    },
    {
      rule: 'a label with a dot is not the same name',
      message: Buffer.concat([header({ an: 0 }), question(wireName('example.com'))]),
      result: { ok: false, ignore: true },
    },
    { rule: 'an error reply without a question: taken', message: header({ qd: 0, flags: 0x8182 }), result: { ok: true, rcode: 2 } },
    {
      rule: 'a NOERROR reply without a question: malformed',
      message: header({ qd: 0 }),
      result: { ok: false, ignore: false, why: 'malformed reply (no question section)' },
    },
    {
      rule: 'a question that does not decode: malformed',
      message: Buffer.concat([header(), Buffer.from([7, 0x65, 0x78])]),
      result: { ok: false, ignore: false, why: expect.stringMatching(/^malformed reply \(question 1: question name at offset 12/) },
    },
    {
      rule: 'an answer that cannot be framed: malformed',
      message: reply({ an: [a.subarray(0, 12)] }),
      result: { ok: false, ignore: false, why: expect.stringMatching(/^malformed reply \(answer 1: /) },
    },
    {
      rule: 'an authority record that cannot be framed: malformed',
      message: reply({ ns: [rr(ptr(200), 6, Buffer.alloc(0))] }),
      result: { ok: false, ignore: false, why: expect.stringMatching(/^malformed reply \(authority 1: owner name/) },
    },
    { rule: 'an additional record that cannot be framed: tolerated', message: reply({ an: [a], ar: [a.subarray(0, 12)] }), result: { ok: true } },
    {
      rule: 'an opcode other than QUERY: malformed',
      message: reply({ an: [a] }, { flags: 0x8980 }),
      result: { ok: false, ignore: false, why: 'reply with opcode 1' },
    },
  ];
  it.each(rows)('$rule', ({ message, result }) => {
    expect(checkReply(message, 0x1234, 'example.com', 1)).toMatchObject(result);
  });
});

/* ----------------------------------------------------------------------------------------
 * Fuzzing.
 */

describe('fuzz', () => {
  let recursive: SignedDnsServer;
  let authoritative: SignedDnsServer;
  let plain: TestDnsServer;
  const seeds: Buffer[] = [];

  beforeAll(async () => {
    // Signed here (test/helpers/signed-dns.ts) and served as a recursive server and as the zones'
    // authoritative one; the same with a real Unbound and NSD: test/dns-wire-interop.test.ts.
    const tree = signTree(
      [
        { origin: '.', algorithm: 13 },
        { origin: 'test.', algorithm: 13 },
        {
          origin: 'example.test.',
          algorithm: 13,
          records: [
            rrOf('example.test.', T.MX, mxRdata(10, 'mx1.example.test.')),
            rrOf('example.test.', T.MX, mxRdata(20, 'mx2.example.test.')),
            rrOf('mx1.example.test.', T.A, a('127.0.0.2')),
            rrOf('mx2.example.test.', T.A, a('127.0.0.3')),
            rrOf('mx1.example.test.', T.AAAA, Buffer.from('20010db8000000000000000000000002', 'hex')),
            rrOf('_25._tcp.mx1.example.test.', T.TLSA, tlsa(3, 1, 1, Buffer.alloc(32, 0xab))),
            rrOf('www.example.test.', T.CNAME, wireKeepCase('mx1.example.test.')),
            rrOf('txt.example.test.', T.TXT, Buffer.concat([txt('v=spf1 -all'), txt('two')])),
          ],
          tamper: [{ owner: 'mx2.example.test.', type: T.A }],
        },
      ],
      Math.floor(Date.now() / 1000),
    );
    recursive = await startSignedDns({ zones: tree.zones });
    authoritative = await startSignedDns({ zones: tree.zones, authoritative: true });
    plain = await startDnsServer({
      zone: [
        { name: 'example.com', type: 'MX', exchange: 'mx1.example.com', preference: 10 },
        { name: 'mx1.example.com', type: 'A', address: '192.0.2.10' },
        { name: 'www.example.com', type: 'CNAME', target: 'mx1.example.com' },
        { name: '_25._tcp.mx1.example.com', type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) },
        { name: 'example.com', type: 'TXT', text: ['v=spf1', ' -all'] },
      ],
      ad: true,
    });
    for (const [name, type] of EXAMPLE_TEST_QUESTIONS) {
      seeds.push(await exchange(recursive.server, encodeQuery(1, name, type)));
      seeds.push(await exchange(authoritative.server, encodeQuery(2, name, type)));
    }
    for (const [name, type] of [
      ['example.com', 15],
      ['www.example.com', 1],
      ['_25._tcp.mx1.example.com', 52],
      ['example.com', 16],
      ['none.example.com', 1],
    ] as [string, number][]) {
      seeds.push(await exchange(plain.server, encodeQuery(3, name, type)));
    }
    seeds.push(pointerChainReply(4, question(QNAME), 300));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([recursive?.close(), authoritative?.close(), plain?.close()]);
  });

  it('the real replies decode without errors, and their names agree with dns2', () => {
    expect(seeds.length).toBeGreaterThan(20);
    // They include DNSSEC records (RRSIG 46, NSEC 47, DNSKEY 48), kept raw.
    expectCleanSeeds(seeds.slice(0, -1), [1, 5, 15, 16, 28, 52, 46, 47, 48, 6]);
  });

  it('40,000 mutated replies: decoding returns, its work stays within the bound, every name is safe', () => {
    expectMutationsSafe(seeds, 40_000);
  });

  it('crafted replies: every pointer target from every position, then every label length', () => {
    const base = reply({ an: [rr(ptr(Q), 15, Buffer.concat([u16(10), labelsThen(ptr(Q), 'mx1')])), rr(labelsThen(ptr(Q), 'www'), 5, ptr(Q))] });
    let runs = 0;
    const found: string[] = [];
    for (let at = 12; at < base.length - 1; at++) {
      for (let target = 0; target < base.length + 4; target++) {
        const b = Buffer.from(base);
        b[at] = 0xc0 | (target >> 8);
        b[at + 1] = target & 0xff;
        found.push(...problems(b, decodeMessage(b)));
        runs++;
      }
      for (let length = 0; length < 256; length++) {
        const b = Buffer.from(base);
        b[at] = length;
        found.push(...problems(b, decodeMessage(b)));
        runs++;
      }
    }
    expect(found.slice(0, 5)).toEqual([]);
    expect(runs).toBeGreaterThan(10_000);
  });
});

/* ----------------------------------------------------------------------------------------
 * Through the Resolver.
 */

describe('a hostile reply through the Resolver', () => {
  it('the 64 KB pointer-chain reply (over TCP after TC) fails the lookup as malformed; a lookup in flight beside it is answered', async () => {
    const sent: Buffer[] = [];
    const hostile = await startDnsServer({
      zone: [{ name: 'mx1.example.com', type: 'A', address: '192.0.2.10' }],
      ad: true,
      truncate: (name) => name === 'chain.example.com',
      reply: ({ id, name, transport, question }) => {
        if (name !== 'chain.example.com' || transport !== 'tcp') return undefined;
        const message = pointerChainReply(id, question);
        sent.push(message);
        return message;
      },
      // The other lookup is still waiting for its reply while the hostile one is decoded.
      delay: (name) => (name === 'mx1.example.com' ? 100 : 0),
    });
    try {
      const resolver = createResolver({ servers: [hostile.server], timeout: 2000, attempts: 1, cache: false });
      const [chain, other] = await Promise.all([resolver.a('chain.example.com'), resolver.a('mx1.example.com')]);
      expect(chain).toMatchObject({ status: 'failed', name: 'chain.example.com' });
      const reason = chain.status === 'failed' ? chain.reason : '';
      expect(reason.startsWith('DNS lookup of A for chain.example.com failed: malformed reply (answer 2: owner name at offset '), reason).toBe(true);
      expect(reason.endsWith(`follows more than ${MAX_POINTERS_PER_NAME} compression pointers) over TCP from ${hostile.server}`), reason).toBe(true);
      expect(other).toMatchObject({ status: 'secure', records: [{ address: '192.0.2.10', family: 4 }] });
      expect(hostile.queries.map((q) => `${q.transport} ${q.name}`).sort()).toEqual(['tcp chain.example.com', 'udp chain.example.com', 'udp mx1.example.com']);
      // The reply the resolver got, decoded again here: its whole cost was one name's worth of pointers.
      expect(sent).toHaveLength(1);
      expect(sent[0]!.length).toBeGreaterThan(65000);
      expect(sent[0]!.readUInt16BE(6)).toBeGreaterThan(3000);
      expect(decodeMessage(sent[0]!).work).toBeLessThanOrEqual(2 + 3 + 3 + MAX_POINTERS_PER_NAME + 1);
    } finally {
      await hostile.close();
    }
  });
});
