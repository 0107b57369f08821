/**
 * DNS messages: building queries and reading replies with dns2's packet codec, and turning a
 * reply's answer section into typed records.
 *
 * dns2 decodes A, AAAA, MX, CNAME, NS, PTR, TXT and SOA itself; types it has no codec for
 * (TLSA, type 52) arrive with their raw RDATA in `data`, which is parsed here. Header flags
 * are read from the raw octets because dns2's type declarations omit AD and CD.
 */
import dns2 from 'dns2';
import { canonicalWireName } from './names.js';

const { Packet } = dns2;
type Resource = InstanceType<typeof Packet.Resource>;
type Message = InstanceType<typeof Packet>;

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

const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
  16: 'BADVERS',
};

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));

export function typeName(code: number): string {
  return TYPE_NAMES[code] ?? `TYPE${code}`;
}

/** Header flags of a raw message (RFC 1035 §4.1.1, RFC 4035 §3.2). */
export interface Flags {
  id: number;
  qr: boolean;
  opcode: number;
  tc: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
}

export function readFlags(buffer: Buffer): Flags {
  const b2 = buffer[2]!;
  const b3 = buffer[3]!;
  return {
    id: buffer.readUInt16BE(0),
    qr: (b2 & 0x80) !== 0,
    opcode: (b2 >> 3) & 0x0f,
    tc: (b2 & 0x02) !== 0,
    ra: (b3 & 0x80) !== 0,
    ad: (b3 & 0x20) !== 0,
    cd: (b3 & 0x10) !== 0,
  };
}

/**
 * A recursive query: RD=1, CD=0, AD=0, one question of class IN, and an OPT record
 * (RFC 6891) with DO=1 (RFC 3225) and a UDP payload size of 1232.
 */
export function buildQuery(id: number, name: string, type: number): Buffer {
  const message = new Packet();
  message.header = new Packet.Header({ id, rd: 1 });
  message.questions.push(new Packet.Question(name, type, CLASS_IN));
  message.additionals.push(Packet.Resource.EDNS([], { doFlag: true, udpPayloadSize: EDNS_UDP_PAYLOAD }));
  return message.toBuffer();
}

export type ReplyCheck =
  | { ok: true; message: Message; flags: Flags; rcode: number }
  /** Not a reply to this query (wrong ID or question): ignore it and keep waiting. */
  | { ok: false; ignore: true; why: string }
  /** A reply to this query that cannot be used. */
  | { ok: false; ignore: false; why: string };

/**
 * Check that a raw message answers the query (ID, QR, opcode, question: RFC 5452 §4.3) and
 * decode it. Messages too short to carry an ID, or with another ID or question, are to be
 * ignored: they may be spoofed, and the real answer may still arrive.
 */
export function checkReply(buffer: Buffer, id: number, name: string, type: number): ReplyCheck {
  if (buffer.length < 12) return { ok: false, ignore: true, why: `a ${buffer.length}-octet message` };
  const flags = readFlags(buffer);
  if (flags.id !== id) return { ok: false, ignore: true, why: 'a reply with a wrong ID' };
  if (!flags.qr) return { ok: false, ignore: true, why: 'a query instead of a reply' };
  let message: Message;
  try {
    message = Packet.parse(buffer);
  } catch (error) {
    return { ok: false, ignore: false, why: `malformed reply (${(error as Error).message})` };
  }
  const rcode = message.header.rcode;
  const question = message.questions[0];
  if (message.questions.length === 0 && rcode !== 0 && rcode !== 3 && message.errors.length === 0) {
    // Error replies (FORMERR, SERVFAIL, REFUSED...) may omit the question; they cannot
    // inject data, so the ID is enough to take them as the answer.
    return { ok: true, message, flags, rcode };
  }
  if (message.errors.some((error) => error.section === 'questions') || !question) {
    return { ok: false, ignore: false, why: 'malformed reply (no question section)' };
  }
  if (
    message.questions.length !== 1 ||
    canonicalWireName(question.name) !== name ||
    question.type !== type ||
    question.class !== CLASS_IN
  ) {
    return { ok: false, ignore: true, why: 'a reply to another question' };
  }
  if (flags.opcode !== 0) return { ok: false, ignore: false, why: `reply with opcode ${flags.opcode}` };
  // Records that failed to decode in the sections we read make the answer incomplete.
  // The additional section is not used (beyond OPT), so a bad record there is tolerated.
  const bad = message.errors.find((error) => error.section !== 'additionals');
  if (bad) return { ok: false, ignore: false, why: `malformed reply (${bad.message})` };
  return { ok: true, message, flags, rcode };
}

