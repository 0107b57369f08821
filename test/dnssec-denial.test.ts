/**
 * Denial of existence (lib/dnssec/nsec.ts, lib/dnssec/nsec3.ts) over zones signed by
 * test/helpers/dnssec-signer.ts: one table of NXDOMAIN, NODATA and wildcard proofs per chain
 * kind (NSEC; NSEC3 with and without salt and iterations; NSEC3 opt-out), good and forged (a
 * record left out, a name that exists, a replayed wildcard, the parent side of a delegation,
 * the child's apex), then NSEC3's parameters (more than 150 iterations, unknown hash, unknown
 * flags, mixed chains) and its hash budget (CVE-2023-50868).
 */
import { describe, expect, it } from 'vitest';
import { Budget } from '../lib/dnssec/budget.js';
import { nameFromText, nameWire, sameName, wildcardOf, type Name } from '../lib/dnssec/names.js';
import { nsecCovers, nsecProveNodata, nsecProveNxdomain, nsecProveWildcard, type DenialVerdict } from '../lib/dnssec/nsec.js';
import { base32hex, fromBase32hex, nsec3Hash, nsec3ProveNodata, nsec3ProveNxdomain, nsec3ProveWildcard } from '../lib/dnssec/nsec3.js';
import { parseNsec, parseNsec3, type Rr } from '../lib/dnssec/records.js';
import { verifyRrset } from '../lib/dnssec/verify.js';
import { T, a, makeDs, ns, rr, signZone, testKey, txt, type Nsec3Options, type SignedZone } from './helpers/dnssec-signer.js';

const NOW = 1_750_000_000;
const n = nameFromText;
const ORIGIN = 'example.';
const key = testKey(ORIGIN, 13);
const childKey = testKey('sub.example.', 15);

function soa(origin: string): Uint8Array {
  return Buffer.concat([nameWire(n(`ns.${origin}`)), nameWire(n(`hostmaster.${origin}`)), Buffer.from('0000000100000e100000025800015180000003c', 'hex')]);
}

const RECORDS: Rr[] = [
  rr(ORIGIN, T.SOA, soa(ORIGIN)),
  rr(ORIGIN, T.NS, ns('ns.example.')),
  rr('ns.example.', T.A, a('192.0.2.53')),
  rr('a.example.', T.A, a('192.0.2.1')),
  rr('cname.example.', T.CNAME, ns('a.example.')),
  rr('*.w.example.', T.TXT, txt('wild')),
  rr('x.y.example.', T.A, a('192.0.2.2')),
  rr('sub.example.', T.NS, ns('ns.sub.example.')),
  makeDs(childKey),
  rr('ns.sub.example.', T.A, a('192.0.2.3')),
  rr('insecure.example.', T.NS, ns('ns.insecure.example.')),
  rr('ns.insecure.example.', T.A, a('192.0.2.4')),
];

const signed = (denial: ZoneDenial, records = RECORDS, origin = ORIGIN, keys = [key]) =>
  signZone({ origin, records, keys, denial, inception: NOW - 3600, expiration: NOW + 86_400 });
type ZoneDenial = 'nsec' | Nsec3Options;

const zones: Record<string, SignedZone> = {
  nsec: signed('nsec'),
  nsec3: signed({ salt: Buffer.from('aabbccdd', 'hex'), iterations: 10 }),
  'nsec3 no salt, 0 iterations': signed({}),
  'nsec3 opt-out': signed({ optOut: true, salt: Buffer.from('01', 'hex'), iterations: 1 }),
};

type Kind = { nxdomain: string } | { nodata: string; type: number } | { wildcard: string; from: string };

function prove(zone: SignedZone, kind: Kind, records: Rr[] = zone.denial, budget = new Budget(), origin: Name = zone.origin): DenialVerdict {
  const nsec3 = records.some((r) => r.type === T.NSEC3);
  if ('nxdomain' in kind) return nsec3 ? nsec3ProveNxdomain(n(kind.nxdomain), records, origin, budget) : nsecProveNxdomain(n(kind.nxdomain), records, origin);
  if ('nodata' in kind)
    return nsec3 ? nsec3ProveNodata(n(kind.nodata), kind.type, records, origin, budget) : nsecProveNodata(n(kind.nodata), kind.type, records, origin);
  return nsec3
    ? nsec3ProveWildcard(n(kind.wildcard), n(kind.from), records, origin, budget)
    : nsecProveWildcard(n(kind.wildcard), n(kind.from), records, origin);
}

