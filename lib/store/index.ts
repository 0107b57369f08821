/**
 * store: state that outlives one delivery, and may outlive the process and be shared by many:
 * the MTA-STS policy cache (RFC 8461 section 5.1's downgrade resistance only holds while the
 * cache does). Behind Keyv: in memory by default, any Keyv store (Redis through @keyv/redis, for
 * a fleet of workers), or `{ file }`, a small SQLite file through Node's built-in `node:sqlite`
 * (no server, no native download) for one machine.
 */
import { Keyv } from 'keyv';
import { TlsPolicyError } from '../errors.js';
import { MemoryCounters, type CounterStore } from './counters.js';

export { MemoryCounters, type CounterStore } from './counters.js';

/** What the library needs of a store: Keyv's get, set (with a TTL in ms) and delete. */
export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
}

/** The `store` option: a Keyv instance (any Keyv store), or `{ file }` for a SQLite file. */
export type StoreOption = KeyValueStore | { file: string };

/** The namespace every key of the library's own stores lives under. */
const NAMESPACE = 'nodemailer-tls-policy';

interface SqliteStatement {
  get(...args: unknown[]): unknown;
  run(...args: unknown[]): unknown;
}
interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
}

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

  constructor(file: string) {
    // Loaded only here: node:sqlite warns that it is experimental when it is first loaded.
    const sqlite = process.getBuiltinModule('node:sqlite') as { DatabaseSync: new (file: string) => SqliteDatabase } | undefined;
    if (!sqlite) throw new TlsPolicyError('store { file } needs node:sqlite (Node 22.13 or later)', 'ECONFIG', false);
    try {
      this.db = new sqlite.DatabaseSync(file);
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA busy_timeout = 5000');
      this.db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER)');
      this.db.exec(`DELETE FROM kv WHERE expires IS NOT NULL AND expires < ${Date.now()}`);
    } catch (err) {
      throw new TlsPolicyError(`store file ${file} cannot be opened as SQLite: ${(err as Error).message}`, 'ECONFIG', false);
    }
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

/** What the `store` option opens: the MTA-STS policy cache, and the TLS-RPT counters (lib/store/counters.ts). */
export interface Stores {
  cache: KeyValueStore;
  counters: CounterStore;
}

/** The stores for an option: memory when none is given. */
export function openStores(option: StoreOption | undefined): Stores {
  return { cache: openStore(option), counters: new MemoryCounters() };
}

/** The MTA-STS cache for an option: memory when none is given. */
export function openStore(option: StoreOption | undefined): KeyValueStore {
  if (option === undefined) return new Keyv({ namespace: NAMESPACE });
  if (typeof option !== 'object' || option === null) throw new TlsPolicyError('option store must be a Keyv instance or { file: "path" }', 'ECONFIG', false);
  if ('file' in option && typeof (option as { get?: unknown }).get !== 'function') {
    if (typeof option.file !== 'string' || option.file === '') throw new TlsPolicyError('option store.file must be a file path', 'ECONFIG', false);
    return new Keyv({ store: new SqliteStore(option.file), namespace: NAMESPACE });
  }
  const store = option as KeyValueStore;
  if (typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.delete !== 'function') {
    throw new TlsPolicyError('option store must be a Keyv instance (get, set, delete) or { file: "path" }', 'ECONFIG', false);
  }
  return store;
}
