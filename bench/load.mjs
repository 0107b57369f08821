// What bench.mjs and compare.mjs share: the load loop and the median.

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
