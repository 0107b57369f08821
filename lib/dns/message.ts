/**
 * DNS messages for the resolver: the query it sends, the checks a reply must pass before it
 * is believed to answer that query, and reading the answer section into typed records.
 * The wire format itself (encoding, decoding, its limits) is lib/dns/wire.ts.
 */
import { CLASS_IN, TYPE, decodeMessage, encodeQuery, type AnyRecord, type QueryFlags, type CnameRecord, type Message, type ResourceRecord } from './wire.js';

export {
  CLASS_IN,
  EDNS_UDP_PAYLOAD,
  TYPE,
  parseTlsa,
  type AddressRecord,
  type AnyRecord,
  type CnameRecord,
  type HostRecord,
  type Message,
  type MxRecord,
  type RawRecord,
  type RecordType,
  type RecordTypes,
  type SoaRecord,
  type TlsaRecord,
  type TxtRecord,
} from './wire.js';

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

/** IANA "Extended DNS Error Codes" (RFC 8914 §4 and later registrations), by INFO-CODE. */
const EDE_NAMES: readonly string[] = [
  'OTHER',
  'UNSUPPORTED_DNSKEY_ALGORITHM',
  'UNSUPPORTED_DS_DIGEST_TYPE',
  'STALE_ANSWER',
  'FORGED_ANSWER',
  'DNSSEC_INDETERMINATE',
  'DNSSEC_BOGUS',
  'SIGNATURE_EXPIRED',
  'SIGNATURE_NOT_YET_VALID',
  'DNSKEY_MISSING',
  'RRSIGS_MISSING',
  'NO_ZONE_KEY_BIT_SET',
  'NSEC_MISSING',
  'CACHED_ERROR',
  'NOT_READY',
  'BLOCKED',
  'CENSORED',
  'FILTERED',
  'PROHIBITED',
  'STALE_NXDOMAIN_ANSWER',
  'NOT_AUTHORITATIVE',
  'NOT_SUPPORTED',
  'NO_REACHABLE_AUTHORITY',
  'NETWORK_ERROR',
  'INVALID_DATA',
  'SIGNATURE_EXPIRED_BEFORE_VALID',
  'TOO_EARLY',
  'UNSUPPORTED_NSEC3_ITERATIONS',
  'UNABLE_TO_CONFORM_TO_POLICY',
  'SYNTHESIZED',
  'INVALID_QUERY_TYPE',
];

export function extendedErrorName(infoCode: number): string {
  return EDE_NAMES[infoCode] ?? `EDE ${infoCode}`;
}

/** Header flags of a reply (RFC 1035 §4.1.1, RFC 4035 §3.2). */
export interface Flags {
  id: number;
  qr: boolean;
  opcode: number;
  tc: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
}

/**
 * A recursive query: RD=1, AD=0, one question of class IN, and an OPT record (RFC 6891) with a
 * UDP payload size of 1232; DO=1 (RFC 3225) and CD=0 unless `flags` say otherwise.
 */
export function buildQuery(id: number, name: string, type: number, flags?: QueryFlags): Buffer {
  return encodeQuery(id, name, type, flags);
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
 * ignored: they may be spoofed, and the real answer may still arrive. `name` is in the form
 * of lib/dns/names.ts, as the decoder writes names.
 */
export function checkReply(buffer: Buffer, id: number, name: string, type: number): ReplyCheck {
  if (buffer.length < 12) return { ok: false, ignore: true, why: `a ${buffer.length}-octet message` };
  // ID and QR from the raw octets first: a message that is not a reply to this query is not
  // worth decoding.
  if (buffer.readUInt16BE(0) !== id) return { ok: false, ignore: true, why: 'a reply with a wrong ID' };
  if ((buffer[2]! & 0x80) === 0) return { ok: false, ignore: true, why: 'a query instead of a reply' };
  const message = decodeMessage(buffer);
  const header = message.header;
  const flags: Flags = { id: header.id, qr: header.qr, opcode: header.opcode, tc: header.tc, ra: header.ra, ad: header.ad, cd: header.cd };
  // Past the work bound nothing of the message is read further, whatever section it was in.
  const overwork = message.errors.find((error) => error.work);
  if (overwork) return { ok: false, ignore: false, why: `malformed reply (${describe(overwork)})` };
  const rcode = message.rcode;
  const fatal = message.errors.find((error) => error.fatal && error.section !== 'additional');
  if (header.qdcount === 0 && rcode !== 0 && rcode !== 3 && !fatal) {
    // Error replies (FORMERR, SERVFAIL, REFUSED...) may omit the question; they cannot
    // inject data, so the ID is enough to take them as the answer.
    return { ok: true, message, flags, rcode };
  }
  if (fatal?.section === 'question') return { ok: false, ignore: false, why: `malformed reply (${describe(fatal)})` };
  const question = message.questions[0];
  if (!question) return { ok: false, ignore: false, why: 'malformed reply (no question section)' };
  if (message.questions.length !== 1 || question.name !== name || question.type !== type || question.class !== CLASS_IN) {
    return { ok: false, ignore: true, why: 'a reply to another question' };
  }
  if (flags.opcode !== 0) return { ok: false, ignore: false, why: `reply with opcode ${flags.opcode}` };
  // A record that cannot be framed in the sections we read makes the answer incomplete.
  // The additional section is not used (beyond OPT), so a bad record there is tolerated.
  if (fatal) return { ok: false, ignore: false, why: `malformed reply (${describe(fatal)})` };
  return { ok: true, message, flags, rcode };
}

function describe(error: { section: string; index: number; reason: string }): string {
  return error.section === 'header' ? error.reason : `${error.section} ${error.index + 1}: ${error.reason}`;
}

/** The record of a decoded resource record; throws for RDATA that did not decode as its type. */
export function parseRecord(rr: ResourceRecord): AnyRecord {
  if (rr.error !== undefined || rr.data === undefined) throw new Error(rr.error ?? `${typeName(rr.type)} record without RDATA`);
  return rr.data;
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
 * the chain are ignored (RFC 2181 §5.4.1). A CNAME query is not followed. A record in the
 * answer or authority section whose RDATA did not decode makes the reply malformed (throws).
 */
export function readAnswer(message: Message, qname: string, qtype: number): Answer {
  const bad = [...message.answers, ...message.authorities].find((rr) => rr.error !== undefined);
  if (bad) throw new Error(bad.error);
  const answers = message.answers.filter((rr) => rr.class === CLASS_IN);
  const cnames: string[] = [];
  let current = qname;
  let ttl = Number.POSITIVE_INFINITY;
  const seen = new Set([qname]);
  for (;;) {
    const records = answers.filter((rr) => rr.type === qtype && rr.name === current);
    if (records.length > 0 || qtype === TYPE.CNAME) {
      if (records.length > 0) {
        for (const rr of records) ttl = Math.min(ttl, rr.ttl);
        return { records: records.map(parseRecord), cnames, canonical: current, ttl, cacheable: true };
      }
      break;
    }
    const alias = answers.find((rr) => rr.type === TYPE.CNAME && rr.name === current);
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
  if (soa?.data && 'minimum' in soa.data) {
    ttl = Math.min(ttl, soa.ttl, soa.data.minimum);
    cacheable = true;
  }
  return { records: [], cnames, canonical: current, ttl: Number.isFinite(ttl) ? ttl : 0, cacheable };
}

/** A referral (NS records in authority, no SOA, no answer): the server does not recurse. */
export function isReferral(message: Message): boolean {
  return message.answers.length === 0 && message.authorities.some((rr) => rr.type === TYPE.NS) && !message.authorities.some((rr) => rr.type === TYPE.SOA);
}
