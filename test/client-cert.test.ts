/**
 * Client certificates, proven from the server's side: peers that ask for a client certificate
 * during the TLS handshake and record which one they got. The right certificate goes to the right
 * destination (a policy entry's cert_file/key_file over the global certFile/keyFile), a
 * destination with none configured gets none, and connection reuse never hands a session made
 * with one certificate to a destination that asks for another.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy } from '../lib/index.js';
import { makeLeaf } from './helpers/pki.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';

let pki: Pki;
let world: World;
const files: Record<string, { cert: string; key: string }> = {};

beforeAll(async () => {
  pki = await makePki();
  for (const name of ['global', 'alpha', 'beta']) {
    const issued = await makeLeaf(pki.ca, { names: [`${name}.client.test`], cn: `${name} client` });
    const cert = join(pki.dir, `${name}.crt`);
    const key = join(pki.dir, `${name}.key`);
    writeFileSync(cert, issued.chainPem);
    writeFileSync(key, issued.keyPem);
    files[name] = { cert, key };
  }
  world = await makeWorld(
    pki,
    [
      { name: 'mx.own.test', behaviour: 'starttls', requestCert: true },
      { name: 'mx.shared.test', behaviour: 'starttls', requestCert: true },
    ],
    [
      { name: 'own.test', type: 'MX', exchange: 'mx.own.test', preference: 10 },
      { name: 'plain.test', type: 'MX', exchange: 'mx.own.test', preference: 10 },
      { name: 'alpha.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 },
      { name: 'beta.test', type: 'MX', exchange: 'mx.shared.test', preference: 10 },
    ],
  );
});
afterAll(() => world?.close());

function certsSeen(host: string, from: number): Array<string | undefined> {
  return world.peers
    .get(host)!
    .events.slice(from)
    .filter((e) => e.command === 'MAIL')
    .map((e) => e.clientCert);
}

const policy = () =>
  `alpha.test encrypt cert_file=${files.alpha!.cert} key_file=${files.alpha!.key}\nbeta.test encrypt cert_file=${files.beta!.cert} key_file=${files.beta!.key}\n`;

describe('client certificates, as the server sees them', () => {
  it('a policy entry presents its own certificate; the global one serves the rest; none when none is configured', async () => {
    const peer = 'mx.own.test';
    let from = world.peers.get(peer)!.events.length;
    const withGlobal = {
      level: 'encrypt' as const,
      certFile: files.global!.cert,
      keyFile: files.global!.key,
      policy: `own.test encrypt cert_file=${files.alpha!.cert} key_file=${files.alpha!.key}\n`,
    };
    expect((await world.send(withGlobal, { to: 'u@own.test' })).info?.accepted).toEqual(['u@own.test']);
    expect((await world.send(withGlobal, { to: 'u@plain.test' })).info?.accepted).toEqual(['u@plain.test']);
    expect(certsSeen(peer, from)).toEqual(['alpha client', 'global client']);
    from = world.peers.get(peer)!.events.length;
    expect((await world.send({ level: 'encrypt' }, { to: 'u@plain.test' })).info?.accepted).toEqual(['u@plain.test']);
    expect(certsSeen(peer, from)).toEqual(['']);
  });

  it('connection reuse never mixes certificates: one session per certificate, each reused only for its own destination', async () => {
    const peer = world.peers.get('mx.shared.test')!;
    const from = peer.events.length;
    const connectionsBefore = peer.connections;
    const transport = nodemailer.createTransport(
      tlsPolicy({ port: world.port, caFile: pki.caFile, dns: createResolver({ servers: [world.dns.server] }), policy: policy() }),
    );
    const order = ['alpha', 'beta', 'alpha', 'beta', 'beta', 'alpha'];
    try {
      for (const name of order) {
        const info = await transport.sendMail({ from: 's@origin.test', to: `u@${name}.test`, text: 'x' });
        expect(info.accepted).toEqual([`u@${name}.test`]);
      }
    } finally {
      transport.close();
    }
    expect(certsSeen('mx.shared.test', from)).toEqual(order.map((n) => `${n} client`));
    // each MAIL arrived on a session whose handshake presented that destination's certificate
    expect(peer.connections - connectionsBefore).toBe(2);
  });
});
