/**
 * The DNS wire format (RFC 1035 §4.1): queries encoded, replies decoded. Pure: no I/O.
 *
 * Decoding is built for messages an attacker wrote. Its rules:
 * - Header (12 octets), then QDCOUNT questions and the ANCOUNT, NSCOUNT and ARCOUNT records
 *   of the answer, authority and additional sections, each read only within the message.
 * - Names (RFC 1035 §3.1, §4.1.4): a label is 1-63 octets; the label types 01 and 10 are
 *   reserved (RFC 6891 §5 retired extended labels) and are errors. A compression pointer
 *   must point before the start of the name being read (after a jump: before the place it
 *   jumped to), so every jump goes strictly backwards and no pointer can loop or point
 *   forward; it must not point into the 12-octet header. A name follows at most
 *   MAX_POINTERS_PER_NAME pointers and is at most 255 octets long in uncompressed wire form.
 * - Work: every label read and every pointer followed costs one unit, and a message may
 *   cost at most workBudget(its length); past that, decoding stops and the message is
 *   malformed. One name costs at most 127 labels plus 128 pointers (the last one refused),
 *   so no message can make the decoder walk long pointer chains over and over.
 * - RDATA: A and AAAA (class IN), MX, CNAME, NS, PTR, SOA, TXT and TLSA are decoded into the
 *   record shapes below; the names in MX, CNAME, NS, PTR and SOA may be compressed (RFC 1035
 *   §3.3; RFC 3597 §4 allows compression only in these well-known types). The OPT
 *   pseudo-record (RFC 6891 §6.1) is read into `edns` with its options. Every other type is
 *   kept as raw RDATA octets, never decompressed (RFC 3597 §4, RFC 4034 §6.2: the names in
 *   RRSIG, DNSKEY, DS, NSEC and NSEC3 are never compressed), for a validator to parse.
 *   A typed decoder must consume exactly RDLENGTH octets.
 * - Errors: a header, question or record that cannot be framed (it runs past the end of the
 *   message, a bad owner name) ends decoding (`fatal`); RDATA that does not decode as its type
 *   marks only that record (`record.error`), since RDLENGTH still frames the next one.
 *   decodeMessage never throws: what it could read, and why it stopped, are in the result.
 * - Names come out in the presentation form of lib/dns/names.ts: lowercase, no trailing dot,
 *   with `\.`, `\\` and `\DDD` escapes, so a label can never inject a dot, a space or a
 *   control character into a name.
 * - TTLs with the top bit set count as 0 (RFC 2181 §8). The RCODE is the 12-bit one of
 *   RFC 6891 §6.1.3 when an OPT record is present.
 */
import { MAX_NAME_OCTETS, nameLabels, presentLabel } from './names.js';

/** Type codes (IANA "Resource Record (RR) TYPEs"). */
export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  TLSA: 52,
} as const;

export const CLASS_IN = 1;

/** RFC 8467 / DNS flag day 2020: the EDNS UDP payload size that avoids IP fragmentation. */
export const EDNS_UDP_PAYLOAD = 1232;

/** RFC 8914 §2: the EDNS option code of Extended DNS Errors. */
export const EDNS_OPTION_EDE = 15;

/**
 * The most compression pointers one name may follow. A name has at most 127 labels (255
 * octets, each label at least two), and a compressor points each suffix at an earlier copy
 * of it, so a name that needs more pointers than it has labels is no compressor's output.
 */
export const MAX_POINTERS_PER_NAME = 127;

/**
 * The work (labels read plus pointers followed) a message of `length` octets may cost. Real
 * replies cost about one unit per octet or less (a record is at least 11 octets and names are
 * shared by pointers); eight per octet leaves room for deep names while keeping the cost of
 * a hostile 64 KB message to about half a million units.
 */
export function workBudget(length: number): number {
  return 8 * length + 2048;
}

/* ----------------------------------------------------------------------------------------
 * Record shapes (what the resolver returns).
 */

