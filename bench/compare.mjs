// nodemailer-tls-policy against Nodemailer's own SMTP transport, side by side in one run (issue 13):
// `npm run bench` runs this first, then bench.mjs. A report run by hand, never a test.
//
// One sink process (bench/sink.mjs: the test kit's smtp-server peers with STARTTLS, discarding
// data, greeting at once instead of after smtp-server's 100 ms early-talker wait) on 127.0.0.x; 10 KB messages; each row runs its two sides in interleaved rounds
// (BENCH_ROUNDS, default 21) after a warm-up, and reports per side the median messages/s and client
// CPU per message (this process's user + system CPU over the run), and the ratio this transport /
// Nodemailer per round: median, min-max. The A/A row runs Nodemailer against itself: the noise floor.
//
// Rows:
//   A/A            Nodemailer pool (4 connections) vs the same
//   reuse-4 X      4 sessions reused, level X (may, encrypt, fingerprint), 32 sendMail in flight;
//                  Nodemailer `pool: true, maxConnections: 4` (requireTLS at encrypt/fingerprint)
//   reuse-default  this transport's default reuse (up to 20 sessions) vs Nodemailer's pool of 4
//   fresh          a new connection per message, 1 in flight, encrypt, TLS session cache off;
//                  Nodemailer without pool
//   fresh+resume   the same with TLS session resumption (the default)
//   floor          not this transport: a bare SMTP client (bench/bare-client.mjs: no policy, no
//                  certificate check, no audit) with TLS resumption vs Nodemailer without pool,
//                  a new connection per message: the least CPU any client on Node's net and tls
//                  pays for a fresh delivery, the bound under the fresh+resume row's ratio
//   latency        a TCP proxy per destination delays each direction 12.5 ms (every round trip
//                  25 ms): 200 messages to 20 destinations, 8 in flight; this transport (MX
//                  delivery, one transport) vs Nodemailer (a transport per destination, no pool):
//                  wall time and round trips per message (counted at the proxy: a connection and
//                  its greeting is one, then client bytes followed by server bytes one each), plus the round trips of one delivery
//                  on a fresh connection, and with resumption.
//
// Environment: BENCH_SCALE (default 1: 1,000 messages per side and round for the reuse rows, 200
// for fresh), BENCH_ROUNDS (default 21), BENCH_ROWS (row names to run, comma-separated
// beginnings, e.g. `reuse-4,fresh`; default all; `latency` names the latency row).
import { createHash, X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import os from 'node:os';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, VERSION } from '../dist/esm/index.js';
import { startDnsServer } from '../test/helpers/dns-server.ts';
import { makeLeaf } from '../test/helpers/pki.ts';
import { bareTransport } from './bare-client.mjs';
import { forkSink, median, runLoad } from './load.mjs';

