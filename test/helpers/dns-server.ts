/**
 * A small recursive-resolver look-alike for tests: serves a fixed zone over UDP and TCP on one
 * port, follows CNAMEs inside the zone as a recursive resolver would, answers NXDOMAIN for
 * unknown names and NODATA (NOERROR, empty answer, SOA in authority) for known names without
 * the type, and can set AD, fail, delay, truncate, drop, or send a malformed or crafted reply
 * on demand.
 *
 * Messages are encoded with dns2's Packet. TLSA has no dns2 codec: its RDATA is built here
 * and handed to dns2 as the raw `data` that dns2 writes verbatim for types it does not know.
 *
 * Part of the test kit shared by test/, demo/ and bench/: the demo and the bench import this
 * file from plain `node`, which strips its types (Node >= 22.18), so it holds only erasable
 * TypeScript and imports no relative module.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;
type Message = InstanceType<typeof Packet>;
type Resource = InstanceType<typeof Packet.Resource>;

export type ZoneRecord =
  | { name: string; type: 'A' | 'AAAA'; address: string; ttl?: number }
  | { name: string; type: 'MX'; exchange: string; preference: number; ttl?: number }
  | { name: string; type: 'CNAME'; target: string; ttl?: number }
  | { name: string; type: 'TLSA'; usage: number; selector: number; matchingType: number; data: Buffer | string; ttl?: number }
  | { name: string; type: 'TXT'; text: string | string[]; ttl?: number };

type WithoutName<T> = T extends unknown ? Omit<T, 'name'> : never;
export type ZoneData = WithoutName<ZoneRecord>;
/**
 * Records as a list, or keyed by owner name; or a function giving a name's records (lower
 * case, no final dot), undefined for a name that does not exist, for zones made of rules. TLSA
 * `data` may be a Buffer or hex.
 */
export type Zone = ZoneRecord[] | Record<string, ZoneData[]> | ((name: string) => ZoneData[] | undefined);

export type Transport = 'udp' | 'tcp';
export interface SeenQuery {
  name: string;
  /** 'MX', 'TLSA', ... or 'TYPE<n>'. */
  type: string;
  transport: Transport;
  id: number;
  rd: boolean;
  cd: boolean;
  /** The EDNS DO bit; false without OPT. */
  do: boolean;
  /** The EDNS UDP payload size; undefined without OPT. */
  udpPayloadSize?: number | undefined;
}

/** true for every query, a list of names, or a predicate. */
export type Match = boolean | string[] | ((name: string, type: string, transport: Transport) => boolean);

export interface DnsServerOptions {
  /** Default 127.0.0.1; any 127.0.0.x works on Linux, or another local address. */
  host?: string;
  /** Default 0: a free port, the same for UDP and TCP. */
  port?: number;
  zone?: Zone;
  /** Set the AD bit on NOERROR / NXDOMAIN replies. */
  ad?: boolean | ((name: string, type: string) => boolean);
  servfail?: Match;
  /** Any RCODE for a query (takes precedence over the zone); undefined to answer normally. */
  rcode?: (name: string, type: string) => number | undefined;
  /** RFC 8914 Extended DNS Error added to SERVFAIL / rcode replies. */
  ede?: { infoCode: number; extraText?: string };
  /** Milliseconds to wait before replying. */
  delay?: number | ((name: string, type: string, transport: Transport) => number);
  /** Reply over UDP with TC=1 and no records, so the client retries over TCP. */
  truncate?: Match;
  /** Do not reply. */
  drop?: Match;
  /**
   * Reply with the query's ID and question but an answer record whose RDLENGTH runs past the
   * end of the message: a reply to the query that cannot be decoded.
   */
  malformed?: Match;
  /**
   * Send these octets instead of the reply (over UDP only when the reply is not truncated);
   * undefined to answer normally. For crafted replies the zone cannot express.
   */
  reply?: (query: { id: number; name: string; type: string; transport: Transport; question: Buffer }) => Buffer | undefined;
  /** Send a reply with a wrong ID: before the right one ('first') or instead of it ('only'). UDP only. */
  wrongId?: 'first' | 'only';
  /** Default TTL of zone records. Default 300. */
  ttl?: number;
  /** The SOA put in negative answers: its TTL and MINIMUM (RFC 2308). Default 60 and 60. */
  soa?: { ttl?: number; minimum?: number };
}

