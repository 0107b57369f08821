/**
 * A DNSSEC signer for the validator's tests (lib/dnssec), built on node:crypto: keys of every
 * algorithm the validator supports (RSA/SHA-256 and RSA/SHA-512 with 2048-bit keys, ECDSA
 * P-256 and P-384, Ed25519, Ed448), DNSKEY records for them, and RRSIGs over RRsets with every
 * field open to a test that wants it wrong (dates, labels, key tag, signer, algorithm).
 *
 * The data it signs is lib/dnssec's signedData(): a bug there would sign and verify alike, so
 * test/dnssec-interop.test.ts checks the validator against zones signed by ldns instead.
 *
 *   const key = testKey('example.', 13);
 *   const set = [rr('www.example.', 'A', a('192.0.2.1'))];
 *   const sig = sign(set, key, { inception: now - 3600, expiration: now + 86400 });
 */
import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { compareNames, isProperSubdomain, nameFromText, nameWire, sameName, signedLabelCount, type Name } from '../../lib/dnssec/names.js';
import { base32hex, nsec3Hash } from '../../lib/dnssec/nsec3.js';
import { RRTYPE, keyTag, parseDnskey, parseRrsig, type Dnskey, type Rr } from '../../lib/dnssec/records.js';
import { dsDigest } from '../../lib/dnssec/keys.js';
import { signedData } from '../../lib/dnssec/verify.js';

export type SigningAlgorithm = 8 | 10 | 13 | 14 | 15 | 16;

export interface TestKey {
  owner: Name;
  algorithm: number;
  flags: number;
  privateKey: KeyObject;
  /** The DNSKEY record (TTL 3600). */
  dnskey: Rr;
  /** The parsed DNSKEY (its key tag, flags...). */
  key: Dnskey;
}

/* ----------------------------------------------------------------------------------------
 * Records.
 */

export const T = RRTYPE;

/** A record of class IN; `owner` in presentation form. */
export function rr(owner: string | Name, type: number, rdata: Uint8Array, ttl = 300): Rr {
  return { owner: typeof owner === 'string' ? nameFromText(owner) : owner, type, class: 1, ttl, rdata };
}

export const a = (address: string) => Uint8Array.from(address.split('.').map(Number));
export const txt = (text: string) => Buffer.concat([Buffer.from([Buffer.byteLength(text)]), Buffer.from(text)]);
/** A name's wire form keeping its case (labels split on dots, no escapes). */
export function wireKeepCase(text: string): Buffer {
  const labels = text.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')])), Buffer.from([0])]);
}
export const mx = (preference: number, exchange: string) => Buffer.concat([Buffer.from([preference >> 8, preference & 0xff]), wireKeepCase(exchange)]);
export const ns = (host: string) => wireKeepCase(host);

/* ----------------------------------------------------------------------------------------
 * Keys.
 */

const material = new Map<string, KeyObject>();

/** One private key per kind per test process: RSA key generation costs tens of milliseconds. */
function privateKeyFor(algorithm: number, variant: number, rsaBits: number): KeyObject {
  const id = `${algorithm === 10 ? 8 : algorithm}/${variant}/${rsaBits}`;
  let key = material.get(id);
  if (!key) {
    switch (algorithm) {
      case 8:
      case 10:
        key = generateKeyPairSync('rsa', { modulusLength: rsaBits, publicExponent: 65537 }).privateKey;
        break;
      case 13:
        key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
        break;
      case 14:
        key = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
        break;
      case 15:
        key = generateKeyPairSync('ed25519').privateKey;
        break;
      case 16:
        key = generateKeyPairSync('ed448').privateKey;
        break;
      default:
        throw new Error(`testKey: no key generator for algorithm ${algorithm}`);
    }
    material.set(id, key);
  }
  return key;
}

/** The DNSKEY public key field of a node:crypto key (RFC 3110, RFC 6605, RFC 8080). */
export function dnskeyPublicKey(privateKey: KeyObject): Buffer {
  const jwk = privateKey.export({ format: 'jwk' });
  const field = (value: string | undefined) => Buffer.from(value!, 'base64url');
  if (jwk.kty === 'RSA') {
    const e = field(jwk.e);
    const length = e.length < 256 ? Buffer.from([e.length]) : Buffer.from([0, e.length >> 8, e.length & 0xff]);
    return Buffer.concat([length, e, field(jwk.n)]);
  }
  return jwk.kty === 'EC' ? Buffer.concat([field(jwk.x), field(jwk.y)]) : field(jwk.x);
}

