// The bench's sink, run as a separate process by bench.mjs (child_process.fork): smtp-server
// instances on 127.0.0.x sharing one port, with STARTTLS, that accept every sender and
// recipient, discard the data, and count TCP connections (when and where each arrived),
// STARTTLS handshakes and messages; plus the bench's DNS server (dns-server.mjs), counting
// queries. It is driven over IPC: { id, cmd: 'start' | 'reset' | 'stats' | 'close', ... } ->
// { id, ok, result | error }. It exits after 'close', or when the bench goes away.
import { SMTPServer } from 'smtp-server';
import { startDnsServer } from './dns-server.mjs';

let servers = [];
let dns;
let counters;
let cpuMark = process.cpuUsage();

function freshCounters() {
  return { connections: 0, byAddress: {}, firstConnection: {}, secured: 0, messages: 0, bytes: 0, open: 0, peakOpen: 0, rcpts: 0 };
}
counters = freshCounters();
let open = 0;

function startServer({ host, port, cert, key }) {
  const server = new SMTPServer({
    name: `sink-${host}`,
    cert,
    key,
    hideSTARTTLS: false,
    authOptional: true,
    disabledCommands: ['AUTH'],
    disableReverseLookup: true, // no DNS lookup of the client
    logger: false,
    socketTimeout: 60_000,
    closeTimeout: 200,
    onSecure(_socket, _session, callback) {
      counters.secured++;
      callback();
    },
    onClose() {
      open--; // once per connection (smtp-server guards it): a STARTTLS socket's own 'close' is not seen
      counters.open = open;
    },
    onRcptTo(_address, _session, callback) {
      counters.rcpts++;
      callback();
    },
    onData(stream, _session, callback) {
      let bytes = 0;
      stream.on('data', (chunk) => {
        bytes += chunk.length;
      });
      stream.on('end', () => {
        counters.messages++;
        counters.bytes += bytes;
        callback(null, 'Ok: discarded');
      });
    },
  });
  server.on('error', () => {});
  server.server.on('connection', () => {
    const at = process.hrtime.bigint();
    counters.connections++;
    counters.byAddress[host] = (counters.byAddress[host] ?? 0) + 1;
    if (counters.firstConnection[host] === undefined) counters.firstConnection[host] = String(at);
    open++;
    counters.open = open;
    if (open > counters.peakOpen) counters.peakOpen = open;
  });
  return new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => {
      server.server.removeListener('error', reject);
      resolve(server);
    });
  });
}

async function start({ hosts, cert, key, tlsaHex, slowDelay }) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const started = [];
    try {
      for (const host of hosts) started.push(await startServer({ host, port, cert, key }));
      servers = started;
      dns = await startDnsServer({ tlsaHex, slowDelay });
      return { port, dns: dns.server, pid: process.pid };
    } catch (error) {
      await Promise.all(started.map((s) => new Promise((resolve) => s.close(resolve))));
      if (error.code !== 'EADDRINUSE') throw error;
    }
  }
  throw new Error('sink: no free port');
}

async function close() {
  await Promise.all([...servers.map((s) => new Promise((resolve) => s.close(resolve))), dns ? dns.close() : Promise.resolve()]);
  servers = [];
  dns = undefined;
}

const commands = {
  start,
  reset() {
    counters = freshCounters();
    counters.open = open;
    counters.peakOpen = open;
    dns?.reset();
    cpuMark = process.cpuUsage();
    return {};
  },
  stats() {
    const cpu = process.cpuUsage(cpuMark);
    return { ...counters, dns: dns?.stats(), cpuMs: (cpu.user + cpu.system) / 1000 };
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
