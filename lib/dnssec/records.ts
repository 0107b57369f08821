/**
 * Resource records as the validator reads them, the DNSSEC record types parsed from their
 * RDATA (RFC 4034 §2-§5, RFC 5155 §3-§4), the canonical form and order of RFC 4034 §6, and
 * the key tag of RFC 4034 appendix B. Pure: no I/O.
 *
 * Records come from lib/dns/wire.ts's decoder (fromResourceRecord): that decoder already frames
 * every record, reads the names of the RFC 1035 types (which may be compressed) into typed
 * records, and keeps the RDATA of every other type as raw octets, which is exactly what the
 * DNSSEC types need (their names are never compressed: RFC 4034 §6.2, RFC 3597 §4).
 */
import { CLASS_IN, TYPE, type ResourceRecord } from '../dns/wire.js';
import { nameLabels } from '../dns/names.js';
import { nameToText, nameWire, readName, type Name } from './names.js';

/** Type codes (IANA "Resource Record (RR) TYPEs"): lib/dns's, and those DNSSEC adds. */
export const RRTYPE = {
  ...TYPE,
  DNAME: 39,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  NSEC3: 50,
  NSEC3PARAM: 51,
} as const;

const TYPE_TEXT = new Map<number, string>(Object.entries(RRTYPE).map(([name, code]) => [code, name]));

/** A type's mnemonic, or RFC 3597 §5's TYPEnnn. */
export function typeText(type: number): string {
  return TYPE_TEXT.get(type) ?? `TYPE${type}`;
}

export { CLASS_IN };

/** A resource record: owner as labels, RDATA uncompressed (as RFC 4034 §6.2 signs it, before lowercasing). */
export interface Rr {
  owner: Name;
  type: number;
  class: number;
  ttl: number;
  rdata: Uint8Array;
}

/**
 * A record of lib/dns's decoder as the validator reads it. The RDATA of MX, CNAME, NS, PTR and
 * SOA may hold compression pointers into the message, so it is rebuilt from the names the
 * decoder read; every other type's RDATA is taken as received. Throws for a record whose RDATA
 * did not decode.
 */
export function fromResourceRecord(record: ResourceRecord): Rr {
  if (record.error !== undefined) throw new Error(`${typeText(record.type)} record of ${record.name || '.'}: ${record.error}`);
  const owner = nameLabels(record.name);
  const base = { owner, type: record.type, class: record.class, ttl: record.ttl };
  const data = record.data;
  const name = (text: string) => nameWire(nameLabels(text), false);
  const u16 = (value: number) => Buffer.from([value >> 8, value & 0xff]);
  if (data !== undefined) {
    if ('exchange' in data) return { ...base, rdata: Buffer.concat([u16(data.preference), name(data.exchange)]) };
    if ('target' in data) return { ...base, rdata: name(data.target) };
    if ('host' in data) return { ...base, rdata: name(data.host) };
    if ('primary' in data) {
      const numbers = Buffer.alloc(20);
      [data.serial, data.refresh, data.retry, data.expire, data.minimum].forEach((value, i) => numbers.writeUInt32BE(value, 4 * i));
      return { ...base, rdata: Buffer.concat([name(data.primary), name(data.admin), numbers]) };
    }
  }
  return { ...base, rdata: Uint8Array.from(record.rdata) };
}

/* ----------------------------------------------------------------------------------------
 * The DNSSEC record types.
 */

/** DNSKEY flags (RFC 4034 §2.1.1, RFC 5011 §7). */
export const DNSKEY_FLAGS = { ZONE: 0x0100, REVOKE: 0x0080, SEP: 0x0001 } as const;

/** RFC 4034 §2.1.2: the only protocol value. */
export const DNSKEY_PROTOCOL = 3;

export interface Dnskey {
  owner: Name;
  ttl: number;
  flags: number;
  protocol: number;
  algorithm: number;
  publicKey: Uint8Array;
  /** RFC 4034 appendix B. */
  keyTag: number;
  rdata: Uint8Array;
}

export interface Ds {
  owner: Name;
  ttl: number;
  keyTag: number;
  algorithm: number;
  digestType: number;
  digest: Uint8Array;
}

export interface Rrsig {
  owner: Name;
  ttl: number;
  typeCovered: number;
  algorithm: number;
  labels: number;
  originalTtl: number;
  /** RFC 4034 §3.1.5: seconds since 1970 modulo 2^32 (RFC 1982 serial numbers). */
  expiration: number;
  inception: number;
  keyTag: number;
  signer: Name;
  signature: Uint8Array;
  /** The RDATA up to the signature, signer name as received (RFC 4034 §3.1.8.1 lowercases it). */
  signedFields: Uint8Array;
}

export interface Nsec {
  owner: Name;
  ttl: number;
  /** As received: RFC 6840 §5.1 keeps its case in the canonical form. */
  next: Name;
  types: ReadonlySet<number>;
}

/** NSEC3 flags (RFC 5155 §3.1.2.1). */
export const NSEC3_OPT_OUT = 0x01;

export interface Nsec3Param {
  hashAlgorithm: number;
  flags: number;
  iterations: number;
  salt: Uint8Array;
}

