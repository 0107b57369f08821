/**
 * TLS reporting counts sessions, not messages (RFC 8460 section 4), with the result types of
 * section 4.3, from what real SMTP peers saw: a test DNS server (AD bit set, so TLSA records are
 * DNSSEC-secure), real MTA-STS policy hosts over HTTPS, real smtp-server peers recording every
 * connection. Each case sends through one transport and reads its counters back.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { tlsaData } from './helpers/pki.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { policyText, startStsHosts, type StsHosts } from './helpers/sts-host.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import { thrown } from './helpers/thrown.js';
import { TLSRPT, transportIn } from './helpers/tlsrpt-fleet.js';
import { tlsPolicy, type TlsPolicyOptions } from '../lib/index.js';
import type { TlsPolicyTransport } from '../lib/transport.js';
import { utcDay, type CounterRow } from '../lib/tlsrpt/index.js';

let pki: Pki;
let world: World;
let sts: StsHosts;

/** Domain -> its MX hosts and, for MTA-STS domains, what the policy host serves. */
const DOMAINS: Record<string, { mx: string[]; sts?: string | number }> = {
  'good.test': { mx: ['mx.good.test'] },
  'clear.test': { mx: ['mx.clear.test'] },
  'refuse.test': { mx: ['mx.refuse.test'] },
  'broken.test': { mx: ['mx.broken.test'] },
  'sts.test': { mx: ['mx.sts.test'], sts: policyText('enforce', ['mx.sts.test']) },
  'skip.test': { mx: ['rogue.skip.test', 'mx.skip.test'], sts: policyText('enforce', ['mx.skip.test']) },
  'testing.test': { mx: ['mx.testing.test'], sts: policyText('testing', ['mx.testing.test']) },
  'fetchfail.test': { mx: ['mx.fetchfail.test'], sts: 500 },
  'dane.test': { mx: ['mx.dane.test'] },
  'dane-bad.test': { mx: ['mx.dane-bad.test'] },
  'shadow.test': { mx: ['mx.shadow.test'] },
};

beforeAll(async () => {
  pki = await makePki('TLS-RPT counting test CA');
  const wrongName = await pki.leaf(['www.somewhere-else.test']);
  const daneCert = await pki.leaf(['mx.dane.test']);
  sts = await startStsHosts(loopbackBlock()(2), await pki.leaf(['fallback.invalid']));
  const records: ZoneRecord[] = [];
  for (const [domain, d] of Object.entries(DOMAINS)) {
    d.mx.forEach((exchange, i) => records.push({ name: domain, type: 'MX', exchange, preference: (i + 1) * 10 }));
    if (d.sts === undefined) continue;
    records.push({ name: `_mta-sts.${domain}`, type: 'TXT', text: 'v=STSv1; id=one;' });
    records.push({ name: `mta-sts.${domain}`, type: 'A', address: sts.address });
    sts.set(domain, {
      cert: await pki.leaf([`mta-sts.${domain}`]),
      behaviour: typeof d.sts === 'string' ? { kind: 'policy', body: d.sts } : { kind: 'status', status: d.sts },
    });
  }
  world = await makeWorld(
    pki,
    [
      { name: 'mx.good.test', behaviour: 'starttls' },
      { name: 'mx.clear.test', behaviour: 'no-starttls' },
      { name: 'mx.refuse.test', behaviour: 'starttls-454' },
      { name: 'mx.broken.test', behaviour: 'handshake-fail' },
      { name: 'mx.sts.test', behaviour: 'starttls' },
      { name: 'rogue.skip.test', behaviour: 'starttls' },
      { name: 'mx.skip.test', behaviour: 'starttls' },
      { name: 'mx.testing.test', behaviour: 'starttls', cert: wrongName },
      { name: 'mx.fetchfail.test', behaviour: 'starttls' },
      { name: 'mx.dane.test', behaviour: 'starttls', cert: daneCert },
      { name: 'mx.dane-bad.test', behaviour: 'starttls' },
      { name: 'mx.shadow.test', behaviour: 'starttls', cert: wrongName },
    ],
    (port) => [
      ...records,
      { name: `_${port}._tcp.mx.dane.test`, type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: tlsaData(daneCert.der, 1, 1) },
      { name: `_${port}._tcp.mx.dane-bad.test`, type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) },
    ],
    { ad: true },
  );
});
afterAll(async () => {
  await Promise.all([world?.close(), sts?.close()]);
});

