/**
 * MTA-STS in delivery, end to end (RFC 8461 sections 4 and 5): real SMTP peers record what
 * crossed which channel, a real HTTPS policy host serves the policies, the tests' DNS server
 * publishes MX, A and `_mta-sts` TXT records.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';
import { tlsaData } from './helpers/pki.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { policyText, startStsHosts, type StsHosts } from './helpers/sts-host.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import { createResolver, tlsPolicy, type TlsPolicyOptions } from '../lib/index.js';
import { formatProbe, main, probeReport } from '../lib/cli/index.js';
import { thrown } from './helpers/thrown.js';

let pki: Pki;
let world: World;
let sts: StsHosts;

/** Domain -> [policy body, MX hosts in preference order]. */
const DOMAINS: Record<string, { policy?: string; status?: number; mx: string[] }> = {
  'enforce.test': { policy: policyText('enforce', ['mx1.enforce.test']), mx: ['mx1.enforce.test'] },
  'wild.test': { policy: policyText('enforce', ['*.mx.wild.test']), mx: ['a.mx.wild.test'] },
  'skip.test': { policy: policyText('enforce', ['mx1.skip.test']), mx: ['rogue.skip.test', 'mx1.skip.test'] },
  'none-match.test': { policy: policyText('enforce', ['mx.elsewhere.test']), mx: ['rogue.none-match.test'] },
  'badcert.test': { policy: policyText('enforce', ['mx.badcert.test']), mx: ['mx.badcert.test'] },
  'clear.test': { policy: policyText('enforce', ['mx.clear.test']), mx: ['mx.clear.test'] },
  'expired.test': { policy: policyText('enforce', ['mx.expired.test']), mx: ['mx.expired.test'] },
  'testing.test': { policy: policyText('testing', ['mx.testing.test']), mx: ['mx.testing.test'] },
  'testing-good.test': { policy: policyText('testing', ['*.testing-good.test']), mx: ['mx.testing-good.test'] },
  'testing-rogue.test': { policy: policyText('testing', ['mx.elsewhere.test']), mx: ['rogue.testing-rogue.test'] },
  'none.test': { policy: policyText('none', []), mx: ['mx.none.test'] },
  'fetchfail.test': { status: 500, mx: ['mx.fetchfail.test'] },
  'tabled.test': { policy: policyText('enforce', ['mx.elsewhere.test']), mx: ['mx.tabled.test'] },
};

beforeAll(async () => {
  pki = await makePki('MTA-STS delivery test CA');
  const wrongName = await pki.leaf(['www.somewhere-else.test']);
  const expired = await pki.leaf(['mx.expired.test'], { expired: true });
  const hostNames = [...new Set(Object.values(DOMAINS).flatMap((d) => d.mx))];
  sts = await startStsHosts(loopbackBlock()(2), await pki.leaf(['fallback.invalid']));
  const records: ZoneRecord[] = [];
  for (const [domain, d] of Object.entries(DOMAINS)) {
    d.mx.forEach((exchange, i) => records.push({ name: domain, type: 'MX', exchange, preference: (i + 1) * 10 }));
    records.push({ name: `_mta-sts.${domain}`, type: 'TXT', text: 'v=STSv1; id=one;' });
    records.push({ name: `mta-sts.${domain}`, type: 'A', address: sts.address });
    sts.set(domain, {
      cert: await pki.leaf([`mta-sts.${domain}`]),
      behaviour: d.policy !== undefined ? { kind: 'policy', body: d.policy } : { kind: 'status', status: d.status ?? 404 },
    });
  }
  world = await makeWorld(
    pki,
    hostNames.map((name) =>
      name === 'mx.badcert.test' || name === 'mx.testing.test'
        ? { name, behaviour: 'starttls' as const, cert: wrongName }
        : name === 'mx.expired.test'
          ? { name, behaviour: 'starttls' as const, cert: expired }
          : { name, behaviour: name === 'mx.clear.test' ? ('no-starttls' as const) : ('starttls' as const) },
    ),
    records,
  );
});
afterAll(async () => {
  await Promise.all([world?.close(), sts?.close()]);
});