describe('the signed test zones', () => {
  it.each(Object.entries(zones))('%s: every denial RRset verifies', (_, zone) => {
    const denials = zone.denial.filter((r) => r.type !== T.RRSIG);
    expect(denials.length).toBeGreaterThan(5);
    for (const record of denials) {
      const verdict = verifyRrset([record], zone.rrsigs(record.owner, record.type), [key.key], { now: NOW, budget: new Budget() });
      expect(verdict.status).toBe('secure');
    }
  });

  it('base32hex round-trips, and NSEC3 hashes match RFC 5155 appendix A', () => {
    // RFC 5155 appendix A: salt aabbccdd, 12 iterations; H(example) = 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.
    expect(base32hex(nsec3Hash(n('example.'), Buffer.from('aabbccdd', 'hex'), 12))).toBe('0p9mhaveqvm6t7vbl5lop2u3t2rp3tom');
    expect(base32hex(nsec3Hash(n('a.example.'), Buffer.from('aabbccdd', 'hex'), 12))).toBe('35mthgpgcu1qg68fab165klnsnk3dpvl');
    expect(base32hex(nsec3Hash(n('*.w.example.'), Buffer.from('aabbccdd', 'hex'), 12))).toBe('r53bq7cc2uvmubfu5ocmm6pers9tk9en');
    const octets = nsec3Hash(n('x.example.'), Buffer.alloc(0), 0);
    expect(fromBase32hex(Buffer.from(base32hex(octets).toUpperCase()))).toEqual(octets);
    expect(fromBase32hex(Buffer.from('0p9mhaveqvm6t7vbl5lop2u3t2rp3toz'))).toBeUndefined();
    expect(fromBase32hex(Buffer.from('0'))).toBeUndefined();
  });
});

interface Row {
  name: string;
  kind: Kind;
  expected: DenialVerdict['status'];
  reason?: RegExp;
  /** Only for chains of this kind. */
  only?: 'nsec' | 'nsec3' | 'opt-out';
  /**
   * The verdict over the opt-out chain, where it differs: there every NSEC3 has the opt-out
   * flag, so a next closer name it covers may be an unsigned delegation (RFC 5155 §9.2).
   */
  optOut?: DenialVerdict['status'];
}