function transportWith(options: TlsPolicyOptions = {}): TlsPolicyTransport {
  return transportIn(world, pki, { mtaSts: { port: sts.port }, connectionReuse: true, ...options });
}

/**
 * Sends `count` messages to `to` through `transport` and reads back the counters of the
 * recipient domain: of every UTC day the sends spanned (a run across midnight reads both days).
 */
async function sendAndCount(transport: TlsPolicyTransport, to: string, count = 1, mail: Record<string, unknown> = {}): Promise<CounterRow[]> {
  const mailer = nodemailer.createTransport(transport);
  const first = utcDay(Date.now());
  for (let i = 0; i < count; i++) await mailer.sendMail({ from: 'sender@origin.test', to, subject: 'hello', text: 'hello', ...mail }).catch(() => undefined);
  const last = utcDay(Date.now());
  const domain = to.split('@')[1]!;
  const rows = await transport.tlsReports.counters(domain, first);
  return last === first ? rows : [...rows, ...(await transport.tlsReports.counters(domain, last))];
}

const successes = (rows: CounterRow[]) => rows.filter((r) => !r.failure).reduce((n, r) => n + r.count, 0);
const failures = (rows: CounterRow[]) => rows.filter((r) => r.failure);
const peer = (host: string) => world.peers.get(host)!;
/** The client's address as the peer saw it at MAIL (the sending MTA's IP). */
const clientAddress = (host: string) => peer(host).events.find((e) => e.command === 'MAIL')?.clientAddress;

describe('which sessions count (RFC 8460 section 4: sessions, not messages)', () => {
  it('three messages over one reused session are one successful session; no policy: no-policy-found for the recipient domain', async () => {
    const transport = transportWith();
    const before = peer('mx.good.test').connections;
    try {
      const rows = await sendAndCount(transport, 'u@good.test', 3);
      expect(peer('mx.good.test').connections - before).toBe(1);
      expect(peer('mx.good.test').messages.length).toBeGreaterThanOrEqual(3);
      expect(rows).toEqual([{ policy: { type: 'no-policy-found', domain: 'good.test', strings: [], mxHosts: [] }, count: 1 }]);
    } finally {
      transport.close();
    }
  });

  it('without connection reuse each message opens a session, and each counts', async () => {
    const transport = transportWith({ connectionReuse: false });
    const before = peer('mx.good.test').connections;
    try {
      const rows = await sendAndCount(transport, 'u@good.test', 3);
      expect(peer('mx.good.test').connections - before).toBe(3);
      expect(successes(rows)).toBe(3);
      expect(failures(rows)).toEqual([]);
    } finally {
      transport.close();
    }
  });

  it('no STARTTLS offered: a failure, starttls-not-supported, with the sending IP the peer saw and the receiving host and IP', async () => {
    const transport = transportWith({ connectionReuse: false });
    try {
      const rows = await sendAndCount(transport, 'u@clear.test');
      expect(peer('mx.clear.test').messages.at(-1)?.secure).toBe(false);
      expect(rows).toEqual([
        {
          policy: { type: 'no-policy-found', domain: 'clear.test', strings: [], mxHosts: [] },
          failure: {
            resultType: 'starttls-not-supported',
            sendingIp: clientAddress('mx.clear.test'),
            receivingMx: 'mx.clear.test',
            receivingIp: world.peers.get('mx.clear.test')!.host,
          },
          count: 1,
          note: expect.stringMatching(/mx\.clear\.test\[[\d.]+\]:\d+ offered no STARTTLS/),
        },
      ]);
      expect(clientAddress('mx.clear.test')).toMatch(/^127\./);
    } finally {
      transport.close();
    }
  });

  it('STARTTLS refused (454): one failure, starttls-not-supported, for the one session that then went on in cleartext', async () => {
    const transport = transportWith({ connectionReuse: false });
    try {
      const rows = await sendAndCount(transport, 'u@refuse.test');
      expect(peer('mx.refuse.test').messages.length).toBe(1);
      expect(rows.map((r) => [r.failure?.resultType, r.count])).toEqual([['starttls-not-supported', 1]]);
    } finally {
      transport.close();
    }
  });

  it('a failed handshake is one failure (validation-failure); the cleartext retry on a new connection is not a TLS session', async () => {
    const transport = transportWith({ connectionReuse: false });
    const before = peer('mx.broken.test').connections;
    try {
      const rows = await sendAndCount(transport, 'u@broken.test', 1, { queuedAt: Date.now() - 3_600_000 });
      expect(peer('mx.broken.test').connections - before).toBe(2);
      expect(peer('mx.broken.test').messages.at(-1)?.secure).toBe(false);
      expect(rows.map((r) => [r.failure?.resultType, r.count])).toEqual([['validation-failure', 1]]);
    } finally {
      transport.close();
    }
  });

  it('a relay is not a recipient domain: nothing is counted', async () => {
    const transport = transportWith({ relay: `${peer('mx.good.test').host}:${world.port}`, connectionReuse: false });
    try {
      const mailer = nodemailer.createTransport(transport);
      await mailer.sendMail({ from: 'sender@origin.test', to: 'u@relayed.test', text: 'hello' });
      for (const domain of ['relayed.test', peer('mx.good.test').host]) expect(await transport.tlsReports.counters(domain, utcDay(Date.now()))).toEqual([]);
    } finally {
      transport.close();
    }
  });

  it('without the tlsRpt option nothing is counted', async () => {
    const transport = transportWith({ tlsRpt: false, connectionReuse: false });
    try {
      expect(await sendAndCount(transport, 'u@good.test')).toEqual([]);
    } finally {
      transport.close();
    }
  });
});

