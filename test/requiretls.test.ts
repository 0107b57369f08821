/**
 * REQUIRETLS and `TLS-Required: No` (RFC 8689), end to end: real SMTP peers (smtp-server
 * advertises REQUIRETLS inside TLS, or not) record every MAIL with its parameters and channel;
 * the tests' DNS server answers as a validating resolver (AD) with TLSA records; a real HTTPS
 * host serves MTA-STS policies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { tlsaData } from './helpers/pki.js';
import { policyText, startStsHosts, type StsHosts } from './helpers/sts-host.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import type { TlsPolicyOptions } from '../lib/index.js';
import { thrown } from './helpers/thrown.js';
import { tlsPolicy } from '../lib/index.js';

let pki: Pki;
let world: World;
let sts: StsHosts;

/** Domain -> MX hosts (preference order), and how the domain is authenticated. */
const DOMAINS: Record<string, { mx: string[]; tlsa?: 'match' | 'mismatch'; sts?: { mode: 'enforce' | 'testing'; mx: string[] } }> = {
  'dane-ok.test': { mx: ['mx.dane-ok.test'], tlsa: 'match' },
  'dane-noreq.test': { mx: ['mx.dane-noreq.test'], tlsa: 'match' },
  'dane-second.test': { mx: ['mx1.dane-second.test', 'mx2.dane-second.test'], tlsa: 'match' },
  'dane-bad.test': { mx: ['mx.dane-bad.test'], tlsa: 'mismatch' },
  'plain.test': { mx: ['mx.plain.test'] },
  'sts-ok.test': { mx: ['mx.sts-ok.test'], sts: { mode: 'enforce', mx: ['mx.sts-ok.test'] } },
  'sts-testing.test': { mx: ['mx.sts-testing.test'], sts: { mode: 'testing', mx: ['mx.sts-testing.test'] } },
  'sts-outside.test': { mx: ['mx.sts-outside.test'], sts: { mode: 'enforce', mx: ['mx.elsewhere.test'] } },
};
const NO_REQUIRETLS = new Set(['mx.dane-noreq.test', 'mx1.dane-second.test']);

beforeAll(async () => {
  pki = await makePki('REQUIRETLS test CA');
  sts = await startStsHosts(loopbackBlock()(2), await pki.leaf(['fallback.invalid']));
  const certs = new Map<string, Awaited<ReturnType<Pki['leaf']>>>();
  for (const host of Object.values(DOMAINS).flatMap((d) => d.mx)) certs.set(host, await pki.leaf([host]));
  const records: ZoneRecord[] = [];
  for (const [domain, d] of Object.entries(DOMAINS)) {
    d.mx.forEach((exchange, i) => records.push({ name: domain, type: 'MX', exchange, preference: (i + 1) * 10 }));
    if (d.sts) {
      records.push({ name: `_mta-sts.${domain}`, type: 'TXT', text: 'v=STSv1; id=r1' });
      records.push({ name: `mta-sts.${domain}`, type: 'A', address: sts.address });
      sts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: { kind: 'policy', body: policyText(d.sts.mode, d.sts.mx) } });
    }
  }
  const tlsa = (port: number): ZoneRecord[] =>
    Object.values(DOMAINS).flatMap((d) =>
      d.tlsa
        ? d.mx.map((host): ZoneRecord => ({
            name: `_${port}._tcp.${host}`,
            type: 'TLSA',
            usage: 3,
            selector: 1,
            matchingType: 1,
            data: d.tlsa === 'match' ? tlsaData(certs.get(host)!.der, 1, 1) : 'cd'.repeat(32),
          }))
        : [],
    );
  world = await makeWorld(
    pki,
    [...certs].map(([name, cert]) => ({ name, behaviour: 'starttls' as const, cert, requireTls: !NO_REQUIRETLS.has(name) })),
    (port) => [...records, ...tlsa(port)],
    { ad: true },
  );
});
afterAll(async () => {
  await Promise.all([world?.close(), sts?.close()]);
});

const mails = (host: string) => world.peers.get(host)!.events.filter((e) => e.command === 'MAIL');
const send = (to: string, mail: Record<string, unknown> = {}, options: TlsPolicyOptions = {}) =>
  world.send({ mtaSts: { port: sts.port }, connectionReuse: false, ...options }, { to, ...mail });