const send = (to: string, options: TlsPolicyOptions = {}) => world.send({ mtaSts: { port: sts.port }, connectionReuse: false, ...options }, { to });
const mailTo = (host: string) => world.mailEvents().filter((e) => e.host === host);

describe('enforce (RFC 8461 sections 4.1, 4.2)', () => {
  it('a matching MX with a valid certificate: delivered at secure, Verified, the audit names the policy', async () => {
    const { info, error } = await send('u@enforce.test');
    expect(error).toBeUndefined();
    const attempt = info!.deliveries[0]!.attempts[0]!;
    expect(attempt.audit).toMatchObject({
      level: 'secure',
      auth: 'Verified',
      policy_type: 'sts',
      sts_mode: 'enforce',
      sts_id: 'one',
      sts_result: 'pass',
      matched: 'mx1.enforce.test',
    });
    expect(info!.deliveries[0]!.mtaSts?.policy).toMatchObject({ mode: 'enforce', mx: ['mx1.enforce.test'] });
    expect(mailTo('mx1.enforce.test').every((e) => e.secure)).toBe(true);
  });

  it('a wildcard pattern covers one more label', async () => {
    const { info, error } = await send('u@wild.test');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'secure', auth: 'Verified', matched: 'a.mx.wild.test' });
  });

  it('an MX outside the patterns is never connected to; the next MX gets the mail', async () => {
    const { info, error } = await send('u@skip.test');
    expect(error).toBeUndefined();
    const [first, second] = info!.deliveries[0]!.attempts;
    expect(first).toMatchObject({ mx: 'rogue.skip.test', decision: 'next', stage: 'policy', resultType: 'validation-failure' });
    expect(first!.reason).toMatch(
      /MX host rogue\.skip\.test matches no mx pattern of the MTA-STS policy of skip\.test \(id one, mode enforce\): mx1\.skip\.test/,
    );
    expect(second!.audit).toMatchObject({ mx: 'mx1.skip.test', level: 'secure', auth: 'Verified' });
    expect(world.peers.get('rogue.skip.test')!.events.length).toBe(0);
  });

  it('no MX inside the patterns: deferred, nothing connected', async () => {
    const { error } = await send('u@none-match.test');
    expect(error).toMatchObject({ temporary: true });
    expect(error!.message).toMatch(/none-match\.test/);
    expect(error!.message).toMatch(/matches no mx pattern of the MTA-STS policy/);
    expect(world.peers.get('rogue.none-match.test')!.events.length).toBe(0);
  });

  const failures: Array<[string, string, string, RegExp]> = [
    ['a certificate for another name', 'badcert.test', 'mx.badcert.test', /certificate-host-mismatch/],
    ['no STARTTLS', 'clear.test', 'mx.clear.test', /starttls-not-supported/],
    ['an expired certificate', 'expired.test', 'mx.expired.test', /certificate-expired/],
  ];
  it.each(failures)('%s: deferred, nothing of the mail sent, in clear or otherwise', async (_name, domain, host, resultType) => {
    const { info, error } = await send(`u@${domain}`);
    expect(info).toBeUndefined();
    expect(error).toMatchObject({ temporary: true });
    const attempt = error!.deliveries![0]!.attempts[0]!;
    expect(attempt.level).toBe('secure');
    expect(attempt.resultType).toMatch(resultType);
    expect(attempt.audit).toMatchObject({ policy_type: 'sts', sts_mode: 'enforce' });
    expect(attempt.audit.sts_result).toMatch(/^fail: /);
    expect(mailTo(host)).toEqual([]);
  });
});

