/**
 * The resolver's validate mode (resolver.dnssec: 'validate', lib/dns/validate.ts) against a
 * tree of zones signed at test time (test/helpers/dnssec-signer.ts: a root, TLDs and domains
 * with algorithms 8, 13 and 15, NSEC and NSEC3 with salt, iterations and opt-out, wildcards,
 * CNAMEs across zones, a DS of an algorithm and one of a digest the library does not take),
 * served over UDP and TCP by test/helpers/signed-dns.ts as a recursive resolver that passes
 * DNSSEC records through and validates nothing (AD never set). Every row asks the real
 * resolver over the network and states secure, insecure, or failed with the reason; the
 * broken rows are real forgeries of the signed records (expired and future signatures, a
 * stripped RRSIG, a DS for another key, a missing DS proof, a replayed wildcard, a forged
 * NXDOMAIN, a key-tag collision, a KeyTrap-shaped zone).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver, type DnsResult, type ResolverOptions } from '../lib/dns/index.js';
import { nameFromText, nameToText, nameWire, sameName, type Name } from '../lib/dnssec/names.js';
import { parseNsec, type Rr } from '../lib/dnssec/records.js';
import { T, sign, typeBitmap } from './helpers/dnssec-signer.js';
import { dsLine, signTree, startSignedDns, type Reply, type SignedDnsServer, type Tree } from './helpers/signed-dns.js';
import { treeSpecs } from './helpers/signed-tree.js';

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86_400;
const n = nameFromText;

/* ----------------------------------------------------------------------------------------
 * The tree.
 */

const SPECS = treeSpecs(NOW);

let tree: Tree;
let dir: string;
let anchorFile: string;
const servers: SignedDnsServer[] = [];

async function serve(mutate?: (reply: Reply, query: { name: Name; type: number }) => Reply): Promise<SignedDnsServer> {
  const server = await startSignedDns({ zones: tree.zones, ...(mutate ? { mutate } : {}) });
  servers.push(server);
  return server;
}

function resolver(server: SignedDnsServer, options: ResolverOptions = {}) {
  return createResolver({ servers: [server.server], dnssec: 'validate', trustAnchors: anchorFile, timeout: 1000, attempts: 1, ...options });
}

let plain: SignedDnsServer;

beforeAll(async () => {
  tree = signTree(SPECS, NOW);
  dir = mkdtempSync(join(tmpdir(), 'dnssec-validate-'));
  anchorFile = join(dir, 'root.ds');
  writeFileSync(anchorFile, `${tree.anchor}\n`);
  plain = await serve();
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  rmSync(dir, { recursive: true, force: true });
});

type Expect = { status: 'secure' | 'insecure'; rcode?: 'NOERROR' | 'NXDOMAIN'; records?: number } | { status: 'failed'; reason: (server: string) => string[] };

interface Row {
  what: string;
  name: string;
  type: 'A' | 'TLSA' | 'TXT' | 'MX';
  expect: Expect;
}

function check(result: DnsResult<unknown>, row: Row, server: string): void {
  const expected = row.expect;
  if (expected.status === 'failed') {
    expect(result.status, JSON.stringify(result)).toBe('failed');
    const reason = result.status === 'failed' ? result.reason : '';
    expect(reason).toContain(`DNS lookup of ${row.type} for ${row.name} failed DNSSEC validation: `);
    for (const part of expected.reason(server)) expect(reason).toContain(part);
    return;
  }
  expect(result.status === 'failed' ? result.reason : result.status).toBe(expected.status);
  if (result.status === 'failed') return;
  expect(result.rcode).toBe(expected.rcode ?? 'NOERROR');
  expect(result.records).toHaveLength(expected.records ?? (expected.rcode === 'NXDOMAIN' ? 0 : 1));
}

/* ----------------------------------------------------------------------------------------
 * Good data: secure and insecure.
 */