const rows: Row[] = [
  { name: 'NXDOMAIN', kind: { nxdomain: 'nope.example.' }, expected: 'secure', optOut: 'insecure' },
  { name: 'NXDOMAIN deep below an existing name', kind: { nxdomain: 'p.q.a.example.' }, expected: 'secure', optOut: 'insecure' },
  { name: 'NXDOMAIN below an empty non-terminal', kind: { nxdomain: 'q.y.example.' }, expected: 'secure', optOut: 'insecure' },
  { name: 'forged NXDOMAIN for a name that exists', kind: { nxdomain: 'a.example.' }, expected: 'bogus', reason: /exists/ },
  { name: 'forged NXDOMAIN for an empty non-terminal', kind: { nxdomain: 'y.example.' }, expected: 'bogus', reason: /exists|empty non-terminal/ },
  { name: 'forged NXDOMAIN where a wildcard answers', kind: { nxdomain: 'z.w.example.' }, expected: 'bogus', reason: /wildcard \*\.w\.example\. exists/ },
  { name: 'NXDOMAIN below a signed delegation (the child answers)', kind: { nxdomain: 'foo.sub.example.' }, expected: 'bogus' },
  { name: 'NXDOMAIN below an unsigned delegation', kind: { nxdomain: 'foo.insecure.example.' }, expected: 'bogus', only: 'nsec' },
  { name: 'NXDOMAIN below an unsigned delegation', kind: { nxdomain: 'foo.insecure.example.' }, expected: 'insecure', only: 'nsec3' },
  { name: 'NXDOMAIN in an opt-out span', kind: { nxdomain: 'foo.insecure.example.' }, expected: 'insecure', only: 'opt-out' },
  { name: 'NODATA', kind: { nodata: 'a.example.', type: T.MX }, expected: 'secure' },
  { name: 'NODATA at the apex', kind: { nodata: 'example.', type: T.MX }, expected: 'secure' },
  { name: 'forged NODATA for a type that exists', kind: { nodata: 'a.example.', type: T.A }, expected: 'bogus', reason: /has the type A/ },
  { name: 'NODATA where a CNAME exists (RFC 6840 §4.3)', kind: { nodata: 'cname.example.', type: T.A }, expected: 'bogus', reason: /CNAME/ },
  { name: 'NODATA at an empty non-terminal', kind: { nodata: 'y.example.', type: T.A }, expected: 'secure' },
  { name: 'NODATA from a wildcard without the type', kind: { nodata: 'z.w.example.', type: T.MX }, expected: 'secure', optOut: 'insecure' },
  { name: 'forged NODATA from a wildcard with the type', kind: { nodata: 'z.w.example.', type: T.TXT }, expected: 'bogus', reason: /has the type TXT/ },
  { name: 'forged NODATA for a name that does not exist, no wildcard', kind: { nodata: 'nope.example.', type: T.A }, expected: 'bogus', optOut: 'insecure' },
  { name: 'no DS at an unsigned delegation', kind: { nodata: 'insecure.example.', type: T.DS }, expected: 'secure', only: 'nsec' },
  { name: 'no DS at an unsigned delegation', kind: { nodata: 'insecure.example.', type: T.DS }, expected: 'secure', only: 'nsec3' },
  {
    name: 'no DS at an unsigned delegation: opt-out',
    kind: { nodata: 'insecure.example.', type: T.DS },
    expected: 'insecure',
    reason: /opt-out/,
    only: 'opt-out',
  },
  { name: 'forged no DS at a signed delegation', kind: { nodata: 'sub.example.', type: T.DS }, expected: 'bogus', reason: /has the type DS/ },
  { name: 'no DS at an ordinary name', kind: { nodata: 'a.example.', type: T.DS }, expected: 'secure' },
  {
    name: 'parent-side NODATA at an unsigned delegation (RFC 6840 §4.1)',
    kind: { nodata: 'insecure.example.', type: T.A },
    expected: 'insecure',
    only: 'nsec',
  },
  {
    name: 'parent-side NODATA at an unsigned delegation (RFC 6840 §4.1)',
    kind: { nodata: 'insecure.example.', type: T.A },
    expected: 'insecure',
    only: 'nsec3',
  },
  {
    name: 'parent-side NODATA at a signed delegation (RFC 6840 §4.1)',
    kind: { nodata: 'sub.example.', type: T.A },
    expected: 'bogus',
    reason: /signed delegation/,
  },
  { name: 'a wildcard answer', kind: { wildcard: 'z.w.example.', from: '*.w.example.' }, expected: 'secure', optOut: 'insecure' },
  { name: 'a wildcard answer two labels down', kind: { wildcard: 'p.z.w.example.', from: '*.w.example.' }, expected: 'secure', optOut: 'insecure' },
  { name: 'a wildcard replayed for a name that exists', kind: { wildcard: 'a.example.', from: '*.example.' }, expected: 'bogus' },
  { name: 'a wildcard replayed past a closer name', kind: { wildcard: 'q.y.example.', from: '*.example.' }, expected: 'bogus' },
  { name: 'a wildcard that is not above the name', kind: { wildcard: 'a.example.', from: '*.w.example.' }, expected: 'bogus', reason: /not below/ },
];

