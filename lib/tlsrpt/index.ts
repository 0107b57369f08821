/**
 * tlsrpt: SMTP TLS Reporting (RFC 8460) for the transport's own deliveries.
 *
 * - Counting (./session.ts says which attempts count and as what; ./fields.ts how they are kept):
 *   each new TLS session to a recipient domain adds one to a success or a failure counter in the
 *   counter store (lib/store/counters.ts), shared by every process that shares the `store`.
 * - Reports (./report.ts): a recipient domain's counters for a UTC day as section 4's JSON.
 * - Delivery (send()): for each day that has ended, the domain's `_smtp._tls` record (./record.ts,
 *   section 3) says where: `https:` by POST (./https.ts, section 5.4), `mailto:` as section 5.3's
 *   message (./message.ts) sent through the transport itself. By default only a day with a
 *   failure is reported. One process of all those sharing the store delivers a report: it claims
 *   it in the store (SET NX, INSERT OR IGNORE, a Map) and reads its state again under the claim.
 *   A delivery that fails stays pending with the reason and is tried again by the next run, for
 *   24 hours after the first attempt (section 5.5), then it is marked failed and logged; it is
 *   never dropped without a trace.
 *
 * Pure parts live in their own files; this one does the store's and the network's I/O.
 */
import { randomUUID } from 'node:crypto';
import type DKIM from 'nodemailer/lib/dkim';
import type MimeNode from 'nodemailer/lib/mime-node';
import type { AddressRecord, DnsResult, TxtRecord } from '../dns/index.js';
import type { AttemptReport } from '../deliver/types.js';
import { TlsPolicyError } from '../errors.js';
import type { CounterStore } from '../store/counters.js';
import { bucketOf, counterField, parseBucket, parseCounterField, type CounterKey } from './fields.js';
import { postReport } from './https.js';
import { gzipReport, reportMessage } from './message.js';
import { parseTlsRptRecords, type ReportUri } from './record.js';
import { buildReport, hasFailure, reportId, reportPolicies, type TlsRptPolicyResult, type TlsRptReport } from './report.js';
import { countSession, utcDay } from './session.js';

export { countSession, reportPolicy, utcDay, type CountedSession, type ReportPolicy, type SessionFailure, type SessionInput } from './session.js';
export { bucketOf, counterField, parseBucket, parseCounterField, type CounterKey } from './fields.js';
export {
  buildReport,
  dateRange,
  hasFailure,
  reportId,
  reportPolicies,
  type TlsRptFailureDetail,
  type TlsRptPolicyResult,
  type TlsRptReport,
} from './report.js';
export { parseTlsRptRecords, type ReportUri, type TlsRptRecord } from './record.js';
export { gzipReport, reportFileName, reportMessage } from './message.js';

/** Counters of a bucket are kept this many days at most (a report is due the day after; RFC 8460 section 5.5 retries for a day). */
export const KEEP_DAYS = 8;
/** Section 5.5: "a sender SHOULD attempt redelivery for up to 24 hours after the initial attempt". */
export const RETRY_FOR_MS = 24 * 3_600_000;
/** How long a delivery state is kept after the report is done (so that it is never sent twice). */
const STATE_KEEP_MS = 30 * 86_400_000;
/** How long one process may hold a report's claim while it delivers it. */
const CLAIM_MS = 30 * 60_000;

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

/** What delivery needs of the transport: its DNS, and sending a message through itself (uncounted). */
export interface ReportIo {
  txt?(name: string): Promise<DnsResult<TxtRecord>>;
  addresses(name: string): Promise<DnsResult<AddressRecord>>;
  /** Sends a report message through the transport, at its own TLS policy, without counting its sessions. */
  sendMail(message: MimeNode): Promise<{ accepted: string[]; rejected: string[]; pending: string[]; response: string }>;
}

/** A report's delivery state, kept in the store under its bucket. */
interface ReportState {
  status: 'pending' | 'sent' | 'failed' | 'no-record' | 'skipped';
  reportId: string;
  attempts: number;
  firstAttempt?: number;
  lastAttempt?: number;
  /** The URIs the report reached. */
  delivered: string[];
  /** The last failure per URI that has not been reached. */
  errors: Record<string, string>;
  /** Why it is done without a delivery (no record, no failure), or given up. */
  reason?: string;
}

