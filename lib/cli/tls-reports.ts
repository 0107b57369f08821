/**
 * `tls-reports`: the TLS reports (RFC 8460) not delivered yet, read from the store the transports
 * count into: a SQLite file, or Redis through an ioredis client made here from the URL (ioredis
 * is not a dependency of this package: an application that gives its transports `store: { redis }`
 * has it already). Nothing is sent; the report data is as `transport.tlsReports.pending()` gives it.
 */
import { openStores, type RedisClient } from '../store/index.js';
import { TlsReports, type PendingReport } from '../tlsrpt/index.js';
import { TlsPolicyError } from '../errors.js';
import type { TlsReportsArgs } from './types.js';

/** What the command prints (its --json form). */
export interface TlsReportsReport {
  /** The store read: `SQLite file <path>`, or `Redis <url without credentials>`. */
  store: string;
  pending: PendingReport[];
}

interface OwnRedis extends RedisClient {
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** A Redis client for the URL: ioredis, loaded now, that fails at once rather than retrying (a command line waits for no one). */
async function redisClient(url: string): Promise<OwnRedis> {
  let ioredis: { Redis: new (url: string, options: object) => OwnRedis };
  try {
    ioredis = (await import('ioredis')) as unknown as typeof ioredis;
  } catch {
    throw new TlsPolicyError(
      'tls-reports --redis needs the ioredis package, which your transports use for store: { redis } (npm install ioredis)',
      'ECONFIG',
      false,
    );
  }
  return new ioredis.Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000, enableOfflineQueue: true, lazyConnect: false });
}

/** Reads the pending reports from the store the arguments name. */
export async function tlsReportsReport(args: TlsReportsArgs): Promise<TlsReportsReport> {
  const quiet = { warn: () => undefined, info: () => undefined };
  if ('file' in args.store) {
    const { counters } = openStores({ file: args.store.file });
    return { store: counters.kind, pending: await new TlsReports(undefined, counters, quiet).pending({ sendAll: args.all }) };
  }
  const url = new URL(args.store.redis);
  url.username = '';
  url.password = '';
  const client = await redisClient(args.store.redis);
  // a connection that fails is an 'error' event as well as a failed command: the command reports the latter
  (client as unknown as { on(event: string, listener: () => void): void }).on('error', () => undefined);
  try {
    const { counters } = openStores({ redis: client });
    return { store: `Redis ${url.href}`, pending: await new TlsReports(undefined, counters, quiet).pending({ sendAll: args.all }) };
  } finally {
    client.disconnect();
  }
}
