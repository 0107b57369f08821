// The bench's sink, run as a separate process by bench.mjs (child_process.fork): the test kit's
// SMTP peers (test/helpers/smtp-peer.ts) in fast mode on 127.0.0.x sharing one port, with
// STARTTLS, that accept every sender and recipient, discard the data, and count TCP
// connections (when and where each arrived), STARTTLS handshakes and messages; plus the kit's
// DNS server (test/helpers/dns-server.ts) serving the bench zone (zone.mjs), whose queries are
// counted. It is driven over IPC: { id, cmd: 'start' | 'reset' | 'stats' | 'close', ... } ->
// { id, ok, result | error }. It exits after 'close', or when the bench goes away.
import { startDnsServer } from '../test/helpers/dns-server.ts';
import { newCounts, resetCounts, startPeers } from '../test/helpers/smtp-peer.ts';
import { benchZone, isSlow, TTL } from './zone.mjs';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/**
 * smtp-server waits 100 ms before its greeting to catch clients that talk too soon. On a fresh
 * connection per message that wait is most of the wall time and leaves the client idle, and an
 * idle CPU measures the same work as more CPU time (clock and power states), so the side-by-side
 * rows (compare.mjs, `greetAtOnce`) have the sink greet at once. Everything else of smtp-server's
 * connection start (its connection limit, the greeting itself) is unchanged.
 */
function greetAtOnce() {
  SMTPConnection.prototype.init = function init() {
    this._setListeners(() => {
      if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
        return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
      }
      this.connectionReady();
    });
  };
}

let peers = [];
let dns;
const totals = newCounts();
let cpuMark = process.cpuUsage();

async function start({ hosts, cert, key, tlsaHex, slowDelay, greetAtOnce: atOnce = false }) {
  if (atOnce) greetAtOnce();
  peers = await startPeers(
    hosts.map((host) => ({
      host,
      name: `sink-${host}`,
      behaviour: 'starttls',
      cert,
      key,
      fast: true,
      totals,
      socketTimeout: 60_000,
      closeTimeout: 200,
    })),
  );
  dns = await startDnsServer({
    zone: benchZone(tlsaHex),
    ad: true,
    ttl: TTL,
    soa: { ttl: TTL, minimum: TTL },
    delay: (name) => (isSlow(name) ? slowDelay : 0),
  });
  return { port: peers[0].port, dns: dns.server, pid: process.pid };
}

/** The DNS queries since the last reset: how many, over TCP, distinct name+type, repeated, by type. */
function dnsStats() {
  const counts = new Map();
  for (const q of dns.queries) counts.set(`${q.type} ${q.name}`, (counts.get(`${q.type} ${q.name}`) ?? 0) + 1);
  const byType = {};
  let repeated = 0;
  for (const [key, n] of counts) {
    const type = key.slice(0, key.indexOf(' '));
    byType[type] = (byType[type] ?? 0) + n;
    if (n > 1) repeated += n - 1;
  }
  const tcpQueries = dns.queries.filter((q) => q.transport === 'tcp').length;
  return { queries: dns.queries.length, tcpQueries, distinct: counts.size, repeated, byType };
}

async function close() {
  await Promise.all([...peers.map((p) => p.close()), dns ? dns.close() : Promise.resolve()]);
  peers = [];
  dns = undefined;
}

const commands = {
  start,
  reset() {
    resetCounts(totals);
    for (const peer of peers) resetCounts(peer.counts);
    if (dns) dns.queries.length = 0;
    cpuMark = process.cpuUsage();
    return {};
  },
  stats() {
    const cpu = process.cpuUsage(cpuMark);
    const byAddress = {};
    const firstConnection = {};
    for (const peer of peers) {
      if (peer.counts.accepted > 0) byAddress[peer.host] = peer.counts.accepted;
      if (peer.counts.firstAcceptedAt !== undefined) firstConnection[peer.host] = String(peer.counts.firstAcceptedAt);
    }
    const { accepted, secured, open, peakOpen, rcpts, messages, bytes } = totals;
    const counters = { connections: accepted, byAddress, firstConnection, secured, messages, bytes, open, peakOpen, rcpts };
    return { ...counters, dns: dns && dnsStats(), cpuMs: (cpu.user + cpu.system) / 1000 };
  },
  close,
};

process.on('message', async (message) => {
  const { id, cmd, ...args } = message;
  try {
    const result = await commands[cmd](args);
    process.send({ id, ok: true, result });
    if (cmd === 'close') process.disconnect();
  } catch (error) {
    process.send({ id, ok: false, error: error?.stack ?? String(error) });
  }
});

// The bench went away (finished or died): close everything and end.
process.on('disconnect', () => {
  close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
