/**
 * The validator against an independent signer: zones signed by ldns (ldns-keygen,
 * ldns-signzone, ldns-key2ds) with algorithms 8, 13 and 15, NSEC and NSEC3 (no salt and 0
 * iterations; a salt and 5 iterations; opt-out), read back with ldns-read-zone in RFC 3597's
 * generic form (so no presentation parser is needed: every RDATA arrives as ldns wrote it,
 * names in the case of the zone file). For each zone:
 * - the DNSKEY RRset validates from the DS ldns-key2ds made;
 * - every RRSIG in the zone verifies, each on its own; after one octet of an RRset's RDATA is
 *   changed, no RRSIG over it does;
 * - the denial proofs built from the zone's NSEC or NSEC3 records give the verdict the zone's
 *   content implies, and forged ones (a name that exists, a record left out, a wildcard
 *   signature replayed for another name) are bogus.
 * The signer in test/helpers/dnssec-signer.ts shares lib/dnssec's canonical form; ldns does
 * not, so this is what shows that both are right.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTrustAnchors } from '../lib/dnssec/anchors.js';
import { Budget } from '../lib/dnssec/budget.js';
import { validateDnskeys } from '../lib/dnssec/keys.js';
import { nameFromText, nameToText, nameWire, sameName, type Name } from '../lib/dnssec/names.js';
import { nsecCovers, nsecProveNodata, nsecProveNxdomain, nsecProveWildcard, type DenialVerdict } from '../lib/dnssec/nsec.js';
import { fromBase32hex, nsec3Hash, nsec3ProveNodata, nsec3ProveNxdomain, nsec3ProveWildcard } from '../lib/dnssec/nsec3.js';
import { RRTYPE as T, parseNsec, parseNsec3, parseRrsig, type Dnskey, type Rr } from '../lib/dnssec/records.js';
import { verifyRrset, type VerifyOptions } from '../lib/dnssec/verify.js';
import { runLdns } from './helpers/dnssec.js';
import { makeDs, testKey } from './helpers/dnssec-signer.js';

const ORIGIN = 'example.';
const NOW = Math.floor(Date.now() / 1000);
const n = nameFromText;
const options = (): VerifyOptions => ({ now: NOW, budget: new Budget() });

type Chain = 'nsec' | 'nsec3' | 'opt-out';
interface Config {
  label: string;
  algorithm: 'RSASHA256' | 'ECDSAP256SHA256' | 'ED25519';
  chain: Chain;
  /** ldns-signzone's NSEC3 options. */
  nsec3?: string[];
  /** ldns-key2ds's digest option. */
  digest: '-2' | '-4';
}

const CONFIGS: Config[] = [
  { label: 'RSASHA256 (8), NSEC', algorithm: 'RSASHA256', chain: 'nsec', digest: '-2' },
  { label: 'ECDSAP256SHA256 (13), NSEC', algorithm: 'ECDSAP256SHA256', chain: 'nsec', digest: '-2' },
  { label: 'ED25519 (15), NSEC', algorithm: 'ED25519', chain: 'nsec', digest: '-4' },
  { label: 'RSASHA256 (8), NSEC3 salt 5 iterations', algorithm: 'RSASHA256', chain: 'nsec3', nsec3: ['-n', '-s', 'c0ffee', '-t', '5'], digest: '-2' },
  { label: 'ECDSAP256SHA256 (13), NSEC3 no salt 0 iterations', algorithm: 'ECDSAP256SHA256', chain: 'nsec3', nsec3: ['-n', '-t', '0'], digest: '-2' },
  { label: 'ED25519 (15), NSEC3 salt 1 iteration', algorithm: 'ED25519', chain: 'nsec3', nsec3: ['-n', '-s', 'ab', '-t', '1'], digest: '-4' },
  { label: 'ECDSAP256SHA256 (13), NSEC3 opt-out', algorithm: 'ECDSAP256SHA256', chain: 'opt-out', nsec3: ['-n', '-p', '-s', '01', '-t', '2'], digest: '-2' },
];

