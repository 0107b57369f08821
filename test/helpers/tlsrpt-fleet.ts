/**
 * TLS reports from a fleet: four workers sharing one store deliver a domain's report once. Shared
 * by test/tlsrpt-deliver.test.ts (a SQLite file, npm test) and test/tlsrpt-deliver-redis.test.ts
 * (a real redis-server, npm run test:interop), with the traffic helpers both use.
 */
import { gunzipSync } from 'node:zlib';
import nodemailer from 'nodemailer';
import { expect } from 'vitest';
import { createResolver, tlsPolicy, type TlsPolicyOptions } from '../../lib/index.js';
import type { TlsPolicyTransport } from '../../lib/transport.js';
import type { StoreOption } from '../../lib/store/index.js';
import { utcDay, type TlsRptReport } from '../../lib/tlsrpt/index.js';
import type { Collector } from './tlsrpt-collector.js';
import type { Pki, World } from './world.js';

export const TLSRPT = { organization: 'Origin Test Mail', contact: 'tlsrpt@origin.test' };
const DAY = 86_400_000;

/** Sends `count` messages to `domain` through `transport`, all on one UTC day (again when a run crosses midnight); the day. */
export async function traffic(transport: TlsPolicyTransport, domain: string, count = 2): Promise<string> {
  const mailer = nodemailer.createTransport(transport);
  for (;;) {
    const day = utcDay(Date.now());
    for (let i = 0; i < count; i++) await mailer.sendMail({ from: 'sender@origin.test', to: `u${i}@${domain}`, text: 'hello' });
    if (utcDay(Date.now()) === day) return day;
  }
}

/** The morning after `day` (the report is due). */
export const after = (day: string, ms = 0) => Date.parse(`${day}T00:00:00Z`) + DAY + 3_600_000 + ms;
export const reportOf = (body: Buffer) => JSON.parse(gunzipSync(body).toString('utf8')) as TlsRptReport;

/** A transport into the world, counting for TLS-RPT. */
export function transportIn(world: World, pki: Pki, options: TlsPolicyOptions = {}): TlsPolicyTransport {
  return tlsPolicy({
    port: world.port,
    caFile: pki.caFile,
    dns: createResolver({ servers: [world.dns.server], timeout: 1000, attempts: 1 }),
    mtaSts: false,
    connectionReuse: false,
    tlsRpt: TLSRPT,
    ...options,
  });
}

/**
 * Four workers sharing `store` send to `domain` (whose MX offers no STARTTLS and whose report
 * goes to the collector at /<domain>) and all try the reports at once: sent once, the others
 * busy, and later runs find it done.
 */
export async function fleetDeliversOnce(env: { world: World; pki: Pki; collector: Collector }, domain: string, store: StoreOption): Promise<void> {
  const { world, pki, collector } = env;
  const posted = (path: string) => collector.requests.filter((r) => r.path === path);
  const workers = Array.from({ length: 4 }, () => transportIn(world, pki, { store }));
  try {
    const day = await traffic(workers[0]!, domain, 2);
    await traffic(workers[1]!, domain, 1);
    const results = (await Promise.all(workers.map((w) => w.tlsReports.send({ now: after(day) })))).flat();
    expect(results.filter((r) => r.status === 'sent')).toHaveLength(1);
    expect(results.every((r) => r.status === 'sent' || r.status === 'busy')).toBe(true);
    expect(posted(`/${domain}`)).toHaveLength(1);
    expect(reportOf(posted(`/${domain}`)[0]!.body).policies[0]!.summary['total-failure-session-count']).toBe(3);
    // and later runs find it done
    expect((await Promise.all(workers.map((w) => w.tlsReports.send({ now: after(day, 60_000) })))).flat()).toEqual([]);
    expect(posted(`/${domain}`)).toHaveLength(1);
  } finally {
    for (const w of workers) w.close();
  }
}