describe('testing, none, failures, scope', () => {
  it('testing with a failing MX: delivered as without the policy, the would-be failure reported', async () => {
    const { info, error } = await send('u@testing.test');
    expect(error).toBeUndefined();
    const attempt = info!.deliveries[0]!.attempts[0]!;
    expect(attempt.audit).toMatchObject({ level: 'may', policy_type: 'sts', sts_mode: 'testing', sts_id: 'one' });
    expect(attempt.audit.sts_result).toMatch(/^fail: .*mx\.testing\.test/);
    expect(mailTo('mx.testing.test').some((e) => e.command === 'DATA')).toBe(true);
  });

  it('testing with an MX outside the patterns: delivered, and reported as outside', async () => {
    const { info, error } = await send('u@testing-rogue.test');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit.sts_result).toMatch(
      /^fail: .*matches no mx pattern of the MTA-STS policy of testing-rogue\.test \(id one, mode testing\)/,
    );
  });

  it('testing with a good MX: delivered as without the policy, pass', async () => {
    const { info } = await send('u@testing-good.test');
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'may', auth: 'Trusted', sts_mode: 'testing', sts_result: 'pass' });
  });

  it('mode none: no policy', async () => {
    const { info, error } = await send('u@none.test');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'may', policy_type: 'no-policy-found', sts_mode: '', sts_result: '' });
  });

  it('a failed fetch with nothing cached: delivered as without a policy, the failure recorded', async () => {
    const { info, error } = await send('u@fetchfail.test');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.mtaSts?.failure).toMatchObject({ resultType: 'sts-policy-fetch-error' });
    expect(info!.deliveries[0]!.mtaSts?.failure?.reason).toMatch(/HTTP status 500/);
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'may', policy_type: 'no-policy-found' });
  });

  it("a policy-table entry is the operator's word: MTA-STS is not looked up", async () => {
    const before = world.dns.queries.filter((q) => q.name === '_mta-sts.tabled.test').length;
    const { info, error } = await send('u@tabled.test', { policy: 'tabled.test may' });
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'may', policy_type: 'no-policy-found' });
    expect(world.dns.queries.filter((q) => q.name === '_mta-sts.tabled.test').length).toBe(before);
  });

  it('without the table entry the same domain is enforced (its MX is outside the patterns: deferred)', async () => {
    const before = mailTo('mx.tabled.test').length;
    const { error } = await send('u@tabled.test');
    expect(error).toMatchObject({ temporary: true });
    expect(mailTo('mx.tabled.test').length).toBe(before);
  });

  it('level none and mtaSts: false: no lookup at all', async () => {
    for (const options of [{ level: 'none' as const }, { mtaSts: false }]) {
      const before = world.dns.queries.filter((q) => q.name === '_mta-sts.skip.test').length;
      const { error } = await world.send({ connectionReuse: false, ...options }, { to: 'u@skip.test' });
      expect(error).toBeUndefined();
      expect(world.dns.queries.filter((q) => q.name === '_mta-sts.skip.test').length).toBe(before);
    }
  });

  it('hostsRequireTls on a host: the Exim list governs that host, not MTA-STS', async () => {
    const { info, error } = await send('u@none-match.test', { hostsRequireTls: ['rogue.none-match.test'] });
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'encrypt', policy_type: 'no-policy-found' });
  });
});

describe('options', () => {
  it.each([
    [{ mtaSts: { port: 0 } }, /option mtaSts\.port must be a port number/],
    [{ mtaSts: { fetchTimeout: -1 } }, /option mtaSts\.fetchTimeout must be milliseconds/],
    [{ mtaSts: { cafile: 'x' } }, /unknown option mtaSts\.cafile \(known: caFile, port, fetchTimeout\)/],
    [{ mtaSts: 'yes' }, /option mtaSts must be true, false or an object/],
    [{ mtaSts: { caFile: '/nonexistent/ca.pem' } }, /cannot read mtaSts\.caFile \/nonexistent\/ca\.pem/],
    [{ store: 'redis://x' }, /option store must be a Keyv instance or \{ file: "path" \}/],
    [{ store: { file: '' } }, /option store\.file must be a file path/],
  ])('%j is refused', (options, message) => {
    const error = thrown(() => tlsPolicy(options as TlsPolicyOptions)) as Error;
    expect(error).toMatchObject({ code: 'ECONFIG', temporary: false });
    expect(error.message).toMatch(message);
  });
});

