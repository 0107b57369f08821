/**
 * The MTA-STS cache outliving one process (RFC 8461 section 5.1's downgrade resistance), for one
 * store: shared by test/mtasts-store.test.ts (a SQLite file across a restart, npm test) and
 * test/mtasts-store-redis.test.ts (a real redis-server shared by two processes, npm run
 * test:interop). A policy one process fetched is enforced by another while an attacker has moved
 * the MX to a host of their own and blocks the TXT record and the policy host; a process with an
 * empty cache is the control: it delivers to the attacker, so the test can fail.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runTsChild } from './ts-child.js';
import { startDnsServer, type TestDnsServer, type ZoneData } from './dns-server.js';
import { makePki, type Pki } from './pki.js';
import { loopbackBlock, startHosts, type Hosts } from './smtp-peer.js';
import { policyText, startStsHosts, type StsHosts } from './sts-host.js';

interface Sent {
  accepted?: string[];
  code?: string;
  message?: string;
  deliveries?: Array<{ mtaSts?: { notes: string[] }; attempts: Array<{ mx: string; audit: Record<string, string> }> }>;
}

/** Its own hosts, DNS and policy host for `domain` (redis.test or file.test), and the three steps with `store()` as each process's store. */
export function cachedPolicyAcrossProcesses(domain: 'redis.test' | 'file.test', store: () => { redis: number } | { file: string }): void {
  let pki: Pki;
  let peers: Hosts;
  let dns: TestDnsServer;
  let sts: StsHosts;
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
  }, 30_000);
  afterAll(async () => {
    await Promise.all([peers?.close(), dns?.close(), sts?.close()]);
    pki?.close();
  });

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
}