/** What send() did with one report. */
export interface ReportDelivery {
  /** The recipient domain the report is about. */
  domain: string;
  /** Its UTC day. */
  day: string;
  reportId: string;
  /**
   * `sent`: every address of the domain's record has it; `pending`: some delivery failed and is
   * tried again by the next run; `failed`: still failing 24 hours after the first attempt, given up;
   * `no-record`: the domain publishes no usable TLSRPT record; `skipped`: no failure that day (and
   * `sendAll` is off); `busy`: another process sharing the store is delivering it.
   */
  status: 'sent' | 'pending' | 'failed' | 'no-record' | 'skipped' | 'busy';
  /** One per address tried in this run. */
  deliveries: Array<{ uri: string; ok: boolean; reason?: string }>;
  /** Why it was not delivered (no record, no failure, a DNS failure, given up). */
  reason?: string;
}

/** A report not delivered yet: due (its day ended) or waiting for a retry. */
export interface PendingReport {
  domain: string;
  day: string;
  reportId?: string;
  status: 'due' | 'retrying';
  successful: number;
  failed: number;
  attempts: number;
  firstAttempt?: string;
  lastAttempt?: string;
  /** The last failure per address, for a report being retried. */
  errors: Record<string, string>;
  /** The report's `policies`, as RFC 8460 section 4 writes them. */
  policies: TlsRptPolicyResult[];
}

interface Logger {
  warn(...a: unknown[]): void;
  info(...a: unknown[]): void;
}

const stateKey = (bucket: string) => `report:${bucket}`;
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function asState(value: unknown): ReportState | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const s = value as ReportState;
  if (!['pending', 'sent', 'failed', 'no-record', 'skipped'].includes(s.status) || !Array.isArray(s.delivered)) return undefined;
  return { ...s, errors: s.errors ?? {} };
}

/** TLS reports: counting sessions into the store, building the reports, delivering them. */
export class TlsReports {
  /** The last UTC day this process counted in: on a new day, buckets older than KEEP_DAYS are dropped. */
  private lastDay = '';

  constructor(
    /** Undefined when the tlsRpt option is off: nothing is counted, and reports cannot be built or sent. */
    readonly settings: TlsRptSettings | undefined,
    private readonly store: CounterStore,
    private readonly logger: Logger,
    private readonly io?: ReportIo,
  ) {}

