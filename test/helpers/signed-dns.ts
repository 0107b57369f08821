/**
 * DNSSEC-signed zones served over real UDP and TCP sockets, for the resolver's validate mode
 * (lib/dns/validate.ts) and for real Unbound beside it.
 *
 * The server holds whole zones (signed by test/helpers/dnssec-signer.ts, or unsigned) and
 * answers every query from the deepest zone it holds that contains the name, the DS RRset of
 * a zone apex from the parent (RFC 4035 §3.1.4.1), as the whole tree's authoritative servers
 * would, one after the other:
 * - For the library it stands in for a recursive resolver that does not validate: RA=1, AD=0,
 *   CNAMEs followed across zones, every DNSSEC record passed through when DO=1 (RFC 4035
 *   §3.2.1), none when DO=0.
 * - For Unbound (`authoritative: true`) it is the authoritative server of every zone, reached
 *   through stub zones: AA=1, RA=0, CNAMEs followed within the zone only.
 * Answers carry the RRSIGs of each RRset (RFC 4035 §3.1.1); NXDOMAIN and NODATA carry the SOA
 * and the NSEC or NSEC3 records a real server selects (RFC 4035 §3.1.3, RFC 5155 §7.2): the
 * matching or covering NSEC, the wildcard's, the closest encloser proof. Wildcard answers are
 * synthesized (RFC 4592) with the RRSIG of the wildcard and the proof that the name does not
 * exist (RFC 4035 §3.1.3.3). A name below a delegation this server does not hold as a zone is
 * answered SERVFAIL (a resolver that could not reach it).
 *
 * `mutate` sees each reply before it is encoded (forgeries: records dropped, replaced, added),
 * `queries` records each question with its CD and DO bits. Replies over UDP longer than the
 * query's EDNS payload size (512 without EDNS) are truncated (TC=1, RFC 6891 §7) so the client
 * asks again over TCP.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { isProperSubdomain, isSubdomain, nameFromText, nameToText, nameWire, sameName, suffix, wildcardOf, type Name } from '../../lib/dnssec/names.js';
import { nsecCovers } from '../../lib/dnssec/nsec.js';
import { fromBase32hex, nsec3Hash } from '../../lib/dnssec/nsec3.js';
import { RRTYPE as T, parseNsec, parseNsec3, type Rr } from '../../lib/dnssec/records.js';
import { a, makeDs, rr, signZone, testKey, type Nsec3Options, type SignedZone, type SigningAlgorithm, type TestKey } from './dnssec-signer.js';

/** A zone as served: its origin and every record (RRSIG, NSEC, NSEC3 included when signed). */
export interface ServedZone {
  origin: Name;
  records: Rr[];
}

export interface Reply {
  rcode: number;
  answer: Rr[];
  authority: Rr[];
}

export interface SeenSignedQuery {
  /** Presentation form with a trailing dot ('.' for the root). */
  name: string;
  type: number;
  transport: 'udp' | 'tcp';
  cd: boolean;
  do: boolean;
}