export function dnskeyRdata(flags: number, protocol: number, algorithm: number, publicKey: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([flags >> 8, flags & 0xff, protocol, algorithm]), publicKey]);
}

export interface KeyOptions {
  /** Default 257 (Zone Key and SEP: a CSK). */
  flags?: number;
  protocol?: number;
  /** Another key of the same kind (different material). */
  variant?: number;
  rsaBits?: number;
}

/** A signing key for `zone`. Keys are shared per (algorithm, variant, size) within a test file. */
export function testKey(zone: string | Name, algorithm: SigningAlgorithm, options: KeyOptions = {}): TestKey {
  const privateKey = privateKeyFor(algorithm, options.variant ?? 0, options.rsaBits ?? 2048);
  const flags = options.flags ?? 257;
  const dnskey = rr(zone, RRTYPE.DNSKEY, dnskeyRdata(flags, options.protocol ?? 3, algorithm, dnskeyPublicKey(privateKey)), 3600);
  return { owner: dnskey.owner, algorithm, flags, privateKey, dnskey, key: parseDnskey(dnskey) };
}

/**
 * A copy of an RSA DNSKEY record whose modulus differs in two octets that cancel out in the
 * key tag (RFC 4034 appendix B sums the RDATA as 16-bit words): one octet goes up by one,
 * another down by one, both high octets of their words. Same tag, wrong key: a key-tag
 * collision, or with many `shift`s a KeyTrap-shaped key set.
 */
export function collidingDnskey(dnskey: Rr, shift: number): Rr {
  if (dnskey.rdata[3] !== 8 && dnskey.rdata[3] !== 10) throw new Error('collidingDnskey: an RSA key is needed');
  const rdata = Buffer.from(dnskey.rdata);
  // 4 octets of DNSKEY header, 1 of exponent length, 3 of exponent: the modulus starts at 8.
  for (let i = 40 + 2 * shift; ; i += 64) {
    const j = i + 32;
    if (rdata[i]! < 0xff && rdata[j]! > 0) {
      rdata[i]! += 1;
      rdata[j]! -= 1;
      return { ...dnskey, rdata };
    }
  }
}

/** A DS record for a key (RFC 4034 §5.1), digest type 2 (SHA-256) unless said. */
export function makeDs(key: TestKey, digestType = 2, ttl = 3600): Rr {
  // SHA-1 (type 1) is real too, so that a test shows a correct SHA-1 DS is still not used.
  const sha1 = () => createHash('sha1').update(nameWire(key.owner)).update(key.dnskey.rdata).digest();
  const digest = dsDigest(key.owner, key.dnskey.rdata, digestType) ?? (digestType === 1 ? sha1() : Buffer.alloc(32, 0xab));
  const tag = key.key.keyTag;
  return rr(key.owner, RRTYPE.DS, Buffer.concat([Buffer.from([tag >> 8, tag & 0xff, key.algorithm, digestType]), digest]), ttl);
}

/* ----------------------------------------------------------------------------------------
 * Signatures.
 */

export interface SignOptions {
  /** Seconds since 1970 (written modulo 2^32). */
  inception: number;
  expiration: number;
  /** Default: the key's owner. */
  signer?: string | Name;
  /** Default: the owner's label count (RFC 4034 §3.1.3); fewer signs a wildcard expansion. */
  labels?: number;
  /** Default: the key's tag. */
  keyTag?: number;
  /** Default: the key's algorithm. */
  algorithm?: number;
  /** Default: the first record's TTL. */
  originalTtl?: number;
  /** Default: the RRset's type. */
  typeCovered?: number;
}

/** An RRSIG over `rrset` (RFC 4034 §3.1.8.1), owned by the RRset's owner. */
export function sign(rrset: readonly Rr[], key: TestKey, options: SignOptions): Rr {
  const first = rrset[0]!;
  const signer = options.signer === undefined ? key.owner : typeof options.signer === 'string' ? nameFromText(options.signer) : options.signer;
  const fixed = Buffer.alloc(18);
  fixed.writeUInt16BE(options.typeCovered ?? first.type, 0);
  fixed[2] = options.algorithm ?? key.algorithm;
  fixed[3] = options.labels ?? signedLabelCount(first.owner);
  fixed.writeUInt32BE(options.originalTtl ?? first.ttl, 4);
  fixed.writeUInt32BE(options.expiration >>> 0, 8);
  fixed.writeUInt32BE(options.inception >>> 0, 12);
  fixed.writeUInt16BE(options.keyTag ?? keyTag(key.dnskey.rdata), 16);
  const fields = Buffer.concat([fixed, nameWire(signer)]);
  const unsigned = rr(first.owner, RRTYPE.RRSIG, fields, first.ttl);
  const data = signedData(rrset, parseRrsig(unsigned));
  const signature = signWith(key, data);
  return { ...unsigned, rdata: Buffer.concat([fields, signature]) };
}