export interface AddressRecord {
  address: string;
  family: 4 | 6;
}
export interface MxRecord {
  /** Lowercase, no trailing dot; '' for the root (a null MX, RFC 7505). */
  exchange: string;
  preference: number;
}
export interface TlsaRecord {
  /** RFC 6698 §2.1: certificate usage, selector, matching type, association data. */
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}
export interface CnameRecord {
  target: string;
}
export interface HostRecord {
  host: string;
}
export interface TxtRecord {
  /** The character-strings as sent (UTF-8 decoded). */
  strings: string[];
  /** The strings concatenated, as TXT-based policies (SPF, MTA-STS, TLS-RPT) read them. */
  text: string;
}
export interface SoaRecord {
  primary: string;
  admin: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}
/** A record of a type this module has no parser for: the RDATA as received. */
export interface RawRecord {
  type: number;
  data: Buffer;
}

/** The record shape for each type name `query()` accepts. */
export interface RecordTypes {
  A: AddressRecord;
  AAAA: AddressRecord;
  MX: MxRecord;
  TLSA: TlsaRecord;
  CNAME: CnameRecord;
  NS: HostRecord;
  PTR: HostRecord;
  TXT: TxtRecord;
  SOA: SoaRecord;
}
export type RecordType = keyof RecordTypes;
export type AnyRecord = RecordTypes[RecordType] | RawRecord;

/* ----------------------------------------------------------------------------------------
 * Decoded messages.
 */

export interface Header {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** The 4-bit RCODE of the header. */
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  /** Seconds; 0 for a TTL with the top bit set (RFC 2181 §8). Raw for OPT. */
  ttl: number;
  /** The RDATA octets as received (a copy). */
  rdata: Buffer;
  /** The decoded RDATA: a typed record for the types above, RawRecord for the rest. */
  data?: AnyRecord;
  /** Why the RDATA did not decode as its type (then `data` is undefined). */
  error?: string;
}

export interface EdnsOption {
  code: number;
  data: Buffer;
}

/** RFC 8914: an Extended DNS Error option. */
export interface ExtendedError {
  infoCode: number;
  extraText: string;
}

/** The OPT pseudo-record (RFC 6891 §6.1.2, §6.1.3). */
export interface Edns {
  udpPayloadSize: number;
  /** The upper 8 bits of the 12-bit RCODE. */
  extendedRcode: number;
  version: number;
  do: boolean;
  options: EdnsOption[];
  extendedErrors: ExtendedError[];
}

export type Section = 'header' | 'question' | 'answer' | 'authority' | 'additional';

export interface DecodeError {
  section: Section;
  /** Position (0-based) of the question or record in its section. */
  index: number;
  /** Octet offset where that question or record starts. */
  offset: number;
  reason: string;
  /** true: decoding stopped here; false: only this record's RDATA is unusable. */
  fatal: boolean;
  /** The work bound was reached (always fatal). */
  work?: boolean;
}

export interface Message {
  header: Header;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
  /** The first OPT record of the additional section, when it decoded. */
  edns?: Edns;
  /** The full RCODE: the header's, extended by OPT (RFC 6891 §6.1.3). */
  rcode: number;
  errors: DecodeError[];
  /** Work spent: labels read plus pointers followed. Never more than workBudget(length). */
  work: number;
}

class WireError extends Error {
  constructor(
    message: string,
    readonly work = false,
  ) {
    super(message);
  }
}

