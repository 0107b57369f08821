/**
 * Idle sessions kept for the next message, as Postfix's connection cache keeps them: a
 * session is handed only to a delivery whose plan for that address has the same key (same
 * level, names, fingerprints, TLSA records, SNI, protocols, ciphers, CA, client certificate
 * and AUTH identity), so TLS that was verified for one plan is never reused under another.
 * Bounded per key and in total; idle sessions are closed after `idleTimeout`; a session that
 * the server closed while idle leaves the pool at once.
 */
import type { Session } from './session.js';

export interface PoolOptions {
  /** Idle sessions kept per key (per address and plan). Default 20 (Postfix's default destination concurrency). */
  maxIdlePerKey?: number;
  /** Idle sessions kept in all. Default 100. */
  maxIdle?: number;
  /** Milliseconds an idle session is kept. Default 5000. */
  idleTimeout?: number;
  /** Messages sent over one session before it is closed. Default 500. */
  maxMessages?: number;
}

interface Idle<T> {
  session: Session;
  data: T;
  messages: number;
  timer: NodeJS.Timeout;
}

export class SessionPool<T> {
  private readonly idle = new Map<string, Idle<T>[]>();
  private count = 0;
  private readonly maxIdlePerKey: number;
  private readonly maxIdle: number;
  private readonly idleTimeout: number;
  readonly maxMessages: number;
  /** Sessions handed out again (for tests and benchmarks). */
  reused = 0;

  constructor(options: PoolOptions = {}) {
    this.maxIdlePerKey = options.maxIdlePerKey ?? 20;
    this.maxIdle = options.maxIdle ?? 100;
    this.idleTimeout = options.idleTimeout ?? 5000;
    this.maxMessages = options.maxMessages ?? 500;
  }

  /** Idle sessions now. */
  get size(): number {
    return this.count;
  }

  /** An idle, still open session for `key`, with the data it was parked with and its message count. */
  take(key: string): { session: Session; data: T; messages: number } | undefined {
    const list = this.idle.get(key);
    while (list && list.length) {
      const entry = list.pop() as Idle<T>;
      this.count--;
      clearTimeout(entry.timer);
      if (list.length === 0) this.idle.delete(key);
      if (entry.session.alive) {
        this.reused++;
        return { session: entry.session, data: entry.data, messages: entry.messages };
      }
    }
    return undefined;
  }

  /** Parks a session after a finished transaction, or ends it when the pool is full. */
  give(key: string, session: Session, data: T, messages: number): void {
    if (!session.alive || messages >= this.maxMessages || this.count >= this.maxIdle || (this.idle.get(key)?.length ?? 0) >= this.maxIdlePerKey) {
      session.quit();
      return;
    }
    const list = this.idle.get(key) ?? [];
    const entry: Idle<T> = {
      session,
      data,
      messages,
      timer: setTimeout(() => this.drop(key, entry, true), this.idleTimeout),
    };
    entry.timer.unref();
    list.push(entry);
    this.idle.set(key, list);
    this.count++;
    session.onClose(() => this.drop(key, entry, false));
  }

  private drop(key: string, entry: Idle<T>, quit: boolean): void {
    const list = this.idle.get(key);
    const index = list ? list.indexOf(entry) : -1;
    if (!list || index < 0) return;
    list.splice(index, 1);
    if (list.length === 0) this.idle.delete(key);
    this.count--;
    clearTimeout(entry.timer);
    if (quit) entry.session.quit();
  }

  /** Closes every idle session. */
  closeAll(): void {
    for (const [key, list] of [...this.idle]) {
      for (const entry of [...list]) this.drop(key, entry, true);
    }
  }
}
