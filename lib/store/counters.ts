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