describe('REQUIRETLS (RFC 8689 section 4.2.1)', () => {
  it('DANE-verified MX that advertises REQUIRETLS: sent with MAIL FROM ... REQUIRETLS, inside TLS', async () => {
    const before = mails('mx.dane-ok.test').length;
    const { info, error } = await send('u@dane-ok.test', { requireTls: true });
    expect(error).toBeUndefined();
    const mail = mails('mx.dane-ok.test').slice(before);
    expect(mail).toHaveLength(1);
    expect(mail[0]).toMatchObject({ secure: true });
    expect(mail[0]!.params).toContain('REQUIRETLS');
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'dane', auth: 'Verified', requiretls: 'yes', policy_type: 'tlsa' });
  });

  it("Nodemailer's own requireTLSExtensionEnabled means the same", async () => {
    const before = mails('mx.dane-ok.test').length;
    const { error } = await send('u@dane-ok.test', { requireTLSExtensionEnabled: true });
    expect(error).toBeUndefined();
    expect(mails('mx.dane-ok.test').slice(before)[0]!.params).toContain('REQUIRETLS');
  });

  it('without requireTls, MAIL FROM carries no REQUIRETLS', async () => {
    const before = mails('mx.dane-ok.test').length;
    await send('u@dane-ok.test');
    expect(mails('mx.dane-ok.test').slice(before)[0]!.params).not.toContain('REQUIRETLS');
  });

  it('an MTA-STS policy in enforce mode that admits the MX qualifies it', async () => {
    const before = mails('mx.sts-ok.test').length;
    const { info, error } = await send('u@sts-ok.test', { requireTls: true });
    expect(error).toBeUndefined();
    expect(mails('mx.sts-ok.test').slice(before)[0]!.params).toContain('REQUIRETLS');
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'secure', auth: 'Verified', sts_mode: 'enforce', requiretls: 'yes' });
  });

  it('an MX that does not advertise REQUIRETLS is skipped; the next one that does gets the message', async () => {
    const { info, error } = await send('u@dane-second.test', { requireTls: true });
    expect(error).toBeUndefined();
    const [first, second] = info!.deliveries[0]!.attempts;
    expect(first!.reason).toMatch(
      /mx1\.dane-second\.test\[.*\]:\d+ did not advertise REQUIRETLS after STARTTLS, and the message requires it \(RFC 8689 section 4\.2\.1\)/,
    );
    expect(mails('mx1.dane-second.test')).toHaveLength(0);
    expect(second!.audit).toMatchObject({ mx: 'mx2.dane-second.test', auth: 'Verified' });
  });

  const bounced: Array<[string, string, RegExp]> = [
    ['no MX advertises REQUIRETLS', 'dane-noreq.test', /did not advertise REQUIRETLS/],
    ['no DANE, no MTA-STS', 'plain.test', /is authenticated neither by DANE .* nor by an MTA-STS policy in enforce mode/],
    ['an MTA-STS policy in testing mode', 'sts-testing.test', /nor by an MTA-STS policy in enforce mode/],
    ['an MTA-STS policy that does not admit the MX', 'sts-outside.test', /matches no mx pattern of the MTA-STS policy/],
  ];
  it.each(bounced)('%s: returned with 5.7.30 (EREQUIRETLS, permanent), nothing of the mail sent anywhere', async (_name, domain, reason) => {
    const before = world.mailEvents().length;
    const { info, error } = await send(`u@${domain}`, { requireTls: true });
    expect(info).toBeUndefined();
    expect(error).toMatchObject({ code: 'EREQUIRETLS', temporary: false, rejected: [`u@${domain}`] });
    expect(error!.message).toMatch(new RegExp(`^${domain.replace(/\./g, '\\.')}: 5\\.7\\.30 REQUIRETLS support required`));
    expect(error!.message).toMatch(reason);
    expect(world.mailEvents().length).toBe(before);
  });

  it('a DANE mismatch is a TLS failure as ever: deferred (temporary), not returned', async () => {
    const { error } = await send('u@dane-bad.test', { requireTls: true });
    expect(error).toMatchObject({ code: 'ETLS', temporary: true, pending: ['u@dane-bad.test'] });
    expect(mails('mx.dane-bad.test')).toHaveLength(0);
  });

  it('requireTls that is not a boolean is refused', async () => {
    const { error } = await send('u@dane-ok.test', { requireTls: 'yes' });
    expect(error).toMatchObject({ code: 'EMESSAGE', temporary: false });
    expect(error!.message).toMatch(/the sendMail option requireTls must be true or false, not string/);
  });
});

describe('TLS-Required: No (RFC 8689 section 4.2.2)', () => {
  const header = { headers: { 'TLS-Required': 'No' } };

  it('a DANE mismatch at level dane: delivered over TLS without authentication, recorded as relaxed by the header', async () => {
    const before = mails('mx.dane-bad.test').length;
    const { info, error } = await send('u@dane-bad.test', header, { level: 'dane' });
    expect(error).toBeUndefined();
    expect(mails('mx.dane-bad.test').slice(before)).toMatchObject([{ secure: true }]);
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'may', tls_required: 'no', requiretls: '' });
  });

  it('control: the same without the header is deferred', async () => {
    const { error } = await send('u@dane-bad.test', {}, { level: 'dane' });
    expect(error).toMatchObject({ code: 'ETLS', temporary: true });
  });

  it('an MTA-STS policy in enforce mode is not applied', async () => {
    const { info, error } = await send('u@sts-outside.test', { headers: { 'tls-required': ' no ' } });
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'may', sts_mode: '', tls_required: 'no' });
    expect(info!.deliveries[0]!.mtaSts).toBeUndefined();
  });

  it("a policy-table entry is the operator's word and still holds", async () => {
    const { error } = await send('u@dane-bad.test', header, { policy: 'dane-bad.test dane' });
    expect(error).toMatchObject({ code: 'ETLS', temporary: true });
  });

  it('honorTlsRequiredNo: false ignores the header', async () => {
    const { error } = await send('u@dane-bad.test', header, { level: 'dane', honorTlsRequiredNo: false });
    expect(error).toMatchObject({ code: 'ETLS' });
  });

  it('requireTls wins over the header', async () => {
    const { error } = await send('u@plain.test', { requireTls: true, ...header });
    expect(error).toMatchObject({ code: 'EREQUIRETLS' });
  });

  it('honorTlsRequiredNo must be a boolean', () => {
    const error = thrown(() => tlsPolicy({ honorTlsRequiredNo: 'no' as unknown as boolean })) as Error;
    expect(error).toMatchObject({ code: 'ECONFIG' });
    expect(error.message).toMatch(/option honorTlsRequiredNo must be true or false, not "no"/);
  });
});
