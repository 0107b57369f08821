/**
 * store: state that outlives one delivery, and may outlive the process and be shared by many:
 * the MTA-STS policy cache (RFC 8461 section 5.1's downgrade resistance only holds while the
 * cache does), and TLS reporting's counters (RFC 8460; ./counters.ts). The `store` option gives both:
 * - nothing: memory (one process);
 * - a Keyv instance (any Keyv store, e.g. @keyv/redis): the cache in it; the counters stay in
 *   memory, since Keyv has no atomic increment;
 * - `{ file }`: both in one SQLite file through Node's built-in `node:sqlite` (no server, no native
 *   download), for the processes of one machine;
 * - `{ redis }`: both in the caller's Redis, through its ioredis (or iovalkey) client, for a fleet.
 */
import { Keyv } from 'keyv';
import { TlsPolicyError } from '../errors.js';
import {
  MemoryCounters,
  REDIS_METHODS,
  REDIS_PREFIX,
  RedisCounters,
  SqliteCounters,
  type CounterStore,
  type RedisClient,
  type SqliteDatabase,
} from './counters.js';

export { MemoryCounters, RedisCounters, SqliteCounters, type CounterStore, type RedisClient } from './counters.js';

/** What the library needs of a store: Keyv's get, set (with a TTL in ms) and delete. */
export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
}

/** The `store` option: a Keyv instance (any Keyv store), `{ file }` for a SQLite file, or `{ redis }` for the caller's ioredis client. */
export type StoreOption = KeyValueStore | { file: string } | { redis: RedisClient };

/** The namespace every key of the library's own stores lives under. */
const NAMESPACE = 'nodemailer-tls-policy';

type SqliteStatement = ReturnType<SqliteDatabase['prepare']>;

/**
 * A Keyv store adapter over one SQLite file (`node:sqlite`, Node 22.13 and later): one table of
 * key, value and expiry. Keyv keeps its own expiry inside the value; the column lets expired rows
 * be swept.
 */
class SqliteStore {
  readonly opts = { dialect: 'sqlite' };
  namespace?: string;
  private readonly db: SqliteDatabase;
  private readonly select: SqliteStatement;
  private readonly upsert: SqliteStatement;
  private readonly remove: SqliteStatement;

  constructor(db: SqliteDatabase) {
    this.db = db;
    this.db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER)');
    this.db.exec(`DELETE FROM kv WHERE expires IS NOT NULL AND expires < ${Date.now()}`);
    this.select = this.db.prepare('SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires >= ?)');
    this.upsert = this.db.prepare(
      'INSERT INTO kv (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires',
    );
    this.remove = this.db.prepare('DELETE FROM kv WHERE key = ?');
  }

  async get(key: string): Promise<unknown> {
    const row = this.select.get(key, Date.now()) as { value: string } | undefined;
    return row?.value;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    this.upsert.run(key, typeof value === 'string' ? value : JSON.stringify(value), typeof ttl === 'number' && ttl > 0 ? Date.now() + ttl : null);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const result = this.remove.run(key) as { changes: number | bigint };
    return Number(result.changes) > 0;
  }

  async clear(): Promise<void> {
    this.db.exec('DELETE FROM kv');
  }

  on(): this {
    return this;
  }
}

/** Opens a SQLite file (`node:sqlite`, Node 22.13 and later) for the stores, in WAL mode so many processes can share it. */
function openSqlite(file: string): SqliteDatabase {
  // Loaded only here: node:sqlite warns that it is experimental when it is first loaded.
  const sqlite = process.getBuiltinModule('node:sqlite') as { DatabaseSync: new (file: string) => SqliteDatabase } | undefined;
  if (!sqlite) throw new TlsPolicyError('option store { file } needs node:sqlite (Node 22.13 or later)', 'ECONFIG', false);
  try {
    const db = new sqlite.DatabaseSync(file);
    // The wait first: another process opening the same file at the same moment holds a lock
    // while it switches the journal to WAL, and without a wait that is "database is locked".
    db.exec('PRAGMA busy_timeout = 5000');
    db.exec('PRAGMA journal_mode = WAL');
    return db;
  } catch (err) {
    throw new TlsPolicyError(`option store: the file ${file} cannot be opened as SQLite: ${(err as Error).message}`, 'ECONFIG', false);
  }
}

