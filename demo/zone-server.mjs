// A tiny DNS server for the demo: dns2's server (UDP and TCP on one port) answering from a
// fixed zone, the way a recursive resolver would answer for these names. Known name with the
// type -> the records; known name without it -> NODATA (SOA in authority); anything else ->
// NXDOMAIN. No AD bit: every answer is "insecure", so DANE never applies in the demo.
import dns2 from 'dns2';

const { Packet } = dns2;

const TYPES = { A: Packet.TYPE.A, AAAA: Packet.TYPE.AAAA, MX: Packet.TYPE.MX, CNAME: Packet.TYPE.CNAME, SOA: Packet.TYPE.SOA };

const norm = (name) => String(name).toLowerCase().replace(/\.$/, '');

/**
 * @param {{ host: string, records: Array<{ name: string, type: 'A' | 'MX', address?: string, exchange?: string, preference?: number }> }} options
 * @returns {Promise<{ server: string, host: string, port: number, close(): Promise<void> }>}
 */
export async function startZoneServer({ host, records }) {
  const byName = new Map();
  for (const record of records) {
    const name = norm(record.name);
    byName.set(name, [...(byName.get(name) ?? []), record]);
  }
  const exists = (name) => [...byName.keys()].some((known) => known === name || known.endsWith(`.${name}`));

  function soa(name) {
    const apex = name.split('.').slice(-2).join('.');
    return {
      name: apex,
      type: TYPES.SOA,
      class: Packet.CLASS.IN,
      ttl: 60,
      primary: `ns.${apex}`,
      admin: `hostmaster.${apex}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expiration: 86400,
      minimum: 60,
    };
  }

  function handle(request, send) {
    const response = Packet.createResponseFromRequest(request);
    response.header.ra = 1;
    const question = request.questions[0];
    if (!question) {
      response.header.rcode = Packet.RCODE.FORMERR ?? 1;
      send(response);
      return;
    }
    const qname = norm(question.name);
    const found = (byName.get(qname) ?? []).filter((record) => TYPES[record.type] === question.type);
    for (const record of found) {
      const base = { name: qname, type: question.type, class: Packet.CLASS.IN, ttl: 300 };
      response.answers.push(
        record.type === 'MX' ? { ...base, exchange: record.exchange, priority: record.preference ?? 10 } : { ...base, address: record.address },
      );
    }
    if (found.length === 0) {
      response.header.rcode = exists(qname) ? 0 : 3; // NODATA or NXDOMAIN
      response.authorities.push(soa(qname));
    }
    send(response);
  }

  // UDP and TCP must share a port: pick one, and pick again if either half is taken.
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const server = dns2.createServer({ udp: true, tcp: true, handle });
    server.on('requestError', () => {});
    const connections = new Set();
    server.servers.tcp.on('connection', (socket) => {
      connections.add(socket);
      socket.on('close', () => connections.delete(socket));
    });
    const failed = new Promise((resolve) => server.once('error', (error) => resolve(error)));
    const outcome = await Promise.race([server.listen({ udp: { port, address: host }, tcp: { port, address: host } }).then(() => null), failed]);
    if (outcome === null) {
      server.on('error', () => {});
      return {
        server: `${host}:${port}`,
        host,
        port,
        close: async () => {
          for (const socket of connections) socket.destroy();
          await server.close();
        },
      };
    }
    // One half may have bound before the other failed: close what is open, then retry.
    for (const half of Object.values(server.servers)) {
      try {
        half.close();
      } catch {
        // not listening
      }
    }
    if (outcome.code !== 'EADDRINUSE') throw outcome;
  }
  throw new Error('demo DNS server: no free port');
}
