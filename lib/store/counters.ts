/**
 * Counters for TLS reporting (RFC 8460): many processes add to one count, which Keyv cannot do
 * (it has get and set, no atomic increment). So the counters have a store of their own, behind
 * the same `store` option as the MTA-STS cache:
 * - memory (the default, and with a Keyv instance): one process's counts;
 * - `{ file }`: the same SQLite file, an upsert `n = n + excluded.n` (SQLite serializes writers);
 * - `{ redis }`: the caller's ioredis (or iovalkey) client, HINCRBY on a hash per bucket.
 * A bucket is one report's counters (a recipient domain and a UTC day); its fields are counters,
 * each with an optional note (the last one written wins). Claims (SET NX, INSERT OR IGNORE, a Map)
 * let one of many processes do a job once; records keep small JSON values (a report's delivery
 * state) for a while.
 */

/** What TLS reporting needs of a store; every method is atomic where it says so, for every process sharing the store. */
export interface CounterStore {
  /** What it is, for messages: `memory`, `SQLite file <path>`, `Redis`. */
  readonly kind: string;
  /** Adds `n` to counter `field` of `bucket` (atomic), and keeps `note` beside it. */
  add(bucket: string, field: string, n: number, note?: string): Promise<void>;
  /** A bucket's counters and notes (empty maps for a bucket with none). */
  read(bucket: string): Promise<{ counts: Map<string, number>; notes: Map<string, string> }>;
  /** Every bucket with counters. */
  buckets(): Promise<string[]>;
  /** Removes a bucket's counters and notes. */
  drop(bucket: string): Promise<void>;
  /** Takes `key` for `ttlMs` when nobody holds it (atomic): true for exactly one of many callers. */
  claim(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Gives a claim back, if `token` still holds it. */
  release(key: string, token: string): Promise<void>;
  /** A record kept under `key`, or undefined. */
  getRecord(key: string): Promise<unknown>;
  /** Keeps `value` (JSON) under `key` for `ttlMs`. */
  setRecord(key: string, value: unknown, ttlMs: number): Promise<void>;
}

/** One process's counters: what the default (memory) store and a Keyv instance give. */
export class MemoryCounters implements CounterStore {
  readonly kind = 'memory';
  private readonly counts = new Map<string, Map<string, number>>();
  private readonly notes = new Map<string, Map<string, string>>();
  private readonly claims = new Map<string, { token: string; expires: number }>();
  private readonly records = new Map<string, { value: string; expires: number }>();

  async add(bucket: string, field: string, n: number, note?: string): Promise<void> {
    const counts = this.counts.get(bucket) ?? new Map<string, number>();
    this.counts.set(bucket, counts);
    counts.set(field, (counts.get(field) ?? 0) + n);
    if (note !== undefined) {
      const notes = this.notes.get(bucket) ?? new Map<string, string>();
      this.notes.set(bucket, notes);
      notes.set(field, note);
    }
  }

  async read(bucket: string): Promise<{ counts: Map<string, number>; notes: Map<string, string> }> {
    return { counts: new Map(this.counts.get(bucket)), notes: new Map(this.notes.get(bucket)) };
  }

  async buckets(): Promise<string[]> {
    return [...this.counts.keys()];
  }

  async drop(bucket: string): Promise<void> {
    this.counts.delete(bucket);
    this.notes.delete(bucket);
  }

  async claim(key: string, token: string, ttlMs: number): Promise<boolean> {
    const held = this.claims.get(key);
    if (held && held.expires > Date.now()) return false;
    this.claims.set(key, { token, expires: Date.now() + ttlMs });
    return true;
  }

  async release(key: string, token: string): Promise<void> {
    if (this.claims.get(key)?.token === token) this.claims.delete(key);
  }

  async getRecord(key: string): Promise<unknown> {
    const r = this.records.get(key);
    if (!r) return undefined;
    if (r.expires <= Date.now()) {
      this.records.delete(key);
      return undefined;
    }
    return JSON.parse(r.value) as unknown;
  }