describe('the policy a session is counted under (RFC 8460 section 4.4)', () => {
  it('MTA-STS enforce: sts with the policy lines, the policy domain and the mx patterns', async () => {
    const transport = transportWith({ connectionReuse: false });
    try {
      const rows = await sendAndCount(transport, 'u@sts.test');
      expect(rows).toEqual([
        {
          policy: {
            type: 'sts',
            domain: 'sts.test',
            strings: ['version: STSv1', 'mode: enforce', 'mx: mx.sts.test', 'max_age: 86400'],
            mxHosts: ['mx.sts.test'],
          },
          count: 1,
        },
      ]);
    } finally {
      transport.close();
    }
  });

  it('an MX outside the enforced patterns: a failure (validation-failure) with no sending IP, never connected to; the next MX a success', async () => {
    const transport = transportWith({ connectionReuse: false });
    const rogue = peer('rogue.skip.test').connections;
    try {
      const rows = await sendAndCount(transport, 'u@skip.test');
      expect(peer('rogue.skip.test').connections).toBe(rogue);
      expect(successes(rows)).toBe(1);
      expect(failures(rows)).toEqual([
        expect.objectContaining({
          failure: { resultType: 'validation-failure', sendingIp: '', receivingMx: 'rogue.skip.test', receivingIp: peer('rogue.skip.test').host },
          count: 1,
          note: expect.stringContaining('matches no mx pattern of the MTA-STS policy of skip.test'),
        }),
      ]);
    } finally {
      transport.close();
    }
  });

  it('MTA-STS testing: delivered, and counted as the failure the policy would have been (certificate-host-mismatch)', async () => {
    const transport = transportWith({ connectionReuse: false });
    try {
      const rows = await sendAndCount(transport, 'u@testing.test');
      expect(peer('mx.testing.test').messages.length).toBe(1);
      expect(rows).toEqual([
        expect.objectContaining({
          policy: expect.objectContaining({ type: 'sts', domain: 'testing.test', mxHosts: ['mx.testing.test'] }),
          failure: expect.objectContaining({ resultType: 'certificate-host-mismatch', receivingMx: 'mx.testing.test' }),
          count: 1,
        }),
      ]);
    } finally {
      transport.close();
    }
  });

  it('an MTA-STS policy that cannot be fetched, none cached: sts without policy-string, sts-policy-fetch-error', async () => {
    const transport = transportWith({ connectionReuse: false });
    try {
      const rows = await sendAndCount(transport, 'u@fetchfail.test');
      expect(peer('mx.fetchfail.test').messages.length).toBe(1);
      expect(rows).toEqual([
        expect.objectContaining({
          policy: { type: 'sts', domain: 'fetchfail.test', strings: [], mxHosts: [] },
          failure: expect.objectContaining({ resultType: 'sts-policy-fetch-error', receivingMx: 'mx.fetchfail.test' }),
          note: expect.stringContaining('HTTP status 500'),
        }),
      ]);
    } finally {
      transport.close();
    }
  });

  it('DANE: tlsa with the records enforced and the TLSA base domain; a mismatch is tlsa-invalid', async () => {
    const transport = transportWith({ level: 'dane', connectionReuse: false });
    try {
      const good = await sendAndCount(transport, 'u@dane.test');
      expect(good).toEqual([
        { policy: { type: 'tlsa', domain: 'mx.dane.test', strings: [expect.stringMatching(/^3 1 1 [0-9a-f]{64}$/)], mxHosts: [] }, count: 1 },
      ]);
      const bad = await sendAndCount(transport, 'u@dane-bad.test');
      expect(bad).toEqual([
        expect.objectContaining({
          policy: { type: 'tlsa', domain: 'mx.dane-bad.test', strings: [`3 1 1 ${'ab'.repeat(32)}`], mxHosts: [] },
          failure: expect.objectContaining({ resultType: 'tlsa-invalid', receivingMx: 'mx.dane-bad.test' }),
        }),
      ]);
      expect(peer('mx.dane-bad.test').messages.length).toBe(0);
    } finally {
      transport.close();
    }
  });

  it('a shadow level that fails is counted as a failure of the session, which was delivered', async () => {
    const transport = transportWith({ policy: { 'shadow.test': { level: 'encrypt', shadow: 'secure' } }, connectionReuse: false });
    try {
      const rows = await sendAndCount(transport, 'u@shadow.test');
      expect(peer('mx.shadow.test').messages.length).toBe(1);
      expect(rows.map((r) => [r.policy.type, r.failure?.resultType, r.count])).toEqual([['no-policy-found', 'certificate-host-mismatch', 1]]);
    } finally {
      transport.close();
    }
  });
});

