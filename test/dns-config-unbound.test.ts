/**
 * What checkDnssec() says about a real validating Unbound (test/helpers/dnssec.ts: zones signed
 * with ldns, served by NSD): ok for a signed zone, the missing AD bit named for an unsigned one.
 * Runs under npm run test:interop; the rest of the resolver's configuration is
 * test/dns-config.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../lib/dns/index.js';
import { startDnssec, type DnssecTree } from './helpers/dnssec.js';

describe('checkDnssec() against a validating Unbound', () => {
  let tree: DnssecTree;
  beforeAll(async () => {
    tree = await startDnssec([
      { origin: 'example.test', records: ['mx A 127.0.0.2'] },
      { origin: 'insecure.test', signed: false, records: ['mx A 127.0.0.4'] },
    ]);
  }, 60_000);
  afterAll(async () => {
    await tree?.close();
  });

  it('a signed zone: ok; an unsigned one: the AD bit is missing', async () => {
    const resolver = createResolver({ servers: [tree.resolver], timeout: 1000 });
    expect(await resolver.checkDnssec('example.test')).toEqual({ ok: true, servers: [tree.resolver] });
    expect(await resolver.checkDnssec('insecure.test')).toEqual({
      ok: false,
      reason: `DNS server ${tree.resolver} answered the SOA query for insecure.test without the AD bit, so it does not validate DNSSEC (or insecure.test is not signed)`,
    });
  });
});
