// Row 5 of the bench, in a process of its own (forked by bench.mjs with --expose-gc) so that
// its idle RSS is not the heap left over by the throughput rows: one message of `size` bytes
// to `domains` recipient domains through tlsPolicy, RSS sampled every `sampleMs` ms.
// Input over IPC: { port, dns, domains: string[], size, sampleMs, extraOptions };
// output over IPC: { ok, result | error }.
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy } from '../dist/esm/index.js';

/** A raw RFC 5322 message of exactly `size` bytes: headers, then 76-character lines. */
function rawMessage(size, to) {
  const head = Buffer.from(
    `From: bench@origin.test\r\nTo: ${to.join(', ')}\r\nSubject: bench 25 MB\r\nMessage-ID: <big.${Date.now()}@origin.test>\r\n` +
      'MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n',
  );
  const body = Buffer.alloc(size - head.length);
  const line = Buffer.from(`${'QmVuY2ggZGF0YQ'.repeat(6).slice(0, 76)}\r\n`);
  for (let at = 0; at < body.length; at += line.length) line.copy(body, at);
  if (body.length >= 2) body.write('\r\n', body.length - 2);
  return Buffer.concat([head, body]);
}

/** Linux: reset the kernel's RSS high-water mark, read it back later (a cross-check of sampling). */
function resetHighWater() {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}
function highWater() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function run({ port, dns, domains, size, sampleMs = 2, extraOptions = {} }) {
  const to = domains.map((d, i) => `user${i}@${d}`);
  const resolver = createResolver({ servers: [dns], timeout: 2000, attempts: 2 });
  const transport = nodemailer.createTransport(tlsPolicy({ level: 'may', port, dns: resolver, name: 'bench.localhost', ...extraOptions }));
  // Warm up: the same destinations with a small message (code, TLS, DNS cache), then settle.
  await transport.sendMail({ from: 'bench@origin.test', to, subject: 'warm-up', text: 'warm-up\n' });
  const raw = rawMessage(size, to);
  const envelope = { from: 'bench@origin.test', to };
  globalThis.gc?.();
  await sleep(300);
  globalThis.gc?.();
  await sleep(100);
  const idleSamples = [];
  for (let i = 0; i < 5; i++) {
    idleSamples.push(process.memoryUsage().rss);
    await sleep(10);
  }
  const idle = idleSamples.sort((a, b) => a - b)[2];
  const hwmReset = resetHighWater();
  let peak = idle;
  let peakHeap = 0;
  let peakExternal = 0;
  let samples = 0;
  const sample = () => {
    const m = process.memoryUsage();
    samples++;
    if (m.rss > peak) peak = m.rss;
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    if (m.external > peakExternal) peakExternal = m.external;
  };
  const timer = setInterval(sample, sampleMs);
  const started = process.hrtime.bigint();
  let info;
  try {
    info = await transport.sendMail({ envelope, raw });
  } finally {
    sample();
    clearInterval(timer);
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const hwm = hwmReset ? highWater() : undefined;
  await transport.close?.();
  const delivered = info.deliveries.filter((d) => d.status === 'delivered').length;
  return {
    size: raw.length,
    idleRss: idle,
    peakRss: peak,
    peakMinusIdle: peak - idle,
    kernelPeakMinusIdle: hwm !== undefined ? hwm - idle : undefined,
    peakHeapUsed: peakHeap,
    peakExternal: peakExternal,
    samples,
    ms,
    destinations: info.deliveries.length,
    delivered,
    accepted: info.accepted.length,
  };
}

process.once('message', (input) => {
  run(input).then(
    (result) => process.send({ ok: true, result }, () => process.exit(0)),
    (error) => process.send({ ok: false, error: error?.stack ?? String(error) }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(1));
