/**
 * RRSIG verification (lib/dnssec/verify.ts), one row per rule of RFC 4034 §3 and RFC 4035
 * §5.3: every supported algorithm, the validity window (skew, RFC 1982 wrap-around), key
 * selection (tag, collisions, REVOKE, Zone Key, protocol), signer and label checks, wildcard
 * expansion, canonical form, unsupported algorithms and keys, and the KeyTrap caps.
 * Signatures come from test/helpers/dnssec-signer.ts (node:crypto).
 */
import { describe, expect, it } from 'vitest';
import { Budget } from '../lib/dnssec/budget.js';
import { nameFromText, nameToText } from '../lib/dnssec/names.js';
import { keyTag, parseDnskey, type Dnskey } from '../lib/dnssec/records.js';
import { serialDistance, verifyRrset, type RrsetVerdict, type VerifyOptions } from '../lib/dnssec/verify.js';
import { T, a, collidingDnskey, dnskeyRdata, mx, rr, sign, testKey, txt, wireKeepCase, type SignOptions } from './helpers/dnssec-signer.js';

const NOW = 1_750_000_000;
const HOUR = 3600;
const DAY = 86_400;
const window: SignOptions = { inception: NOW - HOUR, expiration: NOW + 7 * DAY };

const zone = 'example.';
const set = [rr('www.example.', T.A, a('192.0.2.1')), rr('www.example.', T.A, a('192.0.2.2'))];

const options = (extra: Partial<VerifyOptions> = {}): VerifyOptions => ({ now: NOW, budget: new Budget(), ...extra });

describe('signatures per algorithm', () => {
  it.each([8, 10, 13, 14, 15, 16] as const)('algorithm %i verifies', (algorithm) => {
    const key = testKey(zone, algorithm);
    const verdict = verifyRrset(set, [sign(set, key, window)], [key.key], options());
    expect(verdict).toMatchObject({ status: 'secure', algorithm, keyTag: key.key.keyTag });
  });

  it.each([8, 13, 15] as const)('algorithm %i rejects a tampered RDATA', (algorithm) => {
    const key = testKey(zone, algorithm);
    const sig = sign(set, key, window);
    const tampered = [set[0]!, rr('www.example.', T.A, a('192.0.2.3'))];
    expect(verifyRrset(tampered, [sig], [key.key], options())).toMatchObject({ status: 'bogus', reason: expect.stringMatching(/does not verify/) });
  });

  it('rejects a signature of the wrong length', () => {
    const key = testKey(zone, 13);
    const sig = sign(set, key, window);
    const cut = { ...sig, rdata: sig.rdata.subarray(0, sig.rdata.length - 1) };
    expect(verifyRrset(set, [cut], [key.key], options()).status).toBe('bogus');
  });
});