export interface SignedDnsOptions {
  zones: ServedZone[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Answer as each zone's authoritative server (AA=1, RA=0, no CNAME followed out of the zone). */
  authoritative?: boolean;
  /**
   * Set the AD bit, as a validating resolver would: on every reply (for 'trust-ad' beside
   * 'validate' in the bench), or on the replies this says are secure (a trusted local
   * validator's verdict per query, for the tests of the AD path).
   */
  ad?: boolean | ((query: { name: Name; type: number }) => boolean);
  /** Queries that get no reply at all (a server that has gone quiet), as the query name and type. */
  silent?: (query: { name: Name; type: number }) => boolean;
  /** Change a reply before it is sent; the query name as labels, and its type. */
  mutate?: (reply: Reply, query: { name: Name; type: number }) => Reply;
}

export interface SignedDnsServer {
  address: string;
  port: number;
  /** `address:port`, for the resolver's `servers`. */
  server: string;
  queries: SeenSignedQuery[];
  close(): Promise<void>;
}

const key = (name: Name) => nameWire(name).toString('latin1');

interface Index {
  zone: ServedZone;
  /** Owners that exist in the zone (records, or empty non-terminals), not below a cut. */
  names: Map<string, Name>;
  /** Delegations (NS below the apex). */
  cuts: Name[];
  nsec: Rr[];
  nsec3: Rr[];
}

function index(zone: ServedZone): Index {
  const cuts = zone.records.filter((rr) => rr.type === T.NS && !sameName(rr.owner, zone.origin)).map((rr) => rr.owner);
  const below = (name: Name) => cuts.some((cut) => isProperSubdomain(name, cut));
  const names = new Map<string, Name>();
  for (const rr of zone.records) {
    if (rr.type === T.NSEC3 || below(rr.owner) || !isSubdomain(rr.owner, zone.origin)) continue;
    for (let depth = rr.owner.length; depth >= zone.origin.length; depth--) names.set(key(suffix(rr.owner, depth)), suffix(rr.owner, depth));
  }
  return {
    zone,
    names,
    cuts,
    nsec: zone.records.filter((rr) => rr.type === T.NSEC),
    nsec3: zone.records.filter((rr) => rr.type === T.NSEC3),
  };
}

/** The RRSIGs at `owner` over `type`. */
function sigs(records: Rr[], owner: Name, type: number): Rr[] {
  return records.filter((rr) => rr.type === T.RRSIG && sameName(rr.owner, owner) && ((rr.rdata[0]! << 8) | rr.rdata[1]!) === type);
}

function rrset(records: Rr[], owner: Name, type: number): Rr[] {
  return records.filter((rr) => rr.type === type && sameName(rr.owner, owner));
}

function withSigs(ix: Index, owner: Name, type: number): Rr[] {
  return [...rrset(ix.zone.records, owner, type), ...sigs(ix.zone.records, owner, type)];
}

/* ----------------------------------------------------------------------------------------
 * Denial records, as a server picks them.
 */

function nsecMatching(ix: Index, name: Name): Rr | undefined {
  return ix.nsec.find((rr) => sameName(rr.owner, name));
}

function nsecCovering(ix: Index, name: Name): Rr | undefined {
  return ix.nsec.find((rr) => nsecCovers(parseNsec(rr), name));
}

function nsec3Of(ix: Index, name: Name, how: 'match' | 'cover'): Rr | undefined {
  const first = ix.nsec3[0];
  if (!first) return undefined;
  const params = parseNsec3(first);
  const hash = nsec3Hash(name, params.salt, params.iterations);
  return ix.nsec3.find((rr) => {
    const owner = fromBase32hex(rr.owner[0]!)!;
    if (how === 'match') return owner.equals(hash);
    const next = Buffer.from(parseNsec3(rr).nextHashed);
    return Buffer.compare(owner, next) < 0
      ? Buffer.compare(owner, hash) < 0 && Buffer.compare(hash, next) < 0
      : Buffer.compare(owner, hash) < 0 || Buffer.compare(hash, next) < 0;
  });
}

/** RFC 5155 §7.2.1: the closest encloser (an ancestor with an NSEC3) and the next closer name. */
function nsec3ClosestEncloser(ix: Index, name: Name): { ce: Name; nextCloser: Name } {
  for (let depth = name.length - 1; depth >= ix.zone.origin.length; depth--) {
    const ce = suffix(name, depth);
    if (nsec3Of(ix, ce, 'match')) return { ce, nextCloser: suffix(name, depth + 1) };
  }
  return { ce: ix.zone.origin, nextCloser: suffix(name, ix.zone.origin.length + 1) };
}

/** The closest existing ancestor of a name that does not exist. */
function closestEncloser(ix: Index, name: Name): Name {
  for (let depth = name.length - 1; depth >= ix.zone.origin.length; depth--) {
    if (ix.names.has(key(suffix(name, depth)))) return suffix(name, depth);
  }
  return ix.zone.origin;
}

type DenialKind = 'nodata' | 'nxdomain' | 'wildcard-answer' | 'wildcard-nodata';

/** RFC 4035 §3.1.3, RFC 5155 §7.2: the NSEC or NSEC3 records (with RRSIGs) that prove `kind` for `name`. */
function denialFor(ix: Index, name: Name, kind: DenialKind, ce: Name): Rr[] {
  const picked: (Rr | undefined)[] = [];
  if (ix.nsec.length > 0) {
    if (kind === 'nodata') picked.push(nsecMatching(ix, name) ?? nsecCovering(ix, name));
    if (kind === 'nxdomain') picked.push(nsecCovering(ix, name), nsecCovering(ix, wildcardOf(ce)));
    if (kind === 'wildcard-answer') picked.push(nsecCovering(ix, name));
    if (kind === 'wildcard-nodata') picked.push(nsecCovering(ix, name), nsecMatching(ix, wildcardOf(ce)));
  } else if (ix.nsec3.length > 0) {
    const exact = kind === 'nodata' ? nsec3Of(ix, name, 'match') : undefined;
    if (exact) picked.push(exact);
    else {
      const proof = nsec3ClosestEncloser(ix, name);
      if (kind !== 'wildcard-answer') picked.push(nsec3Of(ix, proof.ce, 'match'));
      picked.push(nsec3Of(ix, proof.nextCloser, 'cover'));
      if (kind === 'nxdomain') picked.push(nsec3Of(ix, wildcardOf(proof.ce), 'cover'));
      if (kind === 'wildcard-nodata') picked.push(nsec3Of(ix, wildcardOf(proof.ce), 'match'));
    }
  }
  const unique = picked.filter((rr, i): rr is Rr => rr !== undefined && picked.indexOf(rr) === i);
  return unique.flatMap((rr) => [rr, ...sigs(ix.zone.records, rr.owner, rr.type)]);
}

/* ----------------------------------------------------------------------------------------
 * Answers.
 */

function answerQuery(indexes: Index[], qname: Name, qtype: number, authoritative: boolean): Reply {
  const reply: Reply = { rcode: 0, answer: [], authority: [] };
  let current = qname;
  const seen = new Set<string>();
  for (let hop = 0; hop < 12; hop++) {
    // The deepest zone holding the name; a DS at a zone apex is the parent's (RFC 4035 §3.1.4.1).
    const holding = indexes
      .filter((ix) => isSubdomain(current, ix.zone.origin) && !(qtype === T.DS && current.length > 0 && sameName(current, ix.zone.origin)))
      .sort((x, y) => y.zone.origin.length - x.zone.origin.length);
    const ix = holding[0];
    if (!ix || (hop > 0 && authoritative)) return reply.answer.length > 0 ? reply : { ...reply, rcode: 5 };
    if (seen.has(key(current))) return reply;
    seen.add(key(current));
    const cut = ix.cuts.find((owner) => isProperSubdomain(current, owner) || (sameName(current, owner) && qtype !== T.DS));
    if (cut) return { rcode: 2, answer: [], authority: [] };
    // RFC 6672 §3.1: a DNAME above the name redirects it; the CNAME is synthesized, unsigned, with the DNAME's TTL.
    const dname = ix.zone.records.find((rr) => rr.type === T.DNAME && isProperSubdomain(current, rr.owner));
    if (dname) {
      const target = [...current.slice(0, current.length - dname.owner.length), ...nameFromRdata(dname.rdata)];
      reply.answer.push(...withSigs(ix, dname.owner, T.DNAME), { owner: current, type: T.CNAME, class: 1, ttl: dname.ttl, rdata: nameWire(target, false) });
      if (authoritative) return reply;
      current = target;
      continue;
    }
    const soa = withSigs(ix, ix.zone.origin, T.SOA);
    const found = rrset(ix.zone.records, current, qtype);
    if (found.length > 0) {
      reply.answer.push(...withSigs(ix, current, qtype));
      return reply;
    }
    const cname = qtype === T.CNAME ? [] : rrset(ix.zone.records, current, T.CNAME);
    if (cname.length > 0) {
      reply.answer.push(...withSigs(ix, current, T.CNAME));
      current = nameFromRdata(cname[0]!.rdata);
      continue;
    }
    if (ix.names.has(key(current))) {
      reply.authority.push(...soa, ...denialFor(ix, current, 'nodata', current));
      return reply;
    }
    // RFC 4592 §3.3.1: the wildcard at the closest encloser answers for names that do not exist.
    const ce = closestEncloser(ix, current);
    const wildcard = wildcardOf(ce);
    if (ix.names.has(key(wildcard))) {
      const synthesize = (type: number) => [
        ...rrset(ix.zone.records, wildcard, type).map((rr) => ({ ...rr, owner: current })),
        ...sigs(ix.zone.records, wildcard, type).map((rr) => ({ ...rr, owner: current })),
      ];
      const direct = synthesize(qtype);
      const alias = qtype === T.CNAME ? [] : synthesize(T.CNAME);
      if (direct.length > 0 || alias.length > 0) {
        reply.answer.push(...(direct.length > 0 ? direct : alias));
        reply.authority.push(...denialFor(ix, current, 'wildcard-answer', ce));
        if (direct.length > 0) return reply;
        current = nameFromRdata(alias[0]!.rdata);
        continue;
      }
      reply.authority.push(...soa, ...denialFor(ix, current, 'wildcard-nodata', ce));
      return reply;
    }
    reply.rcode = 3;
    reply.authority.push(...soa, ...denialFor(ix, current, 'nxdomain', ce));
    return reply;
  }
  return reply;
}

function nameFromRdata(rdata: Uint8Array): Name {
  const labels: Uint8Array[] = [];
  let pos = 0;
  while (rdata[pos]! !== 0) {
    labels.push(rdata.slice(pos + 1, pos + 1 + rdata[pos]!));
    pos += 1 + rdata[pos]!;
  }
  return labels;
}

/* ----------------------------------------------------------------------------------------
 * The wire.
 */

interface ParsedQuery {
  id: number;
  rd: boolean;
  cd: boolean;
  name: Name;
  type: number;
  /** The question section as sent (name, type, class). */
  question: Buffer;
  edns?: { do: boolean; payload: number };
}

function parseQuery(data: Buffer): ParsedQuery | undefined {
  if (data.length < 12 || data.readUInt16BE(4) !== 1) return undefined;
  const labels: Uint8Array[] = [];
  let pos = 12;
  while (pos < data.length && data[pos]! !== 0) {
    if (data[pos]! > 63) return undefined;
    labels.push(data.subarray(pos + 1, pos + 1 + data[pos]!));
    pos += 1 + data[pos]!;
  }
  pos += 1;
  if (pos + 4 > data.length) return undefined;
  const query: ParsedQuery = {
    id: data.readUInt16BE(0),
    rd: (data[2]! & 0x01) !== 0,
    cd: (data[3]! & 0x10) !== 0,
    name: labels.map((label) => Uint8Array.from(label)),
    type: data.readUInt16BE(pos),
    question: Buffer.from(data.subarray(12, pos + 4)),
  };
  pos += 4;
  // The additional section of a query: an OPT record, owner the root (RFC 6891 §6.1.2).
  if (data.readUInt16BE(10) > 0 && pos + 11 <= data.length && data[pos] === 0 && data.readUInt16BE(pos + 1) === 41) {
    query.edns = { payload: data.readUInt16BE(pos + 3), do: (data.readUInt32BE(pos + 5) & 0x8000) !== 0 };
  }
  return query;
}

function encodeRecord(rr: Rr): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(rr.class, 2);
  fixed.writeUInt32BE(rr.ttl, 4);
  fixed.writeUInt16BE(rr.rdata.length, 8);
  return Buffer.concat([nameWire(rr.owner, false), fixed, rr.rdata]);
}