/** Decode a DNS message; never throws (see the rules at the top of this file). */
export function decodeMessage(buffer: Buffer): Message {
  const reader = new Reader(buffer);
  const message: Message = {
    header: emptyHeader(),
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    rcode: 0,
    errors: [],
    work: 0,
  };
  let section: Section = 'header';
  let index = 0;
  let start = 0;
  try {
    message.header = readHeader(reader);
    message.rcode = message.header.rcode;
    section = 'question';
    for (index = 0; index < message.header.qdcount; index++) {
      start = reader.pos;
      const name = reader.name('question name');
      const type = reader.u16('question type');
      const klass = reader.u16('question class');
      message.questions.push({ name, type, class: klass });
    }
    const sections: [Section, number, ResourceRecord[]][] = [
      ['answer', message.header.ancount, message.answers],
      ['authority', message.header.nscount, message.authorities],
      ['additional', message.header.arcount, message.additionals],
    ];
    for (const [which, count, into] of sections) {
      section = which;
      for (index = 0; index < count; index++) {
        start = reader.pos;
        const record = readRecord(reader);
        if (record.error !== undefined) {
          message.errors.push({ section, index, offset: start, reason: record.error, fatal: false });
        }
        into.push(record);
      }
    }
  } catch (error) {
    // Anything else thrown here would be a bug in this file; it still must not escape to
    // the caller as an exception from network input, so it is reported like a wire error.
    message.errors.push({
      section,
      index,
      offset: start,
      reason: (error as Error).message,
      fatal: true,
      ...(error instanceof WireError && error.work ? { work: true } : {}),
    });
  }
  const opt = message.additionals.find((record) => record.type === TYPE.OPT && record.error === undefined);
  if (opt) {
    message.edns = readEdns(opt);
    message.rcode = (message.edns.extendedRcode << 4) | message.header.rcode;
  }
  message.work = reader.work;
  return message;
}

function emptyHeader(): Header {
  return {
    id: 0,
    qr: false,
    opcode: 0,
    aa: false,
    tc: false,
    rd: false,
    ra: false,
    ad: false,
    cd: false,
    rcode: 0,
    qdcount: 0,
    ancount: 0,
    nscount: 0,
    arcount: 0,
  };
}

/** RFC 1035 §4.1.1, with AD and CD from RFC 4035 §3.2. */
function readHeader(reader: Reader): Header {
  if (reader.buffer.length < 12) throw new WireError(`message is ${reader.buffer.length} octets, a header needs 12`);
  const b = reader.buffer;
  const b2 = b[2]!;
  const b3 = b[3]!;
  reader.pos = 12;
  return {
    id: b.readUInt16BE(0),
    qr: (b2 & 0x80) !== 0,
    opcode: (b2 >> 3) & 0x0f,
    aa: (b2 & 0x04) !== 0,
    tc: (b2 & 0x02) !== 0,
    rd: (b2 & 0x01) !== 0,
    ra: (b3 & 0x80) !== 0,
    ad: (b3 & 0x20) !== 0,
    cd: (b3 & 0x10) !== 0,
    rcode: b3 & 0x0f,
    qdcount: b.readUInt16BE(4),
    ancount: b.readUInt16BE(6),
    nscount: b.readUInt16BE(8),
    arcount: b.readUInt16BE(10),
  };
}

/** RFC 1035 §4.1.3: NAME, TYPE, CLASS, TTL, RDLENGTH, RDATA. */
function readRecord(reader: Reader): ResourceRecord {
  const name = reader.name('owner name');
  const type = reader.u16('record type');
  const klass = reader.u16('record class');
  const rawTtl = reader.u32('record TTL');
  const rdlength = reader.u16('RDLENGTH');
  const rdataStart = reader.pos;
  const rdataEnd = rdataStart + rdlength;
  if (rdataEnd > reader.buffer.length) {
    throw new WireError(
      `RDLENGTH ${rdlength} of the ${typeLabel(type)} record for ${nameLabel(name)} runs ${rdataEnd - reader.buffer.length} octets past the end of the message`,
    );
  }
  const rdata = Buffer.from(reader.buffer.subarray(rdataStart, rdataEnd));
  const ttl = type === TYPE.OPT ? rawTtl : rawTtl >= 0x80000000 ? 0 : rawTtl;
  const record: ResourceRecord = { name, type, class: klass, ttl, rdata };
  try {
    record.data = readRdata(reader, type, klass, name, rdataStart, rdataEnd);
  } catch (error) {
    // Only the work bound ends decoding from inside RDATA; RDLENGTH frames the next record.
    if (!(error instanceof WireError) || error.work) throw error;
    record.error = error.message;
  }
  reader.pos = rdataEnd;
  return record;
}