const GOOD: Row[] = [
  { what: 'A in an ECDSA (13) zone, NSEC, under an opt-out NSEC3 TLD and an RSA (8) root', name: 'mx.signed.tld', type: 'A', expect: { status: 'secure' } },
  { what: 'TLSA', name: '_25._tcp.mx.signed.tld', type: 'TLSA', expect: { status: 'secure' } },
  { what: 'NXDOMAIN, NSEC', name: 'nope.signed.tld', type: 'A', expect: { status: 'secure', rcode: 'NXDOMAIN' } },
  { what: 'NODATA, NSEC', name: 'mx.signed.tld', type: 'MX', expect: { status: 'secure', records: 0 } },
  { what: 'NODATA at an empty non-terminal, NSEC', name: 'y.signed.tld', type: 'A', expect: { status: 'secure', records: 0 } },
  { what: 'a wildcard answer, NSEC', name: 'anything.wild.signed.tld', type: 'TXT', expect: { status: 'secure' } },
  { what: 'a wildcard answer, NSEC3 in an Ed25519 (15) zone', name: 'x.y.wild.ed.tld', type: 'TXT', expect: { status: 'secure' } },
  { what: 'a wildcard NODATA, NSEC3', name: 'z.wild.ed.tld', type: 'A', expect: { status: 'secure', records: 0 } },
  { what: 'NXDOMAIN, NSEC3 without salt or iterations', name: 'nope.ed.tld', type: 'A', expect: { status: 'secure', rcode: 'NXDOMAIN' } },
  { what: 'NODATA for TLSA, NSEC3', name: '_25._tcp.nope.ed.tld', type: 'TLSA', expect: { status: 'secure', rcode: 'NXDOMAIN' } },
  { what: 'a CNAME into another signed zone: both hops secure', name: 'alias.signed.tld', type: 'A', expect: { status: 'secure' } },
  { what: 'a CNAME to a name that does not exist in another zone', name: 'to-missing.signed.tld', type: 'A', expect: { status: 'secure', rcode: 'NXDOMAIN' } },
  {
    what: 'a DNAME into another signed zone: the synthesized CNAME stands on the signed DNAME',
    name: 'a.dn.signed.tld',
    type: 'A',
    expect: { status: 'secure' },
  },
  { what: 'a CNAME into an unsigned zone: the weakest hop wins', name: 'to-insecure.signed.tld', type: 'A', expect: { status: 'insecure' } },
  { what: 'an unsigned zone in an opt-out span', name: 'mx.insecure.tld', type: 'A', expect: { status: 'insecure' } },
  { what: 'TLSA in an unsigned zone', name: '_25._tcp.mx.insecure.tld', type: 'TLSA', expect: { status: 'insecure' } },
  { what: 'NXDOMAIN in an unsigned zone', name: 'nope.insecure.tld', type: 'A', expect: { status: 'insecure', rcode: 'NXDOMAIN' } },
  { what: 'NXDOMAIN in an opt-out span of the TLD', name: 'nothing.tld', type: 'A', expect: { status: 'insecure', rcode: 'NXDOMAIN' } },
  { what: 'an unsigned delegation proven by NSEC (NS, no DS)', name: 'mx.plain.other', type: 'A', expect: { status: 'insecure' } },
  { what: 'three zone cuts below the root, NSEC3 with salt in the middle', name: 'www.sub.deep.other', type: 'A', expect: { status: 'secure' } },
  { what: 'a DS of an unsupported algorithm (253): insecure, not bogus', name: 'host.badalgo.tld', type: 'A', expect: { status: 'insecure' } },
  { what: 'a DS with a SHA-1 digest only: insecure', name: 'host.sha1.tld', type: 'A', expect: { status: 'insecure' } },
  { what: 'a key-tag collision in the DNSKEY RRset', name: 'host.collide.tld', type: 'A', expect: { status: 'secure' } },
  { what: 'NODATA at a TLD apex, NSEC3 opt-out', name: 'tld', type: 'A', expect: { status: 'secure', records: 0 } },
];

