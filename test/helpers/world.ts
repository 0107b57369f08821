/**
 * A small world for transport tests: a test CA with certificates made now, a DNS server
 * (dns2) that publishes MX and A records for test domains, and smtp-server peers on
 * 127.x.y.n sharing one port, each recording what crossed which channel.
 */
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { createResolver } from '../../lib/dns/index.js';
import { tlsPolicy, type TlsPolicyOptions, type TlsPolicySentInfo, type TlsPolicyError } from '../../lib/index.js';
import { startDnsServer, type TestDnsServer, type ZoneRecord } from './dns-server.js';
import type { Pki } from './pki.js';
import { loopbackBlock, startHosts, type HostSpec, type Peer } from './smtp-peer.js';

export { makePki, type Pki } from './pki.js';
export type { HostSpec } from './smtp-peer.js';

export interface World {
  dns: TestDnsServer;
  peers: Map<string, Peer>;
  port: number;
  /** Stops the peers and the DNS server, and removes the PKI's temporary folder: the world owns the pki it was given. */
  close(): Promise<void>;
  /** Sends one message through a fresh transport; resolves with info or the error. */
  send(options: TlsPolicyOptions, mail: SendMailOptions & { queuedAt?: Date | number }): Promise<{ info?: TlsPolicySentInfo; error?: TlsPolicyError }>;
  /** Every MAIL, RCPT, AUTH or DATA any peer saw. */
  mailEvents(): Array<{ host: string; command: string; secure: boolean }>;
}

/**
 * Starts peers for `hosts` and a DNS server whose zone gives each host an A record, plus
 * `records` (MX and others; a function gets the peers' port, for TLSA names); `ad`: the DNS server sets the AD bit (a validating resolver's
 * "secure", believed from loopback). Hosts get addresses 127.a.b.2, .3, ... in order.
 */
export async function makeWorld(
  pki: Pki,
  hosts: HostSpec[],
  records: ZoneRecord[] | ((port: number) => ZoneRecord[]),
  options: { ad?: boolean } = {},
): Promise<World> {
  const ip = loopbackBlock();
  const started = await startHosts(hosts, { pki, ip });
  const { peers, port } = started;
  const zone = [...(typeof records === 'function' ? records(port) : records), ...started.records];
  const dns = await startDnsServer({ host: ip(1), zone, ...(options.ad ? { ad: true } : {}) });
  return {
    dns,
    peers,
    port,
    close: async () => {
      await Promise.all([started.close(), dns.close()]);
      pki.close();
    },
    send: (options, mail) =>
      sendOnce({ port, caFile: pki.caFile, dns: createResolver({ servers: [dns.server], timeout: 1000, attempts: 1 }), ...options }, mail),
    mailEvents: () =>
      [...peers.entries()].flatMap(([host, peer]) =>
        peer.events.filter((e) => e.command !== 'CONNECT').map((e) => ({ host, command: e.command, secure: e.secure })),
      ),
  };
}

/**
 * Sends one message through a fresh transport (a fresh resolver cache and no reused session),
 * closed afterwards; resolves with info or the error. `mail` defaults to a short message from
 * sender@origin.test.
 */
export async function sendOnce(
  options: TlsPolicyOptions,
  mail: SendMailOptions & { queuedAt?: Date | number },
): Promise<{ info?: TlsPolicySentInfo; error?: TlsPolicyError }> {
  const transport = nodemailer.createTransport(tlsPolicy(options));
  try {
    const info = await transport.sendMail({ from: 'sender@origin.test', subject: 'test', text: 'hello', ...mail });
    return { info };
  } catch (error) {
    return { error: error as TlsPolicyError };
  } finally {
    transport.close();
  }
}
