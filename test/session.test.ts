import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../lib/smtp/session.js';
import { loopbackBlock, startPeers, type Peer, type PeerBehaviour } from './helpers/smtp-peer.js';

const ip = loopbackBlock();
const behaviours: PeerBehaviour[] = ['starttls', 'no-starttls', 'starttls-454', 'starttls-554', 'handshake-fail', 'drop-after-tls', 'reply-421-after-tls', 'implicit-tls'];
let peers: Peer[] = [];

beforeAll(async () => {
  peers = await startPeers(behaviours.map((behaviour, i) => ({ host: ip(i + 2), behaviour })));
});
afterAll(async () => {
  await Promise.all(peers.map((p) => p.close()));
});

describe('Session facts, from real smtp-server peers', () => {
  const rows: Array<[PeerBehaviour, Record<string, unknown>]> = [
    ['starttls', { starttlsOffered: true, starttlsSent: true, tls: true, failure: undefined }],
    ['no-starttls', { starttlsOffered: false, starttlsSent: false, tls: false, failure: undefined }],
    ['starttls-454', { starttlsOffered: true, starttlsSent: true, tls: false, starttlsReply: '454 4.7.0 TLS not available due to local problem' }],
    ['starttls-554', { starttlsOffered: true, starttlsSent: true, tls: false, starttlsReply: '554 5.7.0 TLS not available' }],
    ['handshake-fail', { starttlsOffered: true, starttlsSent: true, tls: false, failure: 'handshake' }],
    ['drop-after-tls', { starttlsOffered: true, starttlsSent: true, tls: false, failure: 'tls-session' }],
    ['reply-421-after-tls', { starttlsOffered: true, starttlsSent: true, tls: false, failure: 'tls-reply' }],
    ['implicit-tls', { tls: true, failure: undefined }],
  ];
  for (const [behaviour, want] of rows) {
    it(`${behaviour}`, async () => {
      const peer = peers[behaviours.indexOf(behaviour)]!;
      const { facts, session } = await Session.open({
        host: 'mx.test', address: peer.host, port: peer.port, starttls: true,
        implicitTls: behaviour === 'implicit-tls', tls: { servername: 'mx.test' },
      });
      session?.quit();
      const got: Record<string, unknown> = { tls: facts.tls !== undefined, failure: facts.failure?.kind };
      if ('starttlsOffered' in want) got.starttlsOffered = facts.starttlsOffered;
      if ('starttlsSent' in want) got.starttlsSent = facts.starttlsSent;
      if ('starttlsReply' in want) got.starttlsReply = facts.starttlsReply;
      expect(got).toEqual(want);
      if (want.tls) {
        expect(facts.tls!.protocol).toMatch(/^TLSv1\.[23]$/);
        expect(facts.tls!.chain.length).toBeGreaterThan(0);
      }
      expect(peer.events.filter((e) => e.command !== 'CONNECT')).toEqual([]);
    });
  }
});