describe.each(Object.entries(zones))('proofs over %s', (label, zone) => {
  const chain = label === 'nsec' ? 'nsec' : label.includes('opt-out') ? 'opt-out' : 'nsec3';
  const mine = rows.filter((row) => row.only === undefined || row.only === chain);
  it.each(mine.map((row) => [row.name, row] as const))('%s', (_, row) => {
    const verdict = prove(zone, row.kind);
    expect(verdict.status, JSON.stringify(verdict)).toBe(chain === 'opt-out' ? (row.optOut ?? row.expected) : row.expected);
    if (row.reason) expect(verdict).toMatchObject({ [verdict.status === 'secure' ? 'proof' : 'reason']: expect.stringMatching(row.reason) });
  });

  it('no records, or records of another zone, prove nothing', () => {
    expect(prove(zone, { nxdomain: 'nope.example.' }, []).status).toBe('bogus');
    expect(prove(zone, { nxdomain: 'nope.example.' }, zone.denial, new Budget(), n('other.')).status).toBe('bogus');
    expect(prove(zone, { nxdomain: 'nope.other.' }).status).toBe('bogus');
  });
});

/** The denial records of a zone without those that match or cover `name` (as NSEC or NSEC3 sees it). */
function without(zone: SignedZone, name: Name, salt = Buffer.alloc(0), iterations = 0): Rr[] {
  const nsec3 = zone.denial.some((r) => r.type === T.NSEC3);
  if (nsec3) {
    const hash = nsec3Hash(name, salt, iterations);
    return zone.denial.filter((r) => {
      if (r.type !== T.NSEC3) return true;
      const own = fromBase32hex(r.owner[0]!)!;
      const next = Buffer.from(parseNsec3(r).nextHashed);
      const inside =
        Buffer.compare(own, next) < 0
          ? Buffer.compare(own, hash) <= 0 && Buffer.compare(hash, next) < 0
          : Buffer.compare(own, hash) <= 0 || Buffer.compare(hash, next) < 0;
      return !inside;
    });
  }
  return zone.denial.filter((r) => r.type !== T.NSEC || !(nsecCovers(parseNsec(r), name) || sameName(r.owner, name)));
}

