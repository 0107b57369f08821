// What the bench scripts share: the load loop, the median, and the forked sink.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The median of the finite values; NaN when there is none. */
export const median = (values) => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** `count` sendMail calls with at most `concurrency` in flight; client wall time and CPU. */
export async function runLoad(transport, count, makeMail, concurrency) {
  let next = 0;
  let failures = 0;
  let firstError;
  let firstInfo;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        try {
          const info = await transport.sendMail(makeMail(i));
          if (!info.accepted || info.accepted.length === 0) failures++;
          firstInfo ??= info;
        } catch (error) {
          failures++;
          firstError ??= error;
        }
      }
    }),
  );
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { count, ms, cpuMs, msgsPerSec: (count / ms) * 1000, cpuMsPerMsg: cpuMs / count, failures, firstError, firstInfo };
}

/**
 * The sink (bench/sink.mjs) in a process of its own, and `ask(cmd, args)` to drive it over IPC:
 * { id, cmd, ...args } -> the result, or an Error with the sink's message.
 */
export function forkSink() {
  const sink = fork(fileURLToPath(new URL('./sink.mjs', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let nextId = 0;
  const waiting = new Map();
  sink.on('message', ({ id, ok, result, error }) => {
    const w = waiting.get(id);
    waiting.delete(id);
    if (w) (ok ? w.resolve : w.reject)(ok ? result : new Error(error));
  });
  const ask = (cmd, args = {}) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      waiting.set(id, { resolve, reject });
      sink.send({ id, cmd, ...args });
    });
  return { sink, ask };
}