describe('RFC 4035 §5.3.1 checks', () => {
  const key = testKey(zone, 13);
  const other = testKey(zone, 13, { variant: 1 });
  const revoked = testKey(zone, 13, { flags: 257 | 0x80 });
  const noZoneBit = testKey(zone, 13, { flags: 1 });
  const protocol2 = testKey(zone, 13, { protocol: 2 });
  const sub = testKey('sub.example.', 13);
  const rows: [string, () => RrsetVerdict, RegExp | 'secure'][] = [
    ['the right key among others', () => verifyRrset(set, [sign(set, key, window)], [other.key, key.key], options()), 'secure'],
    [
      'a key tag no DNSKEY has',
      () => verifyRrset(set, [sign(set, key, { ...window, keyTag: (key.key.keyTag + 1) & 0xffff })], [key.key], options()),
      /no usable DNSKEY/,
    ],
    ['a signature by a key not in the set', () => verifyRrset(set, [sign(set, other, window)], [key.key], options()), /no usable DNSKEY/],
    ['a revoked key (RFC 5011)', () => verifyRrset(set, [sign(set, revoked, window)], [revoked.key], options()), /no usable DNSKEY/],
    ['a key without the Zone Key flag', () => verifyRrset(set, [sign(set, noZoneBit, window)], [noZoneBit.key], options()), /no usable DNSKEY/],
    ['a key with protocol 2', () => verifyRrset(set, [sign(set, protocol2, window)], [protocol2.key], options()), /no usable DNSKEY/],
    [
      'a signer that is not the zone',
      () => verifyRrset(set, [sign(set, key, { ...window, signer: 'other.example.' })], [key.key], options()),
      /is not the zone/,
    ],
    ['a signer below the owner', () => verifyRrset(set, [sign(set, sub, window)], [sub.key], options()), /not www.example. or above/],
    [
      'a DS signed at its own owner (the child side)',
      () => {
        const ds = [rr('sub.example.', T.DS, Buffer.from('0001080201', 'hex'))];
        return verifyRrset(ds, [sign(ds, sub, window)], [sub.key], options());
      },
      /DS RRset signed by the zone below the cut/,
    ],
    [
      'a Labels field above the owner labels',
      () => {
        const sig = sign(set, key, window);
        const rdata = Buffer.from(sig.rdata);
        rdata[3] = 3;
        return verifyRrset(set, [{ ...sig, rdata }], [key.key], options());
      },
      /exceeds/,
    ],
    ['RRSIGs of another type only', () => verifyRrset(set, [sign(set, key, { ...window, typeCovered: T.AAAA })], [key.key], options()), /no RRSIG covers/],
    ['no RRSIG', () => verifyRrset(set, [], [key.key], options()), /no RRSIG covers/],
    ['no DNSKEY', () => verifyRrset(set, [sign(set, key, window)], [], options()), /no DNSKEY/],
    [
      'an RRSIG of another owner',
      () => verifyRrset(set, [{ ...sign(set, key, window), owner: nameFromText('ftp.example.') }], [key.key], options()),
      /no RRSIG covers/,
    ],
    ['a mixed RRset', () => verifyRrset([...set, rr('ftp.example.', T.A, a('192.0.2.9'))], [sign(set, key, window)], [key.key], options()), /other owners/],
  ];
  it.each(rows)('%s', (_, run, expected) => {
    const verdict = run();
    if (expected === 'secure') expect(verdict.status).toBe('secure');
    else expect(verdict).toMatchObject({ status: 'bogus', reason: expect.stringMatching(expected) });
  });
});

describe('validity window (RFC 4034 §3.1.5, RFC 1982)', () => {
  const key = testKey(zone, 15);
  const check = (signOptions: SignOptions, now: number, skew?: number) =>
    verifyRrset(set, [sign(set, key, signOptions)], [key.key], options({ now, ...(skew === undefined ? {} : { skew }) }));
  it.each([
    ['valid', window, NOW, undefined, 'secure'],
    ['expired', { inception: NOW - 30 * DAY, expiration: NOW - DAY }, NOW, undefined, /expired/],
    ['not yet valid', { inception: NOW + HOUR, expiration: NOW + DAY }, NOW, undefined, /not valid until/],
    ['expired 100 s ago, within the default skew of 300 s', { inception: NOW - DAY, expiration: NOW - 100 }, NOW, undefined, 'secure'],
    ['expired 100 s ago with no skew', { inception: NOW - DAY, expiration: NOW - 100 }, NOW, 0, /expired/],
    ['incepting in 200 s, within the skew', { inception: NOW + 200, expiration: NOW + DAY }, NOW, undefined, 'secure'],
    ['expiration before inception', { inception: NOW + DAY, expiration: NOW - DAY }, NOW, undefined, /not after its inception/],
    // Year 2106: the 32-bit fields wrap; serial arithmetic still orders them.
    ['across the 2^32 wrap', { inception: 2 ** 32 - 1000, expiration: 2 ** 32 + 5000 }, 2 ** 32 + 100, undefined, 'secure'],
    ['expired across the wrap', { inception: 2 ** 32 - 10_000, expiration: 2 ** 32 - 5000 }, 2 ** 32 + 100, undefined, /expired/],
    ['not yet valid across the wrap', { inception: 2 ** 32 + 1000, expiration: 2 ** 32 + 5000 }, 2 ** 32 - 1000, undefined, /not valid until/],
  ] as const)('%s', (_, signOptions, now, skew, expected) => {
    const verdict = check(signOptions, now, skew);
    if (expected === 'secure') expect(verdict.status).toBe('secure');
    else expect(verdict).toMatchObject({ status: 'bogus', reason: expect.stringMatching(expected) });
  });

  it('serialDistance is RFC 1982 arithmetic', () => {
    expect(serialDistance(5, 2 ** 32 - 5)).toBe(10);
    expect(serialDistance(2 ** 32 - 5, 5)).toBe(-10);
  });

  it('caps the TTL at the original TTL, the TTLs and the time left (RFC 4035 §5.3.3)', () => {
    const lowered = [{ ...set[0]!, ttl: 120 }, set[1]!];
    expect(verifyRrset(lowered, [sign(set, key, window)], [key.key], options())).toMatchObject({ status: 'secure', ttl: 120 });
    expect(verifyRrset(set, [sign(set, key, { inception: NOW - HOUR, expiration: NOW + 50 })], [key.key], options())).toMatchObject({ ttl: 50 });
  });
});

