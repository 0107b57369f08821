/**
 * Idle sessions kept for the next message, as Postfix's connection cache keeps them: a
 * session is handed only to a delivery whose plan for that address has the same key (same
 * level, names, fingerprints, TLSA records, SNI, protocols, ciphers, CA, client certificate
 * and AUTH identity), so TLS that was verified for one plan is never reused under another.
 * At most `maxConnectionsPerKey` sessions per key are in use at once (Postfix's destination
 * concurrency): a delivery beyond that waits for one to come back, which also keeps a burst of
 * sends from opening, and then closing, a connection each. Idle sessions are bounded per key
 * and in total, closed after `idleTimeout`; a session the server closed while idle leaves the
 * pool at once.
 */
import type { Session } from './session.js';

export interface PoolOptions {
  /** Sessions in use at once per key (per address and plan). Default 20. */
  maxConnectionsPerKey?: number;
  /** Idle sessions kept per key (per address and plan). Default 20 (Postfix's default destination concurrency). */
  maxIdlePerKey?: number;
  /** Idle sessions kept in all. Default 100. */
  maxIdle?: number;
  /** Milliseconds an idle session is kept. Default 5000. */
  idleTimeout?: number;
  /** Messages sent over one session before it is closed. Default 500. */
  maxMessages?: number;
}

/** A slot: an idle session to reuse, none (open a new one), or `closed` after closeAll() (open nothing). */
export type Slot<T> = { parked?: { session: Session; data: T; messages: number }; closed?: true };
type Waiter<T> = (slot: Slot<T>) => void;

interface Idle<T> {
  session: Session;
  data: T;
  messages: number;
  timer: NodeJS.Timeout;
  /** Stops watching the session for a close once it leaves the pool. */
  unwatch: () => void;
}

export class SessionPool<T> {
  private readonly idle = new Map<string, Idle<T>[]>();
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter<T>[]>();
  private count = 0;
  private readonly maxConnectionsPerKey: number;
  private readonly maxIdlePerKey: number;
  private readonly maxIdle: number;
  private readonly idleTimeout: number;
  readonly maxMessages: number;
  /** Sessions handed out again (for tests and benchmarks). */
  reused = 0;
  /** After closeAll(): nothing is parked any more. */
  private closed = false;

  constructor(options: PoolOptions = {}) {
    this.maxConnectionsPerKey = options.maxConnectionsPerKey ?? 20;
    this.maxIdlePerKey = options.maxIdlePerKey ?? 20;
    this.maxIdle = options.maxIdle ?? 100;
    this.idleTimeout = options.idleTimeout ?? 5000;
    this.maxMessages = options.maxMessages ?? 500;
  }

  /** Idle sessions now. */
  get size(): number {
    return this.count;
  }

  /**
   * A slot for a session under `key`: an idle session to reuse (`parked`), or leave to open a
   * new one. Waits while `maxConnectionsPerKey` sessions are in use. Every slot must end with
   * `give` (the session goes back) or `release` (it did not).
   */
  acquire(key: string, reuse = true): Promise<Slot<T>> {
    if (this.closed) return Promise.resolve({ closed: true });
    const parked = reuse ? this.take(key) : undefined;
    const inUse = this.active.get(key) ?? 0;
    if (parked || inUse < this.maxConnectionsPerKey) {
      this.active.set(key, inUse + 1);
      return Promise.resolve(parked ? { parked } : {});
    }
    return new Promise((resolve) => {
      const list = this.waiting.get(key) ?? [];
      list.push(resolve);
      this.waiting.set(key, list);
    });
  }

  /** Ends a slot whose session did not come back (failed, or closed): a waiter may open one. */
  release(key: string): void {
    const next = this.nextWaiter(key);
    if (next) next({});
    else this.decrement(key);
  }

  private nextWaiter(key: string): Waiter<T> | undefined {
    const list = this.waiting.get(key);
    const next = list?.shift();
    if (list && list.length === 0) this.waiting.delete(key);
    return next;
  }

  private decrement(key: string): void {
    const inUse = (this.active.get(key) ?? 1) - 1;
    if (inUse > 0) this.active.set(key, inUse);
    else this.active.delete(key);
  }

  /** An idle, still open session for `key`, with the data it was parked with and its message count. */
  private take(key: string): { session: Session; data: T; messages: number } | undefined {
    const list = this.idle.get(key);
    while (list && list.length) {
      const entry = list.pop() as Idle<T>;
      this.count--;
      clearTimeout(entry.timer);
      entry.unwatch();
      if (list.length === 0) this.idle.delete(key);
      if (entry.session.alive) {
        entry.session.keepAlive(true);
        this.reused++;
        return { session: entry.session, data: entry.data, messages: entry.messages };
      }
    }
    return undefined;
  }

  /**
   * Ends a slot with its session after a finished transaction: handed straight to a delivery
   * waiting for this key, else parked, or ended when it is worn out or the pool is full.
   */
  give(key: string, session: Session, data: T, messages: number): void {
    if (!session.alive || messages >= this.maxMessages || this.closed) {
      session.quit();
      this.release(key);
      return;
    }
    const waiter = this.nextWaiter(key);
    if (waiter) {
      this.reused++;
      waiter({ parked: { session, data, messages } });
      return;
    }
    this.decrement(key);
    if (this.count >= this.maxIdle || (this.idle.get(key)?.length ?? 0) >= this.maxIdlePerKey) {
      session.quit();
      return;
    }
    const list = this.idle.get(key) ?? [];
    const entry: Idle<T> = {
      session,
      data,
      messages,
      timer: setTimeout(() => this.drop(key, entry, true), this.idleTimeout),
      unwatch: () => undefined,
    };
    entry.timer.unref();
    // An idle session never keeps the process alive (a script that sends once exits at once).
    session.keepAlive(false);
    list.push(entry);
    this.idle.set(key, list);
    this.count++;
    entry.unwatch = session.onClose(() => this.drop(key, entry, false));
  }

  private drop(key: string, entry: Idle<T>, quit: boolean): void {
    const list = this.idle.get(key);
    const index = list ? list.indexOf(entry) : -1;
    if (!list || index < 0) return;
    list.splice(index, 1);
    if (list.length === 0) this.idle.delete(key);
    this.count--;
    clearTimeout(entry.timer);
    entry.unwatch();
    if (quit) entry.session.quit();
  }

  /**
   * Closes every idle session and answers every delivery waiting for a slot with `closed` (as
   * Nodemailer's pool fails its queued messages on close); sessions still in use are closed when
   * they come back, and later acquire() calls get `closed` too.
   */
  closeAll(): void {
    this.closed = true;
    for (const [key, list] of [...this.idle]) {
      for (const entry of [...list]) this.drop(key, entry, true);
    }
    for (const [key, list] of [...this.waiting]) {
      this.waiting.delete(key);
      for (const waiter of list) waiter({ closed: true });
    }
  }
}
