/**
 * A TLS report collector for tests: a real node:https server on a loopback address, with a
 * certificate made at test time, that records every request (method, path, headers, body) and
 * answers each path as the test says: 200, another status, or never (to run into the sender's
 * timeout).
 *
 * Part of the test kit: erasable TypeScript only.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Issued } from './pki.js';

export interface CollectedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface Collector {
  address: string;
  port: number;
  requests: CollectedRequest[];
  /** What `path` answers: a status, or 'hang' (no answer). Default 200. */
  answer(path: string, how: number | 'hang'): void;
  close(): Promise<void>;
}

export async function startCollector(address: string, cert: Issued): Promise<Collector> {
  const answers = new Map<string, number | 'hang'>();
  const requests: CollectedRequest[] = [];
  const server: Server = createServer({ cert: cert.chainPem, key: cert.keyPem });
  server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      requests.push({ method: req.method ?? '', path, headers: req.headers, body: Buffer.concat(chunks) });
      const how = answers.get(path) ?? 200;
      if (how === 'hang') return;
      res.writeHead(how, { 'content-type': 'text/plain' }).end(`${how}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return {
    address,
    port: (server.address() as AddressInfo).port,
    requests,
    answer: (path, how) => answers.set(path, how),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