describe('canonical form and order', () => {
  const key = testKey(zone, 13);
  const mxSet = [rr('example.', T.MX, mx(10, 'Mail.Example.')), rr('example.', T.MX, mx(20, 'backup.example.')), rr('example.', T.MX, mx(5, 'a.example.'))];
  const sig = sign(mxSet, key, window);
  it.each([
    ['the RRset shuffled', [mxSet[2]!, mxSet[0]!, mxSet[1]!]],
    ['names in RDATA in another case', [rr('example.', T.MX, mx(10, 'MAIL.example.')), mxSet[1]!, mxSet[2]!]],
    ['a duplicate record', [...mxSet, mxSet[1]!]],
    ['an uppercase owner', mxSet.map((r) => ({ ...r, owner: [Buffer.from('EXAMPLE')] }))],
  ])('%s verifies', (_, variant) => {
    expect(verifyRrset(variant, [sig], [key.key], options()).status).toBe('secure');
  });
  it('a TXT RDATA in another case does not (only names are lowercased)', () => {
    const texts = [rr('example.', T.TXT, txt('Hello'))];
    expect(verifyRrset([rr('example.', T.TXT, txt('hello'))], [sign(texts, key, window)], [key.key], options()).status).toBe('bogus');
  });
  it('a signer name in another case verifies', () => {
    const upper = sign(mxSet, key, { ...window, signer: [Buffer.from('EXAMPLE')] });
    expect(verifyRrset(mxSet, [upper], [key.key], options()).status).toBe('secure');
    expect(wireKeepCase('EXAMPLE.')).toEqual(Buffer.from('\x07EXAMPLE\x00', 'latin1'));
  });
});

describe('wildcards (RFC 4035 §5.3.2)', () => {
  const key = testKey(zone, 13);
  const source = [rr('*.w.example.', T.TXT, txt('wild'))];
  const expanded = [rr('a.b.w.example.', T.TXT, txt('wild'))];
  it('an expansion verifies and names its wildcard', () => {
    const sig = sign(source, key, window);
    const verdict = verifyRrset(expanded, [{ ...sig, owner: expanded[0]!.owner }], [key.key], options());
    expect(verdict.status).toBe('secure');
    expect(verdict.status === 'secure' && verdict.wildcard && nameToText(verdict.wildcard)).toBe('*.w.example.');
  });
  it('the wildcard RRset itself is not an expansion', () => {
    const verdict = verifyRrset(source, [sign(source, key, window)], [key.key], options());
    expect(verdict).toMatchObject({ status: 'secure' });
    expect(verdict.status === 'secure' ? verdict.wildcard : 'not secure').toBeUndefined();
  });
  it('a Labels field claiming a shorter wildcard does not verify', () => {
    const sig = sign(source, key, window);
    const rdata = Buffer.from(sig.rdata);
    rdata[3] = 1; // *.example. instead of *.w.example.
    expect(verifyRrset(expanded, [{ ...sig, owner: expanded[0]!.owner, rdata }], [key.key], options()).status).toBe('bogus');
  });
  it('an ordinary RRSIG replayed for another name does not verify', () => {
    const exact = [rr('x.w.example.', T.TXT, txt('wild'))];
    const sig = sign(exact, key, window);
    expect(verifyRrset(expanded, [{ ...sig, owner: expanded[0]!.owner }], [key.key], options()).status).toBe('bogus');
  });
});