function readRdata(reader: Reader, type: number, klass: number, owner: string, start: number, end: number): AnyRecord {
  const length = end - start;
  const b = reader.buffer;
  const exact = (what: string) => {
    if (reader.pos !== end) {
      throw new WireError(`${what} RDATA of ${nameLabel(owner)} is ${length} octets but its fields take ${reader.pos - start}`);
    }
  };
  reader.pos = start;
  switch (type) {
    case TYPE.A:
      if (klass !== CLASS_IN) break;
      if (length !== 4) throw new WireError(`A RDATA of ${nameLabel(owner)} is ${length} octets, not 4`);
      return { address: `${b[start]}.${b[start + 1]}.${b[start + 2]}.${b[start + 3]}`, family: 4 };
    case TYPE.AAAA:
      if (klass !== CLASS_IN) break;
      if (length !== 16) throw new WireError(`AAAA RDATA of ${nameLabel(owner)} is ${length} octets, not 16`);
      return { address: formatIPv6(b.subarray(start, end)), family: 6 };
    case TYPE.MX: {
      const preference = reader.u16('MX preference', end);
      const exchange = reader.name('MX exchange', end);
      exact('MX');
      return { exchange, preference };
    }
    case TYPE.CNAME: {
      const target = reader.name('CNAME target', end);
      exact('CNAME');
      return { target };
    }
    case TYPE.NS:
    case TYPE.PTR: {
      const host = reader.name(`${typeLabel(type)} host`, end);
      exact(typeLabel(type));
      return { host };
    }
    case TYPE.SOA: {
      const primary = reader.name('SOA MNAME', end);
      const admin = reader.name('SOA RNAME', end);
      const serial = reader.u32('SOA SERIAL', end);
      const refresh = reader.u32('SOA REFRESH', end);
      const retry = reader.u32('SOA RETRY', end);
      const expire = reader.u32('SOA EXPIRE', end);
      const minimum = reader.u32('SOA MINIMUM', end);
      exact('SOA');
      return { primary, admin, serial, refresh, retry, expire, minimum };
    }
    case TYPE.TXT: {
      // RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and its octets.
      if (length === 0) throw new WireError(`TXT RDATA of ${nameLabel(owner)} is empty (RFC 1035 §3.3.14 needs a character-string)`);
      const strings: string[] = [];
      let pos = start;
      while (pos < end) {
        const size = b[pos]!;
        if (pos + 1 + size > end) {
          throw new WireError(`TXT RDATA of ${nameLabel(owner)} has a ${size}-octet string running past its RDLENGTH ${length}`);
        }
        strings.push(b.toString('utf8', pos + 1, pos + 1 + size));
        pos += 1 + size;
      }
      return { strings, text: strings.join('') };
    }
    case TYPE.TLSA:
      return parseTlsa(b.subarray(start, end));
    case TYPE.OPT:
      if (owner !== '') throw new WireError(`OPT record is owned by ${nameLabel(owner)}, not the root (RFC 6891 §6.1.2)`);
      readOptions(b.subarray(start, end));
      break;
  }
  return { type, data: Buffer.from(b.subarray(start, end)) };
}

/** RFC 6698 §2.1: usage (1 octet), selector (1), matching type (1), association data (rest). */
export function parseTlsa(rdata: Buffer): TlsaRecord {
  if (rdata.length < 3) throw new WireError(`TLSA RDATA is ${rdata.length} octets, at least 3 are needed`);
  return { usage: rdata[0]!, selector: rdata[1]!, matchingType: rdata[2]!, data: Buffer.from(rdata.subarray(3)) };
}

/** RFC 6891 §6.1.2: OPTION-CODE, OPTION-LENGTH, OPTION-DATA, filling the RDATA exactly. */
function readOptions(rdata: Buffer): EdnsOption[] {
  const options: EdnsOption[] = [];
  let pos = 0;
  while (pos < rdata.length) {
    if (pos + 4 > rdata.length) throw new WireError(`OPT RDATA ends inside an option header at octet ${pos}`);
    const code = rdata.readUInt16BE(pos);
    const size = rdata.readUInt16BE(pos + 2);
    if (pos + 4 + size > rdata.length) throw new WireError(`OPT option ${code} of ${size} octets runs past the OPT RDATA`);
    options.push({ code, data: Buffer.from(rdata.subarray(pos + 4, pos + 4 + size)) });
    pos += 4 + size;
  }
  return options;
}

