/**
 * Sessions in progress, so that `close()` can end them, as Nodemailer's pool ends its
 * connections: every session that has not yet put the message body on the wire is ended at once
 * (its recipients come back pending: nothing was delivered); a session whose body is on the wire
 * is left to finish within its deadlines, because ending it then could deliver the message
 * twice on a retry. `force` ends those too (their recipients come back pending with a reason
 * that says the message may already have been delivered).
 */

/** What the tracker needs of a session in progress. */
export interface TrackedSession {
  /** Ends the session now; the delivery sees `reason` as the failure. */
  abort(reason: string): void;
  /** Whether the whole message body has been handed to the connection (the final dot follows). */
  readonly bodySent: boolean;
}

export class SessionTracker {
  private readonly live = new Set<TrackedSession>();
  private closedWith: string | undefined;

  /** Why the transport was closed, once it was. */
  get closed(): string | undefined {
    return this.closedWith;
  }

  /** Starts tracking; returns the function that stops it. A session added after close() is ended at once. */
  add(session: TrackedSession): () => void {
    if (this.closedWith !== undefined) {
      session.abort(this.closedWith);
      return () => undefined;
    }
    this.live.add(session);
    return () => {
      this.live.delete(session);
    };
  }

  /** Sessions in progress now. */
  get size(): number {
    return this.live.size;
  }

  /** Marks the transport closed and ends the sessions in progress (see above). */
  closeAll(reason: string, force = false): void {
    this.closedWith ??= reason;
    for (const session of [...this.live]) {
      if (force || !session.bodySent) {
        this.live.delete(session);
        session.abort(reason);
      }
    }
  }
}