const childDs = makeDs(testKey('sub.example.', 13));
const ZONE = [
  `$ORIGIN ${ORIGIN}`,
  '$TTL 300',
  '@ IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60',
  '@ IN NS ns',
  '@ IN MX 10 Mail.Example.',
  '@ IN TXT "v=spf1 -all"',
  'ns IN A 192.0.2.53',
  'mail IN A 192.0.2.25',
  'mail IN A 192.0.2.26',
  'mail IN A 192.0.2.24',
  'mail IN AAAA 2001:db8::25',
  'MX IN A 192.0.2.1',
  `_25._tcp.mail IN TLSA 3 1 1 ${'5e'.repeat(32)}`,
  '_sip._tcp IN SRV 10 5 5060 SIP.Example.',
  'cname IN CNAME Mail.Example.',
  '*.w IN TXT "wild"',
  'x.y IN A 192.0.2.2',
  'sub IN NS ns.sub',
  `sub IN DS ${childDs.rdata[0]! * 256 + childDs.rdata[1]!} 13 2 ${Buffer.from(childDs.rdata.subarray(4)).toString('hex')}`,
  'ns.sub IN A 192.0.2.3',
  'insecure IN NS ns.insecure',
  'ns.insecure IN A 192.0.2.4',
  '',
].join('\n');

/** ldns-read-zone's RFC 3597 §5 lines: `owner TTL IN TYPEnnn \# length hex`. */
function parseGeneric(text: string): Rr[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith(';'))
    .map((line) => {
      const [owner, ttl, klass, type, marker, length, ...hex] = line.trim().split(/\s+/);
      if (klass !== 'IN' || marker !== '\\#' || !/^TYPE\d+$/.test(type ?? '')) throw new Error(`not an RFC 3597 line: ${line}`);
      const rdata = Buffer.from(hex.join(''), 'hex');
      if (rdata.length !== Number(length)) throw new Error(`RDATA length ${rdata.length} is not ${length}: ${line}`);
      return { owner: n(owner!), type: Number(type!.slice(4)), class: 1, ttl: Number(ttl), rdata };
    });
}

interface Signed {
  config: Config;
  records: Rr[];
  ds: string;
  keys: Dnskey[];
}

let dir = '';
const signed = new Map<string, Signed>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ntp-dnssec-interop-'));
  await writeFile(join(dir, 'example.zone'), ZONE);
  await Promise.all(
    CONFIGS.map(async (config, i) => {
      const sub = join(dir, String(i));
      await rm(sub, { recursive: true, force: true });
      await runLdns('ldns-keygen', ['-a', 'list'], dir).catch(() => '');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(sub);
      const bits = config.algorithm === 'RSASHA256' ? ['-b', '2048'] : [];
      const ksk = (await runLdns('ldns-keygen', ['-a', config.algorithm, ...bits, '-k', ORIGIN], sub)).trim();
      const zsk = (await runLdns('ldns-keygen', ['-a', config.algorithm, ...bits, ORIGIN], sub)).trim();
      const ds = (await runLdns('ldns-key2ds', ['-n', config.digest, `${ksk}.key`], sub)).trim();
      const out = join(sub, 'example.signed');
      const dates = ['-i', String(NOW - 3600), '-e', String(NOW + 7 * 86_400)];
      await runLdns('ldns-signzone', [...dates, ...(config.nsec3 ?? []), '-o', ORIGIN, '-f', out, join(dir, 'example.zone'), ksk, zsk], sub);
      const generic = await runLdns('ldns-read-zone', ['-U', 'NULL', out], sub);
      const records = parseGeneric(generic);
      const dnskeys = records.filter((r) => r.type === T.DNSKEY);
      const [anchor] = parseTrustAnchors(ds, 'ldns-key2ds');
      const verdict = validateDnskeys(dnskeys, sigsFor(records, dnskeys[0]!.owner, T.DNSKEY), anchor!, options());
      if (verdict.status !== 'secure') throw new Error(`${config.label}: DNSKEY RRset not secure: ${JSON.stringify(verdict)}\n${await readFile(out, 'utf8')}`);
      signed.set(config.label, { config, records, ds, keys: verdict.keys });
    }),
  );
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const id = (r: { owner: Name; type: number }) => `${nameWire(r.owner).toString('hex')}/${r.type}`;
function sigsFor(records: Rr[], owner: Name, type: number): Rr[] {
  return records.filter((r) => r.type === T.RRSIG && sameName(r.owner, owner) && parseRrsig(r).typeCovered === type);
}
function rrsets(records: Rr[]): Rr[][] {
  const sets = new Map<string, Rr[]>();
  for (const r of records.filter((record) => record.type !== T.RRSIG)) sets.set(id(r), [...(sets.get(id(r)) ?? []), r]);
  return [...sets.values()];
}

