/**
 * DANE end to end with `resolver.dnssec: 'validate'` and no validating resolver anywhere: the
 * transport's resolver asks a plain recursive server (test/helpers/signed-dns.ts: it passes
 * the DNSSEC records of zones signed at test time through and never sets AD) and validates
 * every answer itself, from the trust anchor file given in the options. Real smtp-server peers
 * with certificates made now; each test checks from the peer's side what crossed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TlsPolicyError, TlsPolicyOptions, TlsPolicySentInfo } from '../lib/index.js';
import { nameFromText, sameName } from '../lib/dnssec/names.js';
import { T, a, mx, rr } from './helpers/dnssec-signer.js';
import { makeLeaf, tlsaData, type Issued } from './helpers/pki.js';
import { signTree, startSignedDns, tlsa, type SignedDnsServer } from './helpers/signed-dns.js';
import { startHosts, type Peer } from './helpers/smtp-peer.js';
import { sendOnce } from './helpers/world.js';

const NOW = Math.floor(Date.now() / 1000);
const HOSTS = ['mx.good.example', 'mx.bogus.example', 'mx.plain.example'];

let peers = new Map<string, Peer>();
let port = 0;
let plain: SignedDnsServer;
let stripping: SignedDnsServer;
let dir: string;
let anchorFile: string;

beforeAll(async () => {
  const certs = new Map<string, Issued>();
  for (const host of HOSTS) certs.set(host, await makeLeaf('self', { names: [host] }));
  ({ peers, port } = await startHosts(HOSTS.map((name) => ({ name, behaviour: 'starttls' as const, cert: certs.get(name)! }))));
  const address = (host: string) => rr(`${host}.`, T.A, a(peers.get(host)!.host));
  const tlsaFor = (host: string) => rr(`_${port}._tcp.${host}.`, T.TLSA, tlsa(3, 1, 1, Buffer.from(tlsaData(certs.get(host)!.der, 1, 1), 'hex')));
  const tree = signTree(
    [
      { origin: '.', algorithm: 13 },
      { origin: 'example.', algorithm: 8, denial: { salt: Buffer.from('ab', 'hex'), iterations: 1, optOut: true } },
      {
        origin: 'good.example.',
        algorithm: 15,
        records: [rr('good.example.', T.MX, mx(10, 'mx.good.example.')), address('mx.good.example'), tlsaFor('mx.good.example')],
      },
      {
        origin: 'bogus.example.',
        algorithm: 13,
        records: [rr('bogus.example.', T.MX, mx(10, 'mx.bogus.example.')), address('mx.bogus.example'), tlsaFor('mx.bogus.example')],
      },
      { origin: 'plain.example.', algorithm: false, records: [rr('plain.example.', T.MX, mx(10, 'mx.plain.example.')), address('mx.plain.example')] },
    ],
    NOW,
  );
  // After signing, the bogus zone's TLSA RDATA changes (the certificate digest of another host): its RRSIG no longer verifies.
  const bogus = tree.zones.find((zone) => sameName(zone.origin, nameFromText('bogus.example.')))!;
  const owner = nameFromText(`_${port}._tcp.mx.bogus.example.`);
  bogus.records = bogus.records.map((record) =>
    record.type === T.TLSA && sameName(record.owner, owner)
      ? { ...record, rdata: tlsa(3, 1, 1, Buffer.from(tlsaData(certs.get('mx.good.example')!.der, 1, 1), 'hex')) }
      : record,
  );
  plain = await startSignedDns({ zones: tree.zones });
  const strip = <R extends { type: number }>(records: R[]) => records.filter((r) => r.type !== T.RRSIG && r.type !== T.NSEC && r.type !== T.NSEC3);
  stripping = await startSignedDns({
    zones: tree.zones,
    host: '127.0.0.2',
    mutate: (reply) => ({ ...reply, answer: strip(reply.answer), authority: strip(reply.authority) }),
  });
  dir = mkdtempSync(join(tmpdir(), 'dane-validate-'));
  anchorFile = join(dir, 'root.ds');
  writeFileSync(anchorFile, `${tree.anchor}\n`);
}, 60_000);

afterAll(async () => {
  await Promise.all([...peers.values()].map((peer) => peer.close()));
  await Promise.all([plain?.close(), stripping?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

function send(server: SignedDnsServer, options: TlsPolicyOptions, to: string): Promise<{ info?: TlsPolicySentInfo; error?: TlsPolicyError }> {
  return sendOnce(
    { port, resolver: { servers: [server.server], dnssec: 'validate', trustAnchors: anchorFile, timeout: 1000, attempts: 1 }, ...options },
    { from: 's@origin.test', to, subject: 'dane' },
  );
}

/** What a peer saw (MAIL, RCPT, DATA, CONNECT) while `fn` ran. */
async function seen<T>(host: string, fn: () => Promise<T>): Promise<{ result: T; commands: Array<[string, boolean]>; connects: number }> {
  const before = peers.get(host)!.events.length;
  const result = await fn();
  const events = peers.get(host)!.events.slice(before);
  return {
    result,
    commands: events.filter((e) => e.command !== 'CONNECT').map((e) => [e.command, e.secure]),
    connects: events.filter((e) => e.command === 'CONNECT').length,
  };
}