describe('a proof with a record left out is bogus', () => {
  it('NSEC: NXDOMAIN without the NSEC that covers the wildcard', () => {
    const zone = zones.nsec!;
    // nope.example.'s closest encloser is example.; *.example. is covered by the apex NSEC.
    const records = without(zone, wildcardOf(n(ORIGIN)));
    expect(prove(zone, { nxdomain: 'nope.example.' }, records)).toMatchObject({ status: 'bogus', reason: expect.stringMatching(/\*\.example\./) });
  });
  it('NSEC: NXDOMAIN without the NSEC that covers the name', () => {
    const zone = zones.nsec!;
    expect(prove(zone, { nxdomain: 'nope.example.' }, without(zone, n('nope.example.')))).toMatchObject({
      status: 'bogus',
      reason: expect.stringMatching(/no NSEC covers/),
    });
  });
  it('NSEC3: NXDOMAIN without the NSEC3 covering the wildcard', () => {
    const zone = zones['nsec3 no salt, 0 iterations']!;
    // A query name whose next closer name and wildcard are covered by different NSEC3s.
    const wildcardCover = without(zone, wildcardOf(n(ORIGIN)));
    const qname = ['nope', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
      .map((label) => `${label}.example.`)
      .find((q) => /covers the wildcard/.test(JSON.stringify(prove(zone, { nxdomain: q }, wildcardCover))));
    expect(qname).toBeDefined();
    expect(prove(zone, { nxdomain: qname! }).status).toBe('secure');
    expect(prove(zone, { nxdomain: qname! }, wildcardCover)).toMatchObject({ status: 'bogus', reason: expect.stringMatching(/no NSEC3 covers the wildcard/) });
  });
  it('NSEC3: NXDOMAIN without the NSEC3 matching the closest encloser', () => {
    const zone = zones['nsec3 no salt, 0 iterations']!;
    const hash = base32hex(nsec3Hash(n(ORIGIN), Buffer.alloc(0), 0));
    const records = zone.denial.filter((r) => !(r.type === T.NSEC3 && Buffer.from(r.owner[0]!).toString() === hash));
    expect(prove(zone, { nxdomain: 'nope.example.' }, records)).toMatchObject({ status: 'bogus', reason: expect.stringMatching(/no NSEC3 matches/) });
  });
  it('NSEC3: a wildcard answer without the NSEC3 covering the next closer name', () => {
    const zone = zones['nsec3 no salt, 0 iterations']!;
    expect(prove(zone, { wildcard: 'z.w.example.', from: '*.w.example.' }, without(zone, n('z.w.example.')))).toMatchObject({
      status: 'bogus',
      reason: expect.stringMatching(/next closer/),
    });
  });
});

describe('the child apex cannot deny its own DS', () => {
  const childRecords = [
    rr('sub.example.', T.SOA, soa('sub.example.')),
    rr('sub.example.', T.NS, ns('ns.sub.example.')),
    rr('ns.sub.example.', T.A, a('192.0.2.3')),
  ];
  it.each([
    ['NSEC', 'nsec' as const],
    ['NSEC3', {} as Nsec3Options],
  ])('%s', (_, denial) => {
    const child = signed(denial, childRecords, 'sub.example.', [childKey]);
    expect(prove(child, { nodata: 'sub.example.', type: T.DS })).toMatchObject({ status: 'bogus', reason: expect.stringMatching(/child's apex/) });
  });
});

describe('NSEC3 parameters (RFC 5155 §8.1, §8.2, RFC 9276)', () => {
  it.each([
    ['150 iterations', { iterations: 150 }, 'secure'],
    ['151 iterations: insecure', { iterations: 151 }, 'insecure'],
    ['65535 iterations: insecure, and no hash computed', { iterations: 65535 }, 'insecure'],
    ['an unknown hash algorithm: insecure', { hashAlgorithm: 2 }, 'insecure'],
    ['unknown flags: ignored, nothing left', { extraFlags: 2 }, 'bogus'],
  ] as const)('%s', (_, options, expected) => {
    const zone = signed(options);
    const budget = new Budget();
    const verdict = prove(zone, { nxdomain: 'nope.example.' }, zone.denial, budget);
    expect(verdict.status, JSON.stringify(verdict)).toBe(expected);
    if (expected === 'insecure') expect(budget.nsec3Hashes).toBe(0);
  });

  it('a second chain with other parameters is ignored', () => {
    const other = signed({ salt: Buffer.from('ff', 'hex'), iterations: 3 });
    const zone = zones.nsec3!;
    expect(prove(zone, { nxdomain: 'nope.example.' }, [...zone.denial, ...other.denial]).status).toBe('secure');
    // Half of another chain in front makes its parameters the ones used: the proof fails.
    const half = other.denial.filter((r) => r.type === T.NSEC3).slice(0, 2);
    expect(prove(zone, { nxdomain: 'nope.example.' }, [...half, ...zone.denial]).status).toBe('bogus');
  });
});

describe('the NSEC3 hash budget (CVE-2023-50868)', () => {
  const zone = zones.nsec3!;
  const deep = 'a.b.c.d.e.f.g.h.nope.example.';
  it('counts one hash per name tried', () => {
    const budget = new Budget();
    expect(prove(zone, { nxdomain: deep }, zone.denial, budget).status).toBe('secure');
    // Nine names from the query name up to nope.example., the apex, then the wildcard.
    expect(budget.nsec3Hashes).toBe(11);
  });
  it('stops with limit when the cap is reached', () => {
    const budget = new Budget({ nsec3Hashes: 5 });
    expect(prove(zone, { nxdomain: deep }, zone.denial, budget)).toMatchObject({ status: 'limit', reason: expect.stringMatching(/more than 5 NSEC3 hashes/) });
    expect(budget.nsec3Hashes).toBe(5);
  });
  it('shares the cap across calls', () => {
    const budget = new Budget({ nsec3Hashes: 12 });
    expect(prove(zone, { nxdomain: deep }, zone.denial, budget).status).toBe('secure');
    expect(prove(zone, { nxdomain: 'other.example.' }, zone.denial, budget).status).toBe('limit');
  });
});
