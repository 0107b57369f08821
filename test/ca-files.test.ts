/**
 * Which CAs verify and secure trust: Node's bundled CAs by default; `caFile` in their place
 * (Postfix's smtp_tls_CAfile); `extraCaFile` in addition to them (Exim's tls_verify_certificates
 * with the system store); a `cafile=` policy attribute in place of all of them for its destination.
 * Proven against a real STARTTLS peer whose certificate a test CA issued.
 */
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { configure } from '../lib/config.js';
import { createResolver, tlsPolicy, type TlsPolicyError, type TlsPolicyOptions } from '../lib/index.js';
import { SessionTracker } from '../lib/smtp/tracker.js';
import type { Policy } from '../lib/types.js';
import type { Logger } from 'nodemailer/lib/shared';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js';
import { makePki, type Pki } from './helpers/pki.js';
import { loopbackBlock, startPeer, type Peer } from './helpers/smtp-peer.js';
import { thrown } from './helpers/thrown.js';

let pki: Pki;
let other: Pki;
let peer: Peer;
let dns: TestDnsServer;
const ip = loopbackBlock();

beforeAll(async () => {
  pki = await makePki();
  other = await makePki('another test CA');
  const cert = await pki.leaf(['mx.ca.test']);
  peer = await startPeer({ host: ip(2), port: 0, behaviour: 'starttls', cert: cert.chainPem, key: cert.keyPem });
  dns = await startDnsServer({
    host: ip(1),
    zone: [
      { name: 'ca.test', type: 'MX', exchange: 'mx.ca.test', preference: 10 },
      { name: 'mx.ca.test', type: 'A', address: ip(2) },
    ],
  });
});
afterAll(async () => {
  await Promise.all([peer?.close(), dns?.close()]);
  pki?.close();
  other?.close();
});

async function send(options: TlsPolicyOptions) {
  const transport = nodemailer.createTransport(
    tlsPolicy({ level: 'verify', port: peer.port, dns: createResolver({ servers: [dns.server] }), connectionReuse: false, ...options }),
  );
  try {
    return { info: await transport.sendMail({ from: 's@origin.test', to: 'u@ca.test', text: 'x' }), error: undefined };
  } catch (error) {
    return { info: undefined, error: error as TlsPolicyError };
  } finally {
    transport.close();
  }
}

const quiet = () => undefined;
const logger: Logger = { trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet, fatal: quiet };
const mails = () => peer.events.filter((e) => e.command === 'MAIL').length;

describe('the CAs verify trusts', () => {
  it("without caFile or extraCaFile: Node's CAs only, so the test CA's certificate is untrusted and no MAIL FROM is sent", async () => {
    const before = mails();
    const { error } = await send({});
    expect(error?.code).toBe('ETLS');
    expect(error?.message).toMatch(/level verify/);
    expect(error?.deliveries?.[0]?.attempts[0]?.audit.auth).toBe('Untrusted');
    expect(mails()).toBe(before);
  });

  it('extraCaFile: the test CA is trusted too, so the mail goes out Verified inside TLS', async () => {
    const before = mails();
    const { info, error } = await send({ extraCaFile: pki.caFile });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.attempts[0]?.audit.auth).toBe('Verified');
    expect(
      peer.events
        .filter((e) => e.command === 'MAIL')
        .slice(before)
        .map((e) => e.secure),
    ).toEqual([true]);
  });

  it('caFile: the test CA in place of Node’s: Verified', async () => {
    const { info, error } = await send({ caFile: pki.caFile });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.attempts[0]?.audit.auth).toBe('Verified');
  });

  it('a cafile= attribute replaces extraCaFile and Node’s CAs for its destination', async () => {
    const before = mails();
    const { error } = await send({ extraCaFile: pki.caFile, policy: { 'ca.test': { level: 'verify', caFile: other.caFile } } });
    expect(error?.deliveries?.[0]?.attempts[0]?.audit.auth).toBe('Untrusted');
    expect(mails()).toBe(before);
  });

  it('extraCaFile adds: the CA set given to the handshake is every one of Node’s CAs and then the file', () => {
    const { hooks } = configure({ extraCaFile: pki.caFile }, logger, new SessionTracker());
    const policy: Policy = { level: 'verify', source: 'default' };
    const ca = hooks.files(policy).ca;
    expect(Array.isArray(ca)).toBe(true);
    const list = ca as Array<string | Buffer>;
    expect(list.length).toBe(rootCertificates.length + 1);
    expect(list.slice(0, -1)).toEqual([...rootCertificates]);
    expect(String(list.at(-1))).toBe(pki.ca.certPem);
    expect(hooks.files(policy).ca).toBe(ca); // one array, so reused sessions key the same
    expect(configure({}, logger, new SessionTracker()).hooks.files(policy).ca).toBeUndefined(); // Node's default
  });

  it('caFile and extraCaFile together, or an unreadable extraCaFile: an error at creation', () => {
    expect((thrown(() => tlsPolicy({ caFile: pki.caFile, extraCaFile: pki.caFile })) as TlsPolicyError).message).toBe(
      `options caFile and extraCaFile exclude each other: caFile replaces Node's CAs, extraCaFile adds to them (give ${pki.caFile} as one of them)`,
    );
    expect((thrown(() => tlsPolicy({ extraCaFile: '/nonexistent/extra.pem' })) as TlsPolicyError).message).toMatch(
      /^cannot read extra CA file \/nonexistent\/extra\.pem: ENOENT/,
    );
  });
});