/* ----------------------------------------------------------------------------------------
 * Typed records.
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

/** Throw for RDATA that cannot be a record of its type; the caller treats the reply as malformed. */
export function parseRecord(rr: Resource): AnyRecord {
  switch (rr.type) {
    case TYPE.A:
      return { address: str(rr.address, 'A address'), family: 4 };
    case TYPE.AAAA:
      return { address: str(rr.address, 'AAAA address'), family: 6 };
    case TYPE.MX:
      return { exchange: canonicalWireName(str(rr.exchange, 'MX exchange')), preference: num(rr.priority, 'MX preference') };
    case TYPE.CNAME:
      return { target: canonicalWireName(str(rr.domain, 'CNAME target')) };
    case TYPE.NS:
      return { host: canonicalWireName(str(rr.ns, 'NS host')) };
    case TYPE.PTR:
      return { host: canonicalWireName(str(rr.domain, 'PTR host')) };
    case TYPE.TXT: {
      const strings = Array.isArray(rr.data) ? rr.data.map(String) : [];
      return { strings, text: strings.join('') };
    }
    case TYPE.SOA:
      return {
        primary: canonicalWireName(str(rr.primary, 'SOA primary')),
        admin: canonicalWireName(str(rr.admin, 'SOA admin')),
        serial: num(rr.serial, 'SOA serial'),
        refresh: num(rr.refresh, 'SOA refresh'),
        retry: num(rr.retry, 'SOA retry'),
        expire: num(rr.expiration, 'SOA expire'),
        minimum: num(rr.minimum, 'SOA minimum'),
      };
    case TYPE.TLSA:
      return parseTlsa(raw(rr));
    default:
      return { type: rr.type, data: raw(rr) };
  }
}

/** RFC 6698 §2.1: usage (1 octet), selector (1), matching type (1), association data (rest). */
export function parseTlsa(rdata: Buffer): TlsaRecord {
  if (rdata.length < 3) throw new Error(`TLSA RDATA is ${rdata.length} octets, at least 3 are needed`);
  return { usage: rdata[0]!, selector: rdata[1]!, matchingType: rdata[2]!, data: Buffer.from(rdata.subarray(3)) };
}

function raw(rr: Resource): Buffer {
  if (!Buffer.isBuffer(rr.data)) throw new Error(`${typeName(rr.type)} record arrived without raw RDATA`);
  return rr.data;
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what} missing`);
  return value;
}

function num(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${what} missing`);
  return value;
}

/* ----------------------------------------------------------------------------------------
 * Reading the answer.
 */

/** How many CNAMEs are followed through one answer section before giving up. */
export const MAX_CNAME_CHAIN = 16;

export interface Answer {
  records: AnyRecord[];
  /** The CNAME targets followed, in order. */
  cnames: string[];
  /** The owner name at the end of the chain. */
  canonical: string;
  /** Seconds: the lowest TTL of the records and CNAMEs used, or for a negative answer RFC 2308 §5's. */
  ttl: number;
  /** Whether a negative answer carried an SOA (RFC 2308 §5: no SOA, no negative caching). */
  cacheable: boolean;
}

/**
 * Walk the answer section from the query name through CNAMEs to the records of the asked
 * type owned by the end of the chain (RFC 1034 §3.6.2, §5.2.2). Records owned by names off
 * the chain are ignored (RFC 2181 §5.4.1). A CNAME query is not followed.
 */
export function readAnswer(message: Message, qname: string, qtype: number): Answer {
  const answers = message.answers.filter((rr) => rr.class === CLASS_IN);
  const owned = (rr: Resource, owner: string) => canonicalWireName(rr.name) === owner;
  const cnames: string[] = [];
  let current = qname;
  let ttl = Number.POSITIVE_INFINITY;
  const seen = new Set([qname]);
  for (;;) {
    const records = answers.filter((rr) => rr.type === qtype && owned(rr, current));
    if (records.length > 0 || qtype === TYPE.CNAME) {
      if (records.length > 0) {
        for (const rr of records) ttl = Math.min(ttl, rr.ttl);
        return { records: records.map(parseRecord), cnames, canonical: current, ttl, cacheable: true };
      }
      break;
    }
    const alias = answers.find((rr) => rr.type === TYPE.CNAME && owned(rr, current));
    if (!alias) break;
    const target = (parseRecord(alias) as CnameRecord).target;
    if (seen.has(target)) throw new Error(`CNAME loop at ${target}`);
    if (cnames.length >= MAX_CNAME_CHAIN) throw new Error(`CNAME chain longer than ${MAX_CNAME_CHAIN}`);
    seen.add(target);
    cnames.push(target);
    ttl = Math.min(ttl, alias.ttl);
    current = target;
  }
  // NXDOMAIN or NODATA for the end of the chain (RFC 6604: the RCODE speaks of the last name).
  const soa = message.authorities.find((rr) => rr.type === TYPE.SOA && rr.class === CLASS_IN);
  let cacheable = false;
  if (soa && typeof soa.minimum === 'number') {
    ttl = Math.min(ttl, soa.ttl, soa.minimum);
    cacheable = true;
  }
  return { records: [], cnames, canonical: current, ttl: Number.isFinite(ttl) ? ttl : 0, cacheable };
}

/** A referral (NS records in authority, no SOA, no answer): the server does not recurse. */
export function isReferral(message: Message): boolean {
  return (
    message.answers.length === 0 &&
    message.authorities.some((rr) => rr.type === TYPE.NS) &&
    !message.authorities.some((rr) => rr.type === TYPE.SOA)
  );
}