describe('validate mode against a plain recursive server', () => {
  it.each(GOOD.map((row) => [row.what, row] as const))('%s', async (_, row) => {
    const result = await resolver(plain).query(row.name, row.type);
    check(result, row, plain.server);
  });

  it('asks with DO=1 and CD=1, and a warm lookup costs one query', async () => {
    const dns = resolver(plain);
    const since = plain.queries.length;
    expect((await dns.a('mx.signed.tld')).status).toBe('secure');
    const cold = dns.stats.queriesSent;
    // The answer, DNSKEY ., DS tld., DNSKEY tld., DS signed.tld., DNSKEY signed.tld.
    expect(cold).toBe(6);
    expect(plain.queries.slice(since).every((q) => q.cd && q.do)).toBe(true);
    expect((await dns.query('www.signed.tld', 'A')).status).toBe('secure');
    expect(dns.stats.queriesSent).toBe(cold + 1);
    expect((await dns.query('_25._tcp.a.ed.tld', 'TLSA')).status).toBe('secure');
    // DS ed.tld., DNSKEY ed.tld. and the answer: the root and tld. keys are cached.
    expect(dns.stats.queriesSent).toBe(cold + 4);
  });

  it('each answer keeps the chain walked, from the anchor down, also when the keys came from the cache', async () => {
    const dns = resolver(plain);
    await dns.a('mx.signed.tld');
    await dns.query('nope.signed.tld', 'TLSA');
    await dns.a('mx.plain.other');
    const [first, second, third] = dns.validations;
    const root = tree.keys.get('.')!.key.keyTag;
    const tld = tree.keys.get('tld.')!.key.keyTag;
    const signed = tree.keys.get('signed.tld.')!.key.keyTag;
    const zoneLines = [
      `. DNSKEY ${root}/8 (SEP): RRSIG ${root}/8 verifies, from the trust anchor (DS ${root}/8/2)`,
      `tld. DS ${tld}/13/2: RRSIG ${root}/8 by . verifies`,
      `tld. DNSKEY ${tld}/13 (SEP): RRSIG ${tld}/13 verifies, from the DS RRset in .`,
      `signed.tld. DS ${signed}/13/2: RRSIG ${tld}/13 by tld. verifies`,
      `signed.tld. DNSKEY ${signed}/13 (SEP): RRSIG ${signed}/13 verifies, from the DS RRset in tld.`,
    ];
    expect(first).toEqual({
      name: 'mx.signed.tld',
      type: 'A',
      status: 'secure',
      chain: [...zoneLines, `the A RRset of mx.signed.tld.: RRSIG ${signed}/13 by signed.tld. verifies`],
    });
    expect(second!.status).toBe('secure');
    expect(second!.chain.slice(0, 5)).toEqual(zoneLines);
    expect(second!.chain[5]).toMatch(/^the NXDOMAIN answer for nope\.signed\.tld\. proven in signed\.tld\.: NSEC \S+ -> \S+ covers nope\.signed\.tld\.; NSEC /);
    expect(third).toMatchObject({ name: 'mx.plain.other', status: 'insecure' });
    expect(third!.chain.at(-1)).toMatch(/^plain\.other\. DS denied in other\., an unsigned delegation: NSEC plain\.other\. -> /);
  });

  it('an unsigned zone is proven once; names below it cost one query each', async () => {
    const dns = resolver(plain);
    expect((await dns.a('mx.plain.other')).status).toBe('insecure');
    const cold = dns.stats.queriesSent;
    expect((await dns.query('nope.plain.other', 'A')).status).toBe('insecure');
    expect(dns.stats.queriesSent).toBe(cold + 1);
  });
});

/* ----------------------------------------------------------------------------------------
 * Broken data: failed, with the reason.
 */

const NOT_STRIPPED = (reply: Reply) => reply;
const dropSigs = (rrs: Rr[]) => rrs.filter((r) => r.type !== T.RRSIG);
const at = (name: string, type: number) => (query: { name: Name; type: number }) => sameName(query.name, n(name)) && query.type === type;

interface BrokenRow {
  what: string;
  name: string;
  type: 'A' | 'TLSA' | 'TXT' | 'MX';
  mutate: (reply: Reply, query: { name: Name; type: number }) => Reply;
  reason: (server: string) => string[];
}

/** A reply for another name, as a forger would replay it. */
const replyFor = (name: string, type: number) => ({ name: n(name), type });

