/**
 * Delivering TLS reports (RFC 8460 sections 3 and 5) with real parts: a day's sessions to real SMTP
 * peers (ones that offer no STARTTLS, so each session is a failure), the domains' `_smtp._tls` TXT
 * records in the tests' DNS server, a real HTTPS collector for `https:` addresses, and a real SMTP
 * peer receiving the section 5.3 message for `mailto:` addresses (sent through the transport itself,
 * DKIM-signed with Nodemailer's DKIM options). The day is made to have ended by passing `now`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { startCollector, type Collector } from './helpers/tlsrpt-collector.js';
import { after, fleetDeliversOnce, reportOf, traffic, transportIn, TLSRPT } from './helpers/tlsrpt-fleet.js';
import { tlsrptProblems } from './helpers/tlsrpt-schema.js';
import { decodedBody, parameters, parseMime } from './helpers/mime.js';
import { verifyDkim } from './helpers/dkim.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import type { TlsPolicyOptions } from '../lib/index.js';
import type { TlsPolicyTransport } from '../lib/transport.js';
import { parseTlsRptRecords, utcDay } from '../lib/tlsrpt/index.js';

let pki: Pki;
let world: World;
let collector: Collector;
let dir: string;

/** Each domain's report address(es), written into its `_smtp._tls` record; the MX of each offers no STARTTLS (a failure per session). */
const RUA: Record<string, string | undefined> = {
  'https.test': 'https://collector.test:PORT/https.test',
  'mailto.test': 'mailto:reports@rua.test',
  'both.test': 'https://collector.test:PORT/both.test,mailto:reports@rua.test',
  'norecord.test': undefined,
  'down.test': 'https://collector.test:PORT/down.test',
  'giveup.test': 'https://collector.test:PORT/giveup.test',
  'clean.test': 'https://collector.test:PORT/clean.test',
  'fleet.test': 'https://collector.test:PORT/fleet.test',
  'slow.test': 'https://collector.test:PORT/slow.test',
};