function readEdns(opt: ResourceRecord): Edns {
  const options = readOptions(opt.rdata);
  const extendedErrors: ExtendedError[] = [];
  for (const option of options) {
    // RFC 8914 §2: INFO-CODE (2 octets), then EXTRA-TEXT (UTF-8, not NUL-terminated, §3).
    if (option.code !== EDNS_OPTION_EDE || option.data.length < 2) continue;
    extendedErrors.push({
      infoCode: option.data.readUInt16BE(0),
      extraText: option.data.toString('utf8', 2).replace(/\0+$/, ''),
    });
  }
  return {
    udpPayloadSize: opt.class,
    extendedRcode: opt.ttl >>> 24,
    version: (opt.ttl >>> 16) & 0xff,
    do: (opt.ttl & 0x8000) !== 0,
    options,
    extendedErrors,
  };
}

/** RFC 5952 §4: lowercase, no leading zeros, the longest run of two or more zero groups as '::'. */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952 §5: IPv4-mapped addresses end in dotted decimal.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function typeLabel(type: number): string {
  const name = (Object.keys(TYPE) as (keyof typeof TYPE)[]).find((key) => TYPE[key] === type);
  return name ?? `TYPE${type}`;
}

function nameLabel(name: string): string {
  return name === '' ? '.' : name;
}

/** A cursor over the message, counting the work names cost. */
class Reader {
  pos = 0;
  work = 0;
  private readonly budget: number;

  constructor(readonly buffer: Buffer) {
    this.budget = workBudget(buffer.length);
  }

  private spend(): void {
    if (this.work >= this.budget) {
      throw new WireError(`decoding needed more than ${this.budget} units of work (labels and pointers) for a ${this.buffer.length}-octet message`, true);
    }
    this.work++;
  }

  /** `end`: where the RDATA being read ends; undefined outside RDATA. */
  u16(what: string, end?: number): number {
    if (this.pos + 2 > (end ?? this.buffer.length)) throw this.short(what, 2, end);
    const value = this.buffer.readUInt16BE(this.pos);
    this.pos += 2;
    return value;
  }