describe('the tlsRpt option', () => {
  it.each([
    [{ tlsRpt: true }, /option tlsRpt must be false or an object/],
    [{ tlsRpt: { contact: 'a@b.test' } }, /option tlsRpt\.organization must be/],
    [{ tlsRpt: { organization: 'X', contact: 'not an address' } }, /option tlsRpt\.contact must be an email address/],
    [{ tlsRpt: { ...TLSRPT, submitter: 'no spaces allowed' } }, /option tlsRpt\.submitter must be a domain name/],
    [{ tlsRpt: { ...TLSRPT, from: '' } }, /option tlsRpt\.from must be an email address/],
    [{ tlsRpt: { ...TLSRPT, sendAll: 'yes' } }, /option tlsRpt\.sendAll must be true or false/],
    [{ tlsRpt: { ...TLSRPT, httpsTimeout: 0 } }, /option tlsRpt\.httpsTimeout must be milliseconds/],
    [{ tlsRpt: { ...TLSRPT, caFile: '/nonexistent/ca.pem' } }, /cannot read tlsRpt\.caFile \/nonexistent\/ca\.pem/],
    [{ tlsRpt: { ...TLSRPT, organisation: 'x' } }, /unknown option tlsRpt\.organisation \(known: organization, contact,/],
  ])('%j is refused', (options, message) => {
    const error = thrown(() => tlsPolicy(options as TlsPolicyOptions)) as Error;
    expect(error).toMatchObject({ code: 'ECONFIG', temporary: false });
    expect(error.message).toMatch(message);
  });
});