  /** Counts one attempt, if it is a new TLS session (./session.ts); a store failure is logged, never thrown at a delivery. */
  async session(input: AttemptReport): Promise<void> {
    if (!this.settings) return;
    const counted = countSession({ ...input, now: Date.now() });
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

  /** A store failure, as an error that names the store and the method. */
  private storeError(what: string, err: unknown): TlsPolicyError {
    return new TlsPolicyError(`tlsReports.${what}(): the ${this.store.kind} store failed: ${(err as Error).message}`, 'ESTORE', true);
  }

  /**
   * The report of a recipient domain (A-label) for a UTC day (YYYY-MM-DD), as RFC 8460 section 4's
   * JSON; undefined when no session to it was counted that day.
   */
  async build(domain: string, day: string): Promise<TlsRptReport | undefined> {
    const settings = this.configured('build');
    checkDay(day, 'build');
    const rows = await this.counters(domain.toLowerCase(), day).catch((err: unknown) => {
      throw this.storeError('build', err);
    });
    return buildReport(domain.toLowerCase(), day, rows, settings);
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

  /** The buckets of days that ended before `now`'s UTC day, oldest first. */
  private async endedBuckets(now: number): Promise<Array<{ bucket: string; domain: string; day: string }>> {
    const today = utcDay(now);
    const out: Array<{ bucket: string; domain: string; day: string }> = [];
    for (const bucket of await this.store.buckets()) {
      const b = parseBucket(bucket);
      if (b && b.day < today) out.push({ bucket, ...b });
    }
    return out.sort((a, b) => (a.bucket < b.bucket ? -1 : 1));
  }

  /**
   * The reports not delivered yet: due (their day ended, with a failure, or any with `sendAll`) or
   * waiting to be tried again after a failed delivery. Needs no tlsRpt option (the command line
   * lists them from a store); `sendAll` defaults to the option's.
   */
  async pending(options: { sendAll?: boolean; now?: Date | number } = {}): Promise<PendingReport[]> {
    const now = options.now === undefined ? Date.now() : Number(options.now);
    const sendAll = options.sendAll ?? this.settings?.sendAll ?? false;
    try {
      const out: PendingReport[] = [];
      for (const { bucket, domain, day } of await this.endedBuckets(now)) {
        const state = asState(await this.store.getRecord(stateKey(bucket)));
        if (state && state.status !== 'pending') continue;
        const policies = reportPolicies(await this.counters(domain, day));
        if (policies.length === 0) continue;
        if (!state && !sendAll && !hasFailure({ policies })) continue;
        const firstAttempt = iso(state?.firstAttempt);
        const lastAttempt = iso(state?.lastAttempt);
        out.push({
          domain,
          day,
          ...(state?.reportId ? { reportId: state.reportId } : this.settings ? { reportId: reportId(domain, day, this.settings.submitter) } : {}),
          status: state ? 'retrying' : 'due',
          successful: policies.reduce((n, p) => n + p.summary['total-successful-session-count'], 0),
          failed: policies.reduce((n, p) => n + p.summary['total-failure-session-count'], 0),
          attempts: state?.attempts ?? 0,
          ...(firstAttempt ? { firstAttempt } : {}),
          ...(lastAttempt ? { lastAttempt } : {}),
          errors: state?.errors ?? {},
          policies,
        });
      }
      return out;
    } catch (err) {
      throw this.storeError('pending', err);
    }
  }

  /**
   * Delivers the reports of every day that ended before `now` (default: now): a day with a failure
   * (any day with `sendAll`), to the addresses of the domain's `_smtp._tls` record, once among all
   * processes sharing the store; and tries again the ones whose delivery failed. `dkim`: Nodemailer's
   * DKIM options (as sendMail's `dkim`), to sign reports sent by mail. Run it every hour or every day
   * (see the README); it resolves with what it did with each report.
   */
  async send(options: { dkim?: DKIM.Options; now?: Date | number } = {}): Promise<ReportDelivery[]> {
    const settings = this.configured('send');
    const now = options.now === undefined ? Date.now() : Number(options.now);
    let buckets: Array<{ bucket: string; domain: string; day: string }>;
    try {
      await this.prune(utcDay(now));
      buckets = await this.endedBuckets(now);
    } catch (err) {
      throw this.storeError('send', err);
    }
    const results: ReportDelivery[] = [];
    for (const b of buckets) {
      try {
        const result = await this.sendOne(settings, b, now, options.dkim);
        if (result) results.push(result);
      } catch (err) {
        throw this.storeError('send', err);
      }
    }
    return results;
  }

  /** One report: claimed, delivered, its state written; undefined when it was done already. */
  private async sendOne(
    settings: TlsRptSettings,
    { bucket, domain, day }: { bucket: string; domain: string; day: string },
    now: number,
    dkim: DKIM.Options | undefined,
  ): Promise<ReportDelivery | undefined> {
    const id = reportId(domain, day, settings.submitter);
    const done = (state: ReportState | undefined) => state !== undefined && state.status !== 'pending';
    if (done(asState(await this.store.getRecord(stateKey(bucket))))) {
      await this.store.drop(bucket); // a late count after the report went out
      return undefined;
    }
    const token = randomUUID();
    if (!(await this.store.claim(stateKey(bucket), token, CLAIM_MS))) return { domain, day, reportId: id, status: 'busy', deliveries: [] };
    try {
      // Read again under the claim: another process may have finished it since.
      const state = asState(await this.store.getRecord(stateKey(bucket)));
      if (done(state)) {
        await this.store.drop(bucket);
        return undefined;
      }
      const finish = async (next: ReportState, result: ReportDelivery): Promise<ReportDelivery> => {
        await this.store.setRecord(stateKey(bucket), next, STATE_KEEP_MS);
        if (next.status !== 'pending') await this.store.drop(bucket);
        return result;
      };
      const report = buildReport(domain, day, await this.counters(domain, day), settings);
      if (!report) {
        await this.store.drop(bucket);
        return undefined;
      }
      const base: ReportState = state ?? { status: 'pending', reportId: id, attempts: 0, delivered: [], errors: {} };
      if (!state && !settings.sendAll && !hasFailure(report)) {
        const reason = `no session to ${domain} failed on ${day}, and tlsRpt.sendAll is off`;
        return finish({ ...base, status: 'skipped', reason }, { domain, day, reportId: id, status: 'skipped', deliveries: [], reason });
      }
      // Section 3: where the domain wants its reports, looked up now.
      const name = `_smtp._tls.${domain}`;
      const answer = this.io?.txt
        ? await this.io.txt(name)
        : ({ status: 'failed', reason: `the dns option has no txt() method, so ${name} cannot be looked up` } as const);
      const attempt = { attempts: base.attempts + 1, firstAttempt: base.firstAttempt ?? now, lastAttempt: now };
      if (answer.status === 'failed') {
        return this.retryOrGiveUp(finish, { ...base, ...attempt, errors: { [name]: answer.reason } }, { domain, day, id, now, deliveries: [] });
      }
      const record = parseTlsRptRecords(answer.records.map((r) => r.text));
      if ('none' in record || record.record.uris.length === 0) {
        const reason =
          'none' in record
            ? `${name}: ${record.none}, so ${domain} does not take TLS reports (RFC 8460 section 3)`
            : `${name} names no address this sender can deliver to: ${record.record.ignored.join('; ')}`;
        return finish({ ...base, ...attempt, status: 'no-record', reason }, { domain, day, reportId: id, status: 'no-record', deliveries: [], reason });
      }
      const gzipped = gzipReport(report);
      const deliveries: ReportDelivery['deliveries'] = [];
      const errors: Record<string, string> = {};
      const delivered = [...base.delivered];
      for (const uri of record.record.uris) {
        if (delivered.includes(uri.uri)) continue;
        const outcome = await this.deliverTo(uri, report, gzipped, domain, settings, dkim);
        deliveries.push({ uri: uri.uri, ...outcome });
        if (outcome.ok) delivered.push(uri.uri);
        else errors[uri.uri] = outcome.reason;
      }
      if (Object.keys(errors).length === 0) {
        return finish({ ...base, ...attempt, status: 'sent', delivered, errors: {} }, { domain, day, reportId: id, status: 'sent', deliveries });
      }
      return this.retryOrGiveUp(finish, { ...base, ...attempt, delivered, errors }, { domain, day, id, now, deliveries });
    } finally {
      await this.store.release(stateKey(bucket), token);
    }
  }

  /** A delivery that failed: pending, to be tried again, or, 24 hours after the first attempt (section 5.5), failed and logged. */
  private async retryOrGiveUp(
    finish: (next: ReportState, result: ReportDelivery) => Promise<ReportDelivery>,
    state: ReportState,
    r: { domain: string; day: string; id: string; now: number; deliveries: ReportDelivery['deliveries'] },
  ): Promise<ReportDelivery> {
    const why = Object.entries(state.errors)
      .map(([where, reason]) => (reason.startsWith(where) ? reason : `${where}: ${reason}`))
      .join('; ');
    if (r.now - (state.firstAttempt ?? r.now) >= RETRY_FOR_MS) {
      const reason = `the TLS report ${r.id} for ${r.domain} (${r.day}) was not delivered within 24 hours of its first attempt (RFC 8460 section 5.5), after ${state.attempts} attempts: ${why}`;
      this.logger.warn({ tnx: 'tls-rpt', destination: r.domain }, '%s', reason);
      return finish(
        { ...state, status: 'failed', reason },
        { domain: r.domain, day: r.day, reportId: r.id, status: 'failed', deliveries: r.deliveries, reason },
      );
    }
    const reason = `the TLS report ${r.id} for ${r.domain} (${r.day}) is pending and is tried again by the next run: ${why}`;
    this.logger.info({ tnx: 'tls-rpt', destination: r.domain }, '%s', reason);
    return finish({ ...state, status: 'pending' }, { domain: r.domain, day: r.day, reportId: r.id, status: 'pending', deliveries: r.deliveries, reason });
  }

  /** One address: an https: POST, or the report message through the transport. */
  private async deliverTo(
    uri: ReportUri,
    report: TlsRptReport,
    gzipped: Buffer,
    domain: string,
    settings: TlsRptSettings,
    dkim: DKIM.Options | undefined,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    if (uri.kind === 'https') {
      const host = uri.url.hostname.replace(/^\[|\]$/g, '');
      const answer = this.io ? await this.io.addresses(host) : undefined;
      if (answer?.status === 'failed') return { ok: false, reason: answer.reason };
      const result = await postReport(uri.url, gzipped, {
        addresses: answer?.records.map((r) => r.address) ?? [],
        timeoutMs: settings.httpsTimeout,
        ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
      });
      return result.ok ? { ok: true } : { ok: false, reason: result.reason };
    }
    if (!this.io) return { ok: false, reason: `${uri.uri}: this transport cannot send mail` };
    const message = reportMessage({ report, domain, submitter: settings.submitter, from: settings.from, to: uri.address, ...(dkim ? { dkim } : {}) });
    try {
      const info = await this.io.sendMail(message);
      if (info.accepted.includes(uri.address)) return { ok: true };
      return { ok: false, reason: `${uri.uri}: not accepted: ${info.response || 'no reply'}` };
    } catch (err) {
      return { ok: false, reason: `${uri.uri}: ${(err as Error).message}` };
    }
  }
}

/** A UTC day as the methods take it: YYYY-MM-DD, a real date. */
function checkDay(day: string, method: string): void {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || utcDay(Date.parse(`${day}T00:00:00Z`) || 0) !== day) {
    throw new TlsPolicyError(`tlsReports.${method}(): the day must be a UTC date written YYYY-MM-DD, not ${JSON.stringify(day)}`, 'ECONFIG', false);
  }
}
