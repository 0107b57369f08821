/**
 * tlsrpt: SMTP TLS Reporting (RFC 8460) for the transport's own deliveries.
 *
 * - Counting (./session.ts says which attempts count and as what; ./fields.ts how they are kept):
 *   each new TLS session to a recipient domain adds one to a success or a failure counter in the
 *   counter store (lib/store/counters.ts), shared by every process that shares the `store`.
 * - Reports (./report.ts): a recipient domain's counters for a UTC day as section 4's JSON.
 *
 * Pure parts live in their own files; this one does the store's I/O.
 */
import type { AttemptReport } from '../deliver/types.js';
import type { CounterStore } from '../store/counters.js';
import { bucketOf, counterField, parseBucket, parseCounterField, type CounterKey } from './fields.js';
import { countSession, utcDay } from './session.js';
import { buildReport, type TlsRptReport } from './report.js';
import { TlsPolicyError } from '../errors.js';

export { countSession, reportPolicy, utcDay, type CountedSession, type ReportPolicy, type SessionFailure, type SessionInput } from './session.js';
export { bucketOf, counterField, parseBucket, parseCounterField, type CounterKey } from './fields.js';
export { buildReport, dateRange, hasFailure, reportId, type TlsRptFailureDetail, type TlsRptPolicyResult, type TlsRptReport } from './report.js';

/** Counters of a bucket are kept this many days at most (a report is due the day after; RFC 8460 section 5.5 retries for a day). */
export const KEEP_DAYS = 8;

/** The `tlsRpt` option, checked. */
export interface TlsRptSettings {
  /** organization-name (RFC 8460 section 4.4). */
  organization: string;
  /** contact-info: an email address. */
  contact: string;
  /** The submitter's domain (section 5.3's TLS-Report-Submitter and subject). */
  submitter: string;
  /** From of mailto: reports. */
  from: string;
  /** Report days without a failure too (by default only days with one are reported). */
  sendAll: boolean;
  /** Milliseconds an https: report delivery may take. */
  httpsTimeout: number;
  /** CA certificates for https: report collectors; undefined: Node's. */
  ca?: string | Buffer | Array<string | Buffer>;
}

/** One counter of a report, read back. */
export interface CounterRow extends CounterKey {
  count: number;
  /** The last reason written for a failure counter. */
  note?: string;
}

interface Logger {
  warn(...a: unknown[]): void;
}

/** TLS reports: counting sessions into the store, and (see the methods) reading them back. */
export class TlsReports {
  /** The last UTC day this process counted in: on a new day, buckets older than KEEP_DAYS are dropped. */
  private lastDay = '';

  constructor(
    /** Undefined when the tlsRpt option is off: nothing is counted, and reports cannot be built. */
    readonly settings: TlsRptSettings | undefined,
    private readonly store: CounterStore,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one attempt, if it is a new TLS session (./session.ts); a store failure is logged, never thrown at a delivery. */
  async session(input: AttemptReport): Promise<void> {
    if (!this.settings) return;
    const counted = countSession({ ...input, now: this.now() });
    if (!counted) return;
    try {
      await this.store.add(bucketOf(counted.domain, counted.day), counterField(counted), 1, counted.failure?.reason);
      if (counted.day !== this.lastDay) {
        this.lastDay = counted.day;
        await this.prune(counted.day);
      }
    } catch (err) {
      this.logger.warn(
        { tnx: 'tls-rpt', destination: counted.domain },
        'TLS reporting could not count a session to %s in the %s store: %s',
        counted.domain,
        this.store.kind,
        (err as Error).message,
      );
    }
  }

  /** Drops buckets more than KEEP_DAYS before `today`. */
  private async prune(today: string): Promise<void> {
    const oldest = utcDay(Date.parse(`${today}T00:00:00Z`) - KEEP_DAYS * 86_400_000);
    for (const bucket of await this.store.buckets()) {
      const b = parseBucket(bucket);
      if (b && b.day < oldest) await this.store.drop(bucket);
    }
  }

  /** The settings, or an ECONFIG error naming the option when TLS reporting is off. */
  private configured(what: string): TlsRptSettings {
    if (!this.settings) {
      throw new TlsPolicyError(`tlsReports.${what}() needs the tlsRpt option ({ organization, contact }): TLS reporting is off`, 'ECONFIG', false);
    }
    return this.settings;
  }

  /**
   * The report of a recipient domain (A-label) for a UTC day (YYYY-MM-DD), as RFC 8460 section 4's
   * JSON; undefined when no session to it was counted that day.
   */
  async build(domain: string, day: string): Promise<TlsRptReport | undefined> {
    const settings = this.configured('build');
    checkDay(day, 'build');
    return buildReport(domain.toLowerCase(), day, await this.counters(domain.toLowerCase(), day), settings);
  }

  /** The counters of a recipient domain (A-label) for a UTC day (YYYY-MM-DD). */
  async counters(domain: string, day: string): Promise<CounterRow[]> {
    const { counts, notes } = await this.store.read(bucketOf(domain, day));
    const rows: CounterRow[] = [];
    for (const [field, count] of counts) {
      const key = parseCounterField(field);
      if (!key || count <= 0) continue;
      const note = notes.get(field);
      rows.push({ ...key, count, ...(note !== undefined ? { note } : {}) });
    }
    return rows;
  }
}

/** A UTC day as the methods take it: YYYY-MM-DD, a real date. */
function checkDay(day: string, method: string): void {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || utcDay(Date.parse(`${day}T00:00:00Z`) || 0) !== day) {
    throw new TlsPolicyError(`tlsReports.${method}(): the day must be a UTC date written YYYY-MM-DD, not ${JSON.stringify(day)}`, 'ECONFIG', false);
  }
}
