/**
 * The MTA-STS cache outlives one process (RFC 8461 section 5.1's downgrade resistance): a policy
 * one process fetched is enforced by another, through a real redis-server (Keyv's @keyv/redis
 * store) and through a SQLite file (`store: { file }`) across a restart, while an attacker has
 * moved the MX to a host of their own and blocks the TXT record and the policy host. A process
 * with an empty cache is the control: it delivers to the attacker, so the test can fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer, type ZoneData } from './helpers/dns-server.js';
import { makePki, type Pki } from './helpers/pki.js';
import { startRedis, type RedisProcess } from './helpers/redis.js';
import { runTsChild } from './helpers/ts-child.js';
import { loopbackBlock, startHosts, type Hosts } from './helpers/smtp-peer.js';
import { policyText, startStsHosts, type StsHosts } from './helpers/sts-host.js';

let pki: Pki;
let peers: Hosts;
let dns: TestDnsServer;
let sts: StsHosts;
let redis: RedisProcess;
let dir: string;
/** Per domain: its MX host now, and whether an attacker blocks its TXT record and policy host. */
const state = new Map<string, { mx: string; attacked: boolean }>();

beforeAll(async () => {
  pki = await makePki('MTA-STS store test CA');
  const ip = loopbackBlock();
  peers = await startHosts(
    [
      { name: 'mx1.victim.test', behaviour: 'starttls' },
      { name: 'mx.attacker.test', behaviour: 'starttls' },
    ],
    { pki, ip },
  );
  sts = await startStsHosts(loopbackBlock()(2), await pki.leaf(['fallback.invalid']));
  const addresses = new Map(peers.records.map((r) => [r.name, r.address]));
  dns = await startDnsServer({
    host: ip(1),
    zone: (name): ZoneData[] | undefined => {
      const address = addresses.get(name);
      if (address) return [{ type: 'A', address }];
      const domain = name.replace(/^(_mta-sts|mta-sts)\./, '');
      const s = state.get(domain);
      if (!s) return undefined;
      if (name.startsWith('_mta-sts.')) return [{ type: 'TXT', text: 'v=STSv1; id=v1' }];
      if (name.startsWith('mta-sts.')) return [{ type: 'A', address: sts.address }];
      return [{ type: 'MX', exchange: s.mx, preference: 10 }];
    },
    // The attacker drops the TXT lookup (SERVFAIL) ...
    servfail: (name) => name.startsWith('_mta-sts.') && state.get(name.slice(9))?.attacked === true,
  });
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'ntp-sts-store-'));
}, 30_000);
afterAll(async () => {
  await Promise.all([peers?.close(), dns?.close(), sts?.close(), redis?.stop()]);
  pki?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Sent {
  accepted?: string[];
  code?: string;
  message?: string;
  deliveries?: Array<{ mtaSts?: { notes: string[] }; attempts: Array<{ mx: string; audit: Record<string, string> }> }>;
}

/** One message from a process of its own. */
function sendFrom(store: { redis: number } | { file: string } | 'memory', to: string): Promise<Sent> {
  const args = { dns: dns.server, port: peers.port, stsPort: sts.port, caFile: pki.caFile, to, store };
  return runTsChild<Sent>('sts-sender.ts', args, 30_000);
}

const mailsTo = (host: string) => peers.peers.get(host)!.events.filter((e) => e.command === 'MAIL').length;

async function victim(domain: string) {
  state.set(domain, { mx: 'mx1.victim.test', attacked: false });
  sts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: { kind: 'policy', body: policyText('enforce', ['mx1.victim.test']) } });
}

/** The attack: the MX now names the attacker's host, the TXT record and the policy host are blocked. */
async function attack(domain: string) {
  state.set(domain, { mx: 'mx.attacker.test', attacked: true });
  sts.set(domain, { cert: await pki.leaf([`mta-sts.${domain}`]), behaviour: { kind: 'reset' } });
}

describe.each([
  ['a Redis store shared by two processes', 'redis.test', () => ({ redis: redis.port })],
  ['a SQLite file, across a restart', 'file.test', () => ({ file: join(dir, 'sts.sqlite') })],
])('%s', (_name, domain, store) => {
  it('the first process fetches the policy and delivers under it', async () => {
    await victim(domain);
    const sent = await sendFrom(store(), `u@${domain}`);
    expect(sent.accepted, JSON.stringify(sent)).toEqual([`u@${domain}`]);
    expect(sent.deliveries![0]!.attempts[0]!.audit).toMatchObject({
      mx: 'mx1.victim.test',
      level: 'secure',
      auth: 'Verified',
      sts_mode: 'enforce',
      sts_id: 'v1',
    });
  });

  it('under attack, another process enforces the cached policy: deferred, the attacker never connected to', async () => {
    await attack(domain);
    const before = peers.peers.get('mx.attacker.test')!.events.length;
    const sent = await sendFrom(store(), `u@${domain}`);
    expect(sent.code, JSON.stringify(sent)).toBeDefined();
    expect(sent.message).toMatch(/MX host mx\.attacker\.test matches no mx pattern of the MTA-STS policy of (redis|file)\.test \(id v1, mode enforce\)/);
    expect(sent.deliveries![0]!.mtaSts!.notes.join(' ')).toMatch(/the TXT lookup of _mta-sts\..* failed .*the cached policy \(id v1, mode enforce/);
    expect(peers.peers.get('mx.attacker.test')!.events.length).toBe(before);
  });

  it('control: a process with an empty cache is downgraded and delivers to the attacker', async () => {
    const before = mailsTo('mx.attacker.test');
    const sent = await sendFrom('memory', `u@${domain}`);
    expect(sent.accepted, JSON.stringify(sent)).toEqual([`u@${domain}`]);
    expect(mailsTo('mx.attacker.test')).toBe(before + 1);
  });
});