/* ----------------------------------------------------------------------------------------
 * What each zone must prove; over opt-out chains, what falls in an opt-out span is insecure.
 */

type Query = { nxdomain: string } | { nodata: string; type: number } | { wildcard: string; from: string };
interface Row {
  name: string;
  query: Query;
  expected: Record<Chain, DenialVerdict['status']>;
}
const all = (status: DenialVerdict['status']): Record<Chain, DenialVerdict['status']> => ({ nsec: status, nsec3: status, 'opt-out': status });
const ROWS: Row[] = [
  { name: 'NXDOMAIN', query: { nxdomain: 'nope.example.' }, expected: { nsec: 'secure', nsec3: 'secure', 'opt-out': 'insecure' } },
  { name: 'NXDOMAIN three labels down', query: { nxdomain: 'a.b.nope.example.' }, expected: { nsec: 'secure', nsec3: 'secure', 'opt-out': 'insecure' } },
  { name: 'NXDOMAIN below an empty non-terminal', query: { nxdomain: 'q.y.example.' }, expected: { nsec: 'secure', nsec3: 'secure', 'opt-out': 'insecure' } },
  { name: 'NXDOMAIN below an uppercase owner', query: { nxdomain: 'deep.mx.example.' }, expected: { nsec: 'secure', nsec3: 'secure', 'opt-out': 'insecure' } },
  { name: 'forged NXDOMAIN for a name that exists', query: { nxdomain: 'mail.example.' }, expected: all('bogus') },
  { name: 'forged NXDOMAIN for an empty non-terminal', query: { nxdomain: 'y.example.' }, expected: all('bogus') },
  { name: 'forged NXDOMAIN where a wildcard answers', query: { nxdomain: 'z.w.example.' }, expected: all('bogus') },
  { name: 'NODATA', query: { nodata: 'mail.example.', type: T.MX }, expected: all('secure') },
  { name: 'NODATA at the apex', query: { nodata: 'example.', type: T.A }, expected: all('secure') },
  { name: 'NODATA at an empty non-terminal', query: { nodata: 'y.example.', type: T.A }, expected: all('secure') },
  { name: 'NODATA from the wildcard', query: { nodata: 'z.w.example.', type: T.MX }, expected: { nsec: 'secure', nsec3: 'secure', 'opt-out': 'insecure' } },
  { name: 'forged NODATA for a type that exists', query: { nodata: 'mail.example.', type: T.AAAA }, expected: all('bogus') },
  { name: 'forged NODATA at a CNAME', query: { nodata: 'cname.example.', type: T.A }, expected: all('bogus') },
  // ldns-signzone -p flags every NSEC3 opt-out but still lists the unsigned delegation, so its NSEC3 matches.
  { name: 'no DS at the unsigned delegation', query: { nodata: 'insecure.example.', type: T.DS }, expected: all('secure') },
  { name: 'forged no DS at the signed delegation', query: { nodata: 'sub.example.', type: T.DS }, expected: all('bogus') },
  {
    name: 'the wildcard answer',
    query: { wildcard: 'z.w.example.', from: '*.w.example.' },
    expected: { nsec: 'secure', nsec3: 'secure', 'opt-out': 'insecure' },
  },
  { name: 'a wildcard answer for a name that exists', query: { wildcard: 'x.y.example.', from: '*.example.' }, expected: all('bogus') },
];

function prove(zone: Signed, query: Query, records: Rr[], budget = new Budget()): DenialVerdict {
  const origin = n(ORIGIN);
  const nsec3 = zone.config.chain !== 'nsec';
  if ('nxdomain' in query)
    return nsec3 ? nsec3ProveNxdomain(n(query.nxdomain), records, origin, budget) : nsecProveNxdomain(n(query.nxdomain), records, origin);
  if ('nodata' in query)
    return nsec3 ? nsec3ProveNodata(n(query.nodata), query.type, records, origin, budget) : nsecProveNodata(n(query.nodata), query.type, records, origin);
  return nsec3
    ? nsec3ProveWildcard(n(query.wildcard), n(query.from), records, origin, budget)
    : nsecProveWildcard(n(query.wildcard), n(query.from), records, origin);
}