const DNSSEC_TYPES = new Set<number>([T.RRSIG, T.NSEC, T.NSEC3]);

function encodeReply(query: ParsedQuery, reply: Reply, authoritative: boolean, limit: number, ad = false): Buffer {
  const keep = (rrs: Rr[]) => (query.edns?.do ? rrs : rrs.filter((rr) => !DNSSEC_TYPES.has(rr.type)));
  const answer = keep(reply.answer);
  const authority = keep(reply.authority);
  const opt = query.edns ? Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, query.edns.do ? 0x80 : 0, 0, 0, 0]) : Buffer.alloc(0);
  const header = (tc: boolean, an: number, ns: number) => {
    const out = Buffer.alloc(12);
    out.writeUInt16BE(query.id, 0);
    out[2] = 0x80 | (authoritative ? 0x04 : 0) | (tc ? 0x02 : 0) | (query.rd ? 0x01 : 0);
    out[3] = (authoritative ? 0 : 0x80) | (ad ? 0x20 : 0) | (query.cd ? 0x10 : 0) | (reply.rcode & 0x0f);
    out.writeUInt16BE(1, 4);
    out.writeUInt16BE(an, 6);
    out.writeUInt16BE(ns, 8);
    out.writeUInt16BE(query.edns ? 1 : 0, 10);
    return out;
  };
  const full = Buffer.concat([
    header(false, answer.length, authority.length),
    query.question,
    ...answer.map(encodeRecord),
    ...authority.map(encodeRecord),
    opt,
  ]);
  if (full.length <= limit) return full;
  return Buffer.concat([header(true, 0, 0), query.question, opt]);
}