beforeAll(async () => {
  pki = await makePki('TLS-RPT delivery test CA');
  collector = await startCollector(loopbackBlock()(2), await pki.leaf(['collector.test']));
  dir = mkdtempSync(join(tmpdir(), 'ntp-tlsrpt-deliver-'));
  const records: ZoneRecord[] = [
    { name: 'collector.test', type: 'A', address: collector.address },
    { name: 'rua.test', type: 'MX', exchange: 'mx.rua.test', preference: 10 },
  ];
  for (const [domain, rua] of Object.entries(RUA)) {
    const mx = domain === 'clean.test' ? 'mx.secure.test' : 'mx.clear.test';
    records.push({ name: domain, type: 'MX', exchange: mx, preference: 10 });
    if (rua) records.push({ name: `_smtp._tls.${domain}`, type: 'TXT', text: `v=TLSRPTv1; rua=${rua.replaceAll('PORT', String(collector.port))}` });
  }
  world = await makeWorld(
    pki,
    [
      { name: 'mx.clear.test', behaviour: 'no-starttls' },
      { name: 'mx.secure.test', behaviour: 'starttls' },
      { name: 'mx.rua.test', behaviour: 'starttls' },
    ],
    records,
  );
}, 30_000);
afterAll(async () => {
  await Promise.all([world?.close(), collector?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function transportWith(options: TlsPolicyOptions = {}): TlsPolicyTransport {
  return transportIn(world, pki, options);
}

const posted = (path: string) => collector.requests.filter((r) => r.path === path);
const ruaMessages = () => world.peers.get('mx.rua.test')!.messages;

describe('https: (RFC 8460 section 5.4)', () => {
  it('the report of a day with failures is POSTed gzipped as application/tlsrpt+gzip, once; it is valid and counts what the peer saw', async () => {
    const transport = transportWith();
    try {
      const before = world.peers.get('mx.clear.test')!.connections;
      const day = await traffic(transport, 'https.test', 3);
      const sessions = world.peers.get('mx.clear.test')!.connections - before;
      expect(await transport.tlsReports.send({ now: Date.parse(`${day}T12:00:00Z`) })).toEqual([]); // the day has not ended
      const results = await transport.tlsReports.send({ now: after(day) });
      expect(results).toEqual([
        {
          domain: 'https.test',
          day,
          reportId: `${day}.https.test@origin.test`,
          status: 'sent',
          deliveries: [{ uri: `https://collector.test:${collector.port}/https.test`, ok: true }],
        },
      ]);
      const [request, ...more] = posted('/https.test');
      expect(more).toEqual([]);
      expect(request).toMatchObject({ method: 'POST', headers: { 'content-type': 'application/tlsrpt+gzip' } });
      const report = reportOf(request!.body);
      expect(tlsrptProblems(report)).toEqual([]);
      expect(report.policies).toEqual([
        expect.objectContaining({
          policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'https.test' },
          summary: { 'total-successful-session-count': 0, 'total-failure-session-count': sessions },
        }),
      ]);
      expect(sessions).toBe(3);
      // Sent once: a second run finds it done.
      expect(await transport.tlsReports.send({ now: after(day, 60_000) })).toEqual([]);
      expect(posted('/https.test')).toHaveLength(1);
      expect(await transport.tlsReports.pending({ now: after(day) })).toEqual([]);
    } finally {
      transport.close();
    }
  });

  it('a collector that answers 500 keeps the report pending with the reason; the next run delivers it', async () => {
    const transport = transportWith();
    try {
      const day = await traffic(transport, 'down.test');
      collector.answer('/down.test', 500);
      const [first] = await transport.tlsReports.send({ now: after(day) });
      expect(first).toMatchObject({ status: 'pending', deliveries: [{ ok: false, reason: expect.stringContaining('HTTP status 500') }] });
      expect(await transport.tlsReports.pending({ now: after(day) })).toEqual([
        expect.objectContaining({
          domain: 'down.test',
          day,
          status: 'retrying',
          attempts: 1,
          errors: { [`https://collector.test:${collector.port}/down.test`]: expect.stringContaining('HTTP status 500') },
        }),
      ]);
      collector.answer('/down.test', 200);
      const [second] = await transport.tlsReports.send({ now: after(day, 3_600_000) });
      expect(second).toMatchObject({ status: 'sent', deliveries: [{ ok: true }] });
      const bodies = posted('/down.test').map((r) => reportOf(r.body));
      expect(bodies).toHaveLength(2);
      expect(bodies[1]).toEqual(bodies[0]); // the same report, the same report-id
      expect(await transport.tlsReports.pending({ now: after(day, 3_600_000) })).toEqual([]);
    } finally {
      transport.close();
    }
  });

  it('still failing 24 hours after the first attempt (section 5.5): given up, said so, and no longer pending', async () => {
    const warnings: string[] = [];
    const logger = { info: () => undefined, debug: () => undefined, warn: (...a: unknown[]) => warnings.push(a.map(String).join(' ')), error: () => undefined };
    const transport = transportWith({ logger });
    try {
      const day = await traffic(transport, 'giveup.test');
      collector.answer('/giveup.test', 503);
      expect((await transport.tlsReports.send({ now: after(day) }))[0]).toMatchObject({ status: 'pending' });
      expect((await transport.tlsReports.send({ now: after(day, 3_600_000) }))[0]).toMatchObject({ status: 'pending' });
      const [last] = await transport.tlsReports.send({ now: after(day, 24 * 3_600_000) });
      expect(last).toMatchObject({
        status: 'failed',
        reason: expect.stringMatching(/not delivered within 24 hours of its first attempt \(RFC 8460 section 5\.5\), after 3 attempts: .*HTTP status 503/),
      });
      expect(warnings.join('\n')).toContain(`the TLS report ${day}.giveup.test@origin.test for giveup.test`);
      expect(await transport.tlsReports.pending({ now: after(day, 25 * 3_600_000) })).toEqual([]);
      expect(posted('/giveup.test')).toHaveLength(3);
    } finally {
      transport.close();
    }
  });

  it('a collector that does not answer: the delivery ends at httpsTimeout, and stays pending', async () => {
    const transport = transportWith({ tlsRpt: { ...TLSRPT, httpsTimeout: 300 } });
    try {
      const day = await traffic(transport, 'slow.test', 1);
      collector.answer('/slow.test', 'hang');
      const [result] = await transport.tlsReports.send({ now: after(day) });
      expect(result).toMatchObject({ status: 'pending', deliveries: [{ ok: false, reason: expect.stringContaining('no answer within 300 ms') }] });
    } finally {
      transport.close();
    }
  });
});

describe('mailto: (RFC 8460 section 5.3)', () => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const publicKey = keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;

  it('the report message: multipart/report; report-type=tlsrpt, the gzipped report attached, the headers and subject of section 5.3, TLS-Required: No, DKIM-signed', async () => {
    const transport = transportWith();
    try {
      const day = await traffic(transport, 'mailto.test');
      const before = ruaMessages().length;
      const [result] = await transport.tlsReports.send({ now: after(day), dkim: { domainName: 'origin.test', keySelector: 'tlsrpt', privateKey } });
      expect(result).toMatchObject({ status: 'sent', deliveries: [{ uri: 'mailto:reports@rua.test', ok: true }] });
      const delivered = ruaMessages().slice(before);
      expect(delivered).toHaveLength(1);
      expect(delivered[0]).toMatchObject({ from: 'tlsrpt@origin.test', to: ['reports@rua.test'], secure: true });
      const raw = delivered[0]!.data;
      const message = parseMime(raw);
      const header = (name: string) => message.headers.get(name)?.[0];
      expect(header('subject')).toBe(`Report Domain: mailto.test Submitter: origin.test Report-ID: <${day}.mailto.test@origin.test>`);
      expect(header('tls-report-domain')).toBe('mailto.test');
      expect(header('tls-report-submitter')).toBe('origin.test');
      expect(header('tls-required')).toBe('No');
      expect(parameters(header('content-type')!)).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'tlsrpt' } });
      const [text, attachment, ...others] = message.parts;
      expect(others).toEqual([]);
      expect(parameters(text!.headers.get('content-type')![0]!).value).toBe('text/plain');
      expect(parameters(attachment!.headers.get('content-type')![0]!).value).toBe('application/tlsrpt+gzip');
      expect(parameters(attachment!.headers.get('content-disposition')![0]!)).toMatchObject({
        value: 'attachment',
        params: { filename: expect.stringMatching(new RegExp(`^origin\\.test!mailto\\.test!${Date.parse(`${day}T00:00:00Z`) / 1000}!\\d+\\.json\\.gz$`)) },
      });
      const report = reportOf(decodedBody(attachment!));
      expect(tlsrptProblems(report)).toEqual([]);
      expect(report).toMatchObject({ 'report-id': `${day}.mailto.test@origin.test`, policies: [{ summary: { 'total-failure-session-count': 2 } }] });
      const dkim = verifyDkim(raw, publicKey);
      expect(dkim).toMatchObject({ ok: true, domain: 'origin.test', selector: 'tlsrpt' });
      expect(dkim.signed).toEqual(expect.arrayContaining(['from', 'subject', 'tls-report-domain', 'tls-report-submitter']));
      // the checker can fail: a changed TLS-Report-Domain no longer verifies
      expect(verifyDkim(raw.replace('TLS-Report-Domain: mailto.test', 'TLS-Report-Domain: other.test'), publicKey)).toMatchObject({ ok: false });
    } finally {
      transport.close();
    }
  });

  it("the report message's own TLS session is not counted", async () => {
    const transport = transportWith();
    try {
      const day = await traffic(transport, 'mailto.test');
      const before = world.peers.get('mx.rua.test')!.connections;
      await transport.tlsReports.send({ now: after(day) });
      expect(world.peers.get('mx.rua.test')!.connections).toBeGreaterThan(before);
      for (const d of [day, utcDay(Date.now())]) expect(await transport.tlsReports.counters('rua.test', d)).toEqual([]);
    } finally {
      transport.close();
    }
  });

  it('https: and mailto: in one record: each gets the report', async () => {
    const transport = transportWith();
    try {
      const day = await traffic(transport, 'both.test');
      const before = ruaMessages().length;
      const [result] = await transport.tlsReports.send({ now: after(day) });
      expect(result).toMatchObject({ status: 'sent', deliveries: [{ ok: true }, { ok: true }] });
      expect(posted('/both.test')).toHaveLength(1);
      expect(ruaMessages().length - before).toBe(1);
    } finally {
      transport.close();
    }
  });
});