export interface Nsec3 extends Nsec3Param {
  owner: Name;
  ttl: number;
  nextHashed: Uint8Array;
  types: ReadonlySet<number>;
}

function need(rr: Rr, type: number): void {
  if (rr.type !== type) throw new Error(`a ${typeText(rr.type)} record where a ${typeText(type)} record was expected`);
}

function short(rr: Rr, what: string): Error {
  return new Error(`${typeText(rr.type)} RDATA of ${nameToText(rr.owner)} ends inside its ${what}`);
}

/** RFC 4034 §2.1: flags (2), protocol (1), algorithm (1), public key (rest). */
export function parseDnskey(rr: Rr): Dnskey {
  need(rr, RRTYPE.DNSKEY);
  const d = rr.rdata;
  if (d.length < 4) throw short(rr, 'fixed fields');
  return {
    owner: rr.owner,
    ttl: rr.ttl,
    flags: (d[0]! << 8) | d[1]!,
    protocol: d[2]!,
    algorithm: d[3]!,
    publicKey: d.subarray(4),
    keyTag: keyTag(d),
    rdata: d,
  };
}

/** RFC 4034 §5.1: key tag (2), algorithm (1), digest type (1), digest (rest). */
export function parseDs(rr: Rr): Ds {
  need(rr, RRTYPE.DS);
  const d = rr.rdata;
  if (d.length < 4) throw short(rr, 'fixed fields');
  return { owner: rr.owner, ttl: rr.ttl, keyTag: (d[0]! << 8) | d[1]!, algorithm: d[2]!, digestType: d[3]!, digest: d.subarray(4) };
}

function u32(d: Uint8Array, pos: number): number {
  return ((d[pos]! << 24) | (d[pos + 1]! << 16) | (d[pos + 2]! << 8) | d[pos + 3]!) >>> 0;
}

/** RFC 4034 §3.1: type covered (2), algorithm (1), labels (1), original TTL (4), expiration (4), inception (4), key tag (2), signer, signature. */
export function parseRrsig(rr: Rr): Rrsig {
  need(rr, RRTYPE.RRSIG);
  const d = rr.rdata;
  if (d.length < 18) throw short(rr, 'fixed fields');
  const signer = readName(d, 18);
  return {
    owner: rr.owner,
    ttl: rr.ttl,
    typeCovered: (d[0]! << 8) | d[1]!,
    algorithm: d[2]!,
    labels: d[3]!,
    originalTtl: u32(d, 4),
    expiration: u32(d, 8),
    inception: u32(d, 12),
    keyTag: (d[16]! << 8) | d[17]!,
    signer: signer.name,
    signature: d.subarray(signer.end),
    signedFields: d.subarray(0, signer.end),
  };
}

/** RFC 4034 §4.1: next domain name, type bit maps. */
export function parseNsec(rr: Rr): Nsec {
  need(rr, RRTYPE.NSEC);
  const next = readName(rr.rdata, 0);
  return { owner: rr.owner, ttl: rr.ttl, next: next.name, types: parseTypeBitmap(rr.rdata.subarray(next.end)) };
}

/** RFC 5155 §4.2: hash algorithm (1), flags (1), iterations (2), salt length (1), salt. */
function parseNsec3Fields(rr: Rr): Nsec3Param & { end: number } {
  const d = rr.rdata;
  if (d.length < 5 || d.length < 5 + d[4]!) throw short(rr, 'fixed fields or salt');
  return { hashAlgorithm: d[0]!, flags: d[1]!, iterations: (d[2]! << 8) | d[3]!, salt: d.subarray(5, 5 + d[4]!), end: 5 + d[4]! };
}

export function parseNsec3Param(rr: Rr): Nsec3Param {
  need(rr, RRTYPE.NSEC3PARAM);
  const { end, ...fields } = parseNsec3Fields(rr);
  if (end !== rr.rdata.length) throw new Error(`NSEC3PARAM RDATA of ${nameToText(rr.owner)} has ${rr.rdata.length - end} octets after its salt`);
  return fields;
}

/** RFC 5155 §3.2: the NSEC3PARAM fields, hash length (1), next hashed owner name, type bit maps. */
export function parseNsec3(rr: Rr): Nsec3 {
  need(rr, RRTYPE.NSEC3);
  const { end, ...fields } = parseNsec3Fields(rr);
  const d = rr.rdata;
  if (end >= d.length) throw short(rr, 'hash length');
  const hashLength = d[end]!;
  if (hashLength === 0 || end + 1 + hashLength > d.length) throw short(rr, 'next hashed owner name');
  return {
    ...fields,
    owner: rr.owner,
    ttl: rr.ttl,
    nextHashed: d.subarray(end + 1, end + 1 + hashLength),
    types: parseTypeBitmap(d.subarray(end + 1 + hashLength)),
  };
}

/**
 * RFC 4034 §4.1.2 type bit maps: windows in increasing order, each a window number, a bitmap
 * length of 1 to 32 octets, and the bitmap (bit 0 of octet 0 is type window*256).
 */
