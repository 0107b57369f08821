/**
 * A real TLS handshake on loopback, reduced to what the smtp module hands to verify: PeerTls.
 *
 * A tiny node:tls server on 127.0.0.1 (port 0) presents a certificate chain (or none, with an
 * anonymous cipher); a client connects with rejectUnauthorized false, the given CAs and SNI,
 * and reads `authorized`, `authorizationError`, the protocol, the cipher and the peer chain.
 * The client disables Node's checkServerIdentity, so `authorized` reflects OpenSSL's chain
 * verification only (as Postfix's trust does), never a host name check.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { PeerTls } from '../../lib/types.js';

export interface HandshakeOptions {
  /** The chain the server sends, PEM, leaf first (e.g. Issued.chainPem). Omit with `anonymous`. */
  chainPem?: string;
  /** The server's private key, PEM. */
  keyPem?: string;
  /** Trusted CAs for the client, PEM; none: an empty trust store (nothing verifies). */
  ca?: string | string[];
  /** SNI the client sends. */
  servername?: string;
  /** Serve no certificate, with an anonymous (aNULL) cipher over TLS 1.2. */
  anonymous?: boolean;
  /** More server options (e.g. maxVersion). */
  server?: tls.TlsOptions;
  /** More client options. */
  client?: tls.ConnectionOptions;
}

/** Walks `issuerCertificate` from the leaf until it repeats (a self-issued root points at itself). */
export function peerChain(socket: tls.TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<object>();
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && !seen.has(cert)) {
    seen.add(cert);
    chain.push(Buffer.from(cert.raw));
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** PeerTls of a connected client socket. */
export function peerTlsOf(socket: tls.TLSSocket): PeerTls {
  const peer: PeerTls = {
    protocol: socket.getProtocol() ?? '',
    cipher: socket.getCipher()?.name ?? '',
    chain: peerChain(socket),
    authorized: socket.authorized,
  };
  const err = socket.authorizationError as unknown as string | Error | null | undefined;
  if (err) peer.authorizationError = typeof err === 'string' ? err : ((err as { code?: string }).code ?? err.message);
  return peer;
}

/** Runs one handshake against a loopback server and returns what the client saw. */
export async function handshake(opts: HandshakeOptions): Promise<PeerTls> {
  const anonymous = opts.anonymous === true;
  const serverOptions: tls.TlsOptions = anonymous
    ? { ciphers: 'aNULL:@SECLEVEL=0', maxVersion: 'TLSv1.2', ...opts.server }
    : { cert: opts.chainPem, key: opts.keyPem, ...opts.server };
  const server = tls.createServer(serverOptions, (s) => {
    s.on('error', () => {});
    s.end();
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as AddressInfo;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: opts.servername,
      rejectUnauthorized: false,
      ca: opts.ca ?? [],
      checkServerIdentity: () => undefined,
      ...(anonymous ? { ciphers: 'aNULL:@SECLEVEL=0', maxVersion: 'TLSv1.2' as const } : {}),
      ...opts.client,
    });
    try {
      await once(socket, 'secureConnect');
      return peerTlsOf(socket);
    } finally {
      socket.destroy();
    }
  } finally {
    server.close();
  }
}