describe('which days are reported', () => {
  it('a day without a failure is not reported by default, and is with sendAll', async () => {
    const quiet = transportWith();
    const all = transportWith({ tlsRpt: { ...TLSRPT, sendAll: true } });
    try {
      const day = await traffic(quiet, 'clean.test', 1);
      await traffic(all, 'clean.test', 1);
      expect(await quiet.tlsReports.send({ now: after(day) })).toEqual([
        expect.objectContaining({ domain: 'clean.test', status: 'skipped', reason: expect.stringContaining('tlsRpt.sendAll is off') }),
      ]);
      expect(posted('/clean.test')).toEqual([]);
      expect(await all.tlsReports.send({ now: after(day) })).toEqual([expect.objectContaining({ domain: 'clean.test', status: 'sent' })]);
      expect(reportOf(posted('/clean.test')[0]!.body).policies[0]!.summary).toEqual({ 'total-successful-session-count': 1, 'total-failure-session-count': 0 });
    } finally {
      quiet.close();
      all.close();
    }
  });

  it('a domain without a TLSRPT record gets nothing, and its counters are dropped', async () => {
    const transport = transportWith();
    try {
      const day = await traffic(transport, 'norecord.test');
      expect(await transport.tlsReports.send({ now: after(day) })).toEqual([
        expect.objectContaining({ status: 'no-record', reason: expect.stringContaining('_smtp._tls.norecord.test: no TXT record begins with v=TLSRPTv1;') }),
      ]);
      expect(await transport.tlsReports.counters('norecord.test', day)).toEqual([]);
    } finally {
      transport.close();
    }
  });
});

