/**
 * The report (RFC 8460 section 4) built from a day of mixed traffic through one transport: real
 * SMTP peers (one whose handshake fails, one that works, one outside an MTA-STS policy's
 * patterns), a real MTA-STS policy host. Each report is checked against RFC 8460's schema
 * (test/helpers/tlsrpt-schema.ts) and its counts against the connections the peers saw.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { policyText, startStsHosts, type StsHosts } from './helpers/sts-host.js';
import { tlsrptProblems } from './helpers/tlsrpt-schema.js';
import { transportIn } from './helpers/tlsrpt-fleet.js';
import type { TlsPolicyOptions } from '../lib/index.js';
import type { TlsPolicyTransport } from '../lib/transport.js';
import { buildReport, hasFailure, utcDay, type TlsRptReport } from '../lib/tlsrpt/index.js';

let pki: Pki;
let world: World;
let sts: StsHosts;

beforeAll(async () => {
  pki = await makePki('TLS-RPT report test CA');
  sts = await startStsHosts(loopbackBlock()(2), await pki.leaf(['fallback.invalid']));
  sts.set('sts.test', { cert: await pki.leaf(['mta-sts.sts.test']), behaviour: { kind: 'policy', body: policyText('enforce', ['mx.sts.test']) } });
  world = await makeWorld(
    pki,
    [
      { name: 'mx1.mixed.test', behaviour: 'handshake-fail' },
      { name: 'mx2.mixed.test', behaviour: 'starttls' },
      { name: 'rogue.sts.test', behaviour: 'starttls' },
      { name: 'mx.sts.test', behaviour: 'starttls' },
      { name: 'mx.clean.test', behaviour: 'starttls' },
    ],
    [
      { name: 'mixed.test', type: 'MX', exchange: 'mx1.mixed.test', preference: 10 },
      { name: 'mixed.test', type: 'MX', exchange: 'mx2.mixed.test', preference: 20 },
      { name: 'sts.test', type: 'MX', exchange: 'rogue.sts.test', preference: 10 },
      { name: 'sts.test', type: 'MX', exchange: 'mx.sts.test', preference: 20 },
      { name: 'clean.test', type: 'MX', exchange: 'mx.clean.test', preference: 10 },
      { name: '_mta-sts.sts.test', type: 'TXT', text: 'v=STSv1; id=r1' },
      { name: 'mta-sts.sts.test', type: 'A', address: sts.address },
    ],
  );
});
afterAll(async () => {
  await Promise.all([world?.close(), sts?.close()]);
});

function transportWith(options: TlsPolicyOptions = {}): TlsPolicyTransport {
  return transportIn(world, pki, { mtaSts: { port: sts.port }, ...options });
}

const connections = (host: string) => world.peers.get(host)!.connections;
const clientAddress = (host: string) => world.peers.get(host)!.events.find((e) => e.command === 'MAIL')?.clientAddress;

describe('a day of mixed traffic, reported (RFC 8460 section 4)', () => {
  let transport: TlsPolicyTransport;
  let day: string;
  const seen: Record<string, number> = {};
  const reports: Record<string, TlsRptReport | undefined> = {};
  beforeAll(async () => {
    transport = transportWith();
    const mailer = nodemailer.createTransport(transport);
    const hosts = ['mx1.mixed.test', 'mx2.mixed.test', 'rogue.sts.test', 'mx.sts.test', 'mx.clean.test'];
    let before: Record<string, number>;
    // Sent until the whole day's traffic falls on one UTC day (a run across midnight sends again).
    do {
      before = Object.fromEntries(hosts.map((h) => [h, connections(h)]));
      day = utcDay(Date.now());
      for (const to of ['a@mixed.test', 'b@mixed.test', 'c@mixed.test', 'a@sts.test', 'b@sts.test', 'a@clean.test']) {
        await mailer.sendMail({ from: 'sender@origin.test', to, text: 'hello' });
      }
    } while (utcDay(Date.now()) !== day);
    for (const h of hosts) seen[h] = connections(h) - before![h]!;
    for (const domain of ['mixed.test', 'sts.test', 'clean.test']) reports[domain] = await transport.tlsReports.build(domain, day);
  }, 60_000);
  afterAll(() => transport?.close());

  it('every report is valid against RFC 8460 section 4', () => {
    for (const domain of ['mixed.test', 'sts.test', 'clean.test']) expect(tlsrptProblems(reports[domain]), domain).toEqual([]);
  });

  it('the header: organization-name, contact-info, the full UTC day, a report-id that names the submitter', () => {
    expect(reports['mixed.test']).toMatchObject({
      'organization-name': 'Origin Test Mail',
      'contact-info': 'tlsrpt@origin.test',
      'date-range': { 'start-datetime': `${day}T00:00:00Z`, 'end-datetime': `${day}T23:59:59Z` },
      'report-id': `${day}.mixed.test@origin.test`,
    });
  });

  it('no policy: the failed handshakes of one MX and the sessions of the next, as many as the peers saw', () => {
    const report = reports['mixed.test']!;
    expect(seen['mx1.mixed.test']).toBe(3);
    expect(seen['mx2.mixed.test']).toBe(3);
    expect(report.policies).toEqual([
      {
        policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'mixed.test' },
        summary: { 'total-successful-session-count': seen['mx2.mixed.test'], 'total-failure-session-count': seen['mx1.mixed.test'] },
        'failure-details': [
          {
            'result-type': 'validation-failure',
            'sending-mta-ip': clientAddress('mx2.mixed.test'),
            'receiving-mx-hostname': 'mx1.mixed.test',
            'receiving-ip': world.peers.get('mx1.mixed.test')!.host,
            'failed-session-count': seen['mx1.mixed.test'],
            'failure-reason-code': expect.stringContaining('mx1.mixed.test'),
          },
        ],
      },
    ]);
    expect(hasFailure(report)).toBe(true);
  });

  it('MTA-STS enforce: the policy as fetched, an MX outside its patterns never connected to and counted as a failure', () => {
    const report = reports['sts.test']!;
    expect(seen['rogue.sts.test']).toBe(0);
    expect(seen['mx.sts.test']).toBe(2);
    expect(report.policies).toEqual([
      {
        policy: {
          'policy-type': 'sts',
          'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx.sts.test', 'max_age: 86400'],
          'policy-domain': 'sts.test',
          'mx-host': ['mx.sts.test'],
        },
        summary: { 'total-successful-session-count': 2, 'total-failure-session-count': 2 },
        'failure-details': [
          {
            'result-type': 'validation-failure',
            'receiving-mx-hostname': 'rogue.sts.test',
            'receiving-ip': world.peers.get('rogue.sts.test')!.host,
            'failed-session-count': 2,
            'failure-reason-code': expect.stringContaining('matches no mx pattern'),
          },
        ],
      },
    ]);
  });

  it('a day without a failure: a report with successes only', () => {
    const report = reports['clean.test']!;
    expect(report.policies).toEqual([
      {
        policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'clean.test' },
        summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 },
      },
    ]);
    expect(hasFailure(report)).toBe(false);
  });

  it('a domain nothing was sent to that day has no report', async () => {
    expect(await transport.tlsReports.build('elsewhere.test', day)).toBeUndefined();
  });
});

describe('the schema check can fail (it is what the reports are held to)', () => {
  const valid = buildReport(
    'x.test',
    '2024-03-01',
    [
      { policy: { type: 'no-policy-found', domain: 'x.test', strings: [], mxHosts: [] }, count: 2 },
      {
        policy: { type: 'no-policy-found', domain: 'x.test', strings: [], mxHosts: [] },
        failure: { resultType: 'starttls-not-supported', sendingIp: '192.0.2.1', receivingMx: 'mx.x.test', receivingIp: '198.51.100.7' },
        count: 1,
        note: 'mx.x.test offered\nno STARTTLS',
      },
      { policy: { type: 'sts', domain: 'x.test', strings: ['version: STSv1'], mxHosts: ['mx.x.test'] }, count: 0 },
    ],
    { organization: 'Org', contact: 'c@origin.test', submitter: 'origin.test' },
  )!;

  it('a built report passes; rows with no count are left out; a reason is one line', () => {
    expect(tlsrptProblems(valid)).toEqual([]);
    expect(valid.policies).toHaveLength(1);
    expect(valid.policies[0]!['failure-details']![0]!['failure-reason-code']).toBe('mx.x.test offered no STARTTLS');
  });

  it.each([
    ['an unknown field', (r: TlsRptReport) => Object.assign(r, { extra: 1 }), /report: has a field "extra"/],
    [
      'a bad IP',
      (r: TlsRptReport) => Object.assign(r.policies[0]!['failure-details']![0]!, { 'sending-mta-ip': 'mx.x.test' }),
      /sending-mta-ip: is not an IP address/,
    ],
    [
      'a count that does not add up',
      (r: TlsRptReport) => Object.assign(r.policies[0]!.summary, { 'total-failure-session-count': 5 }),
      /failure-details count 1/,
    ],
    ['an unknown result type', (r: TlsRptReport) => Object.assign(r.policies[0]!['failure-details']![0]!, { 'result-type': 'oops' }), /not a result type/],
    [
      'a date that is not RFC 3339',
      (r: TlsRptReport) => Object.assign(r['date-range'], { 'start-datetime': '2024-03-01' }),
      /start-datetime: is not an RFC 3339/,
    ],
  ])('%s is a problem', (_what, spoil, message) => {
    const report = structuredClone(valid);
    spoil(report);
    expect(tlsrptProblems(report).join('\n')).toMatch(message);
  });
});

describe('tlsReports.build', () => {
  it('without the tlsRpt option: ECONFIG, naming the option', async () => {
    const transport = transportWith({ tlsRpt: false });
    try {
      await expect(transport.tlsReports.build('x.test', '2024-03-01')).rejects.toMatchObject({
        code: 'ECONFIG',
        temporary: false,
        message: expect.stringContaining('needs the tlsRpt option'),
      });
    } finally {
      transport.close();
    }
  });

  it.each(['2024-3-1', '2024-02-30', 'yesterday'])('a day written %j is refused', async (day) => {
    const transport = transportWith();
    try {
      await expect(transport.tlsReports.build('x.test', day)).rejects.toMatchObject({ code: 'ECONFIG', message: expect.stringContaining('YYYY-MM-DD') });
    } finally {
      transport.close();
    }
  });
});