export async function startSignedDns(options: SignedDnsOptions): Promise<SignedDnsServer> {
  const host = options.host ?? '127.0.0.1';
  const indexes = options.zones.map(index);
  const authoritative = options.authoritative ?? false;
  const queries: SeenSignedQuery[] = [];
  let closed = false;
  const respond = (data: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined => {
    const query = parseQuery(data);
    if (!query) return undefined;
    queries.push({ name: nameToText(query.name), type: query.type, transport, cd: query.cd, do: query.edns?.do ?? false });
    if (options.silent?.({ name: query.name, type: query.type })) return undefined;
    let reply = answerQuery(indexes, query.name, query.type, authoritative);
    if (options.mutate) reply = options.mutate(reply, { name: query.name, type: query.type });
    const limit = transport === 'tcp' ? 65_535 : query.edns ? Math.max(512, query.edns.payload) : 512;
    const ad = typeof options.ad === 'function' ? options.ad({ name: query.name, type: query.type }) : (options.ad ?? false);
    return encodeReply(query, reply, authoritative, limit, ad);
  };
  for (let attempt = 0; ; attempt++) {
    const udp: UdpSocket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port: 0, address: host }, () => {
        udp.removeListener('error', reject);
        resolve(udp.address().port);
      });
    });
    const connections = new Set<Socket>();
    const tcp: TcpServer = createTcpServer((connection) => {
      connections.add(connection);
      connection.on('close', () => connections.delete(connection));
      connection.on('error', () => {});
      let buffered = Buffer.alloc(0);
      connection.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const data = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
          buffered = buffered.subarray(2 + data.length);
          const wire = respond(data, 'tcp');
          if (!wire || connection.destroyed) continue;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(wire.length);
          connection.write(Buffer.concat([prefix, wire]));
        }
      });
    });
    const listening = await new Promise<boolean>((resolve, reject) => {
      tcp.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE' && attempt < 20) resolve(false);
        else reject(error);
      });
      tcp.listen(port, host, () => resolve(true));
    });
    if (!listening) {
      udp.close();
      continue;
    }
    udp.on('message', (data, peer) => {
      const wire = respond(data, 'udp');
      if (wire && !closed) udp.send(wire, peer.port, peer.address, () => {});
    });
    return {
      address: host,
      port,
      server: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
      queries,
      close: async () => {
        if (closed) return;
        closed = true;
        for (const connection of connections) connection.destroy();
        await Promise.all([new Promise<void>((resolve) => udp.close(() => resolve())), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
      },
    };
  }
}