describe('once per domain and day, with many workers sharing the store', () => {
  // The same with a real redis-server: test/tlsrpt-deliver-redis.test.ts (npm run test:interop).
  it('a SQLite file: four workers sending at once deliver the report once', async () => {
    await fleetDeliversOnce({ world, pki, collector }, 'fleet.test', { file: join(dir, 'fleet.sqlite') });
  });
});

describe('the TLSRPT record (RFC 8460 section 3), read strictly', () => {
  it.each([
    [['v=TLSRPTv1; rua=mailto:a@b.test'], { uris: [{ kind: 'mailto', uri: 'mailto:a@b.test', address: 'a@b.test' }], ignored: [] }],
    [
      ['v=TLSRPTv1;rua=https://r.test/x , mailto:a@b.test;'],
      {
        uris: [
          { kind: 'https', uri: 'https://r.test/x' },
          { kind: 'mailto', address: 'a@b.test' },
        ],
      },
    ],
    [['v=spf1 -all', 'v=TLSRPTv1 ; rua=mailto:tls%2Brpt@b.test; ext=1'], { uris: [{ kind: 'mailto', address: 'tls+rpt@b.test' }] }],
    [['v=TLSRPTv1; rua=http://r.test/x,mailto:a@b.test'], { uris: [{ kind: 'mailto' }], ignored: [expect.stringContaining('has the scheme http')] }],
  ])('%j is read', (texts, record) => {
    const parsed = parseTlsRptRecords(texts);
    expect(parsed).toMatchObject({ record });
  });

  it.each([
    [[], /no TXT record begins with v=TLSRPTv1;/],
    [['v=TLSRPTv1; rua=mailto:a@b.test', 'v=TLSRPTv1; rua=mailto:c@b.test'], /2 TXT records begin with v=TLSRPTv1;/],
    [['v=TLSRPTv1'], /no TXT record begins/],
    [['v=TLSRPTv1; ext=1'], /it has no rua field, which is required/],
    [['v=TLSRPTv1; rua=mailto:a@b.test;; ext=1'], /the field "" is not name=value/],
    [['v=TLSRPTv1; rua='], /rua has an empty URI/],
    [['v=TLSRPTv1; rua=mailto:a@b.test; b@d=1'], /"b@d" is not a field name/],
    [['V=TLSRPTv1; rua=mailto:a@b.test'], /no TXT record begins/],
  ])('%j means no TLSRPT', (texts, why) => {
    const parsed = parseTlsRptRecords(texts);
    expect('none' in parsed && parsed.none).toMatch(why);
  });

  it('a URI with a raw "!" is not used (section 3: "!" must be encoded)', () => {
    expect(parseTlsRptRecords(['v=TLSRPTv1; rua=mailto:a!b@c.test'])).toMatchObject({
      record: { uris: [], ignored: [expect.stringContaining('is not a URI')] },
    });
  });
});