describe('DANE and MTA-STS together: DANE governs where it applies (RFC 8461 section 2)', () => {
  let dane: World;
  let hosts: StsHosts;
  let danePki: Pki;
  beforeAll(async () => {
    danePki = await makePki('DANE and MTA-STS test CA');
    const certs = {
      win: await danePki.leaf(['mx.dane-win.test']),
      bad: await danePki.leaf(['mx.dane-bad.test']),
      none: await danePki.leaf(['mx.dane-none.test']),
    };
    hosts = await startStsHosts(loopbackBlock()(2), await danePki.leaf(['fallback.invalid']));
    const policies: Record<string, string[]> = {
      'dane-win.test': ['mx.elsewhere.test'], // does not cover the MX: DANE still delivers
      'dane-bad.test': ['mx.dane-bad.test'], // covers it, and PKIX would pass: DANE's mismatch still defers
      'dane-none.test': ['mx.dane-none.test'], // no TLSA records: MTA-STS governs
    };
    const records: ZoneRecord[] = [];
    for (const [domain, mx] of Object.entries(policies)) {
      records.push({ name: domain, type: 'MX', exchange: `mx.${domain}`, preference: 10 });
      records.push({ name: `_mta-sts.${domain}`, type: 'TXT', text: 'v=STSv1; id=d1' });
      records.push({ name: `mta-sts.${domain}`, type: 'A', address: hosts.address });
      hosts.set(domain, { cert: await danePki.leaf([`mta-sts.${domain}`]), behaviour: { kind: 'policy', body: policyText('enforce', mx) } });
    }
    const tlsa = (port: number): ZoneRecord[] => [
      { name: `_${port}._tcp.mx.dane-win.test`, type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: tlsaData(certs.win.der, 1, 1) },
      { name: `_${port}._tcp.mx.dane-bad.test`, type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) },
    ];
    dane = await makeWorld(
      danePki,
      [
        { name: 'mx.dane-win.test', behaviour: 'starttls', cert: certs.win },
        { name: 'mx.dane-bad.test', behaviour: 'starttls', cert: certs.bad },
        { name: 'mx.dane-none.test', behaviour: 'starttls', cert: certs.none },
      ],
      (port) => [...records, ...tlsa(port)],
      { ad: true },
    );
  });
  afterAll(async () => {
    await Promise.all([dane?.close(), hosts?.close()]);
  });
  const sendDane = (to: string, level: 'dane' | 'may') => dane.send({ level, mtaSts: { port: hosts.port }, connectionReuse: false }, { to });
  const mails = (host: string) => dane.mailEvents().filter((e) => e.host === host && e.command === 'MAIL').length;

  it('usable TLSA records: DANE delivers, also to an MX no mx pattern covers', async () => {
    const { info, error } = await sendDane('u@dane-win.test', 'dane');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'dane', auth: 'Verified', policy_type: 'tlsa', sts_mode: '' });
  });

  it('a DANE mismatch is not rescued by an MTA-STS policy that would pass: deferred', async () => {
    const before = mails('mx.dane-bad.test');
    const { error } = await sendDane('u@dane-bad.test', 'dane');
    expect(error).toMatchObject({ temporary: true });
    expect(error!.deliveries![0]!.attempts[0]!.audit).toMatchObject({ level: 'dane', policy_type: 'tlsa', result_type: 'tlsa-invalid' });
    expect(mails('mx.dane-bad.test')).toBe(before);
  });

  it('the same host at level may (DANE not asked for): MTA-STS governs and delivers at secure', async () => {
    const { info, error } = await sendDane('u@dane-bad.test', 'may');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'secure', auth: 'Verified', policy_type: 'sts', sts_mode: 'enforce' });
  });

  it('no TLSA records at level dane: MTA-STS governs', async () => {
    const { info, error } = await sendDane('u@dane-none.test', 'dane');
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({ level: 'secure', auth: 'Verified', policy_type: 'sts' });
  });
});

