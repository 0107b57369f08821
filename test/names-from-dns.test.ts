/**
 * A name may authenticate a peer only if every DNS answer that produced it was DNSSEC-secure
 * (RFC 7672 sections 2.2.2 and 3.2.2). Each row takes a name from one source (the MX RRset, a
 * CNAME hop, the address answer that ends a CNAME chain), secure or not, and a peer whose
 * certificate carries exactly that name, issued by the CA a DANE-TA record pins (the attacker's
 * best case: the CA is real, only the name is the attacker's). From the peer's side: a name from
 * insecure DNS never gets the mail; the same peer with a name from secure DNS does (so each row
 * can fail).
 *
 * Real parts: zones signed at setup (test/helpers/signed-dns.ts), served by a plain recursive
 * server that never sets AD, validated by the library itself from the tree's trust anchor
 * (`resolver.dnssec: 'validate'`); smtp-server peers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver, type Level, type TlsPolicyError, type TlsPolicySentInfo } from '../lib/index.js';
import { T, a, mx, rr, wireKeepCase } from './helpers/dnssec-signer.js';
import { makeCA, makeLeaf, makePki, tlsaData, type Pki } from './helpers/pki.js';
import { signTree, startSignedDns, tlsa, type SignedDnsServer } from './helpers/signed-dns.js';
import { startHosts, type Peer } from './helpers/smtp-peer.js';
import { sendOnce } from './helpers/world.js';

const NOW = Math.floor(Date.now() / 1000);
let dns: SignedDnsServer;
let dir = '';
let anchorFile = '';
let peers = new Map<string, Peer>();
let pki: Pki;
let port = 0;
let caFile = '';

beforeAll(async () => {
  pki = await makePki('names-from-dns CA');
  caFile = pki.caFile;
  const intermediate = await makeCA('names-from-dns intermediate', { issuer: pki.ca });
  // Peers, each presenting a certificate for one name, from the pinned intermediate.
  const certs: Array<[string, string]> = [
    ['evil', 'mx.evil.test'], // the insecure end of a CNAME chain
    ['alias-ok', 'mx.alias2.test'], // the original (secure) MX name of a chain of the same shape
    ['secure-end', 'target.chain.test'], // the secure end of a secure CNAME chain
    ['insecure-mx', 'mx.pinned.test'], // a host named by an insecure MX RRset (and by a secure one)
  ];
  const issued = await Promise.all(certs.map(([, name]) => makeLeaf(intermediate, { names: [name] })));
  ({ peers, port } = await startHosts(certs.map(([key], i) => ({ name: key, behaviour: 'starttls', cert: issued[i]! }))));
  const addr = (key: string) => peers.get(key)!.host;
  const ta = tlsa(2, 0, 1, Buffer.from(tlsaData(intermediate.der, 0, 1), 'hex'));
  const tlsaAt = (name: string) => rr(`_${port}._tcp.${name}.`, T.TLSA, ta);
  const mxOf = (domain: string, host: string) => rr(`${domain}.`, T.MX, mx(10, `${host}.`));
  const cname = (owner: string, target: string) => rr(`${owner}.`, T.CNAME, wireKeepCase(`${target}.`));
  const host = (name: string, key: string) => rr(`${name}.`, T.A, a(addr(key)));
  const tree = signTree(
    [
      { origin: '.', algorithm: 13 },
      { origin: 'test.', algorithm: 13 },
      // signed domain; its MX host is a secure CNAME into an unsigned zone the attacker can forge
      { origin: 'alias.test.', algorithm: 13, records: [mxOf('alias.test', 'mx.alias.test'), cname('mx.alias.test', 'mx.evil.test'), tlsaAt('mx.alias.test')] },
      { origin: 'evil.test.', algorithm: false, records: [host('mx.evil.test', 'evil'), tlsaAt('mx.evil.test')] },
      // the same shape, but the peer behind the insecure target carries the original MX name
      {
        origin: 'alias2.test.',
        algorithm: 13,
        records: [mxOf('alias2.test', 'mx.alias2.test'), cname('mx.alias2.test', 'mx.other.test'), tlsaAt('mx.alias2.test')],
      },
      { origin: 'other.test.', algorithm: false, records: [host('mx.other.test', 'alias-ok')] },
      // a signed CNAME chain end to end
      {
        origin: 'chain.test.',
        algorithm: 13,
        records: [
          mxOf('chain.test', 'mx.chain.test'),
          cname('mx.chain.test', 'target.chain.test'),
          host('target.chain.test', 'secure-end'),
          tlsaAt('target.chain.test'),
        ],
      },
      // an unsigned domain whose MX names a host in a signed zone with TLSA
      { origin: 'forged.test.', algorithm: false, records: [mxOf('forged.test', 'mx.pinned.test')] },
      { origin: 'pinned.test.', algorithm: 13, records: [host('mx.pinned.test', 'insecure-mx'), tlsaAt('mx.pinned.test')] },
      // a signed domain whose MX names the same host
      { origin: 'pinned2.test.', algorithm: 13, records: [mxOf('pinned2.test', 'mx.pinned.test')] },
    ],
    NOW,
  );
  dns = await startSignedDns({ zones: tree.zones });
  dir = mkdtempSync(join(tmpdir(), 'names-from-dns-'));
  anchorFile = join(dir, 'root.ds');
  writeFileSync(anchorFile, `${tree.anchor}\n`);
}, 60_000);

afterAll(async () => {
  await Promise.all([...peers.values()].map((p) => p.close()));
  await dns?.close();
  pki?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function send(level: Level, to: string, extra: Record<string, unknown> = {}): Promise<{ info?: TlsPolicySentInfo; error?: TlsPolicyError }> {
  const resolver = createResolver({ servers: [dns.server], dnssec: 'validate', trustAnchors: anchorFile, timeout: 800, attempts: 2 });
  return sendOnce({ port, level, caFile, dns: resolver, connectionReuse: false, ...extra }, { from: 's@origin.test', to, subject: 'names' });
}

function mailSeen(key: string): number {
  return peers.get(key)!.events.filter((e) => e.command === 'MAIL' || e.command === 'RCPT' || e.command === 'DATA').length;
}

describe('names from insecure DNS never authenticate a peer', () => {
  const levels: Level[] = ['dane', 'dane-only'];
  for (const level of levels) {
    it(`${level}: the insecure end of a secure CNAME is no DANE-TA reference name`, async () => {
      const before = mailSeen('evil');
      const { info, error } = await send(level, 'u@alias.test');
      expect(info).toBeUndefined();
      expect(error?.code).toBe('ETLS');
      expect(error?.temporary).toBe(true);
      // the certificate's name is shown, and it matched only the names got securely
      expect(error?.message).toMatch(/certificate names mx\.evil\.test matched none of mx\.alias\.test/);
      expect(error?.message).not.toMatch(/none of [^)]*mx\.evil\.test/);
      expect(mailSeen('evil')).toBe(before);
      const attempt = error!.deliveries[0]!.attempts[0]!;
      expect(attempt.trust).toBe('Untrusted');
      expect(attempt.decision).toBe('next');
      expect([attempt.resultType, attempt.audit.result_type]).toEqual(['certificate-host-mismatch', 'certificate-host-mismatch']);
    });
    it(`${level}: behind the same chain, a certificate for the original MX name is Verified`, async () => {
      const before = mailSeen('alias-ok');
      const { info, error } = await send(level, 'u@alias2.test');
      expect(error).toBeUndefined();
      const audit = info!.deliveries[0]!.attempts[0]!.audit;
      expect([audit.auth, audit.level]).toEqual(['Verified', level]);
      expect(audit.dane).toContain(`_${port}._tcp.mx.alias2.test`);
      expect(mailSeen('alias-ok')).toBe(before + 3);
    });
    it(`${level}: the end of a CNAME chain that is secure throughout is a reference name`, async () => {
      const before = mailSeen('secure-end');
      const { info, error } = await send(level, 'u@chain.test');
      expect(error).toBeUndefined();
      const audit = info!.deliveries[0]!.attempts[0]!.audit;
      expect([audit.auth, audit.level]).toEqual(['Verified', level]);
      expect(mailSeen('secure-end')).toBe(before + 3);
    });
  }
  it('dane: a host named by an insecure MX RRset is at most Trusted, never Verified', async () => {
    const before = mailSeen('insecure-mx');
    const { info, error } = await send('dane', 'u@forged.test');
    expect(error).toBeUndefined();
    const attempt = info!.deliveries[0]!.attempts[0]!;
    expect(attempt.trust).toBe('Trusted');
    expect(attempt.audit.dane).toMatch(/not DNSSEC-secure/);
    expect(mailSeen('insecure-mx')).toBe(before + 3);
  });
  it('dane-only: a host named by an insecure MX RRset gets nothing', async () => {
    const before = mailSeen('insecure-mx');
    const connections = peers.get('insecure-mx')!.connections;
    const { error } = await send('dane-only', 'u@forged.test');
    expect(error?.code).toBe('ETLS');
    expect(error?.message).toMatch(/MX RRset is not DNSSEC-secure/);
    expect(error?.deliveries[0]?.attempts[0]?.resultType).toBe('dane-required');
    expect(mailSeen('insecure-mx')).toBe(before);
    expect(peers.get('insecure-mx')!.connections).toBe(connections);
  });
  for (const [domain, secureMx] of [
    ['forged.test', false],
    ['pinned2.test', true],
  ] as const) {
    it(`secure with match=hostname: the MX host name counts only from a secure MX RRset (${domain})`, async () => {
      // The peer's chain is good under the trusted CA and it carries the MX host name.
      const before = mailSeen('insecure-mx');
      const { info, error } = await send('secure', `u@${domain}`, { policy: { [domain]: { level: 'secure', match: ['hostname', 'nexthop'] } } });
      if (secureMx) {
        expect(error).toBeUndefined();
        expect(info!.deliveries[0]!.attempts[0]!.audit.matched).toBe('mx.pinned.test');
        expect(mailSeen('insecure-mx')).toBe(before + 3);
      } else {
        expect(error?.code).toBe('ETLS');
        expect(error?.message).toMatch(/certificate names mx\.pinned\.test matched none of forged\.test/);
        expect(mailSeen('insecure-mx')).toBe(before);
      }
    });
  }
});