const BROKEN: BrokenRow[] = [
  {
    what: 'expired signatures',
    name: 'host.expired.tld',
    type: 'A',
    mutate: NOT_STRIPPED,
    reason: () => ['zone expired.tld.', 'expired at'],
  },
  {
    what: 'signatures not yet valid',
    name: 'host.future.tld',
    type: 'A',
    mutate: NOT_STRIPPED,
    reason: () => ['zone future.tld.', 'not valid until'],
  },
  {
    what: 'a DS for another key',
    name: 'host.wrongds.tld',
    type: 'A',
    mutate: NOT_STRIPPED,
    reason: () => ['zone wrongds.tld.: wrongds.tld. DNSKEY: no DNSKEY matches DS'],
  },
  {
    what: 'a TLSA record changed after signing',
    name: '_25._tcp.mx.tampered.tld',
    type: 'TLSA',
    mutate: NOT_STRIPPED,
    reason: () => ['in zone tampered.tld., _25._tcp.mx.tampered.tld. TLSA: RRSIG', 'signature does not verify'],
  },
  {
    what: 'a stripped RRSIG on the answer',
    name: 'mx.signed.tld',
    type: 'A',
    mutate: (reply, query) => (at('mx.signed.tld.', T.A)(query) ? { ...reply, answer: dropSigs(reply.answer) } : reply),
    reason: (server) => [`the A RRset of mx.signed.tld. came without an RRSIG from ${server}`, 'in the signed zone signed.tld.', 'strips DNSSEC records'],
  },
  {
    what: 'a stripped RRSIG on a DS',
    name: 'www.signed.tld',
    type: 'A',
    mutate: (reply, query) => (at('signed.tld.', T.DS)(query) ? { ...reply, answer: dropSigs(reply.answer) } : reply),
    reason: (server) => [`${server} returned the DS RRset of signed.tld. without RRSIG records, though tld. is signed: it strips DNSSEC records`],
  },
  {
    what: 'a missing proof that an unsigned delegation has no DS',
    name: 'mx.plain.other',
    type: 'A',
    mutate: (reply, query) => (at('plain.other.', T.DS)(query) ? { ...reply, authority: reply.authority.filter((r) => r.type === T.SOA) } : reply),
    reason: (server) => [`${server} returned the NODATA answer to the DS query for plain.other. without signed NSEC or NSEC3 records, though other. is signed`],
  },
  {
    what: 'an unsigned delegation claimed with a proof for another name',
    name: 'mx.plain.other',
    type: 'A',
    mutate: (reply, query) => {
      if (!at('plain.other.', T.DS)(query)) return reply;
      const other = answer(replyFor('nope.other.', T.DS));
      return { ...reply, authority: other.authority };
    },
    reason: () => ['in zone other., the NODATA answer to the DS query at plain.other. is not proven'],
  },
  {
    what: 'a wildcard RRSIG replayed at a name the wildcard does not cover',
    name: 'www.signed.tld',
    type: 'TXT',
    mutate: (reply, query) => {
      if (!at('www.signed.tld.', T.TXT)(query)) return reply;
      // The expansion's TXT and its RRSIG over *.wild.signed.tld. (Labels 3), moved to www.signed.tld. (3 labels).
      const wild = answer(replyFor('zzz.wild.signed.tld.', T.TXT));
      return { rcode: 0, answer: wild.answer.map((r) => ({ ...r, owner: n('www.signed.tld.') })), authority: wild.authority };
    },
    reason: () => ['in zone signed.tld., www.signed.tld. TXT: RRSIG', 'signature does not verify'],
  },
  {
    what: 'a replayed wildcard expansion with its proof, for a name that exists under the wildcard',
    name: 'real.wild.signed.tld',
    type: 'TXT',
    mutate: (reply, query) => {
      if (!at('real.wild.signed.tld.', T.TXT)(query)) return reply;
      // Another expansion's records and proof, moved to real.wild.signed.tld., which exists (its A): no NSEC can deny it.
      const wild = answer(replyFor('zzz.wild.signed.tld.', T.TXT));
      return { rcode: 0, answer: wild.answer.map((r) => ({ ...r, owner: n('real.wild.signed.tld.') })), authority: wild.authority };
    },
    reason: () => [
      'in zone signed.tld., the TXT RRset of real.wild.signed.tld., an expansion of *.wild.signed.tld., is not proven: no NSEC proves that real.wild.signed.tld. does not exist',
    ],
  },
  {
    what: 'a forged NXDOMAIN for a name that exists',
    name: 'mx.signed.tld',
    type: 'A',
    mutate: (reply, query) => (at('mx.signed.tld.', T.A)(query) ? { ...answer(replyFor('mz.signed.tld.', T.A)) } : reply),
    reason: () => ['in zone signed.tld., the NXDOMAIN answer for mx.signed.tld. is not proven'],
  },
  {
    what: 'a forged NODATA for a type that exists',
    name: '_25._tcp.mx.signed.tld',
    type: 'TLSA',
    mutate: (reply, query) =>
      at('_25._tcp.mx.signed.tld.', T.TLSA)(query) ? { rcode: 0, answer: [], authority: answer(replyFor('_25._tcp.mx.signed.tld.', T.MX)).authority } : reply,
    reason: () => ['in zone signed.tld., the NODATA answer for _25._tcp.mx.signed.tld. TLSA is not proven', 'has the type TLSA'],
  },
  {
    what: 'a CNAME that the DNAME above it does not synthesize',
    name: 'a.dn.signed.tld',
    type: 'A',
    mutate: (reply, query) =>
      at('a.dn.signed.tld.', T.A)(query)
        ? { ...reply, answer: reply.answer.map((r) => (r.type === T.CNAME ? { ...r, rdata: nameWire(n('mx.signed.tld.'), false) } : r)) }
        : reply,
    reason: () => ['the CNAME of a.dn.signed.tld. points to mx.signed.tld., not to a.ed.tld. as the DNAME at dn.signed.tld. synthesizes'],
  },
  {
    what: 'a forged NSEC (the TLSA bit cleared under its RRSIG)',
    name: '_25._tcp.mx.signed.tld',
    type: 'TLSA',
    mutate: (reply, query) => {
      if (!at('_25._tcp.mx.signed.tld.', T.TLSA)(query)) return reply;
      const authority = answer(replyFor('_25._tcp.mx.signed.tld.', T.MX)).authority.map((r) =>
        r.type === T.NSEC ? { ...r, rdata: Buffer.concat([nameWire(parseNsec(r).next, false), typeBitmap([T.NSEC, T.RRSIG])]) } : r,
      );
      return { rcode: 0, answer: [], authority };
    },
    reason: () => ['in zone signed.tld., _25._tcp.mx.signed.tld. NSEC: RRSIG', 'signature does not verify'],
  },
  {
    what: 'a KeyTrap-shaped DNSKEY RRset (nine keys with one tag)',
    name: 'host.keytrap.tld',
    type: 'A',
    mutate: NOT_STRIPPED,
    reason: () => ['zone keytrap.tld.', 'DNSKEYs share tag', 'more than the 4 tried'],
  },
  {
    what: 'a KeyTrap-shaped answer (forty RRSIGs that do not verify)',
    name: 'www.signed.tld',
    type: 'A',
    mutate: (reply, query) => {
      if (!at('www.signed.tld.', T.A)(query)) return reply;
      const key = tree.keys.get('signed.tld.')!;
      const set = reply.answer.filter((r) => r.type === T.A);
      const bad = Array.from({ length: 40 }, (_, i) => {
        const sig = sign(set, key, { inception: NOW - 3600 - i, expiration: NOW + DAY });
        return { ...sig, rdata: Buffer.concat([sig.rdata.subarray(0, sig.rdata.length - 1), Buffer.from([sig.rdata[sig.rdata.length - 1]! ^ 1])]) };
      });
      return { ...reply, answer: [...set, ...bad] };
    },
    reason: () => ['in zone signed.tld., www.signed.tld. A: more than 32 signature verifications'],
  },
];

