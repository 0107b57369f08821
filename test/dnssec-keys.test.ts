/**
 * From DS to trusted DNSKEYs (lib/dnssec/keys.ts): DS digests checked against the IANA root
 * keys, and validateDnskeys() over a table of key sets: KSK/ZSK and CSK layouts, SHA-256 and
 * SHA-384 digests, DS mismatches, unsupported digests and algorithms (insecure, RFC 4035 §5.2),
 * the SHA-1 downgrade, revoked keys, DNSKEY trust anchors, and the KeyTrap caps.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Budget } from '../lib/dnssec/budget.js';
import { dsDigest, dsMatches, validateDnskeys, type KeysetVerdict, type TrustPoint } from '../lib/dnssec/keys.js';
import { nameFromText } from '../lib/dnssec/names.js';
import { parseDnskey, parseDs, type Rr } from '../lib/dnssec/records.js';
import { verifyRrset, type VerifyOptions } from '../lib/dnssec/verify.js';
import { T, a, collidingDnskey, dnskeyRdata, makeDs, rr, sign, testKey, type SignOptions, type TestKey } from './helpers/dnssec-signer.js';

const NOW = 1_750_000_000;
const window: SignOptions = { inception: NOW - 3600, expiration: NOW + 7 * 86_400 };
const options = (budget = new Budget()): VerifyOptions => ({ now: NOW, budget });
const zone = 'example.';

describe('DS digests (RFC 4034 §5.1.4)', () => {
  // Debian's dns-root-data: the root KSKs and their DS records (SHA-256).
  const keys = readFileSync('/usr/share/dns/root.key', 'utf8')
    .split('\n')
    .filter((line) => line.includes('DNSKEY'))
    .map((line) => {
      const [flags, protocol, algorithm, key] = line.split(/\s+/).slice(3, 7);
      return parseDnskey(rr('.', T.DNSKEY, dnskeyRdata(Number(flags), Number(protocol), Number(algorithm), Buffer.from(key!, 'base64'))));
    });
  const ds = readFileSync('/usr/share/dns/root.ds', 'utf8')
    .split('\n')
    .filter((line) => line.includes(' DS '))
    .map((line) => {
      const [tag, algorithm, digestType, digest] = line.split(/\s+/).slice(3, 7);
      return parseDs(
        rr('.', T.DS, Buffer.concat([Buffer.from([Number(tag) >> 8, Number(tag) & 0xff, Number(algorithm), Number(digestType)]), Buffer.from(digest!, 'hex')])),
      );
    });
  it.each(ds.map((entry) => [entry.keyTag, entry] as const))('root DS %i matches its KSK', (tag, entry) => {
    const key = keys.find((k) => k.keyTag === tag)!;
    expect(dsDigest(key.owner, key.rdata, 2)).toEqual(Buffer.from(entry.digest));
    expect(dsMatches(entry, key)).toBe(true);
    expect(keys.filter((k) => dsMatches(entry, k))).toHaveLength(1);
  });
  it('has no digest for unsupported types', () => {
    expect(dsDigest([], keys[0]!.rdata, 1)).toBeUndefined();
    expect(dsDigest([], keys[0]!.rdata, 3)).toBeUndefined();
    expect(dsDigest([], keys[0]!.rdata, 4)!.length).toBe(48);
  });
});

const ksk = testKey(zone, 13);
const zsk = testKey(zone, 13, { flags: 256, variant: 1 });
const rsa = testKey(zone, 8);
const ed = testKey(zone, 15);
const revoked = testKey(zone, 13, { flags: 257 | 0x80, variant: 2 });
const weak = testKey(zone, 8, { rsaBits: 768 });
const ds = (key: TestKey, digestType = 2) => parseDs(makeDs(key, digestType));
const fakeDs = (tag: number, algorithm: number, digestType: number) =>
  parseDs(rr(zone, T.DS, Buffer.concat([Buffer.from([tag >> 8, tag & 0xff, algorithm, digestType]), Buffer.alloc(32, 7)])));
const keyset = (...keys: TestKey[]) => keys.map((key) => key.dnskey);
const sigs = (set: Rr[], ...by: TestKey[]) => by.map((key) => sign(set, key, window));

interface Row {
  name: string;
  set: Rr[];
  rrsigs: Rr[];
  trust: TrustPoint;
  budget?: Budget;
  expected: KeysetVerdict['status'];
  reason?: RegExp;
}

const ksKz = keyset(ksk, zsk);
const withDs = (set: Rr[], ...entries: ReturnType<typeof ds>[]) => ({ set, trust: { ds: entries } });
const rows: Row[] = [
  { name: 'KSK signs, DS names the KSK', ...withDs(ksKz, ds(ksk)), rrsigs: sigs(ksKz, ksk), expected: 'secure' },
  { name: 'SHA-384 DS', ...withDs(ksKz, ds(ksk, 4)), rrsigs: sigs(ksKz, ksk), expected: 'secure' },
  { name: 'a DS for a key without SEP that signs (SEP not required)', ...withDs(ksKz, ds(zsk)), rrsigs: sigs(ksKz, zsk), expected: 'secure' },
  { name: 'RSA/SHA-256 KSK', ...withDs(keyset(rsa, zsk), ds(rsa)), rrsigs: sigs(keyset(rsa, zsk), rsa), expected: 'secure' },
  { name: 'Ed25519 CSK', ...withDs(keyset(ed), ds(ed)), rrsigs: sigs(keyset(ed), ed), expected: 'secure' },
  { name: 'two DS, one for a key not in the set', ...withDs(ksKz, ds(ed), ds(ksk)), rrsigs: sigs(ksKz, ksk), expected: 'secure' },
  { name: 'DS digest mismatch', ...withDs(ksKz, fakeDs(ksk.key.keyTag, 13, 2)), rrsigs: sigs(ksKz, ksk), expected: 'bogus', reason: /no DNSKEY matches DS/ },
  { name: 'DS for a key not in the set', ...withDs(ksKz, ds(ed)), rrsigs: sigs(ksKz, ksk), expected: 'bogus', reason: /no DNSKEY matches/ },
  { name: 'the DS-named key did not sign the set', ...withDs(ksKz, ds(ksk)), rrsigs: sigs(ksKz, zsk), expected: 'bogus', reason: /no usable DNSKEY/ },
  { name: 'no RRSIG over the set', ...withDs(ksKz, ds(ksk)), rrsigs: [], expected: 'bogus', reason: /no RRSIG/ },
  {
    name: 'an expired RRSIG',
    ...withDs(ksKz, ds(ksk)),
    rrsigs: [sign(ksKz, ksk, { inception: NOW - 9 * 86_400, expiration: NOW - 86_400 })],
    expected: 'bogus',
    reason: /expired/,
  },
  {
    name: 'the set changed after signing',
    ...withDs([...ksKz, ed.dnskey], ds(ksk)),
    rrsigs: sigs(ksKz, ksk),
    expected: 'bogus',
    reason: /does not verify/,
  },
  { name: 'a DS for a revoked key (RFC 5011)', ...withDs(keyset(revoked, zsk), ds(revoked)), rrsigs: sigs(keyset(revoked, zsk), revoked), expected: 'bogus' },
  { name: 'only SHA-1 DS (treated as unsupported)', ...withDs(ksKz, ds(ksk, 1)), rrsigs: sigs(ksKz, ksk), expected: 'insecure', reason: /digest 1/ },
  { name: 'only GOST DS', ...withDs(ksKz, fakeDs(ksk.key.keyTag, 13, 3)), rrsigs: sigs(ksKz, ksk), expected: 'insecure' },
  { name: 'only an unknown digest type', ...withDs(ksKz, fakeDs(ksk.key.keyTag, 13, 99)), rrsigs: sigs(ksKz, ksk), expected: 'insecure' },
  { name: 'only DS of algorithm 5 (RSASHA1)', ...withDs(ksKz, fakeDs(1234, 5, 2)), rrsigs: sigs(ksKz, ksk), expected: 'insecure', reason: /algorithm 5/ },
  { name: 'only DS of algorithm 7', ...withDs(ksKz, fakeDs(1234, 7, 2), fakeDs(1235, 7, 4)), rrsigs: sigs(ksKz, ksk), expected: 'insecure' },
  { name: 'an unknown algorithm beside a supported one', ...withDs(ksKz, fakeDs(1234, 253, 2), ds(ksk)), rrsigs: sigs(ksKz, ksk), expected: 'secure' },
  {
    name: 'SHA-1 DS right, SHA-256 DS wrong: no downgrade (RFC 4509 §3)',
    ...withDs(ksKz, ds(ksk, 1), fakeDs(ksk.key.keyTag, 13, 2)),
    rrsigs: sigs(ksKz, ksk),
    expected: 'bogus',
  },
  { name: 'a DS-named RSA key below 1024 bits', ...withDs(keyset(weak), ds(weak)), rrsigs: sigs(keyset(weak), weak), expected: 'insecure', reason: /768-bit/ },
  {
    name: 'an RRSIG claiming algorithm 5 over a set a supported DS vouches for',
    ...withDs(ksKz, ds(ksk)),
    rrsigs: [sign(ksKz, ksk, { ...window, algorithm: 5 })],
    expected: 'bogus',
  },
  { name: 'no DS and no anchor', set: ksKz, trust: {}, rrsigs: sigs(ksKz, ksk), expected: 'bogus', reason: /no DS or trust anchor/ },
  {
    name: 'a DS of another owner',
    set: ksKz,
    trust: { ds: [parseDs({ ...makeDs(ksk), owner: nameFromText('other.') })] },
    rrsigs: sigs(ksKz, ksk),
    expected: 'bogus',
  },
  { name: 'a DNSKEY anchor', set: ksKz, trust: { keys: [ksk.key] }, rrsigs: sigs(ksKz, ksk), expected: 'secure' },
  { name: 'a DNSKEY anchor not in the set', set: ksKz, trust: { keys: [ed.key] }, rrsigs: sigs(ksKz, ksk), expected: 'bogus' },
  { name: 'a revoked DNSKEY anchor', set: keyset(revoked), trust: { keys: [revoked.key] }, rrsigs: sigs(keyset(revoked), revoked), expected: 'insecure' },
  { name: 'an empty set', set: [], trust: { ds: [ds(ksk)] }, rrsigs: [], expected: 'bogus' },
];

// Key-tag collisions: keys sharing the DS's tag, all but the real one wrong, the real one last.
const colliding = (count: number) => Array.from({ length: count }, (_, i) => collidingDnskey(rsa.dnskey, i));
const pair = [colliding(1)[0]!, rsa.dnskey];
const trap = [...colliding(4), rsa.dnskey];
rows.push(
  { name: 'a key-tag collision: the DS-matched key is found among same-tag keys', ...withDs(pair, ds(rsa)), rrsigs: sigs(pair, rsa), expected: 'secure' },
  {
    name: 'more keys with the DS tag than the cap (KeyTrap)',
    ...withDs(trap, ds(rsa)),
    rrsigs: sigs(trap, rsa),
    budget: new Budget({ keysPerTag: 4 }),
    expected: 'limit',
    reason: /5 DNSKEYs share tag/,
  },
  { name: 'the signature budget runs out', ...withDs(ksKz, ds(ksk)), rrsigs: sigs(ksKz, ksk), budget: new Budget({ signatures: 0 }), expected: 'limit' },
);

describe('validateDnskeys (RFC 4035 §5.2)', () => {
  it.each(rows.map((row) => [row.name, row] as const))('%s', (_, row) => {
    const verdict = validateDnskeys(row.set, row.rrsigs, row.trust, options(row.budget));
    expect(verdict.status, JSON.stringify(verdict)).toBe(row.expected);
    if (row.reason) expect(verdict).toMatchObject({ reason: expect.stringMatching(row.reason) });
  });

  it('a secure set gives every key: the ZSK then verifies the zone data', () => {
    const verdict = validateDnskeys(ksKz, sigs(ksKz, ksk), { ds: [ds(ksk)] }, options());
    expect(verdict).toMatchObject({ status: 'secure', keyTag: ksk.key.keyTag, algorithm: 13, ttl: 3600 });
    if (verdict.status !== 'secure') return;
    expect(verdict.keys.map((key) => key.keyTag).sort()).toEqual([ksk.key.keyTag, zsk.key.keyTag].sort());
    const data = [rr('www.example.', T.A, a('192.0.2.1'))];
    expect(verifyRrset(data, [sign(data, zsk, window)], verdict.keys, options()).status).toBe('secure');
  });
});
