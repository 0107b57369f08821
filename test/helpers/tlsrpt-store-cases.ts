/**
 * The TLS-RPT counter store cases, shared by test/tlsrpt-store.test.ts (memory and a SQLite file,
 * npm test) and test/tlsrpt-store-redis.test.ts (a real redis-server, npm run test:interop): the
 * store contract, and two processes counting into one store.
 */
import { beforeAll, expect, it } from 'vitest';
import { runTsChild } from './ts-child.js';
import { openStores, type CounterStore, type StoreOption } from '../../lib/store/index.js';
import { tlsPolicy } from '../../lib/index.js';
import { utcDay } from '../../lib/tlsrpt/index.js';
import { tlsrptProblems } from './tlsrpt-schema.js';
import type { Pki, World } from './world.js';

/** The counter store contract, for the store `option()` gives: counts add up, notes are kept, a claim is taken by exactly one of many, records expire. */
export function counterStoreContract(option: () => StoreOption | undefined): void {
  let store: CounterStore;
  beforeAll(() => {
    store = openStores(option()).counters;
  });
  const bucket = `${utcDay(Date.now())}|${Math.random().toString(36).slice(2)}.test`;

  it('adds concurrent increments without losing one, and keeps the last note', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.add(bucket, 'f1', 1, `note ${i}`)));
    await store.add(bucket, 'f2', 3);
    await store.add(bucket, 'f1', 2, 'last');
    const { counts, notes } = await store.read(bucket);
    expect(Object.fromEntries(counts)).toEqual({ f1: 52, f2: 3 });
    expect(Object.fromEntries(notes)).toEqual({ f1: 'last' });
    expect(await store.buckets()).toContain(bucket);
  });

  it('drops a bucket', async () => {
    await store.drop(bucket);
    expect(Object.fromEntries((await store.read(bucket)).counts)).toEqual({});
    expect(await store.buckets()).not.toContain(bucket);
  });

  it('a claim is taken by exactly one of many at once; only its holder releases it; an expired one can be taken again', async () => {
    const key = `claim-${bucket}`;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claim(key, `t${i}`, 60_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const holder = `t${results.indexOf(true)}`;
    await store.release(key, 'someone else');
    expect(await store.claim(key, 'late', 60_000)).toBe(false);
    await store.release(key, holder);
    expect(await store.claim(key, 'next', 1)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.claim(key, 'after expiry', 60_000)).toBe(true);
  });

  it('keeps records until they expire', async () => {
    await store.setRecord(`r-${bucket}`, { state: 'sent', n: 1 }, 60_000);
    await store.setRecord(`gone-${bucket}`, { state: 'x' }, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.getRecord(`r-${bucket}`)).toEqual({ state: 'sent', n: 1 });
    expect(await store.getRecord(`gone-${bucket}`)).toBeUndefined();
  });
}

/** `count` sessions from a process of its own, into `store`. */
function sendFrom(world: World, pki: Pki, store: { redis: number } | { file: string }, to: string, count: number): Promise<{ accepted: number }> {
  const args = { dns: world.dns.server, port: world.port, caFile: pki.caFile, to, count, store };
  return runTsChild<{ accepted: number }>('tlsrpt-sender.ts', args, 60_000);
}

/**
 * Two processes, each with a transport of its own, send to `domain` (an MX at the world's
 * mx.shared.test) counting into one store (`childStore()` as they name it, `ownStore()` as this
 * process does): one report with the sum of the sessions the SMTP peer saw.
 */
export function twoProcessesCount(
  env: () => { world: World; pki: Pki },
  domain: string,
  childStore: () => { redis: number } | { file: string },
  ownStore: () => StoreOption,
): void {
  it('count every session once: one report with the sum of both, as the SMTP peer saw them', async () => {
    const { world, pki } = env();
    const peer = world.peers.get('mx.shared.test')!;
    const before = peer.connections;
    const first = utcDay(Date.now());
    const [a, b] = await Promise.all([sendFrom(world, pki, childStore(), `u@${domain}`, 7), sendFrom(world, pki, childStore(), `u@${domain}`, 5)]);
    const last = utcDay(Date.now());
    expect(a.accepted + b.accepted).toBe(12);
    expect(peer.connections - before).toBe(12);
    const reader = tlsPolicy({ store: ownStore(), tlsRpt: { organization: 'Reader', contact: 'r@origin.test' } });
    try {
      const days = first === last ? [first] : [first, last];
      const reports = (await Promise.all(days.map((day) => reader.tlsReports.build(domain, day)))).filter((r) => r !== undefined);
      // One report (two when the sends crossed midnight UTC), with the sum of both processes' sessions.
      for (const report of reports) expect(tlsrptProblems(report)).toEqual([]);
      const policies = reports.flatMap((r) => r.policies);
      expect(policies.map((p) => p.policy)).toEqual(days.map(() => ({ 'policy-type': 'no-policy-found', 'policy-domain': domain })).slice(0, policies.length));
      expect(policies.reduce((n, p) => n + p.summary['total-successful-session-count'], 0)).toBe(12);
      expect(policies.reduce((n, p) => n + p.summary['total-failure-session-count'], 0)).toBe(0);
    } finally {
      reader.close();
    }
  }, 120_000);
}