export interface TestDnsServer {
  address: string;
  port: number;
  /** `address:port` (or `[address]:port`), ready for the resolver's `servers`. */
  server: string;
  queries: SeenQuery[];
  close(): Promise<void>;
}

const TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 };
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));
const typeName = (code: number) => TYPE_NAMES[code] ?? `TYPE${code}`;
const norm = (name: string) => name.toLowerCase().replace(/\.$/, '');

function matches(match: Match | undefined, name: string, type: string, transport: Transport): boolean {
  if (match === undefined || match === false) return false;
  if (match === true) return true;
  if (Array.isArray(match)) return match.map(norm).includes(name);
  return match(name, type, transport);
}

/** The question section of a query as sent: the name's labels (uncompressed), TYPE and CLASS. */
function questionOf(query: Buffer): Buffer {
  let pos = 12;
  while (pos < query.length && query[pos]! !== 0) pos += 1 + query[pos]!;
  return query.subarray(12, Math.min(pos + 5, query.length));
}

/** A reply with the query's ID and question, and one A record claiming 100 octets of RDATA but carrying 4. */
function malformedReply(query: Buffer): Buffer {
  const header = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  query.copy(header, 0, 0, 2);
  const record = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 100, 192, 0, 2, 1]);
  return Buffer.concat([header, questionOf(query), record]);
}

function zoneRecords(zone: ZoneRecord[] | Record<string, ZoneData[]> | undefined): ZoneRecord[] {
  if (!zone) return [];
  if (Array.isArray(zone)) return zone;
  return Object.entries(zone).flatMap(([name, records]) => records.map((record) => ({ ...record, name }) as ZoneRecord));
}

function toResource(record: ZoneRecord, defaultTtl: number): Resource {
  const base = { name: norm(record.name), class: 1, ttl: record.ttl ?? defaultTtl };
  switch (record.type) {
    case 'A':
      return new Packet.Resource({ ...base, type: 1, address: record.address });
    case 'AAAA':
      return new Packet.Resource({ ...base, type: 28, address: record.address });
    case 'MX':
      return new Packet.Resource({ ...base, type: 15, exchange: record.exchange, priority: record.preference });
    case 'CNAME':
      return new Packet.Resource({ ...base, type: 5, domain: record.target });
    case 'TXT':
      return new Packet.Resource({ ...base, type: 16, data: Array.isArray(record.text) ? record.text : [record.text] });
    case 'TLSA': {
      const data = typeof record.data === 'string' ? Buffer.from(record.data, 'hex') : record.data;
      const rdata = Buffer.concat([Buffer.from([record.usage, record.selector, record.matchingType]), data]);
      return new Packet.Resource({ ...base, type: 52, data: rdata });
    }
  }
}

/** RFC 1035 §4.2.1 / RFC 6891 §6.2.3: 512 octets without EDNS, else the advertised size (at least 512). */
function udpLimit(request: Message): number {
  const opt = request.additionals.find((rr) => rr.type === 41);
  return opt ? Math.max(512, opt.class) : 512;
}

