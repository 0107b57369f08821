/**
 * A small world for transport tests: a test CA with certificates made now, a DNS server
 * (dns2) that publishes MX and A records for test domains, and smtp-server peers on
 * 127.x.y.n sharing one port, each recording what crossed which channel.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { createResolver } from '../../lib/dns/index.js';
import { tlsPolicy, type TlsPolicyOptions, type TlsPolicySentInfo, type TlsPolicyError } from '../../lib/index.js';
import { startDnsServer, type TestDnsServer, type ZoneRecord } from './dns-server.js';
import { daysFromNow, makeCA, makeLeaf, type Issued } from './pki.js';
import { loopbackBlock, startPeers, type Peer, type PeerBehaviour, type PeerOptions } from './smtp-peer.js';

export interface Pki {
  ca: Issued;
  caFile: string;
  dir: string;
  /** A leaf for `names`, issued by the test CA. */
  leaf(names: string[], opts?: { expired?: boolean; self?: boolean }): Promise<Issued>;
}

export async function makePki(): Promise<Pki> {
  const ca = await makeCA('nodemailer-tls-policy test CA');
  const dir = mkdtempSync(join(tmpdir(), 'ntp-world-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  return {
    ca,
    caFile,
    dir,
    leaf: (names, opts = {}) =>
      makeLeaf(opts.self ? 'self' : ca, {
        names,
        ...(opts.expired ? { notBefore: daysFromNow(-60), notAfter: daysFromNow(-30) } : {}),
      }),
  };
}

export interface HostSpec extends Omit<PeerOptions, 'port' | 'host' | 'cert' | 'key'> {
  /** The MX host name. */
  name: string;
  behaviour: PeerBehaviour;
  /** The certificate the peer presents; default one for its own name from the test CA. */
  cert?: Issued;
}

export interface World {
  dns: TestDnsServer;
  peers: Map<string, Peer>;
  port: number;
  close(): Promise<void>;
  /** Sends one message through a fresh transport; resolves with info or the error. */
  send(options: TlsPolicyOptions, mail: SendMailOptions & { queuedAt?: Date | number }): Promise<{ info?: TlsPolicySentInfo; error?: TlsPolicyError }>;
  /** Every MAIL, RCPT, AUTH or DATA any peer saw. */
  mailEvents(): Array<{ host: string; command: string; secure: boolean }>;
}

/**
 * Starts peers for `hosts` and a DNS server whose zone gives each host an A record, plus
 * `records` (MX and others). Hosts get addresses 127.a.b.2, .3, ... in order.
 */
export async function makeWorld(pki: Pki, hosts: HostSpec[], records: ZoneRecord[]): Promise<World> {
  const ip = loopbackBlock();
  const specs: Array<Omit<PeerOptions, 'port'>> = [];
  for (const [i, h] of hosts.entries()) {
    const cert = h.cert ?? (await pki.leaf([h.name]));
    const { name, cert: _c, ...rest } = h;
    specs.push({ ...rest, host: ip(i + 2), cert: cert.chainPem, key: cert.keyPem, name });
  }
  const started = await startPeers(specs);
  const peers = new Map<string, Peer>();
  hosts.forEach((h, i) => peers.set(h.name, started[i] as Peer));
  const zone: ZoneRecord[] = [...records, ...hosts.map((h, i) => ({ name: h.name, type: 'A' as const, address: ip(i + 2) }))];
  const dns = await startDnsServer({ host: ip(1), zone });
  const port = started[0]?.port ?? 25;
  return {
    dns,
    peers,
    port,
    close: async () => {
      await Promise.all([...started.map((p) => p.close()), dns.close()]);
    },
    send: async (options, mail) => {
      const transport = nodemailer.createTransport(
        tlsPolicy({
          port,
          caFile: pki.caFile,
          dns: createResolver({ servers: [dns.server], timeout: 1000, attempts: 1 }),
          ...options,
        }),
      );
      try {
        const info = await transport.sendMail({ from: 'sender@origin.test', subject: 'test', text: 'hello', ...mail });
        return { info };
      } catch (error) {
        return { error: error as TlsPolicyError };
      } finally {
        transport.close();
      }
    },
    mailEvents: () =>
      [...peers.entries()].flatMap(([host, peer]) =>
        peer.events.filter((e) => e.command !== 'CONNECT').map((e) => ({ host, command: e.command, secure: e.secure })),
      ),
  };
}