export function parseTypeBitmap(d: Uint8Array): ReadonlySet<number> {
  const types = new Set<number>();
  let pos = 0;
  let last = -1;
  while (pos < d.length) {
    if (pos + 2 > d.length) throw new Error('a type bit map ends inside a window header');
    const window = d[pos]!;
    const length = d[pos + 1]!;
    if (window <= last) throw new Error(`type bit map window ${window} after window ${last}`);
    if (length < 1 || length > 32) throw new Error(`type bit map window ${window} has a bitmap of ${length} octets`);
    if (pos + 2 + length > d.length) throw new Error(`type bit map window ${window} runs past the end of its RDATA`);
    for (let i = 0; i < length; i++) {
      const octet = d[pos + 2 + i]!;
      for (let bit = 0; bit < 8; bit++) if (octet & (0x80 >> bit)) types.add(window * 256 + i * 8 + bit);
    }
    last = window;
    pos += 2 + length;
  }
  return types;
}

/** RFC 4034 appendix B (and B.1 for algorithm 1) over a DNSKEY's RDATA. */
export function keyTag(rdata: Uint8Array): number {
  if (rdata[3] === 1) {
    // B.1: RSA/MD5 keys use the most significant 16 of the least significant 24 bits of the modulus.
    return rdata.length >= 4 + 3 ? (rdata[rdata.length - 3]! << 8) | rdata[rdata.length - 2]! : 0;
  }
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i]! : rdata[i]! << 8;
  ac += (ac >>> 16) & 0xffff;
  return ac & 0xffff;
}

/* ----------------------------------------------------------------------------------------
 * Canonical form (RFC 4034 §6.2) and order (§6.3).
 */

/** One field of an RDATA layout: a domain name, N fixed octets, a <character-string>, or A6's prefix and suffix. */
type Field = 'name' | 'string' | 'a6' | number;

/**
 * The types whose RDATA names are lowercased in the canonical form: RFC 4034 §6.2 item 3's
 * list, as RFC 6840 §5.1 corrects it (NSEC is removed: its next domain name keeps its case;
 * HINFO holds no names). Fields after the last listed one are copied as they are.
 */
const LOWERCASED: ReadonlyMap<number, readonly Field[]> = new Map<number, Field[]>([
  [2, ['name']], // NS
  [3, ['name']], // MD
  [4, ['name']], // MF
  [5, ['name']], // CNAME
  [6, ['name', 'name']], // SOA
  [7, ['name']], // MB
  [8, ['name']], // MG
  [9, ['name']], // MR
  [12, ['name']], // PTR
  [14, ['name', 'name']], // MINFO
  [15, [2, 'name']], // MX
  [17, ['name', 'name']], // RP
  [18, [2, 'name']], // AFSDB
  [21, [2, 'name']], // RT
  [24, [18, 'name']], // SIG
  [26, [2, 'name', 'name']], // PX
  [30, ['name']], // NXT
  [33, [6, 'name']], // SRV
  [35, [4, 'string', 'string', 'string', 'name']], // NAPTR
  [36, [2, 'name']], // KX
  [38, ['a6']], // A6
  [39, ['name']], // DNAME
  [46, [18, 'name']], // RRSIG
]);

/** The RDATA in canonical form: names of the listed types lowercased (a copy). Throws for RDATA that does not fit its type's layout. */
export function canonicalRdata(type: number, rdata: Uint8Array): Buffer {
  const out = Buffer.from(rdata);
  const layout = LOWERCASED.get(type);
  if (!layout) return out;
  let pos = 0;
  const fixed = (size: number) => {
    if (pos + size > out.length) throw new Error(`${typeText(type)} RDATA ends inside a ${size}-octet field`);
    pos += size;
  };
  for (const field of layout) {
    if (typeof field === 'number') fixed(field);
    else if (field === 'string') fixed(1 + (out[pos] ?? 0));
    else if (field === 'a6') {
      // RFC 2874 §3.1: prefix length, the address suffix, then a prefix name when the prefix length is not 0.
      const prefix = out[pos] ?? 0;
      if (prefix > 128) throw new Error(`A6 prefix length ${prefix}`);
      fixed(1 + Math.ceil((128 - prefix) / 8));
      if (prefix > 0) pos = lowercaseNameAt(out, pos);
    } else pos = lowercaseNameAt(out, pos);
  }
  return out;
}

function lowercaseNameAt(out: Buffer, pos: number): number {
  const { name, end } = readName(out, pos);
  nameWire(name).copy(out, pos);
  return end;
}

/** Octet-string order, a prefix first (RFC 4034 §6.3). */
export function compareOctets(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * An RRset in canonical order (RFC 4034 §6.3: by canonical RDATA as left-justified unsigned
 * octet sequences), with duplicates (equal canonical RDATA) removed: the RDATA each record is
 * signed with.
 */
export function canonicalRdataSet(rrset: readonly Rr[]): Buffer[] {
  const all = rrset.map((rr) => canonicalRdata(rr.type, rr.rdata)).sort(compareOctets);
  return all.filter((rdata, i) => i === 0 || !rdata.equals(all[i - 1]!));
}
