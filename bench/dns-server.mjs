// The bench's DNS: a recursive-resolver look-alike on loopback (UDP and TCP on one port, dns2's
// Packet for the wire format), answering a zone made of rules rather than a table, with the AD
// bit set on every answer (the transport's resolver trusts AD from loopback by default, so
// every answer is DNSSEC-"secure" and DANE applies). It counts every query it sees.
//
// The zone (TTL 300 s for everything, negative answers included, so nothing expires in a run):
//   one.bench.test            MX 10 mx.one.bench.test       mx.one.bench.test  A 127.0.0.2
//   d<i>.bench.test           MX 10 mx<i % 5>.bench.test    mx<k>.bench.test   A 127.0.0.<10 + k>
//   big<j>.bench.test         MX 10 mx<j % 5>.bench.test
//   new<n>.slow.bench.test    MX 10 mx.new<n>.slow.bench.test -> A 127.0.0.3
//   _<port>._tcp.<any MX host above>  TLSA 3 1 1 <the sink certificate's SPKI SHA-256>
// AAAA of a host: NODATA; anything else: NXDOMAIN; both with an SOA, so they are cached.
// Every name under slow.bench.test is answered after `slowDelay` ms (a new, far destination).
import { createSocket } from 'node:dgram';
import { createServer as createTcpServer } from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;
const TYPE = { A: 1, SOA: 6, MX: 15, AAAA: 28, TLSA: 52 };
const TYPE_NAMES = { 1: 'A', 5: 'CNAME', 6: 'SOA', 15: 'MX', 16: 'TXT', 28: 'AAAA', 52: 'TLSA' };
const TTL = 300;
export const MX_COUNT = 5;
export const ZONE = 'bench.test';
export const ONE_ADDRESS = '127.0.0.2';
export const SLOW_ADDRESS = '127.0.0.3';
export const mxAddress = (k) => `127.0.0.${10 + k}`;
export const MX_ADDRESSES = Array.from({ length: MX_COUNT }, (_, k) => mxAddress(k));

const norm = (name) => String(name).toLowerCase().replace(/\.$/, '');

/** The address of an MX host name of the zone, or undefined. */
function hostAddress(name) {
  if (name === `mx.one.${ZONE}`) return ONE_ADDRESS;
  let m = new RegExp(`^mx(\\d+)\\.${ZONE.replace('.', '\\.')}$`).exec(name);
  if (m && Number(m[1]) < MX_COUNT) return mxAddress(Number(m[1]));
  m = new RegExp(`^mx\\.new\\d+\\.slow\\.${ZONE.replace('.', '\\.')}$`).exec(name);
  if (m) return SLOW_ADDRESS;
  return undefined;
}

/** The MX host of a mail domain of the zone, or undefined. */
function mxOf(name) {
  if (name === `one.${ZONE}`) return `mx.one.${ZONE}`;
  let m = new RegExp(`^(?:d|big)(\\d+)\\.${ZONE.replace('.', '\\.')}$`).exec(name);
  if (m) return `mx${Number(m[1]) % MX_COUNT}.${ZONE}`;
  m = new RegExp(`^new\\d+\\.slow\\.${ZONE.replace('.', '\\.')}$`).exec(name);
  if (m) return `mx.${name}`;
  return undefined;
}

/**
 * @param {{ host?: string, tlsaHex: string, slowDelay?: number }} options
 */