describe('unsupported algorithms and keys (RFC 4035 §5.2, RFC 6840 §5.2)', () => {
  const key = testKey(zone, 13);
  const fakeKey = (algorithm: number): Dnskey => parseDnskey(rr(zone, T.DNSKEY, dnskeyRdata(257, 3, algorithm, Buffer.alloc(64, 1))));
  it.each([
    ['RSASHA1 (5)', 5],
    ['RSASHA1-NSEC3-SHA1 (7)', 7],
    ['an unknown algorithm (253)', 253],
  ])('%s is unsupported, not bogus', (_, algorithm) => {
    const k = fakeKey(algorithm);
    const verdict = verifyRrset(set, [sign(set, key, { ...window, algorithm, keyTag: k.keyTag })], [k], options());
    expect(verdict).toMatchObject({ status: 'unsupported', reason: expect.stringMatching(/not supported/) });
  });
  it('an RSA key below 1024 bits is unsupported', () => {
    const weak = testKey(zone, 8, { rsaBits: 768 });
    expect(verifyRrset(set, [sign(set, weak, window)], [weak.key], options())).toMatchObject({
      status: 'unsupported',
      reason: expect.stringMatching(/768-bit/),
    });
  });
  it('a supported signature beside an unsupported one decides', () => {
    const k5 = fakeKey(5);
    const sig5 = sign(set, key, { ...window, algorithm: 5, keyTag: k5.keyTag });
    expect(verifyRrset(set, [sig5, sign(set, key, window)], [k5, key.key], options()).status).toBe('secure');
    const tampered = [rr('www.example.', T.A, a('192.0.2.9'))];
    expect(verifyRrset(tampered, [sig5, sign(set, key, window)], [k5, key.key], options()).status).toBe('bogus');
  });
  it('an ECDSA key of the wrong size is bogus', () => {
    const bad = parseDnskey(rr(zone, T.DNSKEY, dnskeyRdata(257, 3, 13, Buffer.alloc(63, 1))));
    expect(verifyRrset(set, [sign(set, key, { ...window, keyTag: bad.keyTag })], [bad], options())).toMatchObject({
      status: 'bogus',
      reason: expect.stringMatching(/63 octets/),
    });
  });
  it('an ECDSA key not on the curve is bogus', () => {
    const bad = parseDnskey(rr(zone, T.DNSKEY, dnskeyRdata(257, 3, 13, Buffer.alloc(64, 1))));
    expect(verifyRrset(set, [sign(set, key, { ...window, keyTag: bad.keyTag })], [bad], options())).toMatchObject({
      status: 'bogus',
      reason: expect.stringMatching(/unusable/),
    });
  });
});

describe('key-tag collisions and the KeyTrap caps (CVE-2023-50387)', () => {
  const key = testKey(zone, 8);
  const sig = sign(set, key, window);
  const colliding = (count: number) => Array.from({ length: count }, (_, i) => parseDnskey(collidingDnskey(key.dnskey, i)));

  it('the colliding copies share the key tag and differ from the key', () => {
    for (const copy of colliding(5)) {
      expect(copy.keyTag).toBe(key.key.keyTag);
      expect(keyTag(copy.rdata)).toBe(key.key.keyTag);
      expect(Buffer.from(copy.rdata).equals(Buffer.from(key.key.rdata))).toBe(false);
    }
  });

  it('two keys with one tag, the wrong one first: the right one verifies', () => {
    const budget = new Budget();
    expect(verifyRrset(set, [sig], [...colliding(1), key.key], options({ budget })).status).toBe('secure');
    expect(budget.signatures).toBe(2);
  });

  it('only wrong keys with the tag: bogus', () => {
    expect(verifyRrset(set, [sig], colliding(3), options()).status).toBe('bogus');
  });

  it('more keys with one tag than the cap: limit, before any verification', () => {
    const budget = new Budget({ keysPerTag: 4 });
    expect(verifyRrset(set, [sig], [...colliding(4), key.key], options({ budget }))).toMatchObject({
      status: 'limit',
      reason: expect.stringMatching(/5 DNSKEYs share tag/),
    });
    expect(budget.signatures).toBe(0);
  });

  it('the signature cap ends the work with limit', () => {
    const budget = new Budget({ signatures: 1 });
    expect(verifyRrset(set, [sig], [...colliding(1), key.key], options({ budget }))).toMatchObject({
      status: 'limit',
      reason: expect.stringMatching(/more than 1 signature/),
    });
    expect(budget.signatures).toBe(1);
  });

  it('many RRSIGs share one budget across calls', () => {
    const budget = new Budget({ signatures: 5 });
    const bad = colliding(1);
    const sigs = Array.from({ length: 10 }, () => sign(set, key, window));
    expect(verifyRrset(set, sigs, bad, options({ budget })).status).toBe('limit');
    expect(budget.signatures).toBe(5);
    expect(verifyRrset(set, [sig], [key.key], options({ budget })).status).toBe('limit');
  });
});
