/**
 * Where the resolver's servers come from and whose AD bit it believes by default, what
 * checkDnssec() says about the trusted servers (against the test DNS server; against a real
 * validating Unbound in test/dns-config-unbound.test.ts, npm run test:interop), and reading
 * resolv.conf, hostile lines included.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver, parseResolvConf, systemServers, type ResolverOptions } from '../lib/dns/index.js';
import { keyTag } from '../lib/dnssec/records.js';
import { startDnsServer, type TestDnsServer, type ZoneRecord } from './helpers/dns-server.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dns-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function resolvConf(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('whose AD bit is believed by default, and the DNSSEC mode that follows', () => {
  // Docker's embedded DNS and systemd-resolved's stub: loopback addresses that forward.
  const DOCKER = 'nameserver 127.0.0.11\noptions ndots:0\n';
  const rows: {
    rule: string;
    options: (path: string) => ResolverOptions;
    servers: string[];
    trusted: string[];
    trustAd: boolean | 'loopback';
    dnssec: 'validate' | 'trust-ad' | 'off';
  }[] = [
    {
      rule: 'servers from resolv.conf: not trusted, so validated here',
      options: (path) => ({ resolvConf: path }),
      servers: ['127.0.0.11:53'],
      trusted: [],
      trustAd: false,
      dnssec: 'validate',
    },
    {
      rule: "servers from resolv.conf with trustAd: 'loopback': trusted",
      options: (path) => ({ resolvConf: path, trustAd: 'loopback' }),
      servers: ['127.0.0.11:53'],
      trusted: ['127.0.0.11:53'],
      trustAd: 'loopback',
      dnssec: 'trust-ad',
    },
    {
      rule: 'servers from resolv.conf with trustAd: true: trusted',
      options: (path) => ({ resolvConf: path, trustAd: true }),
      servers: ['127.0.0.11:53'],
      trusted: ['127.0.0.11:53'],
      trustAd: true,
      dnssec: 'trust-ad',
    },
    {
      rule: 'servers from resolv.conf with trustAd: false: not trusted, and trustAd keeps its meaning (no answer is secure)',
      options: (path) => ({ resolvConf: path, trustAd: false }),
      servers: ['127.0.0.11:53'],
      trusted: [],
      trustAd: false,
      dnssec: 'trust-ad',
    },
    {
      rule: "servers named by the user: 'loopback' by default",
      options: () => ({ servers: ['127.0.0.11'] }),
      servers: ['127.0.0.11:53'],
      trusted: ['127.0.0.11:53'],
      trustAd: 'loopback',
      dnssec: 'trust-ad',
    },
    {
      rule: 'servers named by the user, not on loopback: not trusted, so validated here',
      options: () => ({ servers: ['192.0.2.53'] }),
      servers: ['192.0.2.53:53'],
      trusted: [],
      trustAd: 'loopback',
      dnssec: 'validate',
    },
    {
      rule: 'a loopback server with trust anchors given: validated here',
      options: () => ({ servers: ['127.0.0.11'], trustAnchors: resolvConf('anchor.ds', `. IN DS 20326 8 2 ${'ab'.repeat(32)}\n`) }),
      servers: ['127.0.0.11:53'],
      trusted: [],
      trustAd: 'loopback',
      dnssec: 'validate',
    },
    {
      rule: "a loopback server with dnssec: 'validate': its AD bit is not used",
      options: () => ({ servers: ['127.0.0.11'], dnssec: 'validate' }),
      servers: ['127.0.0.11:53'],
      trusted: [],
      trustAd: 'loopback',
      dnssec: 'validate',
    },
    {
      rule: "dnssec: 'off': nobody's AD bit",
      options: () => ({ servers: ['127.0.0.11'], dnssec: 'off' }),
      servers: ['127.0.0.11:53'],
      trusted: [],
      trustAd: 'loopback',
      dnssec: 'off',
    },
  ];
  it.each(rows)('$rule', ({ options, servers, trusted, trustAd, dnssec }) => {
    const resolver = createResolver(options(resolvConf('docker.conf', DOCKER)));
    expect({ servers: resolver.servers, trusted: resolver.trustedServers, trustAd: resolver.trustAd, dnssec: resolver.dnssec }).toEqual({
      servers,
      trusted,
      trustAd,
      dnssec,
    });
    // In 'validate' and 'off' every server is asked, in order; in 'trust-ad' the trusted ones if any.
    expect(resolver.askedServers).toEqual(trusted.length > 0 ? trusted : servers);
  });

  it('an empty or missing resolv.conf means the local name server (resolv.conf(5)), still untrusted', () => {
    expect(createResolver({ resolvConf: resolvConf('empty.conf', '# nothing\n') })).toMatchObject({ servers: ['127.0.0.1:53'], trustedServers: [] });
    expect(createResolver({ resolvConf: join(dir, 'missing.conf') })).toMatchObject({ servers: ['127.0.0.1:53'], trustedServers: [] });
  });

  it('systemServers(path) reads the given file', () => {
    expect(systemServers(resolvConf('two.conf', 'nameserver 127.0.0.53\nnameserver ::1\n'))).toEqual(['127.0.0.53', '::1']);
    expect(systemServers(join(dir, 'missing.conf'))).toEqual(['127.0.0.1']);
  });
});

describe('resolver.dnssec and resolver.trustAnchors: what is read, and the errors', () => {
  it("the built-in root anchors, or those of a file in Unbound's or BIND's format", () => {
    expect(createResolver({ servers: ['192.0.2.53'] }).trustAnchors).toEqual(['. DS 20326/8', '. DS 38696/8']);
    const bind = resolvConf(
      'bind.conf',
      'trust-anchors {\n  example. static-ds 12345 13 2 "' +
        'AB'.repeat(32) +
        '";\n  example. initial-key 257 3 15 "' +
        Buffer.alloc(32, 7).toString('base64') +
        '";\n};\n',
    );
    const tag = keyTag(Buffer.concat([Buffer.from([1, 1, 3, 15]), Buffer.alloc(32, 7)]));
    expect(createResolver({ servers: ['192.0.2.53'], trustAnchors: bind })).toMatchObject({
      dnssec: 'validate',
      trustAnchors: ['example. DS 12345/13', `example. DNSKEY ${tag}/15`],
    });
    // 'trust-ad' and 'off' read no anchors.
    expect(createResolver({ servers: ['127.0.0.1'] }).trustAnchors).toEqual([]);
  });

  it.each([
    [{ dnssec: 'on' }, `resolver.dnssec must be 'validate', 'trust-ad' or 'off', got "on"`],
    [{ dnssec: 'trust-ad', trustAnchors: '/x' }, "resolver.trustAnchors is read only with dnssec: 'validate', not with dnssec: 'trust-ad'"],
    [{ trustAnchors: '' }, 'resolver.trustAnchors must be a file path, got ""'],
    [{ trustAnchors: 'MISSING' }, 'resolver.trustAnchors: cannot read MISSING (ENOENT)'],
    [{ trustAnchors: 'EMPTY' }, 'resolver.trustAnchors: EMPTY holds no DS or DNSKEY record'],
    [{ trustAnchors: 'BAD' }, 'resolver.trustAnchors: BAD:2: '],
  ] as const)('%j: a TypeError that says what is wrong', (options, message) => {
    const paths: Record<string, string> = {
      MISSING: join(dir, 'missing.anchors'),
      EMPTY: resolvConf('empty.anchors', '; nothing here\n'),
      BAD: resolvConf('bad.anchors', '. IN DS 20326 8 2 ' + 'AB'.repeat(32) + '\n. IN DS 20326 8 2 XYZ\n'),
    };
    const given = { ...options, ...('trustAnchors' in options && paths[options.trustAnchors] ? { trustAnchors: paths[options.trustAnchors] } : {}) };
    const expected = Object.entries(paths).reduce<string>((text, [word, path]) => text.replace(word, path), message);
    expect(() => createResolver({ servers: ['192.0.2.53'], ...(given as ResolverOptions) })).toThrow(
      new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
  });

  it("'off': queries without DO, every answer insecure even with the AD bit, and checkDnssec says why", async () => {
    const srv = await startDnsServer({ zone: [{ name: 'mx.example.com', type: 'A', address: '192.0.2.1' }], ad: true });
    try {
      const resolver = createResolver({ servers: [srv.server], dnssec: 'off' });
      expect(await resolver.a('mx.example.com')).toMatchObject({ status: 'insecure', records: [{ address: '192.0.2.1' }] });
      expect(srv.queries.map((q) => [q.do, q.cd])).toEqual([[false, false]]);
      expect(await resolver.checkDnssec()).toEqual({ ok: false, reason: "resolver.dnssec is 'off', so no answer can be DNSSEC-secure" });
    } finally {
      await srv.close();
    }
  });
});

describe('checkDnssec()', () => {
  const ZONE: ZoneRecord[] = [{ name: 'example.com', type: 'A', address: '192.0.2.1' }];
  const started: TestDnsServer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((server) => server.close()));
  });
  async function server(options: Parameters<typeof startDnsServer>[0]): Promise<TestDnsServer> {
    const s = await startDnsServer({ zone: ZONE, ...options });
    started.push(s);
    return s;
  }

  it('ok when the trusted server answers the root SOA with AD; the query is SOA for .', async () => {
    const srv = await server({ ad: true });
    const resolver = createResolver({ servers: [srv.server], timeout: 300 });
    expect(await resolver.checkDnssec()).toEqual({ ok: true, servers: [srv.server] });
    expect(srv.queries.map((q) => `${q.type} ${q.name === '' ? '.' : q.name} ${q.do}`)).toEqual(['SOA . true']);
  });

  it('asks every trusted server: one not validating is enough to say no', async () => {
    const validating = await server({ ad: true });
    const forwarding = await server({ host: '127.0.0.2', ad: false });
    const resolver = createResolver({ servers: [validating.server, forwarding.server], timeout: 300 });
    expect(await resolver.checkDnssec()).toEqual({
      ok: false,
      reason: `DNS server ${forwarding.server} answered the SOA query for . without the AD bit, so it does not validate DNSSEC`,
    });
    expect(await resolver.checkDnssec('example.com')).toEqual({
      ok: false,
      reason: `DNS server ${forwarding.server} answered the SOA query for example.com without the AD bit, so it does not validate DNSSEC (or example.com is not signed)`,
    });
  });

  it('no trusted server answered: their failures', async () => {
    const servfail = await server({ servfail: true });
    const silent = await server({ host: '127.0.0.3', drop: true });
    const resolver = createResolver({ servers: [servfail.server, silent.server], timeout: 150, attempts: 2 });
    expect(await resolver.checkDnssec()).toEqual({
      ok: false,
      reason: `No trusted DNS server answered the SOA query for .: SERVFAIL from ${servfail.server}; no reply from ${silent.server} after 2 tries of 150 ms`,
    });
    expect(servfail.queries).toHaveLength(1);
    expect(silent.queries).toHaveLength(2);
  });

  it('ok when one trusted server validates and another did not answer', async () => {
    const silent = await server({ drop: true });
    const validating = await server({ host: '127.0.0.2', ad: true });
    const resolver = createResolver({ servers: [silent.server, validating.server], timeout: 150, attempts: 1 });
    expect(await resolver.checkDnssec()).toEqual({ ok: true, servers: [validating.server] });
  });

  // In 'trust-ad' (given here: these servers default to 'validate').
  it.each([
    [{ resolvConf: 'docker.conf' }, (path: string) => `servers from ${path} are not trusted unless trustAd is set`],
    [{ servers: ['127.0.0.1'], trustAd: false }, () => 'trustAd is false'],
    [{ servers: ['192.0.2.53', '198.51.100.7:5353'] }, () => "none of 192.0.2.53:53, 198.51.100.7:5353 is on loopback (trustAd: 'loopback')"],
  ] as const)("dnssec: 'trust-ad' and no trusted server: %j, says why, and asks nothing", async (options, why) => {
    const path = resolvConf('docker.conf', 'nameserver 127.0.0.11\n');
    const resolver = createResolver(
      'resolvConf' in options ? { resolvConf: path, dnssec: 'trust-ad' } : { ...options, servers: [...options.servers], dnssec: 'trust-ad' },
    );
    expect(await resolver.checkDnssec()).toEqual({ ok: false, reason: `No DNS server's AD bit is believed, so no answer can be DNSSEC-secure: ${why(path)}` });
    expect(resolver.stats.queriesSent).toBe(0);
  });
});

describe('parseResolvConf', () => {
  it.each([
    ['nameserver 127.0.0.53', ['127.0.0.53']],
    ['nameserver 127.0.0.53\r\nnameserver ::1\r\n', ['127.0.0.53', '::1']],
    ['nameserver 127.0.0.1 # local', ['127.0.0.1']],
    ['nameserver 127.0.0.1; local', ['127.0.0.1']],
    ['nameserver 127.0.0.1#local', ['127.0.0.1']],
    ['# nameserver 192.0.2.1', []],
    ['; nameserver 192.0.2.1', []],
    ['  nameserver\t127.0.0.2  ', ['127.0.0.2']],
    ['nameserver fe80::1%eth0', ['fe80::1%eth0']],
    ['nameserver dns.example.com', []],
    ['nameservers 127.0.0.1', []],
    ['search example.com\noptions trust-ad', []],
    // A lone CR is not a line end here; the comment is cut all the same.
    ['nameserver 127.0.0.1 #x\rnameserver 192.0.2.1', ['127.0.0.1']],
    ['nameserver 127.0.0.1;\r', ['127.0.0.1']],
  ])('%j gives %j', (text, servers) => {
    expect(parseResolvConf(text)).toEqual(servers);
  });

  // A pattern that rescans the rest of the line from every comment character costs the
  // square of the line's length (64 KB: seconds; 256 KB: longer than the test runner waits);
  // cutting at the first one reads the line once. A CR not followed by LF stays in the line.
  it.each([
    ['#', 64 * 1024],
    [';', 64 * 1024],
    ['#;', 64 * 1024],
    ['#', 256 * 1024],
  ])('lines of %j x %d octets ending in a lone CR, around a server', (chars, length) => {
    const hostile = `${chars.repeat(length / chars.length)}\r`;
    const text = `${hostile}\r\nnameserver 127.0.0.1\n${hostile}\rnameserver 192.0.2.1\n${hostile}`;
    expect(parseResolvConf(text)).toEqual(['127.0.0.1']);
  });
});