/**
 * A Keyv store adapter over the caller's Redis client (`store: { redis }`), so that the MTA-STS
 * cache and the TLS-RPT counters share one client: GET, SET with PX, DEL, and SCAN for clear().
 */
class RedisStore {
  readonly opts = { dialect: 'redis' };
  namespace?: string;

  constructor(private readonly client: RedisClient) {}

  /** Keyv gives keys with its namespace (`nodemailer-tls-policy:`) in front already. */
  private key(key: string): string {
    return key;
  }

  async get(key: string): Promise<unknown> {
    return (await this.client.get(this.key(key))) ?? undefined;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (typeof ttl === 'number' && ttl > 0) await this.client.set(this.key(key), text, 'PX', Math.ceil(ttl));
    else await this.client.set(this.key(key), text);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.client.del(this.key(key))) > 0;
  }

  async clear(): Promise<void> {
    const pattern = `${this.namespace ?? NAMESPACE}:*`;
    let cursor = '0';
    do {
      const [next, found] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 100);
      // the TLS-RPT counters share the prefix, and are not the cache's to clear
      const keys = found.filter((k) => !k.startsWith(`${REDIS_PREFIX}tlsrpt:`));
      if (keys.length) await this.client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }

  on(): this {
    return this;
  }
}

/** Counters of a Redis store are kept this long (reports are due the next day and retried for a day). */
const REDIS_KEEP_MS = 9 * 86_400_000;

/** What the `store` option opens: the MTA-STS policy cache, and the TLS-RPT counters (lib/store/counters.ts). */
export interface Stores {
  cache: KeyValueStore;
  counters: CounterStore;
}

const STORE_SHAPE = 'a Keyv instance or { file: "path" } (SQLite), or { redis: client } (an ioredis or iovalkey client)';

/**
 * The stores for an option: memory when none is given; a Keyv instance holds the cache, and the
 * counters stay in memory (Keyv has no atomic increment); `{ file }` holds both in one SQLite file;
 * `{ redis }` both in the caller's Redis.
 */
export function openStores(option: StoreOption | undefined): Stores {
  if (option === undefined) return { cache: new Keyv({ namespace: NAMESPACE }), counters: new MemoryCounters() };
  if (typeof option !== 'object' || option === null) throw new TlsPolicyError(`option store must be ${STORE_SHAPE}`, 'ECONFIG', false);
  const isKeyv = typeof (option as { get?: unknown }).get === 'function';
  if (!isKeyv && 'file' in option) {
    if (typeof option.file !== 'string' || option.file === '') throw new TlsPolicyError('option store.file must be a file path', 'ECONFIG', false);
    const db = openSqlite(option.file);
    return { cache: new Keyv({ store: new SqliteStore(db), namespace: NAMESPACE }), counters: new SqliteCounters(db, option.file) };
  }
  if (!isKeyv && 'redis' in option) {
    const client = option.redis as unknown as Record<string, unknown> | null;
    const missing = REDIS_METHODS.filter((m) => typeof client?.[m] !== 'function');
    if (missing.length) {
      throw new TlsPolicyError(`option store.redis must be an ioredis (or iovalkey) client; the value given has no ${missing.join(', ')}`, 'ECONFIG', false);
    }
    return { cache: new Keyv({ store: new RedisStore(option.redis), namespace: NAMESPACE }), counters: new RedisCounters(option.redis, REDIS_KEEP_MS) };
  }
  const store = option as KeyValueStore;
  if (typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.delete !== 'function') {
    throw new TlsPolicyError(`option store must be ${STORE_SHAPE}; the object given is none of them`, 'ECONFIG', false);
  }
  return { cache: store, counters: new MemoryCounters() };
}