export async function startDnsServer({ host = '127.0.0.1', tlsaHex, slowDelay = 50 }) {
  const tlsaData = Buffer.concat([Buffer.from([3, 1, 1]), Buffer.from(tlsaHex, 'hex')]);
  let closed = false;
  const timers = new Set();
  let counts = new Map(); // "TYPE name" -> queries seen
  let total = 0;
  let tcpQueries = 0;

  function answer(request) {
    const question = request.questions[0];
    const response = new Packet();
    response.header = new Packet.Header({ id: request.header.id, qr: 1, opcode: 0, rd: request.header.rd, ra: 1 });
    response.questions = request.questions.slice();
    if (!question) {
      response.header.rcode = 1; // FORMERR
      return response;
    }
    const qname = norm(question.name);
    const base = { name: qname, class: 1, ttl: TTL };
    let known = false;
    const mx = mxOf(qname);
    const address = hostAddress(qname);
    const tlsa = /^_\d+\._tcp\.(.+)$/.exec(qname);
    if (mx) {
      known = true;
      if (question.type === TYPE.MX) response.answers.push(new Packet.Resource({ ...base, type: TYPE.MX, exchange: mx, priority: 10 }));
    } else if (address) {
      known = true;
      if (question.type === TYPE.A) response.answers.push(new Packet.Resource({ ...base, type: TYPE.A, address }));
    } else if (tlsa && hostAddress(tlsa[1])) {
      known = true;
      if (question.type === TYPE.TLSA) response.answers.push(new Packet.Resource({ ...base, type: TYPE.TLSA, data: tlsaData }));
    }
    if (response.answers.length === 0) {
      response.header.rcode = known ? 0 : 3; // NODATA or NXDOMAIN
      response.authorities.push(
        new Packet.Resource({
          name: ZONE,
          type: TYPE.SOA,
          class: 1,
          ttl: TTL,
          primary: `ns.${ZONE}`,
          admin: `hostmaster.${ZONE}`,
          serial: 1,
          refresh: 3600,
          retry: 600,
          expiration: 86400,
          minimum: TTL,
        }),
      );
    }
    response.header.ad = 1;
    const opt = request.additionals.find((rr) => rr.type === 41);
    if (opt) response.additionals.push(Packet.Resource.EDNS([], { doFlag: (opt.ttl & 0x8000) !== 0, udpPayloadSize: 1232 }));
    return response;
  }

  /** Counts the query; returns the delay before answering it. */
  function seen(request, transport) {
    const question = request.questions[0];
    const name = question ? norm(question.name) : '';
    const type = question ? (TYPE_NAMES[question.type] ?? `TYPE${question.type}`) : '';
    const key = `${type} ${name}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;
    if (transport === 'tcp') tcpQueries++;
    return name.endsWith(`.slow.${ZONE}`) ? slowDelay : 0;
  }

  function later(ms, fn) {
    if (ms <= 0) return fn();
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  }

  const udp = createSocket('udp4');
  const port = await new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ port: 0, address: host }, () => {
      udp.removeListener('error', reject);
      resolve(udp.address().port);
    });
  });
  udp.on('error', () => {});
  udp.on('message', (data, peer) => {
    let request;
    try {
      request = Packet.parse(data);
    } catch {
      return;
    }
    later(seen(request, 'udp'), () => {
      if (!closed) udp.send(answer(request).toBuffer(), peer.port, peer.address, () => {});
    });
  });

  const connections = new Set();
  const tcp = createTcpServer((connection) => {
    connections.add(connection);
    connection.on('close', () => connections.delete(connection));
    connection.on('error', () => {});
    let buffered = Buffer.alloc(0);
    connection.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const data = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        let request;
        try {
          request = Packet.parse(data);
        } catch {
          connection.destroy();
          return;
        }
        later(seen(request, 'tcp'), () => {
          const wire = answer(request).toBuffer();
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(wire.length);
          if (!connection.destroyed) connection.write(Buffer.concat([prefix, wire]));
        });
      }
    });
  });
  await new Promise((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, host, () => {
      tcp.removeListener('error', reject);
      resolve();
    });
  });
  tcp.on('error', () => {});

  return {
    server: `${host}:${port}`,
    /** What was asked since the last reset. */
    stats() {
      const byType = {};
      let repeated = 0;
      for (const [key, n] of counts) {
        const type = key.slice(0, key.indexOf(' '));
        byType[type] = (byType[type] ?? 0) + n;
        if (n > 1) repeated += n - 1;
      }
      return { queries: total, tcpQueries, distinct: counts.size, repeated, byType };
    },
    reset() {
      counts = new Map();
      total = 0;
      tcpQueries = 0;
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      for (const connection of connections) connection.destroy();
      await Promise.all([new Promise((resolve) => udp.close(() => resolve())), new Promise((resolve) => tcp.close(() => resolve()))]);
    },
  };
}