const TLS: Array<[string, boolean]> = [
  ['MAIL', true],
  ['RCPT', true],
  ['DATA', true],
];

describe("DANE with resolver.dnssec: 'validate' against a plain recursive server", () => {
  it('a matching TLSA 3 1 1 in a signed zone: Verified, the message crosses under TLS', async () => {
    const { result, commands } = await seen('mx.good.example', () => send(plain, { level: 'dane-only' }, 'u@good.example'));
    expect(result.error).toBeUndefined();
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect([audit.level, audit.auth]).toEqual(['dane-only', 'Verified']);
    expect(audit.matched).toMatch(/^3 1 1 /);
    expect(commands).toEqual(TLS);
    // The queries the validator sent asked for DNSSEC records with checking disabled, and no AD bit was ever set by the server.
    expect(plain.queries.every((q) => q.do && q.cd)).toBe(true);
  });

  it('a bogus TLSA RRset: deferred with the reason, and the peer is never contacted', async () => {
    for (const level of ['dane', 'dane-only'] as const) {
      const { result, commands, connects } = await seen('mx.bogus.example', () => send(plain, { level }, 'u@bogus.example'));
      expect(result.info).toBeUndefined();
      expect(result.error?.temporary).toBe(true);
      expect(result.error?.code).toBe('ETLS');
      expect(result.error?.message).toContain(
        `DNS lookup of TLSA for _${port}._tcp.mx.bogus.example failed DNSSEC validation: in zone bogus.example., _${port}._tcp.mx.bogus.example. TLSA: RRSIG`,
      );
      expect(result.error?.message).toMatch(new RegExp(`mx\\.bogus\\.example\\[[\\d.]+\\]:${port} is not tried at level ${level} without its TLSA records`));
      expect(result.error?.deliveries?.[0]?.pending).toEqual(['u@bogus.example']);
      expect([commands, connects]).toEqual([[], 0]);
    }
  });

  it('an unsigned domain proven insecure: dane runs as may, dane-only sends nothing', async () => {
    const may = await seen('mx.plain.example', () => send(plain, { level: 'dane' }, 'u@plain.example'));
    expect(may.result.info!.deliveries[0]!.attempts[0]!.audit.level).toBe('may');
    expect(may.commands).toEqual(TLS);
    const only = await seen('mx.plain.example', () => send(plain, { level: 'dane-only' }, 'u@plain.example'));
    expect(only.result.error?.message).toMatch(/the MX RRset is not DNSSEC-secure, which level dane-only does not allow/);
    expect(only.commands).toEqual([]);
  });

  it('an upstream that strips DNSSEC records: the DANE destination defers, naming the server, and never falls to may', async () => {
    const { result, commands, connects } = await seen('mx.good.example', () => send(stripping, { level: 'dane' }, 'u@good.example'));
    expect(result.info).toBeUndefined();
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toContain(
      `DNS lookup of MX for good.example failed DNSSEC validation: ${stripping.server} answered the DNSKEY query for . without RRSIG records: it strips DNSSEC records`,
    );
    expect([commands, connects]).toEqual([[], 0]);
  });
});
