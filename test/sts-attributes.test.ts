/**
 * Postfix 3.10's attributes for an outside policy source (an MTA-STS resolver behind socketmap):
 * policy_type, policy_domain, policy_ttl, policy_string, mx_host_pattern, policy_failure. Checked
 * as smtp_tls_policy.c checks them; with policy_type=sts the MX host must match a pattern and the
 * certificate is matched against that host name (smtp_tls_authorize_mx_hostname(),
 * smtp_tls_enforce_sts_mx_patterns = yes; RFC 8461 section 4.1). Tables of cases, then a real
 * peer reached through policyLookup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyError, type TlsPolicyOptions } from '../lib/index.js';
import { planHost, stsMxRule, type HostSettings, type HostTarget } from '../lib/plan/host.js';
import { checkPolicyText } from '../lib/policy/index.js';
import type { Level, Policy } from '../lib/types.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js';
import { makePki, type Pki } from './helpers/pki.js';
import { loopbackBlock, startPeer, type Peer } from './helpers/smtp-peer.js';

const STS = 'policy_type=sts policy_domain=example.net mx_host_pattern=mx1.example.net mx_host_pattern=*.backup.example.net';

describe('the attributes in a table line', () => {
  it('an MTA-STS resolver answer is accepted and kept', () => {
    const check = checkPolicyText(
      `example.net secure match=mx1.example.net:.backup.example.net ${STS} policy_ttl=86400 policy_string=version:STSv1 policy_string=mode:enforce\n`,
      't',
    );
    expect(check.problems).toEqual([]);
    expect(check.table!.get('example.net')!.reported).toEqual({
      type: 'sts',
      domain: 'example.net',
      ttl: 86400,
      strings: ['version:STSv1', 'mode:enforce'],
      mxHostPatterns: ['mx1.example.net', '*.backup.example.net'],
    });
  });
  it.each([
    ['example.net may policy_type=no-policy-found policy_domain=example.net policy_failure=sts-policy-fetch-error', []],
    ['example.net secure policy_domain=example.net', ['attribute "policy_domain" for example.net needs a policy_type too']],
    ['example.net secure mx_host_pattern=mx.example.net', ['attribute "mx_host_pattern" for example.net needs a policy_type too']],
    ['example.net secure policy_type=tlsa', ['invalid policy_type "tlsa" for example.net (expected sts or no-policy-found)']],
    ['example.net secure policy_type=sts policy_type=sts', ['attribute "policy_type" is given more than once for example.net']],
    ['example.net secure policy_type=sts policy_ttl=1d', ['invalid policy_ttl "1d" for example.net (expected a number of seconds)']],
    [
      'example.net secure policy_type=sts policy_failure=oops',
      ['invalid policy_failure "oops" for example.net (expected one of sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid, validation-failure)'],
    ],
    ['example.net secure policy_type=sts mx_host_pattern=*.', ['invalid mx_host_pattern "*." for example.net: empty name (expected a host name or *.domain)']],
    ['example.net secure policy_type=sts policy_domain=bad..example', ['invalid policy_domain "bad..example" for example.net: empty label']],
  ])('%s', (line, problems) => {
    expect(checkPolicyText(`${line}\n`, 't').problems.map((p) => p.message)).toEqual(problems);
  });
});

describe('stsMxRule and planHost', () => {
  const policy = (level: Level, extra: Partial<Policy> = {}): Policy => ({
    level,
    source: 't',
    reported: { type: 'sts', domain: 'example.net', mxHostPatterns: ['mx1.example.net', '*.backup.example.net'] },
    ...extra,
  });
  it.each<[string, Level, string, boolean | undefined]>([
    ['exact name', 'secure', 'mx1.example.net', true],
    ['exact name, other case and a trailing dot', 'verify', 'MX1.example.net.', true],
    ['one label under *.', 'secure', 'a.backup.example.net', true],
    ['two labels under *. (one only, RFC 8461 section 4.1)', 'secure', 'a.b.backup.example.net', false],
    ['the *. domain itself', 'secure', 'backup.example.net', false],
    ['another host', 'secure', 'mx2.example.net', false],
    ['level encrypt: no rule (no names are matched)', 'encrypt', 'mx2.example.net', undefined],
  ])('%s', (_, level, host, matched) => {
    expect(stsMxRule(policy(level), host)?.matched).toBe(matched);
  });
  it('no-policy-found, or no patterns: no rule', () => {
    expect(stsMxRule(policy('secure', { reported: { type: 'no-policy-found' } }), 'x.example')).toBeUndefined();
    expect(stsMxRule(policy('secure', { reported: { type: 'sts' } }), 'x.example')).toBeUndefined();
  });

  const target = (host: string, mxSecure = false): HostTarget => ({
    host,
    address: '192.0.2.1',
    port: 25,
    mxSecure,
    implicitTls: false,
    viaMx: true,
    canonical: host,
  });
  const settings: HostSettings = {
    nexthop: 'example.net',
    insecureMxPolicy: 'dane',
    digest: 'sha256',
    fallbackFor: () => undefined,
    files: () => ({}),
    rules: { strict: false },
  };
  it('a host that matches no pattern is refused before any connection, naming the patterns', () => {
    const plan = planHost(policy('secure', { match: ['mx1.example.net'] }), target('evil.example.org'), settings);
    expect(plan.refused).toBe(
      'evil.example.org[192.0.2.1]:25: MX host evil.example.org matches no mx_host_pattern of the MTA-STS policy of example.net (mx1.example.net, *.backup.example.net)',
    );
    expect(plan.refusedType).toBe('validation-failure');
  });
  it('a matching host: match becomes hostname, trusted at secure although the MX answer was not DNSSEC-secure', () => {
    const plan = planHost(policy('secure', { match: ['mx1.example.net', '.backup.example.net'] }), target('a.backup.example.net'), settings);
    expect(plan.refused).toBeUndefined();
    expect(plan.names).toEqual(['a.backup.example.net']);
  });
  it('without the policy attributes, secure keeps its rule: an insecure MX name is not trusted', () => {
    const plan = planHost({ level: 'secure', source: 't', match: ['hostname'] }, target('a.backup.example.net'), settings);
    expect(plan.names).toEqual([]);
  });
});

describe('through policyLookup, against real peers', () => {
  let pki: Pki;
  let good: Peer;
  let rogue: Peer;
  let dns: TestDnsServer;
  const ip = loopbackBlock();
  beforeAll(async () => {
    pki = await makePki();
    const cert = await pki.leaf(['mx1.sts.test', 'rogue.sts.test']);
    good = await startPeer({ host: ip(2), port: 0, behaviour: 'starttls', cert: cert.chainPem, key: cert.keyPem });
    rogue = await startPeer({ host: ip(3), port: good.port, behaviour: 'starttls', cert: cert.chainPem, key: cert.keyPem });
    dns = await startDnsServer({
      host: ip(1),
      zone: [
        { name: 'sts.test', type: 'MX', exchange: 'rogue.sts.test', preference: 5 },
        { name: 'sts.test', type: 'MX', exchange: 'mx1.sts.test', preference: 10 },
        { name: 'rogue.sts.test', type: 'A', address: ip(3) },
        { name: 'mx1.sts.test', type: 'A', address: ip(2) },
      ],
    });
  });
  afterAll(async () => {
    await Promise.all([good?.close(), rogue?.close(), dns?.close()]);
    pki?.close();
  });

  const lookup = async (key: string) =>
    key === 'sts.test' ? 'secure match=mx1.sts.test policy_type=sts policy_domain=sts.test mx_host_pattern=mx1.sts.test' : undefined;

  async function send(options: TlsPolicyOptions) {
    const transport = nodemailer.createTransport(
      tlsPolicy({ port: good.port, caFile: pki.caFile, dns: createResolver({ servers: [dns.server] }), connectionReuse: false, ...options }),
    );
    try {
      return { info: await transport.sendMail({ from: 's@origin.test', to: 'u@sts.test', text: 'x' }), error: undefined };
    } catch (error) {
      return { info: undefined, error: error as TlsPolicyError };
    } finally {
      transport.close();
    }
  }

  it('the preferred MX outside the pattern is never connected to; the mail goes to the one inside, Verified', async () => {
    const rogueBefore = rogue.events.length;
    const goodMails = good.events.filter((e) => e.command === 'MAIL').length;
    const { info, error } = await send({ policyLookup: lookup });
    expect(error).toBeUndefined();
    expect(rogue.events.length).toBe(rogueBefore);
    const attempts = info!.deliveries[0]!.attempts;
    expect(attempts[0]!.reason).toMatch(/rogue\.sts\.test matches no mx_host_pattern of the MTA-STS policy of sts\.test/);
    expect(attempts.at(-1)!.audit).toMatchObject({ level: 'secure', auth: 'Verified' });
    expect(good.events.filter((e) => e.command === 'MAIL').length).toBe(goodMails + 1);
  });

  const AUDIT_TEMPLATE =
    'tlsaudit: relay=${relay}, policy_type=${policy_type}, policy_domain=${policy_domain}${policy_ttl?, ttl=${policy_ttl}}, patterns=${mx_host_pattern}${policy_failure?, failure=${policy_failure}}';
  it("every attempt's audit record carries the policy source's attributes, the refused MX's too, and the template can name them", async () => {
    const stsLookup = async (key: string) =>
      key === 'sts.test'
        ? 'secure match=mx1.sts.test policy_type=sts policy_domain=sts.test policy_ttl=86400 policy_string=version:STSv1 policy_string=mode:enforce mx_host_pattern=mx1.sts.test mx_host_pattern=*.mx.sts.test'
        : undefined;
    const { info, error } = await send({ policyLookup: stsLookup, auditTemplate: AUDIT_TEMPLATE });
    expect(error).toBeUndefined();
    const attempts = info!.deliveries[0]!.attempts;
    expect(attempts.map((a) => a.mx)).toEqual(['rogue.sts.test', 'mx1.sts.test']);
    for (const a of attempts) {
      expect(a.audit).toMatchObject({
        policy_type: 'sts',
        policy_domain: 'sts.test',
        policy_ttl: 86400,
        policy_string: 'version:STSv1, mode:enforce',
        mx_host_pattern: 'mx1.sts.test, *.mx.sts.test',
        policy_failure: '',
      });
    }
    expect(attempts[1]!.auditLine).toBe(
      `tlsaudit: relay=mx1.sts.test[${good.host}]:${good.port}, policy_type=sts, policy_domain=sts.test, ttl=86400, patterns="mx1.sts.test, *.mx.sts.test"`,
    );
  });
  it('no-policy-found with a policy_failure (the resolver could not fetch a policy): reported at may, delivered', async () => {
    const failed = async (key: string) =>
      key === 'sts.test' ? 'may policy_type=no-policy-found policy_domain=sts.test policy_failure=sts-policy-fetch-error' : undefined;
    const { info, error } = await send({ policyLookup: failed, auditTemplate: AUDIT_TEMPLATE });
    expect(error).toBeUndefined();
    const last = info!.deliveries[0]!.attempts.at(-1)!;
    expect(last.audit).toMatchObject({
      level: 'may',
      policy_type: 'no-policy-found',
      policy_domain: 'sts.test',
      policy_ttl: '',
      policy_failure: 'sts-policy-fetch-error',
    });
    expect(last.auditLine).toBe(
      `tlsaudit: relay=rogue.sts.test[${rogue.host}]:${rogue.port}, policy_type=no-policy-found, policy_domain=sts.test, patterns=, failure=sts-policy-fetch-error`,
    );
  });
  it('a policy without the attributes: the fields are there, empty', async () => {
    const { info, error } = await send({ level: 'encrypt' });
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts[0]!.audit).toMatchObject({
      policy_type: 'no-policy-found',
      policy_domain: '',
      policy_ttl: '',
      policy_string: '',
      mx_host_pattern: '',
      policy_failure: '',
    });
  });
});
