/**
 * MTA-STS policy hosts for tests: one real node:https server on a loopback address that serves
 * `https://mta-sts.<domain>/.well-known/mta-sts.txt` for many domains, each with the certificate
 * and the behaviour a test sets (SNI picks the certificate, the Host header the answer), and
 * counts the requests it got per domain.
 *
 * Part of the test kit shared by test/, demo/ and bench/: erasable TypeScript only.
 */
import { createServer, type Server } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Issued } from './pki.js';

export type StsBehaviour =
  /** 200 text/plain with the body. */
  | { kind: 'policy'; body: string; contentType?: string }
  | { kind: 'status'; status: number; location?: string; body?: string }
  /** 200 text/plain with `bytes` bytes of a valid-looking policy. */
  | { kind: 'oversized'; bytes: number; declareLength: boolean }
  /** Sends the headers, then the body one byte every `everyMs`. */
  | { kind: 'slow'; body: string; everyMs: number }
  /** Closes the connection without an answer. */
  | { kind: 'reset' };

export interface StsSite {
  /** The certificate the policy host presents (for `mta-sts.<domain>`, or another name in a test). */
  cert: Issued;
  behaviour: StsBehaviour;
}

export interface StsHosts {
  address: string;
  port: number;
  /** Sets (or replaces) what `mta-sts.<domain>` serves. */
  set(domain: string, site: StsSite): void;
  /** Requests seen per domain. */
  requests(domain: string): number;
  close(): Promise<void>;
}

/** A policy file's text, CRLF-separated as RFC 8461 section 3.2 writes it. */
export function policyText(mode: 'enforce' | 'testing' | 'none', mx: string[], maxAge = 86400): string {
  return ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\r\n');
}

export async function startStsHosts(address: string, fallback: Issued): Promise<StsHosts> {
  const sites = new Map<string, StsSite>();
  const contexts = new Map<string, SecureContext>();
  const seen = new Map<string, number>();
  const server: Server = createServer({
    cert: fallback.chainPem,
    key: fallback.keyPem,
    SNICallback: (name, callback) => {
      const domain = name.toLowerCase().replace(/^mta-sts\./, '');
      callback(null, contexts.get(domain));
    },
  });
  server.on('request', (req, res) => {
    const host = String(req.headers.host ?? '')
      .replace(/:\d+$/, '')
      .toLowerCase();
    const domain = host.replace(/^mta-sts\./, '');
    seen.set(domain, (seen.get(domain) ?? 0) + 1);
    const site = sites.get(domain);
    if (!site || req.url !== '/.well-known/mta-sts.txt') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const b = site.behaviour;
    switch (b.kind) {
      case 'policy':
        res.writeHead(200, { 'content-type': b.contentType ?? 'text/plain' }).end(b.body);
        return;
      case 'status':
        res.writeHead(b.status, { 'content-type': 'text/plain', ...(b.location ? { location: b.location } : {}) }).end(b.body ?? '');
        return;
      case 'oversized': {
        const line = 'mx: mx1.example.net\r\n';
        const body = `version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n${line.repeat(Math.ceil(b.bytes / line.length))}`;
        res.writeHead(200, { 'content-type': 'text/plain', ...(b.declareLength ? { 'content-length': String(Buffer.byteLength(body)) } : {}) });
        res.end(body);
        return;
      }
      case 'slow': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let i = 0;
        const timer = setInterval(() => {
          if (i >= b.body.length || res.destroyed) {
            clearInterval(timer);
            res.end();
            return;
          }
          res.write(b.body[i++]);
        }, b.everyMs);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case 'reset':
        req.socket.destroy();
        return;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address,
    port,
    set(domain, site) {
      sites.set(domain, site);
      contexts.set(domain, createSecureContext({ cert: site.cert.chainPem, key: site.cert.keyPem }));
    },
    requests: (domain) => seen.get(domain) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