  async setRecord(key: string, value: unknown, ttlMs: number): Promise<void> {
    this.records.set(key, { value: JSON.stringify(value), expires: Date.now() + ttlMs });
  }
}

interface SqliteStatement {
  get(...args: unknown[]): unknown;
  all(...args: unknown[]): unknown[];
  run(...args: unknown[]): { changes: number | bigint };
}
/** What the counters need of node:sqlite's DatabaseSync. */
export interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
}

/**
 * Counters in a SQLite file (the `{ file }` store): every process on the machine that opens the
 * file adds to the same counters. An add is one upsert, `n = n + excluded.n`, which SQLite runs
 * under its write lock, so concurrent adds from many processes are never lost; a claim is an
 * `INSERT OR IGNORE` that only one writer's row survives.
 */
export class SqliteCounters implements CounterStore {
  readonly kind: string;
  private readonly upsert: SqliteStatement;
  private readonly selectBucket: SqliteStatement;
  private readonly selectBuckets: SqliteStatement;
  private readonly dropBucket: SqliteStatement;
  private readonly expireClaim: SqliteStatement;
  private readonly insertClaim: SqliteStatement;
  private readonly deleteClaim: SqliteStatement;
  private readonly selectRecord: SqliteStatement;
  private readonly upsertRecord: SqliteStatement;

  constructor(db: SqliteDatabase, file: string) {
    this.kind = `SQLite file ${file}`;
    db.exec('CREATE TABLE IF NOT EXISTS tlsrpt_counts (bucket TEXT NOT NULL, field TEXT NOT NULL, n INTEGER NOT NULL, note TEXT, PRIMARY KEY (bucket, field))');
    db.exec('CREATE TABLE IF NOT EXISTS tlsrpt_claims (key TEXT PRIMARY KEY, token TEXT NOT NULL, expires INTEGER NOT NULL)');
    db.exec('CREATE TABLE IF NOT EXISTS tlsrpt_records (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER NOT NULL)');
    db.exec(`DELETE FROM tlsrpt_records WHERE expires < ${Date.now()}`);
    this.upsert = db.prepare(
      'INSERT INTO tlsrpt_counts (bucket, field, n, note) VALUES (?, ?, ?, ?) ON CONFLICT (bucket, field) DO UPDATE SET n = n + excluded.n, note = coalesce(excluded.note, note)',
    );
    this.selectBucket = db.prepare('SELECT field, n, note FROM tlsrpt_counts WHERE bucket = ?');
    this.selectBuckets = db.prepare('SELECT DISTINCT bucket FROM tlsrpt_counts');
    this.dropBucket = db.prepare('DELETE FROM tlsrpt_counts WHERE bucket = ?');
    this.expireClaim = db.prepare('DELETE FROM tlsrpt_claims WHERE key = ? AND expires <= ?');
    this.insertClaim = db.prepare('INSERT OR IGNORE INTO tlsrpt_claims (key, token, expires) VALUES (?, ?, ?)');
    this.deleteClaim = db.prepare('DELETE FROM tlsrpt_claims WHERE key = ? AND token = ?');
    this.selectRecord = db.prepare('SELECT value FROM tlsrpt_records WHERE key = ? AND expires > ?');
    this.upsertRecord = db.prepare(
      'INSERT INTO tlsrpt_records (key, value, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires',
    );
  }

  async add(bucket: string, field: string, n: number, note?: string): Promise<void> {
    this.upsert.run(bucket, field, n, note ?? null);
  }

  async read(bucket: string): Promise<{ counts: Map<string, number>; notes: Map<string, string> }> {
    const counts = new Map<string, number>();
    const notes = new Map<string, string>();
    for (const row of this.selectBucket.all(bucket) as Array<{ field: string; n: number | bigint; note: string | null }>) {
      counts.set(row.field, Number(row.n));
      if (row.note !== null) notes.set(row.field, row.note);
    }
    return { counts, notes };
  }

  async buckets(): Promise<string[]> {
    return (this.selectBuckets.all() as Array<{ bucket: string }>).map((r) => r.bucket);
  }

  async drop(bucket: string): Promise<void> {
    this.dropBucket.run(bucket);
  }

  async claim(key: string, token: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    this.expireClaim.run(key, now);
    return Number(this.insertClaim.run(key, token, now + ttlMs).changes) === 1;
  }