/* ----------------------------------------------------------------------------------------
 * Trees of zones: a root, TLDs and domains, each signed by its own key (or unsigned), each
 * delegated from its parent with NS, glue and (when signed) a DS, all at test time.
 */

export interface TreeZoneSpec {
  /** 'tld.', 'example.tld.', or '.' for the root. */
  origin: string;
  /** The signing algorithm, or false for an unsigned zone. */
  algorithm: SigningAlgorithm | false;
  /** 'nsec' (default) or NSEC3 options. */
  denial?: 'nsec' | Nsec3Options;
  /** The zone's records besides the SOA, the apex NS and its address, and the delegations. */
  records?: Rr[];
  /** The DS records the parent publishes for the zone: default one SHA-256 DS of its key (none for an unsigned zone). */
  ds?: (key: TestKey) => Rr[];
  /** Signature inception and expiration; default one hour ago to seven days ahead. */
  window?: { inception: number; expiration: number };
  /** Key material other than the shared one for the algorithm (testKey's variant). */
  variant?: number;
  /** Keys published besides the signing key (a collision, a KeyTrap set), as DNSKEY records. */
  extraKeys?: Rr[];
  /** RRsets whose RDATA is changed after signing (the last octet of each record flipped): their RRSIGs fail. */
  tamper?: Array<{ owner: string; type: number }>;
}

