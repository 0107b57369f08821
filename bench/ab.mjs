// Two builds of this library side by side in one process (by hand, never a test): the way to tell
// whether a change made it cheaper, since separate runs on a shared machine differ by more than
// most changes do. Copy a build first, inside the project so that it finds node_modules
// (`npm run build && mkdir -p .tmp && cp -r dist .tmp/dist-base`), change and build again, then
// `BENCH_BASE=.tmp/dist-base npx node bench/ab.mjs`: each round sends the same messages through
// one transport of each build, in alternating order, and the result is the median of the
// per-round ratios (this build / the base), with min-max. Two copies of the same build read
// 0.95-1.05x with 11 rounds: a change smaller than that does not show.
//
// Environment: BENCH_BASE (required), AB_LEVEL (default encrypt), AB_MODE (reuse: 4 sessions and
// 32 in flight, the default; fresh: a new connection per message, 1 in flight), AB_COUNT
// (messages per round, default 1000 for reuse, 200 for fresh), BENCH_ROUNDS (default 21).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import nodemailer from 'nodemailer';
import { makeLeaf } from '../test/helpers/pki.ts';
import { forkSink, median, runLoad } from './load.mjs';

const base = process.env.BENCH_BASE;
if (!base) throw new Error('BENCH_BASE must name a copy of dist/ (npm run build && mkdir -p .tmp && cp -r dist .tmp/dist-base)');
const builds = {
  this: await import('../dist/esm/index.js'),
  base: await import(pathToFileURL(resolve(base, 'esm/index.js')).href),
};
const level = process.env.AB_LEVEL ?? 'encrypt';
const fresh = process.env.AB_MODE === 'fresh';
const count = Number(process.env.AB_COUNT ?? (fresh ? 200 : 1000));
const rounds = Math.max(3, Number(process.env.BENCH_ROUNDS ?? 21));
const TEXT_10K = `${'The quick brown fox jumps over the lazy dog. '.repeat(2).slice(0, 78)}\n`.repeat(128);

const { ask } = forkSink();

const SINK = '127.0.66.3';
const cert = await makeLeaf('self', { names: ['mx.bench.test'] });
const { port } = await ask('start', { hosts: [SINK], cert: cert.chainPem, key: cert.keyPem, tlsaHex: '00', slowDelay: 0, greetAtOnce: true });
const fingerprint = new (await import('node:crypto')).X509Certificate(cert.certPem).fingerprint256;
const transport = (build) =>
  nodemailer.createTransport(
    build.tlsPolicy({
      relay: `[${SINK}]:${port}`,
      mtaSts: false,
      level,
      ...(level === 'fingerprint' ? { fingerprintCertMatch: fingerprint } : {}),
      ...(fresh ? { connectionReuse: false } : { connectionReuse: { maxConnectionsPerKey: 4 } }),
    }),
  );
const mail = (i) => ({ from: 'bench@origin.test', to: 'user@bench.test', subject: `ab ${i}`, text: TEXT_10K });
const concurrency = fresh ? 1 : 32;

async function once(name, n) {
  const m = transport(builds[name]);
  const run = await runLoad(m, n, mail, concurrency);
  m.close();
  if (run.failures) throw new Error(`${name}: ${run.failures} of ${n} failed: ${run.firstError?.message}`);
  await new Promise((r) => setTimeout(r, 100));
  return run;
}

for (const name of ['this', 'base']) await once(name, count);
const ratios = { cpu: [], rate: [] };
for (let round = 0; round < rounds; round++) {
  const order = round % 2 ? ['base', 'this'] : ['this', 'base'];
  const got = {};
  for (const name of order) got[name] = await once(name, count);
  ratios.cpu.push(got.this.cpuMsPerMsg / got.base.cpuMsPerMsg);
  ratios.rate.push(got.this.msgsPerSec / got.base.msgsPerSec);
}
const f = (v) => `${median(v).toFixed(3)}x (${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)})`;
process.stderr.write(
  `[ab] ${fresh ? 'fresh' : 'reuse-4'} ${level}, ${rounds} rounds of ${count}: CPU per message ${f(ratios.cpu)}, messages/s ${f(ratios.rate)} (this build / base)\n`,
);
await ask('close').catch(() => undefined);
process.exit(0);
