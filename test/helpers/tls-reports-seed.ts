/**
 * The `tls-reports` command's test data, shared by test/cli.test.ts (a SQLite store, npm test)
 * and test/cli-tls-reports-redis.test.ts (a real redis-server, npm run test:interop): the same
 * sessions counted into either store, and the same report expected from it.
 */
import { expect } from 'vitest';
import { main, type TlsReportsReport } from '../../lib/cli/index.js';
import { createResolver, tlsPolicy } from '../../lib/index.js';
import { openStores, type StoreOption } from '../../lib/store/index.js';
import { bucketOf, counterField, utcDay, type CountedSession } from '../../lib/tlsrpt/index.js';

const DAY = 86_400_000;
export const yesterday = utcDay(Date.now() - DAY);
export const today = utcDay(Date.now());

/** The command through its main(), in process: exit status, stdout and stderr. */
export async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: {} });
  return { code, out, err };
}

/** A counted session to `domain` on `day`: a failure (no STARTTLS at mx.<domain>), or a success. */
export const session = (domain: string, day: string, failed: boolean): CountedSession => ({
  domain,
  day,
  policy: { type: 'no-policy-found', domain, strings: [], mxHosts: [] },
  ...(failed
    ? {
        failure: {
          resultType: 'starttls-not-supported',
          sendingIp: '192.0.2.1',
          receivingMx: `mx.${domain}`,
          receivingIp: '198.51.100.7',
          reason: `mx.${domain} offered no STARTTLS`,
        },
      }
    : {}),
});

/** Counts sessions into the store as transports do, and tries the reports of retry.test once, with a DNS server that does not answer. */
export async function seed(store: StoreOption): Promise<void> {
  const { counters } = openStores(store);
  const add = (s: CountedSession, n: number) => counters.add(bucketOf(s.domain, s.day), counterField(s), n, s.failure?.reason);
  await add(session('retry.test', yesterday, true), 2);
  const sender = tlsPolicy({
    store,
    tlsRpt: { organization: 'Origin Test Mail', contact: 'tlsrpt@origin.test' },
    dns: createResolver({ servers: ['127.0.0.1:9'], timeout: 200, attempts: 1 }),
    mtaSts: false,
  });
  try {
    expect(await sender.tlsReports.send()).toEqual([expect.objectContaining({ domain: 'retry.test', status: 'pending' })]);
  } finally {
    sender.close();
  }
  await add(session('due.test', yesterday, true), 3);
  await add(session('due.test', yesterday, false), 1);
  await add(session('quiet.test', yesterday, false), 4);
  await add(session('today.test', today, true), 1);
}

/**
 * `tls-reports` with `storeArgs` (--store FILE or --redis URL) over a store `seed` filled: the
 * reports of ended days with a failure, due or being retried with the reason; not today, not a
 * day without a failure. `kind` is how the command names the store.
 */
export async function expectPendingReports(storeArgs: string[], kind: string): Promise<void> {
  const text = await run(['tls-reports', ...storeArgs]);
  expect(text).toMatchObject({ code: 0, err: '' });
  const lines = text.out.trimEnd().split('\n');
  expect(lines[0]).toBe(`2 TLS reports are pending in the ${kind}:`);
  expect(lines[1]).toMatch(new RegExp(`^  ${yesterday}  due\\.test    due       4 sessions: 1 successful, 3 failed$`));
  expect(lines[2]).toMatch(new RegExp(`^  ${yesterday}  retry\\.test  retrying  2 sessions: 0 successful, 2 failed; 1 attempt since \\d{4}-`));
  expect(lines[3]).toMatch(/^ {4}_smtp\._tls\.retry\.test: DNS lookup of TXT for _smtp\._tls\.retry\.test failed/);
  expect(lines).toHaveLength(4);

  const json = await run(['tls-reports', ...storeArgs, '--json']);
  expect(json.code).toBe(0);
  const report = JSON.parse(json.out) as TlsReportsReport;
  expect(report.store).toBe(kind);
  expect(report.pending).toEqual([
    expect.objectContaining({ domain: 'due.test', day: yesterday, status: 'due', successful: 1, failed: 3, attempts: 0, errors: {} }),
    expect.objectContaining({
      domain: 'retry.test',
      day: yesterday,
      status: 'retrying',
      reportId: `${yesterday}.retry.test@origin.test`,
      failed: 2,
      attempts: 1,
      errors: { '_smtp._tls.retry.test': expect.stringContaining('failed') },
    }),
  ]);
  expect(report.pending[0]!.policies).toEqual([
    {
      policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'due.test' },
      summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 3 },
      'failure-details': [
        expect.objectContaining({ 'result-type': 'starttls-not-supported', 'receiving-mx-hostname': 'mx.due.test', 'failed-session-count': 3 }),
      ],
    },
  ]);

  const all = await run(['tls-reports', ...storeArgs, '--all', '--json']);
  expect((JSON.parse(all.out) as TlsReportsReport).pending.map((p) => p.domain)).toEqual(['due.test', 'quiet.test', 'retry.test']);
}