/** What the plain server answers for a question (for forgeries built from real replies). */
let answer: (query: { name: Name; type: number }) => Reply;

describe('validate mode: broken data fails, with the reason', () => {
  beforeAll(async () => {
    // A throwaway server whose mutate hook hands out its honest replies.
    const replies = new Map<string, Reply>();
    answer = (query) => {
      const found = replies.get(`${nameToText(query.name)}/${query.type}`);
      if (!found) throw new Error(`no reply recorded for ${nameToText(query.name)} ${query.type}`);
      return found;
    };
    const recorder = await serve((reply, query) => {
      replies.set(`${nameToText(query.name)}/${query.type}`, reply);
      return reply;
    });
    const dns = createResolver({ servers: [recorder.server], dnssec: 'off', cache: false });
    for (const [name, type] of [
      ['nope.other', 'DS'],
      ['www.wild.signed.tld', 'TXT'],
      ['zzz.wild.signed.tld', 'TXT'],
      ['mz.signed.tld', 'A'],
      ['_25._tcp.mx.signed.tld', 'MX'],
    ] as const) {
      if (type === 'DS') await dns.query(name, 43);
      else await dns.query(name, type);
    }
  });

  it.each(BROKEN.map((row) => [row.what, row] as const))('%s', async (_, row) => {
    const server = await serve(row.mutate);
    const result = await resolver(server).query(row.name, row.type);
    check(result, { what: row.what, name: row.name, type: row.type, expect: { status: 'failed', reason: row.reason } }, server.server);
  });

  it('an upstream that strips every DNSSEC record: one clear error naming the server', async () => {
    const strip = (rrs: Rr[]) => rrs.filter((r) => r.type !== T.RRSIG && r.type !== T.NSEC && r.type !== T.NSEC3);
    const server = await serve((reply) => ({ ...reply, answer: strip(reply.answer), authority: strip(reply.authority) }));
    const result = await resolver(server).a('mx.signed.tld');
    expect(result).toEqual({
      status: 'failed',
      name: 'mx.signed.tld',
      temporary: true,
      reason:
        `DNS lookup of A for mx.signed.tld failed DNSSEC validation: ${server.server} answered the DNSKEY query for . without RRSIG records: ` +
        'it strips DNSSEC records, so nothing it returns can be validated ' +
        "(use a recursive server that passes them through, or dnssec: 'trust-ad' with a validating resolver on loopback)",
    });
  });

  it('an RRSIG whose signer is above the trust anchor cannot pass for insecure', async () => {
    // Only tld. is anchored; the answer comes signed by the root's key, which no anchor covers.
    const tldAnchor = join(dir, 'tld.ds');
    writeFileSync(tldAnchor, `${dsLine(tree.keys.get('tld.')!)}\n`);
    const server = await serve((reply, query) => {
      if (!at('mx.signed.tld.', T.A)(query)) return reply;
      const set = reply.answer.filter((r) => r.type === T.A);
      return { ...reply, answer: [...set, sign(set, tree.keys.get('.')!, { inception: NOW - 3600, expiration: NOW + DAY })] };
    });
    const result = await resolver(server, { trustAnchors: tldAnchor }).a('mx.signed.tld');
    expect(result.status === 'failed' && result.reason).toBe(
      'DNS lookup of A for mx.signed.tld failed DNSSEC validation: the A RRset of mx.signed.tld. is signed by ., above the trust anchor at tld.',
    );
    // The same resolver validates what the anchor covers, and calls the rest insecure.
    expect((await resolver(plain, { trustAnchors: tldAnchor }).a('www.signed.tld')).status).toBe('secure');
    expect((await resolver(plain, { trustAnchors: tldAnchor }).a('mx.plain.other')).status).toBe('insecure');
  });

  it('more CNAME hops than validated: failed', async () => {
    const result = await resolver(plain).a('hop0.signed.tld');
    expect(result.status === 'failed' && result.reason).toBe(
      'DNS lookup of A for hop0.signed.tld failed DNSSEC validation: the answer follows 9 CNAMEs, more than the 8 validated',
    );
  });

  it('a chain of trust deeper than the query cap: failed', async () => {
    const result = await resolver(plain, { validationLimits: { queries: 5 } }).a('www.sub.deep.other');
    expect(result.status === 'failed' && result.reason).toContain('the chain of trust needs more than 5 DS and DNSKEY queries');
  });
});
