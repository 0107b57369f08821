/**
 * TLS session resumption, as Postfix's TLS session cache (smtp_tls_session_cache_database,
 * smtp_tls_session_cache_timeout) does it: the session (a TLS 1.3 ticket, or a TLS 1.2 session)
 * of a session that was judged and used is kept under the plan's session key, so it is only ever
 * offered to the same address under the same plan (level, names, TLSA records, SNI, CA, client
 * certificate): a session verified under one policy is never resumed under another.
 *
 * A resumed handshake shows no certificate (the server proves it holds the original session's
 * secret instead), so the chain as it was verified is kept with the ticket, and the resumed
 * session is judged again on that chain under the plan as it is now (its dates, the names, the
 * TLSA records). An entry is dropped when a session under its key fails verification or the TLS
 * handshake, and it lives at most `lifetime` ms (Postfix's default: 3600 s), bounded in number.
 */

export interface TicketEntry {
  /** The TLS session to offer (socket.getSession()). */
  ticket: Buffer;
  /** The peer chain as it was verified, DER, leaf first. */
  chain: Buffer[];
  /** The CA verdict OpenSSL gave that chain then. */
  authorized: boolean;
  authorizationError?: string;
  /** When it was stored (ms). */
  at: number;
}

export interface TicketCacheOptions {
  /** Entries kept at most (the least recently stored go first). Default 1000. */
  max?: number;
  /** Milliseconds an entry may be offered. Default 3600000 (Postfix's smtp_tls_session_cache_timeout). */
  lifetime?: number;
}

export const TICKET_DEFAULTS = { max: 1000, lifetime: 3_600_000 };

export class TicketCache {
  private readonly entries = new Map<string, TicketEntry>();
  private readonly max: number;
  private readonly lifetime: number;
  /** Handshakes that resumed a kept session. */
  resumed = 0;

  constructor(
    options: TicketCacheOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.max = options.max ?? TICKET_DEFAULTS.max;
    this.lifetime = options.lifetime ?? TICKET_DEFAULTS.lifetime;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry to offer for a plan key, if one is kept and still young enough. */
  get(key: string): TicketEntry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.now() - entry.at >= this.lifetime) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key: string, entry: Omit<TicketEntry, 'at'>): void {
    this.entries.delete(key);
    this.entries.set(key, { ...entry, at: this.now() });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