function signWith(key: TestKey, data: Buffer): Buffer {
  switch (key.algorithm) {
    case 8:
      return cryptoSign('sha256', data, key.privateKey);
    case 10:
      return cryptoSign('sha512', data, key.privateKey);
    case 13:
      return cryptoSign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    case 14:
      return cryptoSign('sha384', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    default:
      return cryptoSign(null, data, key.privateKey);
  }
}

/* ----------------------------------------------------------------------------------------
 * Zones: every authoritative RRset signed, and the NSEC or NSEC3 chain.
 */

/** RFC 4034 §4.1.2 type bit maps. */
export function typeBitmap(types: Iterable<number>): Buffer {
  const windows = new Map<number, number[]>();
  for (const type of new Set(types)) {
    const window = type >> 8;
    const bits = windows.get(window) ?? [];
    bits.push(type & 0xff);
    windows.set(window, bits);
  }
  const parts: Buffer[] = [];
  for (const window of [...windows.keys()].sort((x, y) => x - y)) {
    const bits = windows.get(window)!;
    const map = Buffer.alloc((Math.max(...bits) >> 3) + 1);
    for (const bit of bits) map[bit >> 3]! |= 0x80 >> (bit & 7);
    parts.push(Buffer.from([window, map.length]), map);
  }
  return Buffer.concat(parts);
}

export interface Nsec3Options {
  salt?: Uint8Array;
  iterations?: number;
  /** Leave unsigned delegations (and the empty non-terminals only they make) out of the chain, flag 1 on every NSEC3 (RFC 5155 §6). */
  optOut?: boolean;
  /** Written into every NSEC3 (default 1, SHA-1); the chain is hashed with SHA-1 whatever it says. */
  hashAlgorithm?: number;
  /** Extra flag bits written into every NSEC3. */
  extraFlags?: number;
}

export interface ZoneSpec {
  origin: string;
  /** The zone's records, apex SOA and NS included; DNSKEY, RRSIG, NSEC and NSEC3 are added. Records below a delegation are glue. */
  records: Rr[];
  /** The first key signs every RRset; the others are published (and sign the DNSKEY RRset when `ksk`). */
  keys: TestKey[];
  /** Another key that signs only the DNSKEY RRset. */
  ksk?: TestKey;
  /** 'nsec' (default) or NSEC3 options. */
  denial?: 'nsec' | Nsec3Options;
  inception: number;
  expiration: number;
  /** TTL of the NSEC and NSEC3 records (RFC 4034 §4: the SOA minimum); default 60. */
  negativeTtl?: number;
}

export interface SignedZone {
  origin: Name;
  /** Every record: the spec's, DNSKEY, NSEC or NSEC3 (and NSEC3PARAM), and the RRSIGs. */
  records: Rr[];
  /** The DNSKEY RRset. */
  dnskeys: Rr[];
  /** The NSEC or NSEC3 records with their RRSIGs. */
  denial: Rr[];
  rrset(owner: string, type: number): Rr[];
  rrsigs(owner: string | Name, type: number): Rr[];
}

const key = (name: Name) => nameWire(name).toString('hex');

export function signZone(spec: ZoneSpec): SignedZone {
  const origin = nameFromText(spec.origin);
  const window = { inception: spec.inception, expiration: spec.expiration };
  const negativeTtl = spec.negativeTtl ?? 60;
  const base = [...spec.records, ...[...spec.keys, ...(spec.ksk ? [spec.ksk] : [])].map((k) => k.dnskey)];
  const delegations = base.filter((r) => r.type === RRTYPE.NS && !sameName(r.owner, origin)).map((r) => r.owner);
  const belowCut = (name: Name) => delegations.some((cut) => isProperSubdomain(name, cut));
  const authoritative = base.filter((r) => !belowCut(r.owner));
  // Types per owner, and the owners in canonical order.
  const owners = new Map<string, { name: Name; types: Set<number> }>();
  for (const r of authoritative) {
    const entry = owners.get(key(r.owner)) ?? { name: r.owner, types: new Set<number>() };
    entry.types.add(r.type);
    owners.set(key(r.owner), entry);
  }
  const isCut = (types: Set<number>, name: Name) => types.has(RRTYPE.NS) && !sameName(name, origin);
  const signedTypes = (name: Name, types: Set<number>) => [...types].filter((t) => !(isCut(types, name) && t === RRTYPE.NS));
  const denial: Rr[] = [];
  const nsec3 = spec.denial !== undefined && spec.denial !== 'nsec' ? spec.denial : undefined;
  const extra: Rr[] = [];
  if (!nsec3) {
    const sorted = [...owners.values()].sort((x, y) => compareNames(x.name, y.name));
    sorted.forEach((entry, i) => {
      const next = sorted[(i + 1) % sorted.length]!.name;
      const types = [...entry.types, RRTYPE.NSEC, RRTYPE.RRSIG];
      denial.push(rr(entry.name, RRTYPE.NSEC, Buffer.concat([nameWire(next, false), typeBitmap(types)]), negativeTtl));
    });
  } else {
    const salt = nsec3.salt ?? Buffer.alloc(0);
    const iterations = nsec3.iterations ?? 0;
    const params = Buffer.concat([Buffer.from([nsec3.hashAlgorithm ?? 1, 0, iterations >> 8, iterations & 0xff, salt.length]), salt]);
    extra.push(rr(origin, RRTYPE.NSEC3PARAM, params, 0));
    owners.get(key(origin))!.types.add(RRTYPE.NSEC3PARAM);
    const included = [...owners.values()].filter(({ name, types }) => !(nsec3.optOut && isCut(types, name) && !types.has(RRTYPE.DS)));
    // Empty non-terminals of the included names (RFC 5155 §7.1).
    const names = new Map(included.map((entry) => [key(entry.name), entry]));
    for (const entry of included) {
      for (let depth = entry.name.length - 1; depth > origin.length; depth--) {
        const ancestor = entry.name.slice(entry.name.length - depth);
        if (!names.has(key(ancestor))) names.set(key(ancestor), { name: ancestor, types: new Set() });
      }
    }
    const hashed = [...names.values()]
      .map((entry) => ({ ...entry, hash: nsec3Hash(entry.name, salt, iterations) }))
      .sort((x, y) => Buffer.compare(x.hash, y.hash));
    const flags = (nsec3.optOut ? 1 : 0) | (nsec3.extraFlags ?? 0);
    hashed.forEach((entry, i) => {
      const next = hashed[(i + 1) % hashed.length]!.hash;
      const types = [...entry.types];
      if (signedTypes(entry.name, entry.types).length > 0) types.push(RRTYPE.RRSIG);
      const rdata = Buffer.concat([
        Buffer.from([nsec3.hashAlgorithm ?? 1, flags, iterations >> 8, iterations & 0xff, salt.length]),
        salt,
        Buffer.from([20]),
        next,
        typeBitmap(types),
      ]);
      denial.push(rr([Buffer.from(base32hex(entry.hash)), ...origin], RRTYPE.NSEC3, rdata, negativeTtl));
    });
  }
  // Sign every authoritative RRset but the NS at a delegation (RFC 4035 §2.2), and the denial records.
  const rrsets = new Map<string, Rr[]>();
  for (const r of [...authoritative, ...extra, ...denial]) {
    if (isCut(owners.get(key(r.owner))?.types ?? new Set(), r.owner) && r.type === RRTYPE.NS) continue;
    const id = `${key(r.owner)}/${r.type}`;
    rrsets.set(id, [...(rrsets.get(id) ?? []), r]);
  }
  const sigs: Rr[] = [];
  for (const set of rrsets.values()) {
    sigs.push(sign(set, spec.keys[0]!, window));
    if (set[0]!.type === RRTYPE.DNSKEY && spec.ksk) sigs.push(sign(set, spec.ksk, window));
  }
  const records = [...base, ...extra, ...denial, ...sigs];
  const sigsOf = (owner: Name, type: number) => sigs.filter((s) => sameName(s.owner, owner) && parseRrsig(s).typeCovered === type);
  return {
    origin,
    records,
    dnskeys: base.filter((r) => r.type === RRTYPE.DNSKEY),
    denial: [...denial, ...denial.flatMap((d) => sigsOf(d.owner, d.type)).filter((s, i, all) => all.indexOf(s) === i)],
    rrset: (owner, type) => records.filter((r) => r.type === type && sameName(r.owner, nameFromText(owner))),
    rrsigs: (owner, type) => sigsOf(typeof owner === 'string' ? nameFromText(owner) : owner, type),
  };
}