const denialOf = (zone: Signed) => zone.records.filter((r) => r.type === T.NSEC || r.type === T.NSEC3);

describe.each(CONFIGS.map((config) => [config.label, config] as const))('ldns zone: %s', (label) => {
  const zone = () => signed.get(label)!;

  it('every RRSIG verifies on its own, and none after its RRset is changed', () => {
    const { records, keys } = zone();
    const sets = rrsets(records);
    let checked = 0;
    for (const set of sets) {
      const sigs = sigsFor(records, set[0]!.owner, set[0]!.type);
      for (const sig of sigs) {
        const verdict = verifyRrset(set, [sig], keys, options());
        expect(verdict.status, `${nameToText(set[0]!.owner)} ${set[0]!.type}: ${JSON.stringify(verdict)}`).toBe('secure');
        checked++;
      }
      if (sigs.length === 0) continue;
      const tampered = set.map((r, i) =>
        i === 0 ? { ...r, rdata: Buffer.from(r.rdata).map((octet, j) => (j === r.rdata.length - 1 ? octet ^ 1 : octet)) } : r,
      );
      expect(verifyRrset(tampered, sigs, keys, options()).status, `${nameToText(set[0]!.owner)} ${set[0]!.type} tampered`).toBe('bogus');
    }
    // Every RRSIG of the zone was one of those checked.
    expect(checked).toBe(records.filter((r) => r.type === T.RRSIG).length);
    expect(checked).toBeGreaterThan(15);
  });

  it('the zone is signed as the validator expects: delegations and glue unsigned, names in their case', () => {
    const { records } = zone();
    const signedTypes = (owner: string) => records.filter((r) => r.type === T.RRSIG && sameName(r.owner, n(owner))).map((r) => parseRrsig(r).typeCovered);
    expect(signedTypes('insecure.example.')).not.toContain(T.NS);
    expect(signedTypes('ns.sub.example.')).toEqual([]);
    expect(signedTypes('sub.example.')).toContain(T.DS);
    // The MX exchange keeps the zone file's case in the RDATA ldns signed.
    const mxRecord = records.find((r) => r.type === T.MX)!;
    expect(Buffer.from(mxRecord.rdata).toString('latin1')).toContain('Mail');
  });

  it.each(ROWS.map((row) => [row.name, row] as const))('%s', (_, row) => {
    const verdict = prove(zone(), row.query, denialOf(zone()));
    expect(verdict.status, JSON.stringify(verdict)).toBe(row.expected[zone().config.chain]);
  });

  it('a wildcard RRSIG replayed for another name does not verify; for an expansion it does', () => {
    const { records, keys } = zone();
    const sig = sigsFor(records, n('*.w.example.'), T.TXT)[0]!;
    const wild = records.filter((r) => r.type === T.TXT && sameName(r.owner, n('*.w.example.')));
    const as = (owner: string) => [wild.map((r) => ({ ...r, owner: n(owner) })), [{ ...sig, owner: n(owner) }]] as const;
    const expansion = verifyRrset(...as('z.w.example.'), keys, options());
    expect(expansion.status).toBe('secure');
    expect(expansion.status === 'secure' && expansion.wildcard && nameToText(expansion.wildcard)).toBe('*.w.example.');
    expect(verifyRrset(...as('q.y.example.'), keys, options()).status).toBe('bogus');
  });

  it('a proof missing the record that covers the name is bogus', () => {
    const z = zone();
    const qname = n('nope.example.');
    const first = denialOf(z)[0]!;
    const records = denialOf(z).filter((r) => {
      if (r.type === T.NSEC) return !nsecCovers(parseNsec(r), qname);
      const nsec3 = parseNsec3(r);
      const hash = nsec3Hash(qname, nsec3.salt, nsec3.iterations);
      const owner = fromBase32hex(r.owner[0]!)!;
      const next = Buffer.from(nsec3.nextHashed);
      const covers =
        Buffer.compare(owner, next) < 0
          ? Buffer.compare(owner, hash) < 0 && Buffer.compare(hash, next) < 0
          : Buffer.compare(owner, hash) < 0 || Buffer.compare(hash, next) < 0;
      return !covers;
    });
    expect(records.length).toBe(denialOf(z).length - 1);
    expect(first).toBeDefined();
    expect(prove(z, { nxdomain: 'nope.example.' }, records).status).toBe('bogus');
  });
});