  async release(key: string, token: string): Promise<void> {
    this.deleteClaim.run(key, token);
  }

  async getRecord(key: string): Promise<unknown> {
    const row = this.selectRecord.get(key, Date.now()) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as unknown) : undefined;
  }

  async setRecord(key: string, value: unknown, ttlMs: number): Promise<void> {
    this.upsertRecord.run(key, JSON.stringify(value), Date.now() + ttlMs);
  }
}

/** The commands of an ioredis (or iovalkey) client the Redis store uses; the caller's client, which the caller connects and closes. */
export interface RedisClient {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
  set(key: string, value: string, px: 'PX', ms: number): Promise<unknown>;
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
  hgetall(key: string): Promise<Record<string, string>>;
  smembers(key: string): Promise<string[]>;
  srem(key: string, member: string): Promise<number>;
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[cursor: string, keys: string[]]>;
  eval(script: string, numKeys: number, key: string, arg: string): Promise<unknown>;
  multi(): RedisPipeline;
}
interface RedisPipeline {
  hincrby(key: string, field: string, n: number): RedisPipeline;
  hset(key: string, field: string, value: string): RedisPipeline;
  sadd(key: string, member: string): RedisPipeline;
  pexpire(key: string, ms: number): RedisPipeline;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

/** The methods a `store: { redis }` client must have. */
export const REDIS_METHODS = ['get', 'set', 'del', 'hgetall', 'smembers', 'srem', 'scan', 'eval', 'multi'] as const;

/** Where every key of the library lives in a Redis it shares with others. */
export const REDIS_PREFIX = 'nodemailer-tls-policy:';

/** Deletes a claim only when its token still holds it (no one else's claim is removed). */
const RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/**
 * Counters in Redis (the `{ redis }` store), for a fleet of workers on many machines: a hash per
 * bucket, each counter a field added to with HINCRBY (atomic in Redis), its note a field of a
 * second hash; a set lists the buckets. Buckets expire after `keepMs`; a claim is SET NX PX.
 */
export class RedisCounters implements CounterStore {
  readonly kind = 'Redis';
  private readonly prefix = `${REDIS_PREFIX}tlsrpt:`;

  constructor(
    private readonly client: RedisClient,
    private readonly keepMs: number,
  ) {}

  private key(kind: string, name: string): string {
    return `${this.prefix}${kind}:${name}`;
  }

  async add(bucket: string, field: string, n: number, note?: string): Promise<void> {
    const counts = this.key('counts', bucket);
    const notes = this.key('notes', bucket);
    const tx = this.client.multi().hincrby(counts, field, n);
    if (note !== undefined) tx.hset(notes, field, note).pexpire(notes, this.keepMs);
    const results = await tx.sadd(`${this.prefix}buckets`, bucket).pexpire(counts, this.keepMs).exec();
    const failed = results?.find(([err]) => err)?.[0];
    if (failed) throw failed;
  }

  async read(bucket: string): Promise<{ counts: Map<string, number>; notes: Map<string, string> }> {
    const [counts, notes] = await Promise.all([this.client.hgetall(this.key('counts', bucket)), this.client.hgetall(this.key('notes', bucket))]);
    return { counts: new Map(Object.entries(counts).map(([field, n]) => [field, Number(n)])), notes: new Map(Object.entries(notes)) };
  }

  async buckets(): Promise<string[]> {
    return this.client.smembers(`${this.prefix}buckets`);
  }

  async drop(bucket: string): Promise<void> {
    await this.client.del(this.key('counts', bucket), this.key('notes', bucket));
    await this.client.srem(`${this.prefix}buckets`, bucket);
  }

  async claim(key: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.client.set(this.key('claim', key), token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async release(key: string, token: string): Promise<void> {
    await this.client.eval(RELEASE_SCRIPT, 1, this.key('claim', key), token);
  }

  async getRecord(key: string): Promise<unknown> {
    const value = await this.client.get(this.key('record', key));
    return value === null ? undefined : (JSON.parse(value) as unknown);
  }

  async setRecord(key: string, value: unknown, ttlMs: number): Promise<void> {
    await this.client.set(this.key('record', key), JSON.stringify(value), 'PX', ttlMs);
  }
}
