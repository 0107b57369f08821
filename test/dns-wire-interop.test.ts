/**
 * The DNS wire decoder over the replies of a real validating Unbound and of NSD, answering with
 * DNSSEC records (zones signed with ldns, test/helpers/dnssec.ts): they decode without errors,
 * agree with dns2, and 40,000 mutations of them stay safe (test/helpers/wire-fuzz.ts). Runs
 * under npm run test:interop; the rest of the decoder's tests are test/dns-wire.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeQuery } from '../lib/dns/wire.js';
import { startDnssec, type DnssecTree } from './helpers/dnssec.js';
import { EXAMPLE_TEST_QUESTIONS, exchange, expectCleanSeeds, expectMutationsSafe } from './helpers/wire-fuzz.js';

describe('fuzz over Unbound and NSD replies', () => {
  let tree: DnssecTree;
  const seeds: Buffer[] = [];

  beforeAll(async () => {
    tree = await startDnssec([
      {
        origin: 'example.test',
        records: [
          '@ MX 10 mx1',
          '@ MX 20 mx2.example.test.',
          'mx1 A 127.0.0.2',
          'mx2 A 127.0.0.3',
          'mx1 AAAA 2001:db8::2',
          `_25._tcp.mx1 TLSA 3 1 1 ${'ab'.repeat(32)}`,
          'www CNAME mx1',
          'txt TXT "v=spf1 -all" "two"',
        ],
        tamper: [{ owner: 'mx2', type: 'A' }],
      },
    ]);
    const nsd = tree.nsd;
    for (const [name, type] of EXAMPLE_TEST_QUESTIONS) {
      seeds.push(await exchange(tree.resolver, encodeQuery(1, name, type)));
      seeds.push(await exchange(nsd, encodeQuery(2, name, type)));
    }
  }, 60_000);

  afterAll(async () => {
    await tree?.close();
  });

  it('the real replies decode without errors, and their names agree with dns2', () => {
    expect(seeds.length).toBe(20);
    // They include DNSSEC records (RRSIG 46, NSEC 47, DNSKEY 48), kept raw.
    expectCleanSeeds(seeds, [1, 5, 15, 16, 28, 52, 46, 47, 48, 6]);
  });

  it('40,000 mutated replies: decoding returns, its work stays within the bound, every name is safe', () => {
    expectMutationsSafe(seeds, 40_000);
  });
});