export async function startDnsServer(options: DnsServerOptions = {}): Promise<TestDnsServer> {
  const host = options.host ?? '127.0.0.1';
  const defaultTtl = options.ttl ?? 300;
  const byName = new Map<string, ZoneRecord[]>();
  const rules = typeof options.zone === 'function' ? options.zone : undefined;
  for (const record of zoneRecords(typeof options.zone === 'function' ? undefined : options.zone)) {
    const name = norm(record.name);
    byName.set(name, [...(byName.get(name) ?? []), record]);
  }
  const recordsAt = (name: string): ZoneRecord[] =>
    rules ? (rules(name) ?? []).map((record) => ({ ...record, name }) as ZoneRecord) : (byName.get(name) ?? []);
  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  };
  const exists = (name: string) => (rules ? rules(name) !== undefined : byName.has(name) || [...byName.keys()].some((known) => known.endsWith(`.${name}`)));
  const queries: SeenQuery[] = [];

  function soaFor(name: string): Resource {
    const apex = name.split('.').slice(-2).join('.');
    return new Packet.Resource({
      name: apex,
      type: 6,
      class: 1,
      ttl: options.soa?.ttl ?? 60,
      primary: `ns.${apex}`,
      admin: `hostmaster.${apex}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expiration: 86400,
      minimum: options.soa?.minimum ?? 60,
    });
  }

  function answer(request: Message, transport: Transport): Message {
    const question = request.questions[0]!;
    const qname = norm(question.name);
    const qtype = typeName(question.type);
    const response = new Packet();
    response.header = new Packet.Header({ id: request.header.id, qr: 1, opcode: 0, rd: request.header.rd, ra: 1 });
    response.questions = request.questions.slice();
    const opt = request.additionals.find((rr) => rr.type === 41);
    const ednsData: object[] = [];
    const setRcode = (rcode: number) => {
      response.header.rcode = rcode;
      if (options.ede) ednsData.push(Packet.Resource.EDNS.EDE(options.ede.infoCode, options.ede.extraText ?? ''));
    };
    const forced = options.rcode?.(qname, qtype);
    if (forced !== undefined) {
      setRcode(forced);
    } else if (matches(options.servfail, qname, qtype, transport)) {
      setRcode(2);
    } else {
      let current = qname;
      let resolved = false;
      for (let hop = 0; hop < 10 && !resolved; hop++) {
        const records = recordsAt(current);
        const found = records.filter((record) => record.type === qtype);
        if (found.length > 0) {
          response.answers.push(...found.map((record) => toResource(record, defaultTtl)));
          resolved = true;
          break;
        }
        const alias = qtype === 'CNAME' ? undefined : records.find((record) => record.type === 'CNAME');
        if (!alias || alias.type !== 'CNAME') break;
        response.answers.push(toResource(alias, defaultTtl));
        current = norm(alias.target);
      }
      if (!resolved) {
        response.header.rcode = exists(current) ? 0 : 3;
        response.authorities.push(soaFor(current));
      }
      const ad = typeof options.ad === 'function' ? options.ad(qname, qtype) : (options.ad ?? false);
      (response.header as unknown as { ad: number }).ad = ad ? 1 : 0;
    }
    if (opt) {
      const requestDo = (opt.ttl & 0x8000) !== 0;
      response.additionals.push(Packet.Resource.EDNS(ednsData, { doFlag: requestDo, udpPayloadSize: 1232 }));
    }
    return response;
  }

  function record(request: Message, transport: Transport): { name: string; type: string } {
    const question = request.questions[0];
    const name = question ? norm(question.name) : '';
    const type = question ? typeName(question.type) : '';
    const opt = request.additionals.find((rr) => rr.type === 41);
    const raw = request.header as unknown as { rd: number; cd: number };
    queries.push({
      name,
      type,
      transport,
      id: request.header.id,
      rd: raw.rd === 1,
      cd: raw.cd === 1,
      do: opt ? (opt.ttl & 0x8000) !== 0 : false,
      udpPayloadSize: opt ? opt.class : undefined,
    });
    return { name, type };
  }

  function crafted(query: Buffer, request: Message, name: string, type: string, transport: Transport): Buffer | undefined {
    if (matches(options.malformed, name, type, transport)) return malformedReply(query);
    return options.reply?.({ id: request.header.id, name, type, transport, question: Buffer.from(questionOf(query)) });
  }

  function delayFor(name: string, type: string, transport: Transport): number {
    const delay = options.delay;
    return typeof delay === 'function' ? delay(name, type, transport) : (delay ?? 0);
  }

  function handleUdp(socket: UdpSocket, data: Buffer, peer: { address: string; port: number }): void {
    let request: Message;
    try {
      request = Packet.parse(data);
    } catch {
      return;
    }
    const { name, type } = record(request, 'udp');
    if (matches(options.drop, name, type, 'udp')) return;
    const send = (buffer: Buffer) => {
      if (!closed) socket.send(buffer, peer.port, peer.address, () => {});
    };
    later(delayFor(name, type, 'udp'), () => {
      const truncating = matches(options.truncate, name, type, 'udp');
      const custom = truncating ? undefined : crafted(data, request, name, type, 'udp');
      if (custom) {
        send(custom);
        return;
      }
      let response = answer(request, 'udp');
      let wire = response.toBuffer();
      if (truncating || wire.length > udpLimit(request)) {
        const truncated = new Packet();
        truncated.header = new Packet.Header({ ...response.header, tc: 1 });
        truncated.questions = response.questions;
        truncated.additionals = response.additionals;
        response = truncated;
        wire = response.toBuffer();
      }
      if (options.wrongId) {
        const spoof = Buffer.from(wire);
        spoof.writeUInt16BE((request.header.id + 1) & 0xffff, 0);
        send(spoof);
        if (options.wrongId === 'only') return;
        later(20, () => send(wire));
        return;
      }
      send(wire);
    });
  }

  function handleTcp(connection: Socket): void {
    let buffered = Buffer.alloc(0);
    connection.on('error', () => {});
    connection.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const data = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        let request: Message;
        try {
          request = Packet.parse(data);
        } catch {
          connection.destroy();
          return;
        }
        const { name, type } = record(request, 'tcp');
        if (matches(options.drop, name, type, 'tcp')) continue;
        later(delayFor(name, type, 'tcp'), () => {
          const wire = crafted(data, request, name, type, 'tcp') ?? answer(request, 'tcp').toBuffer();
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(wire.length);
          if (!connection.destroyed) connection.write(Buffer.concat([prefix, wire]));
        });
      }
    });
  }

  const family = host.includes(':') ? 'udp6' : 'udp4';
  for (let attempt = 0; ; attempt++) {
    const udp = createSocket(family);
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port: options.port ?? 0, address: host }, () => {
        udp.removeListener('error', reject);
        resolve(udp.address().port);
      });
    });
    const tcp: TcpServer = createTcpServer(handleTcp);
    const listening = await new Promise<boolean>((resolve, reject) => {
      tcp.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE' && !options.port && attempt < 20) resolve(false);
        else reject(error);
      });
      tcp.listen(port, host, () => resolve(true));
    });
    if (!listening) {
      udp.close();
      continue;
    }
    udp.on('message', (data, peer) => handleUdp(udp, data, peer));
    const connections = new Set<Socket>();
    tcp.on('connection', (connection) => {
      connections.add(connection);
      connection.on('close', () => connections.delete(connection));
    });
    return {
      address: host,
      port,
      server: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
      queries,
      close: async () => {
        if (closed) return;
        closed = true;
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        for (const connection of connections) connection.destroy();
        await Promise.all([new Promise<void>((resolve) => udp.close(() => resolve())), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
      },
    };
  }
}

/**
 * A hostile reply of up to 64 KB: the query's ID and question, a chain of `links` compression
 * pointers each pointing at the one before (inside the RDATA of a record of type 65280, so it
 * is never read as a name itself), then as many A records as fit, each owned by a pointer to
 * the end of the chain. Every pointer points backwards, so a decoder that only detects loops
 * walks the whole chain once per record: thousands of records times thousands of pointers.
 */
export function pointerChainReply(id: number, question: Buffer, links = 8000): Buffer {
  const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
  const ptr = (offset: number) => Buffer.from([0xc0 | (offset >> 8), offset & 0xff]);
  const record = (owner: Buffer, type: number, rdata: Buffer) =>
    Buffer.concat([owner, u16(type), u16(1), Buffer.from([0, 0, 0, 60]), u16(rdata.length), rdata]);
  const head = Buffer.concat([u16(id), Buffer.from([0x81, 0x80]), u16(1), u16(0), u16(0), u16(0), question]);
  // The chain's first octet: after the header and question, the owner pointer (2), TYPE,
  // CLASS (4), TTL (4) and RDLENGTH (2) of the record that carries it.
  const start = head.length + 2 + 4 + 4 + 2;
  const chain = [Buffer.from([0])];
  for (let i = 0; i < links; i++) chain.push(ptr(i === 0 ? start : start + 1 + 2 * (i - 1)));
  const last = start + 1 + 2 * (links - 1);
  const records = [record(ptr(12), 65280, Buffer.concat(chain))];
  const a = record(ptr(last), 1, Buffer.from([192, 0, 2, 1]));
  let size = head.length + records[0]!.length;
  while (size + a.length <= 65535) {
    records.push(a);
    size += a.length;
  }
  const message = Buffer.concat([head, ...records]);
  message.writeUInt16BE(records.length, 6);
  return message;
}