const envNumber = (name, fallback) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a number above 0`);
  return value;
};
const SCALE = envNumber('BENCH_SCALE', 1);
// Many short rounds rather than a few long ones: the machine's own drift is what makes rounds
// differ (the A/A row), and the median of many paired rounds holds still where five did not.
const ROUNDS = Math.max(3, Math.round(envNumber('BENCH_ROUNDS', 21)));
const N_REUSE = Math.max(100, Math.round(1000 * SCALE));
const N_FRESH = Math.max(40, Math.round(200 * SCALE));
const TEXT_10K =
  Array.from({ length: 128 }, (_, i) => `${String(i).padStart(3, '0')} ${'The quick brown fox jumps over the lazy dog. '.repeat(2).slice(0, 74)}`).join('\n') +
  '\n';
const SINK = '127.0.66.2';
const log = (line) => process.stderr.write(`[compare] ${line}\n`);

// --- the sink process ---------------------------------------------------------------------------
const { ask } = forkSink();

// --- load ---------------------------------------------------------------------------------------
/** `count` sendMail calls, `concurrency` in flight: messages/s and this process's CPU per message; throws when any failed. */
async function load(mailer, count, concurrency, to = () => 'user@bench.test') {
  const run = await runLoad(mailer, count, (i) => ({ from: 'bench@origin.test', to: to(i), subject: `bench ${i}`, text: TEXT_10K }), concurrency);
  if (run.failures) throw new Error(`${run.failures} of ${count} sends failed${run.firstError ? `: ${run.firstError.message}` : ''}`);
  return run;
}

const ROWS = (process.env.BENCH_ROWS ?? '')
  .split(',')
  .map((r) => r.trim())
  .filter(Boolean);
const wanted = (name) => ROWS.length === 0 || ROWS.some((r) => name.startsWith(r));

/** Two sides, interleaved rounds (the order alternates), each side a fresh transport per round after a warm-up. */
async function pair(name, sides, { count, concurrency }) {
  if (!wanted(name)) return undefined;
  const results = { ours: [], theirs: [] };
  for (const side of ['ours', 'theirs']) {
    const m = sides[side]();
    await load(m, Math.min(100, count), concurrency);
    m.close();
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ['theirs', 'ours'] : ['ours', 'theirs'];
    for (const side of order) {
      const m = sides[side]();
      results[side].push(await load(m, count, concurrency));
      m.close();
      await new Promise((resolve) => setTimeout(resolve, 200)); // let the sink close its sessions
    }
  }
  const ratio = (field) => results.ours.map((r, i) => r[field] / results.theirs[i][field]);
  const summary = (values) => ({ median: median(values), min: Math.min(...values), max: Math.max(...values) });
  const row = {
    name,
    ours: { msgsPerSec: median(results.ours.map((r) => r.msgsPerSec)), cpuMsPerMsg: median(results.ours.map((r) => r.cpuMsPerMsg)) },
    theirs: { msgsPerSec: median(results.theirs.map((r) => r.msgsPerSec)), cpuMsPerMsg: median(results.theirs.map((r) => r.cpuMsPerMsg)) },
    msgsPerSecRatio: summary(ratio('msgsPerSec')),
    cpuRatio: summary(ratio('cpuMsPerMsg')),
  };
  const f = (s) => `${s.median.toFixed(2)}x (${s.min.toFixed(2)}-${s.max.toFixed(2)})`;
  log(
    `${name.padEnd(22)} msgs/s ${row.ours.msgsPerSec.toFixed(0)} vs ${row.theirs.msgsPerSec.toFixed(0)}: ${f(row.msgsPerSecRatio)}; CPU/msg ${row.ours.cpuMsPerMsg.toFixed(2)} vs ${row.theirs.cpuMsPerMsg.toFixed(2)} ms: ${f(row.cpuRatio)}`,
  );
  return row;
}

// --- the delaying proxy -------------------------------------------------------------------------
/** A TCP proxy on `address` to the sink: each chunk is released `delayMs` after it arrived, in order, both ways; it counts round trips. */
async function startProxy(address, target, delayMs) {
  const stats = { roundTrips: 0, connections: 0 };
  const server = createServer((client) => {
    stats.connections++;
    stats.roundTrips++; // connect, then the greeting
    let last = 'server'; // the greeting comes first: the first client bytes after it start a round trip
    const upstream = connect(target.port, target.host);
    const pipe = (from, to, direction) => {
      let releaseAt = 0;
      from.on('data', (chunk) => {
        if (direction === 'server' && last === 'client') stats.roundTrips++;
        last = direction;
        releaseAt = Math.max(releaseAt, Date.now() + delayMs);
        setTimeout(() => to.destroyed || to.write(chunk), releaseAt - Date.now());
      });
      from.on('end', () => setTimeout(() => to.end(), Math.max(0, releaseAt - Date.now())));
      from.on('error', () => to.destroy());
    };
    pipe(client, upstream, 'client');
    pipe(upstream, client, 'server');
  });
  await new Promise((resolve) => server.listen(target.port, address, resolve));
  return { stats, close: () => new Promise((resolve) => server.close(resolve)) };
}

// --- main ---------------------------------------------------------------------------------------
const cert = await makeLeaf('self', { names: ['mx.bench.test'] });
const spkiSha256 = createHash('sha256')
  .update(new X509Certificate(cert.certPem).publicKey.export({ type: 'spki', format: 'der' }))
  .digest('hex');
const certSha256 = new X509Certificate(cert.certPem).fingerprint256;
const started = await ask('start', { hosts: [SINK], cert: cert.chainPem, key: cert.keyPem, tlsaHex: spkiSha256, slowDelay: 0, greetAtOnce: true });
const port = started.port;
const relay = `[${SINK}]:${port}`;

const nm = (opts) => () => nodemailer.createTransport({ host: SINK, port, tls: { rejectUnauthorized: false }, ...opts });
const ours = (opts) => () => nodemailer.createTransport(tlsPolicy({ relay, mtaSts: false, ...opts }));
const strict = (level) => (level === 'may' ? {} : { requireTLS: true });
const levelOptions = (level) => (level === 'fingerprint' ? { level, fingerprintCertMatch: certSha256 } : { level });

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.versions.node,
  openssl: process.versions.openssl,
  nodemailer: JSON.parse(await readFile(new URL('../node_modules/nodemailer/package.json', import.meta.url), 'utf8')).version,
  library: VERSION,
};
log(
  `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}, OpenSSL ${machine.openssl}; Nodemailer ${machine.nodemailer}`,
);
log(`rounds ${ROUNDS}; ${N_REUSE} messages per side and round (reuse rows), ${N_FRESH} (fresh rows)`);

// One unmeasured warm-up of both transports before the first row, so that no row (the A/A row
// above all) measures the JIT compiling the code it runs.
for (const make of [nm({ pool: true, maxConnections: 4 }), ours({ level: 'encrypt', connectionReuse: { maxConnectionsPerKey: 4 } })]) {
  const m = make();
  await load(m, N_REUSE, 32);
  m.close();
}

const rows = [];
rows.push(
  await pair(
    'A/A (Nodemailer pool)',
    { ours: nm({ pool: true, maxConnections: 4 }), theirs: nm({ pool: true, maxConnections: 4 }) },
    { count: N_REUSE, concurrency: 32 },
  ),
);
for (const level of ['may', 'encrypt', 'fingerprint']) {
  rows.push(
    await pair(
      `reuse-4 ${level}`,
      { ours: ours({ ...levelOptions(level), connectionReuse: { maxConnectionsPerKey: 4 } }), theirs: nm({ pool: true, maxConnections: 4, ...strict(level) }) },
      { count: N_REUSE, concurrency: 32 },
    ),
  );
}
rows.push(
  await pair(
    'reuse-default encrypt',
    { ours: ours({ level: 'encrypt' }), theirs: nm({ pool: true, maxConnections: 4, requireTLS: true }) },
    { count: N_REUSE, concurrency: 32 },
  ),
);
rows.push(
  await pair(
    'fresh encrypt',
    { ours: ours({ level: 'encrypt', connectionReuse: false, tlsSessionCache: false }), theirs: nm({ requireTLS: true }) },
    { count: N_FRESH, concurrency: 1 },
  ),
);
rows.push(
  await pair(
    'fresh+resume encrypt',
    { ours: ours({ level: 'encrypt', connectionReuse: false }), theirs: nm({ requireTLS: true }) },
    { count: N_FRESH, concurrency: 1 },
  ),
);

rows.push(
  await pair(
    'floor: bare client, fresh+resume',
    {
      ours: () => nodemailer.createTransport(bareTransport({ host: SINK, port, servername: 'mx.bench.test', resume: true })),
      theirs: nm({ requireTLS: true }),
    },
    { count: N_FRESH, concurrency: 1 },
  ),
);

let latencyResult;
if (wanted('latency')) {
  // The latency row: 20 destinations behind 20 delaying proxies.
  const DESTINATIONS = 20;
  const proxies = [];
  const zone = [];
  for (let i = 0; i < DESTINATIONS; i++) {
    const address = `127.0.67.${i + 2}`;
    proxies.push(await startProxy(address, { host: SINK, port }, 12.5));
    zone.push(
      { name: `d${i}.latency.test`, type: 'MX', exchange: `mx.d${i}.latency.test`, preference: 10 },
      { name: `mx.d${i}.latency.test`, type: 'A', address },
    );
  }
  const dns = await startDnsServer({ host: '127.0.67.1', zone });
  const roundTrips = () => proxies.reduce((n, p) => n + p.stats.roundTrips, 0);
  async function latency(name, run) {
    const rt0 = roundTrips();
    const t0 = Date.now();
    await run();
    return { name, wallMs: Date.now() - t0, roundTripsPerMessage: (roundTrips() - rt0) / 200 };
  }
  const mxTransport = (opts = {}) =>
    nodemailer.createTransport(tlsPolicy({ port, level: 'encrypt', mtaSts: false, dns: createResolver({ servers: [dns.server] }), ...opts }));
  const to20 = (i) => `user${i}@d${i % DESTINATIONS}.latency.test`;
  const latencyRows = [];
  {
    const m = mxTransport();
    latencyRows.push(await latency('this transport (reuse, resumption)', () => load(m, 200, 8, to20)));
    m.close();
  }
  {
    const perDestination = new Map();
    const through = {
      sendMail(mail) {
        const i = Number(/^user(\d+)@/.exec(mail.to)[1]) % DESTINATIONS;
        if (!perDestination.has(i))
          perDestination.set(i, nodemailer.createTransport({ host: `127.0.67.${i + 2}`, port, requireTLS: true, tls: { rejectUnauthorized: false } }));
        return perDestination.get(i).sendMail(mail);
      },
    };
    latencyRows.push(await latency('Nodemailer (a transport per destination)', () => load(through, 200, 8, to20)));
    for (const t of perDestination.values()) t.close();
  }
  // One delivery on a fresh connection: its round trips, without and with resumption.
  async function oneDelivery(opts) {
    const m = mxTransport({ connectionReuse: false, ...opts });
    await m.sendMail({ from: 'bench@origin.test', to: 'warm@d0.latency.test', text: TEXT_10K }); // DNS and, with resumption, a ticket
    const rt0 = roundTrips();
    const t0 = Date.now();
    await m.sendMail({ from: 'bench@origin.test', to: 'one@d0.latency.test', text: TEXT_10K });
    const out = { roundTrips: roundTrips() - rt0, wallMs: Date.now() - t0 };
    m.close();
    return out;
  }
  const fresh = await oneDelivery({ tlsSessionCache: false });
  const resumed = await oneDelivery({});
  for (const r of latencyRows)
    log(`latency: ${r.name.padEnd(42)} ${r.wallMs} ms for 200 messages, ${r.roundTripsPerMessage.toFixed(2)} round trips per message`);
  log(
    `latency: one delivery on a fresh connection: ${fresh.roundTrips} round trips (${fresh.wallMs} ms); with a resumed TLS session: ${resumed.roundTrips} (${resumed.wallMs} ms)`,
  );
  await Promise.all([...proxies.map((p) => p.close()), dns.close()]);
  latencyResult = { rows: latencyRows, fresh, resumed };
}

await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/compare.json', import.meta.url),
  `${JSON.stringify({ machine, rounds: ROUNDS, rows: rows.filter(Boolean), ...(latencyResult ? { latency: latencyResult } : {}) }, null, 2)}\n`,
);
await ask('close').catch(() => undefined);
process.exit(0);