export interface Tree {
  zones: ServedZone[];
  /** The root's DS as a trust anchor file line (`. IN DS ...`). */
  anchor: string;
  keys: Map<string, TestKey>;
  signed: Map<string, SignedZone>;
}

/** RFC 1035 §3.3.13: MNAME, RNAME, serial 1, refresh, retry, expire, and MINIMUM 60 (the negative TTL). */
export function soa(origin: Name): Buffer {
  const numbers = Buffer.alloc(20);
  [1, 3600, 600, 86_400, 60].forEach((value, i) => numbers.writeUInt32BE(value, 4 * i));
  const under = (label: string) => nameWire([Buffer.from(label), ...origin]);
  return Buffer.concat([under('ns'), under('hostmaster'), numbers]);
}

/** A TLSA record's RDATA (RFC 6698 §2.1). */
export function tlsa(usage: number, selector: number, matchingType: number, data: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([usage, selector, matchingType]), data]);
}

export function signTree(specs: TreeZoneSpec[], now: number): Tree {
  const named = specs.map((spec) => ({ spec, origin: nameFromText(spec.origin) }));
  const parentOf = (origin: Name) => named.filter((other) => isProperSubdomain(origin, other.origin)).sort((x, y) => y.origin.length - x.origin.length)[0];
  const keys = new Map<string, TestKey>();
  const dsOf = new Map<string, Rr[]>();
  const signed = new Map<string, SignedZone>();
  const zones: ServedZone[] = [];
  // Deepest first: a parent signs its children's DS records.
  for (const { spec, origin } of [...named].sort((x, y) => y.origin.length - x.origin.length)) {
    const nsName = [Buffer.from('ns'), ...origin];
    const records: Rr[] = [rr(origin, T.SOA, soa(origin), 300), rr(origin, T.NS, nameWire(nsName), 300), rr(nsName, T.A, a('192.0.2.53'))];
    records.push(...(spec.records ?? []));
    for (const child of named.filter((other) => parentOf(other.origin)?.origin === origin)) {
      const childNs = [Buffer.from('ns'), ...child.origin];
      records.push(rr(child.origin, T.NS, nameWire(childNs)), rr(childNs, T.A, a('192.0.2.54')), ...(dsOf.get(key(child.origin)) ?? []));
    }
    if (spec.algorithm === false) {
      zones.push({ origin, records });
      continue;
    }
    const zoneKey = testKey(origin, spec.algorithm, spec.variant !== undefined ? { variant: spec.variant } : {});
    keys.set(nameToText(origin), zoneKey);
    dsOf.set(key(origin), spec.ds ? spec.ds(zoneKey) : [makeDs(zoneKey)]);
    const window = spec.window ?? { inception: now - 3600, expiration: now + 7 * 86_400 };
    const zone = signZone({
      origin: nameToText(origin),
      records: [...records, ...(spec.extraKeys ?? [])],
      keys: [zoneKey],
      ...(spec.denial ? { denial: spec.denial } : {}),
      ...window,
    });
    signed.set(nameToText(origin), zone);
    const tampered = (record: Rr) => (spec.tamper ?? []).some((t) => t.type === record.type && sameName(nameFromText(t.owner), record.owner));
    const flip = (rdata: Uint8Array) => Buffer.concat([rdata.subarray(0, rdata.length - 1), Buffer.from([rdata[rdata.length - 1]! ^ 1])]);
    zones.push({ origin, records: zone.records.map((record) => (tampered(record) ? { ...record, rdata: flip(record.rdata) } : record)) });
  }
  const rootKey = keys.get('.');
  if (!rootKey) throw new Error('signTree: the root zone must be signed');
  return { zones, anchor: dsLine(rootKey), keys, signed };
}

/** A key's DS (SHA-256) as a trust anchor file line: `example. IN DS 12345 13 2 ABCD...`. */
export function dsLine(key: TestKey): string {
  const ds = makeDs(key);
  const digest = Buffer.from(ds.rdata.subarray(4)).toString('hex').toUpperCase();
  return `${nameToText(key.owner)} IN DS ${(ds.rdata[0]! << 8) | ds.rdata[1]!} ${ds.rdata[2]} ${ds.rdata[3]} ${digest}`;
}
