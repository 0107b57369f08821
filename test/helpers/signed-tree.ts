/**
 * The zones the validate-mode tests and the Unbound interop suite share: a root (RSA/SHA-256,
 * 8), an opt-out NSEC3 TLD (ECDSA P-256, 13) with signed, unsigned and broken children, an
 * Ed25519 (15) NSEC3 zone, and a second NSEC TLD with an unsigned delegation and a chain three
 * zones deep; wildcards, CNAMEs across zones, a DS of an unsupported algorithm (253) and one
 * with a SHA-1 digest only, expired and future signatures, a DS for another key, a key-tag
 * collision and a KeyTrap-shaped key set. Signed at test time by test/helpers/signed-dns.ts's
 * signTree().
 */
import { T, a, collidingDnskey, makeDs, rr, testKey, txt, wireKeepCase } from './dnssec-signer.js';
import { tlsa, type TreeZoneSpec } from './signed-dns.js';

const DAY = 86_400;
const cname = (target: string) => wireKeepCase(target);
/** The association data of every TLSA record in the tree. */
export const DIGEST = Buffer.alloc(32, 0x5e);

export function treeSpecs(NOW: number): TreeZoneSpec[] {
  return [
    { origin: '.', algorithm: 8 },
    // An opt-out TLD (most TLDs are): its unsigned delegations are not in its NSEC3 chain.
    { origin: 'tld.', algorithm: 13, denial: { salt: Buffer.from('c0ffee', 'hex'), iterations: 5, optOut: true } },
    {
      origin: 'signed.tld.',
      algorithm: 13,
      records: [
        rr('mx.signed.tld.', T.A, a('192.0.2.10')),
        rr('www.signed.tld.', T.A, a('192.0.2.11')),
        rr('_25._tcp.mx.signed.tld.', T.TLSA, tlsa(3, 1, 1, DIGEST)),
        rr('*.wild.signed.tld.', T.TXT, txt('wild')),
        rr('alias.signed.tld.', T.CNAME, cname('a.ed.tld.')),
        rr('to-insecure.signed.tld.', T.CNAME, cname('mx.insecure.tld.')),
        rr('to-missing.signed.tld.', T.CNAME, cname('missing.ed.tld.')),
        rr('x.y.signed.tld.', T.A, a('192.0.2.12')),
        rr('real.wild.signed.tld.', T.A, a('192.0.2.13')),
        // RFC 6672: names below dn.signed.tld. are redirected to ed.tld.
        rr('dn.signed.tld.', T.DNAME, wireKeepCase('ed.tld.')),
        ...Array.from({ length: 9 }, (_, i) => rr(`hop${i}.signed.tld.`, T.CNAME, cname(i === 8 ? 'www.signed.tld.' : `hop${i + 1}.signed.tld.`))),
      ],
    },
    {
      origin: 'ed.tld.',
      algorithm: 15,
      denial: { iterations: 0 },
      records: [rr('a.ed.tld.', T.A, a('192.0.2.20')), rr('*.wild.ed.tld.', T.TXT, txt('wild ed')), rr('_25._tcp.a.ed.tld.', T.TLSA, tlsa(3, 1, 1, DIGEST))],
    },
    {
      origin: 'insecure.tld.',
      algorithm: false,
      records: [rr('mx.insecure.tld.', T.A, a('192.0.2.30')), rr('_25._tcp.mx.insecure.tld.', T.TLSA, tlsa(3, 1, 1, DIGEST))],
    },
    // A DS of an algorithm the library does not implement (253, PRIVATEDNS), and one with a SHA-1 digest only.
    {
      origin: 'badalgo.tld.',
      algorithm: 13,
      records: [rr('host.badalgo.tld.', T.A, a('192.0.2.40'))],
      ds: (key) => {
        const ds = makeDs(key);
        return [{ ...ds, rdata: Buffer.concat([ds.rdata.subarray(0, 2), Buffer.from([253]), ds.rdata.subarray(3)]) }];
      },
    },
    { origin: 'sha1.tld.', algorithm: 13, records: [rr('host.sha1.tld.', T.A, a('192.0.2.41'))], ds: (key) => [makeDs(key, 1)] },
    // Broken: signatures expired a week ago, or valid only a week from now: beyond this library's skew (300 s)
    // and Unbound's (up to a day on a long validity window, val-sig-skew-max).
    {
      origin: 'expired.tld.',
      algorithm: 13,
      variant: 1,
      records: [rr('host.expired.tld.', T.A, a('192.0.2.42'))],
      window: { inception: NOW - 30 * DAY, expiration: NOW - 7 * DAY },
    },
    {
      origin: 'future.tld.',
      algorithm: 13,
      variant: 1,
      records: [rr('host.future.tld.', T.A, a('192.0.2.43'))],
      window: { inception: NOW + 7 * DAY, expiration: NOW + 30 * DAY },
    },
    // Broken: the parent's DS names another key.
    {
      origin: 'wrongds.tld.',
      algorithm: 13,
      records: [rr('host.wrongds.tld.', T.A, a('192.0.2.44'))],
      ds: () => [makeDs(testKey('wrongds.tld.', 13, { variant: 2 }))],
    },
    // Broken: a TLSA record changed after signing.
    {
      origin: 'tampered.tld.',
      algorithm: 13,
      records: [rr('mx.tampered.tld.', T.A, a('192.0.2.47')), rr('_25._tcp.mx.tampered.tld.', T.TLSA, tlsa(3, 1, 1, DIGEST))],
      tamper: [{ owner: '_25._tcp.mx.tampered.tld.', type: T.TLSA }],
    },
    // A key-tag collision: a second DNSKEY with the signing key's tag but other material.
    {
      origin: 'collide.tld.',
      algorithm: 8,
      records: [rr('host.collide.tld.', T.A, a('192.0.2.45'))],
      extraKeys: [collidingDnskey(testKey('collide.tld.', 8).dnskey, 1)],
    },
    // KeyTrap (CVE-2023-50387): eight DNSKEYs sharing the signing key's tag.
    {
      origin: 'keytrap.tld.',
      algorithm: 8,
      records: [rr('host.keytrap.tld.', T.A, a('192.0.2.46'))],
      extraKeys: Array.from({ length: 8 }, (_, i) => collidingDnskey(testKey('keytrap.tld.', 8).dnskey, i + 1)),
    },
    // A second TLD, NSEC, no opt-out: an unsigned delegation proven by its NSEC, and a chain three zones deep.
    { origin: 'other.', algorithm: 15 },
    { origin: 'plain.other.', algorithm: false, records: [rr('mx.plain.other.', T.A, a('192.0.2.50'))] },
    { origin: 'deep.other.', algorithm: 8, denial: { salt: Buffer.from('ab', 'hex'), iterations: 1 } },
    { origin: 'sub.deep.other.', algorithm: 13, records: [rr('www.sub.deep.other.', T.A, a('192.0.2.51'))] },
  ];
}