describe('the probe (RFC 8461: what the policy admits, and why)', () => {
  it('shows the TXT record, the fetch, the policy, the cache and which MX hosts the policy admits', async () => {
    const transport = tlsPolicy({ port: world.port, caFile: pki.caFile, dns: createResolver({ servers: [world.dns.server] }), mtaSts: { port: sts.port } });
    try {
      const first = probeReport(await transport.probe('skip.test'));
      expect(first.mtaSts).toMatchObject({
        domain: 'skip.test',
        record: { id: 'one', text: 'v=STSv1; id=one;' },
        fetch: { url: 'https://mta-sts.skip.test/.well-known/mta-sts.txt', ok: true, status: 200, contentType: 'text/plain' },
        policy: { id: 'one', mode: 'enforce', mx: ['mx1.skip.test'], maxAge: 86400 },
        cache: 'fetched',
        admits: [
          { host: 'rogue.skip.test', admitted: false },
          { host: 'mx1.skip.test', admitted: true },
        ],
      });
      expect(first.mtaSts!.fetch!.bytes).toBe(Buffer.byteLength(policyText('enforce', ['mx1.skip.test'])));
      const text = formatProbe(first);
      expect(text).toMatch(/MTA-STS skip\.test/);
      expect(text).toMatch(/mode enforce; mx mx1\.skip\.test; max_age 86400/);
      expect(text).toMatch(/rogue\.skip\.test\s+not admitted: matches no mx pattern/);
      expect(text).toMatch(/MTA-STS\s+enforce: fail: .*matches no mx pattern/);
      // The second probe finds the policy in the transport's cache: no fetch.
      const second = probeReport(await transport.probe('skip.test'));
      expect(second.mtaSts).toMatchObject({ cache: 'cache' });
      expect(second.mtaSts!.fetch).toBeUndefined();
    } finally {
      transport.close();
    }
  });

  it('a fetch failure shows the reason and its RFC 8460 result type', async () => {
    const transport = tlsPolicy({ port: world.port, caFile: pki.caFile, dns: createResolver({ servers: [world.dns.server] }), mtaSts: { port: sts.port } });
    try {
      const report = probeReport(await transport.probe('fetchfail.test'));
      expect(report.mtaSts).toMatchObject({ cache: 'none', fetch: { ok: false, status: 500 }, failure: { resultType: 'sts-policy-fetch-error' } });
      expect(formatProbe(report)).toMatch(/sts-policy-fetch-error: fetching it failed: .*HTTP status 500/);
    } finally {
      transport.close();
    }
  });
});

describe('the probe command', () => {
  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: {} });
    return { code, out, err };
  }
  const base = () => ['probe', 'skip.test', '--json', '--port', String(world.port), '--resolver', world.dns.server, '--ca-file', pki.caFile];

  it('--mta-sts-port: the JSON report has the MTA-STS lookup; exit 0 (the admitted MX would get the mail at secure)', async () => {
    const { code, out, err } = await cli(...base(), '--mta-sts-port', String(sts.port), '--mta-sts-timeout', '5000');
    expect(err).toBe('');
    const report = JSON.parse(out) as { mtaSts?: { policy?: { mode: string }; admits: unknown[] }; attempts: Array<{ audit: { level: string } }> };
    expect(report.mtaSts?.policy?.mode).toBe('enforce');
    expect(report.mtaSts?.admits).toEqual([
      { host: 'rogue.skip.test', admitted: false },
      { host: 'mx1.skip.test', admitted: true },
    ]);
    expect(report.attempts.at(-1)!.audit.level).toBe('secure');
    expect(code).toBe(0);
  });

  it('--no-mta-sts: no lookup, no MTA-STS in the report', async () => {
    const { code, out } = await cli(...base(), '--no-mta-sts');
    const report = JSON.parse(out) as { mtaSts?: unknown; attempts: Array<{ mx: string }> };
    expect(report.mtaSts).toBeUndefined();
    expect(report.attempts[0]!.mx).toBe('rogue.skip.test');
    expect(code).toBe(0);
  });

  it.each([
    [['--no-mta-sts', '--mta-sts-port', '443'], /--no-mta-sts and --mta-sts-port exclude each other/],
    [['--mta-sts-port', '0'], /--mta-sts-port/],
    [['--mta-sts-timeout', 'soon'], /--mta-sts-timeout/],
  ])('%j is a usage error (exit 2)', async (flags, message) => {
    const { code, err } = await cli(...base(), ...flags);
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });
});