  u32(what: string, end?: number): number {
    if (this.pos + 4 > (end ?? this.buffer.length)) throw this.short(what, 4, end);
    const value = this.buffer.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  private short(what: string, size: number, end: number | undefined): WireError {
    const limit = end === undefined ? 'the message' : 'its RDATA';
    return new WireError(`${what} at offset ${this.pos} needs ${size} octets but ${limit} ends at ${end ?? this.buffer.length}`);
  }

  /**
   * A name at the cursor (RFC 1035 §3.1, §4.1.4), in presentation form; the cursor moves past
   * its in-place part, which must end by `end`. Pointers go strictly backwards (see the top of
   * this file), at most MAX_POINTERS_PER_NAME of them.
   */
  name(what: string, end?: number): string {
    const b = this.buffer;
    const nameStart = this.pos;
    let pos = this.pos;
    let limit = end ?? b.length;
    // Until the first pointer the name lies in place: inside the RDATA when it is in one.
    let where = end === undefined ? 'the message' : 'its RDATA';
    // Where the part being read began: the name itself, then each place a pointer led to.
    let segmentStart = nameStart;
    let after = -1;
    let pointers = 0;
    let octets = 1;
    const labels: string[] = [];
    for (;;) {
      if (pos >= limit) {
        throw new WireError(`${what} at offset ${nameStart} runs past the end of ${where}`);
      }
      const length = b[pos]!;
      if (length === 0) {
        pos += 1;
        break;
      }
      const kind = length & 0xc0;
      if (kind === 0xc0) {
        if (pos + 2 > limit) throw new WireError(`${what} at offset ${nameStart} ends inside a compression pointer`);
        const target = ((length & 0x3f) << 8) | b[pos + 1]!;
        this.spend();
        if (target < 12) {
          throw new WireError(`${what} at offset ${nameStart} has a compression pointer at offset ${pos} into the header (offset ${target})`);
        }
        if (target >= segmentStart) {
          throw new WireError(
            `${what} at offset ${nameStart} has a compression pointer at offset ${pos} to offset ${target}, ` +
              `not before offset ${segmentStart} (RFC 1035 §4.1.4: a pointer refers to a prior occurrence)`,
          );
        }
        pointers++;
        if (pointers > MAX_POINTERS_PER_NAME) {
          throw new WireError(`${what} at offset ${nameStart} follows more than ${MAX_POINTERS_PER_NAME} compression pointers`);
        }
        if (after < 0) after = pos + 2;
        pos = target;
        segmentStart = target;
        // After a jump the name may be anywhere earlier in the message, not only in the RDATA.
        limit = b.length;
        where = 'the message';
        continue;
      }
      if (kind !== 0) {
        throw new WireError(`${what} at offset ${nameStart} has a label of reserved type 0x${kind.toString(16)} at offset ${pos}`);
      }
      this.spend();
      // kind 0: a label of 1-63 octets (RFC 1035 §2.3.4: the 6-bit length cannot say more).
      octets += length + 1;
      if (octets > MAX_NAME_OCTETS) {
        throw new WireError(`${what} at offset ${nameStart} is longer than ${MAX_NAME_OCTETS} octets`);
      }
      if (pos + 1 + length > limit) {
        throw new WireError(`${what} at offset ${nameStart} has a label at offset ${pos} running past the end of ${where}`);
      }
      labels.push(presentLabel(b, pos + 1, pos + 1 + length));
      pos += 1 + length;
    }
    this.pos = after >= 0 ? after : pos;
    return labels.join('.');
  }
}

/* ----------------------------------------------------------------------------------------
 * Queries.
 */

/** Header and EDNS flags of a query (RFC 4035 §3.2.1, §3.2.2; RFC 3225). */
export interface QueryFlags {
  /** EDNS DO (DNSSEC OK, RFC 3225): ask for RRSIG, NSEC, NSEC3 and DS records. Default true. */
  dnssecOk?: boolean;
  /**
   * CD (Checking Disabled, RFC 4035 §3.2.2): the recursive server is to return data that did
   * not validate for it too, since the stub validates itself (RFC 4035 §4.9.2, RFC 6840 §5.9).
   * Default false.
   */
  checkingDisabled?: boolean;
}

/**
 * A recursive query (RFC 1035 §4.1): RD=1, AD=0 (RFC 4035 §4.6), CD as `flags` says (default
 * 0), one question of class IN, and an OPT record (RFC 6891 §6.1.2) with DO as `flags` says
 * (default 1, RFC 3225) and a UDP payload size of 1232. `name` is in the form of
 * lib/dns/names.ts ('' for the root).
 */
export function encodeQuery(id: number, name: string, type: number, flags: QueryFlags = {}): Buffer {
  const labels = nameLabels(name);
  const nameLength = labels.reduce((sum, label) => sum + 1 + label.length, 1);
  const buffer = Buffer.alloc(12 + nameLength + 4 + 11);
  buffer.writeUInt16BE(id, 0);
  buffer[2] = 0x01; // RD
  buffer[3] = flags.checkingDisabled ? 0x10 : 0x00; // RA, Z, AD and RCODE clear; CD as asked
  buffer.writeUInt16BE(1, 4); // QDCOUNT
  buffer.writeUInt16BE(1, 10); // ARCOUNT: the OPT record
  let pos = 12;
  for (const label of labels) {
    buffer[pos++] = label.length;
    label.copy(buffer, pos);
    pos += label.length;
  }
  buffer[pos++] = 0;
  buffer.writeUInt16BE(type, pos);
  buffer.writeUInt16BE(CLASS_IN, pos + 2);
  pos += 4;
  // OPT: root owner, TYPE 41, CLASS = UDP payload size, TTL = extended RCODE 0, version 0, DO.
  buffer[pos++] = 0;
  buffer.writeUInt16BE(TYPE.OPT, pos);
  buffer.writeUInt16BE(EDNS_UDP_PAYLOAD, pos + 2);
  buffer.writeUInt32BE((flags.dnssecOk ?? true) ? 0x00008000 : 0, pos + 4);
  buffer.writeUInt16BE(0, pos + 8);
  return buffer;
}
