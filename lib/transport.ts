/**
 * The Nodemailer transport: `nodemailer.createTransport(tlsPolicy(options))`.
 *
 * It builds the message once, routes recipients to destinations (one per recipient domain, as
 * an A-label, or the relay), delivers to each destination concurrently up to a bound, and
 * returns what happened: accepted / rejected / pending recipients and every attempt's audit
 * record. `sendMail` rejects only when no recipient was accepted, with an error that carries
 * `code`, `temporary` and every destination's details.
 */
import { EventEmitter } from 'node:events';
import { getLogger } from 'nodemailer/lib/shared';
import type { Logger } from 'nodemailer/lib/shared';
import { configure, DEFAULTS, type TlsPolicyOptions } from './config.js';
import { createResolver } from './dns/index.js';
import { MtaSts } from './mtasts/index.js';
import { deliver, type Delivery, type Destination, type DeliverDns, type DeliverEvent, type DeliverSettings, type DeliverHooks } from './deliver/index.js';
import { TlsPolicyError } from './errors.js';
import { domainOf, envelopeProblem, messageAge, parseRelay, refusedDelivery, route } from './route.js';
import { SessionTracker } from './smtp/tracker.js';
import { TlsReports } from './tlsrpt/index.js';
import { lowerFirst, safeText } from './text/index.js';
import { VERSION } from './version.js';

export { TlsPolicyError, ERROR_CODES, type ErrorCode } from './errors.js';
export type { TlsPolicyOptions } from './config.js';
export { domainOf, envelopeProblem, parseRelay } from './route.js';

/** What `sendMail` resolves with. */
export interface TlsPolicySentInfo {
  envelope: { from: string; to: string[] };
  messageId: string;
  accepted: string[];
  rejected: string[];
  /** Recipients deferred: retry them later. */
  pending: string[];
  /** The last final reply to the message. */
  response: string;
  /** One per destination, with its attempts and their audit records. */
  deliveries: Delivery[];
}

interface MailLike {
  data: { queuedAt?: Date | number | string; requireTls?: unknown; requireTLSExtensionEnabled?: unknown; [key: string]: unknown };
  message: {
    getEnvelope(): { from: string | false; to: string[] };
    getHeader?(key: string): unknown;
    messageId(): string;
    build(callback: (err: Error | null, message: Buffer) => void): void;
  };
}

/** Runs `work` over `items` with at most `limit` at once, keeping the order of results. */
async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(runners);
  return results;
}

/**
 * The transport. An EventEmitter as Nodemailer's transports are: it emits `idle` when it can take
 * more work (fewer than `maxConcurrentDestinations` sends in flight), as Nodemailer's pool does,
 * and Nodemailer's Mailer forwards the event.
 */
export class TlsPolicyTransport extends EventEmitter {
  readonly name = 'TLSPolicy';
  readonly version = VERSION;
  readonly options: TlsPolicyOptions;
  private readonly logger: Logger;
  private readonly settings: DeliverSettings;
  private readonly hooks: DeliverHooks;
  private readonly relay?: Extract<Destination, { kind: 'relay' }>;
  private readonly dns: DeliverDns;
  private readonly tracker = new SessionTracker();
  private inFlight = 0;
  /** Whether any level or shadow level in the configuration is dane or dane-only. */
  private readonly daneConfigured: boolean;
  /** The DNSSEC check of the resolver has been started (once per transport), or its warning given. */
  private dnssecChecked = false;
  /** SMTP TLS Reporting (RFC 8460): the sessions counted, the reports built from them, and their delivery (option tlsRpt). */
  readonly tlsReports: TlsReports;

  constructor(options: TlsPolicyOptions = {}) {
    super();
    this.options = options;
    this.logger = getLogger({ logger: options.logger as never }, { component: 'tls-policy' } as never);
    const configured = configure(options, this.logger, this.tracker);
    this.settings = configured.settings;
    this.hooks = configured.hooks;
    if (configured.relay) this.relay = configured.relay;
    this.daneConfigured = configured.daneConfigured;
    this.dns = options.dns ?? resolverFrom(options.resolver, this.logger);
    const dns = this.dns;
    this.tlsReports = new TlsReports(configured.tlsRpt, configured.counters, this.logger, {
      ...(dns.txt ? { txt: (name: string) => dns.txt!(name) } : {}),
      addresses: (name) => dns.addresses(name),
      // RFC 8460 section 5.3: report messages go through this transport at its own TLS policy; their sessions are not counted.
      sendMail: (message) => this.sendMail({ data: {}, message }, { uncounted: true }),
    });
    // Every new TLS session to a recipient domain is counted (RFC 8460) when tlsRpt is on.
    if (configured.tlsRpt) this.settings.tlsRpt = this.tlsReports;
    if (configured.mtaSts) {
      if (dns.txt) this.settings.mtaSts = new MtaSts({ txt: (name) => dns.txt!(name), addresses: (name) => dns.addresses(name) }, configured.mtaSts);
      else
        this.logger.warn(
          { tnx: 'mta-sts' },
          'MTA-STS is on, but the dns option has no txt() method, so no MTA-STS policy can be found: give it one, or set mtaSts: false',
        );
    }
    // Ready for work: a caller that waits for 'idle' before sending starts now.
    setImmediate(() => {
      if (this.isIdle()) this.emit('idle');
    });
    if (this.daneConfigured && this.dns.dnssec === 'off') {
      this.dnssecChecked = true;
      this.logger.warn(
        { tnx: 'dns' },
        "DANE is configured, but resolver.dnssec is 'off', so every answer is insecure: dane runs as may and dane-only delivers nothing; remove resolver.dnssec to validate DNSSEC",
      );
    } else if (this.daneConfigured && this.dns.dnssec !== 'validate' && this.dns.trustedServers?.length === 0) {
      // DANE that is silently inactive is the failure nobody sees: say so once, now.
      this.dnssecChecked = true;
      this.logger.warn(
        { tnx: 'dns' },
        "DANE is configured, but no DNS server is trusted to validate DNSSEC, so every answer is insecure: dane runs as may and dane-only delivers nothing; set resolver.dnssec: 'validate' to validate here, name a validating resolver in resolver.servers (one on loopback is trusted by default) or set resolver.trustAd",
      );
    }
  }

  /**
   * Once per transport, when DANE is configured: ask whether a trusted resolver answers and
   * validates (the AD bit on the root), and warn when not. Runs beside the first delivery.
   */
  private checkDnssecOnce(): void {
    if (!this.daneConfigured || this.dnssecChecked || !this.dns.checkDnssec) return;
    this.dnssecChecked = true;
    this.dns.checkDnssec().then(
      (result) => {
        if (!result.ok) this.logger.warn({ tnx: 'dns' }, 'DANE is configured, but %s: DANE may never apply (see verify())', lowerFirst(result.reason));
      },
      () => undefined,
    );
  }

  /** Nodemailer's transport contract. */
  send(mail: MailLike, callback: (err: Error | null, info?: TlsPolicySentInfo) => void): void {
    this.inFlight++;
    const done = () => {
      this.inFlight--;
      if (this.isIdle() && !this.tracker.closed) setImmediate(() => this.emit('idle'));
    };
    this.sendMail(mail).then(
      (info) => {
        done();
        callback(null, info);
      },
      (err: Error) => {
        done();
        callback(err);
      },
    );
  }

  /** `uncounted`: a TLS report message (lib/tlsrpt), whose own sessions TLS reporting does not count. */
  private async sendMail(mail: MailLike, own: { uncounted?: boolean } = {}): Promise<TlsPolicySentInfo> {
    const envelope = mail.message.getEnvelope();
    const from = envelope.from || '';
    const recipients = [...new Set(envelope.to)];
    if (this.tracker.closed) {
      // As Nodemailer's pool after close(): nothing is sent; every recipient is pending.
      const reason = `the message was not sent: ${this.tracker.closed}`;
      const notSent: Delivery = {
        destination: '',
        level: this.options.level ?? DEFAULTS.level,
        policySource: 'none',
        status: 'deferred',
        accepted: [],
        rejected: [],
        pending: recipients,
        attempts: [],
        reason,
        code: 'ECONNECTION',
        temporary: true,
      };
      throw new TlsPolicyError(reason, 'ECONNECTION', true, [notSent]);
    }
    if (recipients.length === 0) throw new TlsPolicyError('the message has no recipients', 'EENVELOPE', false);
    this.checkDnssecOnce();
    const badSender = envelopeProblem(from);
    if (badSender) {
      const reason = `sender "${safeText(from)}" cannot be sent in MAIL FROM: ${badSender}`;
      const refused: Delivery = { ...refusedDelivery('', new Error(reason)), destination: '', rejected: recipients };
      throw new TlsPolicyError(reason, 'EENVELOPE', false, [refused]);
    }
    const age = messageAge(mail.data.queuedAt, Date.now());
    const demands = this.tlsDemands(mail);
    const message = await new Promise<Buffer>((resolve, reject) => mail.message.build((err, buf) => (err ? reject(err) : resolve(buf))));
    const { groups, refused: invalid } = route(recipients, this.relay, this.settings.port);
    const level = this.options.level ?? DEFAULTS.level;
    // A report message's own sessions are not counted; every other send uses the settings as they are.
    const settings: DeliverSettings = own.uncounted ? withoutCounting(this.settings) : this.settings;
    const delivered = await mapLimit(groups, this.options.maxConcurrentDestinations ?? DEFAULTS.maxConcurrentDestinations, (group) =>
      deliver(group.destination, { from, recipients: group.recipients, message, messageAge: age, ...demands }, this.dns, settings, this.hooks).catch(
        // One destination's unexpected failure must not hide what the others did.
        (err: Error): Delivery => {
          const where = group.destination.kind === 'relay' ? group.destination.host : group.destination.domain;
          return {
            destination: where,
            level,
            policySource: 'unknown',
            status: 'deferred',
            accepted: [],
            rejected: [],
            pending: [...group.recipients],
            attempts: [],
            reason: `${where}: delivery stopped by an unexpected error, recipients left pending: ${err.message}`,
            code: (err as { code?: string }).code ?? 'EINTERNAL',
            temporary: true,
          };
        },
      ),
    );
    const deliveries = [...delivered, ...invalid];
    const info: TlsPolicySentInfo = {
      envelope: { from, to: recipients },
      messageId: mail.message.messageId(),
      accepted: deliveries.flatMap((d) => d.accepted),
      rejected: deliveries.flatMap((d) => d.rejected),
      pending: deliveries.flatMap((d) => d.pending),
      response:
        deliveries
          .map((d) => d.response)
          .filter(Boolean)
          .pop() ?? '',
      deliveries,
    };
    if (info.accepted.length === 0) {
      const failed = deliveries.filter((d) => d.reason);
      const temporary = info.pending.length > 0;
      const code = failed[0]?.code ?? 'EDELIVERY';
      const message = failed.map((d) => d.reason).join(' | ') || 'no recipient was accepted';
      throw new TlsPolicyError(message, code, temporary, deliveries);
    }
    for (const d of deliveries) {
      if (d.reason) this.logger.warn({ tnx: 'tls-policy', destination: d.destination }, '%s', d.reason);
    }
    return info;
  }

  /**
   * The message's own TLS demands (RFC 8689): the sendMail option `requireTls` (or Nodemailer's
   * `requireTLSExtensionEnabled`), and the header `TLS-Required: No` when the transport honours
   * it. REQUIRETLS wins over the header: a message that asks for both gets REQUIRETLS.
   */
  private tlsDemands(mail: MailLike): { requireTls?: true; tlsRequiredNo?: true } {
    const asked = mail.data.requireTls ?? mail.data.requireTLSExtensionEnabled;
    if (asked !== undefined && typeof asked !== 'boolean') {
      throw new TlsPolicyError(`the sendMail option requireTls must be true or false, not ${typeof asked}`, 'EMESSAGE', false);
    }
    if (asked) return { requireTls: true };
    if (this.options.honorTlsRequiredNo === false) return {};
    // RFC 8689 section 3: TLS-Required: No (case-insensitive; the only value defined).
    const header = mail.message.getHeader?.('TLS-Required');
    return typeof header === 'string' && header.trim().toLowerCase() === 'no' ? { tlsRequiredNo: true } : {};
  }

  /**
   * Checks the configuration. With a relay, connects to it and applies the policy up to the
   * point where MAIL FROM would be sent (AUTH included), as Nodemailer's SMTP transport does.
   */
  verify(callback?: (err: Error | null, ok?: true) => void): Promise<true> | void {
    const run = async (): Promise<true> => {
      if (this.daneConfigured && this.dns.checkDnssec) {
        const dnssec = await this.dns.checkDnssec();
        if (!dnssec.ok) throw new TlsPolicyError(`DANE is configured, but ${lowerFirst(dnssec.reason)}`, 'EDNSSEC', true);
      }
      if (!this.relay) {
        // MX delivery: the resolver must answer. `invalid.` never exists (RFC 6761 section 6.4),
        // so a working resolver answers NXDOMAIN at once.
        const answer = await this.dns.mx('invalid');
        if (answer.status === 'failed')
          throw new TlsPolicyError(`the DNS resolver does not answer, so no MX host can be found: ${answer.reason}`, 'EDNS', true);
        return true;
      }
      // No recipients: deliver() stops where MAIL FROM would be sent.
      const probe = await deliver(this.relay, { from: '', recipients: [], message: Buffer.alloc(0), messageAge: 0 }, this.dns, this.settings, this.hooks);
      if (probe.status !== 'delivered') {
        throw new TlsPolicyError(probe.reason ?? `relay ${this.relay.host} could not be verified`, probe.code ?? 'ECONNECTION', probe.temporary ?? true, [
          probe,
        ]);
      }
      return true;
    };
    if (!callback) return run();
    run().then(
      (ok) => callback(null, ok),
      (err: Error) => callback(err),
    );
  }

  /**
   * Runs one destination through the same code path as a delivery, up to where MAIL FROM would
   * be sent (nothing of a mail is ever sent), and returns the delivery with every event seen:
   * the MX answer, each host's addresses and TLSA, each attempt's plan, facts and decision.
   * `target` is a domain (MX lookup), or `[host]:port` / `[host]` / `host:port` (a fixed next
   * hop, its policy looked up as the relay option written that way would be);
   * `messageAge` (seconds) judges the message as that old (Postfix's cleartext-retry rule).
   * A probe never uses or parks reused sessions: every fact it reports is fresh.
   */
  async probe(
    target: string,
    options: { messageAge?: number; implicitTls?: boolean } = {},
  ): Promise<{ destination: Destination; delivery: Delivery; events: DeliverEvent[] }> {
    const events: DeliverEvent[] = [];
    const text = target.trim();
    const parsed: Destination = text.startsWith('[')
      ? parseRelay(/\]:\d+$/.test(text) ? text : `${text}:${this.settings.port}`)
      : /^[^:[\]@]+:\d+$/.test(text)
        ? parseRelay(text) // host:port, a fixed next hop looked up in the policy table as written
        : { kind: 'domain', domain: domainOf(`probe@${text}`) };
    // implicitTls: TLS from the first byte on a fixed next hop, whatever its port (SMTPS).
    const destination: Destination = parsed.kind === 'relay' && options.implicitTls ? { ...parsed, implicitTls: true } : parsed;
    const { pool: _fresh, tickets: _resumed, ...own } = this.settings; // a probe always opens its own sessions, with full handshakes
    const settings: DeliverSettings = {
      ...own,
      observe: (event) => {
        events.push(event);
        this.settings.observe?.(event);
      },
    };
    const delivery = await deliver(
      destination.kind === 'relay' && this.relay && destination.host === this.relay.host && destination.port === this.relay.port ? this.relay : destination,
      { from: '', recipients: [], message: Buffer.alloc(0), messageAge: options.messageAge ?? 0, skipLogin: true },
      this.dns,
      settings,
      this.hooks,
    );
    return { destination, delivery, events };
  }

  /**
   * Closes the transport, as Nodemailer's pool does: idle sessions are closed, sends waiting for
   * a session and sends made later fail (ECONNECTION, temporary, recipients pending), and every
   * session in progress that has not yet put the message body on the wire is ended (its
   * recipients pending). A session whose body is on the wire finishes within `dataTimeout`,
   * since ending it could deliver the message twice on a retry; `{ force: true }` ends those too.
   */
  close(options: { force?: boolean } = {}): void {
    this.tracker.closeAll('the transport was closed', options.force === true);
    this.settings.pool?.closeAll();
    this.settings.tickets?.clear();
  }

  /** Idle sessions kept for reuse, how often one was reused, TLS sessions kept for resumption, and handshakes that resumed one. */
  get connections(): { idle: number; reused: number; tlsSessions: number; resumed: number } {
    return {
      idle: this.settings.pool?.size ?? 0,
      reused: this.settings.pool?.reused ?? 0,
      tlsSessions: this.settings.tickets?.size ?? 0,
      resumed: this.settings.tickets?.resumed ?? 0,
    };
  }

  /** Whether it can take more work now: fewer than `maxConcurrentDestinations` sends in flight. */
  isIdle(): boolean {
    return this.inFlight < (this.options.maxConcurrentDestinations ?? DEFAULTS.maxConcurrentDestinations) && !this.tracker.closed;
  }
}

/** The settings without TLS reporting's session counter (RFC 8460: report messages are not counted). */
function withoutCounting(settings: DeliverSettings): DeliverSettings {
  const { tlsRpt: _counter, ...uncounted } = settings;
  return uncounted;
}

/** The resolver the `resolver` option describes; a wrong value is an ECONFIG error naming it, as for every option. */
function resolverFrom(resolver: TlsPolicyOptions['resolver'], logger: Logger): ReturnType<typeof createResolver> {
  try {
    return createResolver({ ...(resolver ?? {}), logger });
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const message = err.message.startsWith('resolver') ? err.message : `option resolver: ${err.message}`;
    throw new TlsPolicyError(message, 'ECONFIG', false);
  }
}

/** The transport, for `nodemailer.createTransport(tlsPolicy(options))`. */
export function tlsPolicy(options: TlsPolicyOptions = {}): TlsPolicyTransport {
  return new TlsPolicyTransport(options);
}

/*
 * Types for `nodemailer.createTransport(tlsPolicy(options))` as users write it, with
 * @types/nodemailer and no casts: the transporter's sendMail resolves with TlsPolicySentInfo, and
 * the per-message option queuedAt is known to Nodemailer's mail options.
 */
declare module 'nodemailer' {
  function createTransport(
    transport: TlsPolicyTransport,
    defaults?: import('nodemailer/lib/mailer').Options,
  ): import('nodemailer').Transporter<TlsPolicySentInfo>;
}
declare module 'nodemailer/lib/mailer' {
  interface Options {
    /** When the message was first queued (a Date, ms since the epoch, or an ISO string): its age for the cleartext-retry rule (Postfix's minimal_backoff_time). */
    queuedAt?: Date | number | string;
    /**
     * REQUIRETLS (RFC 8689): the message crosses only MX hosts authenticated by DANE or an MTA-STS
     * policy in enforce mode that advertise REQUIRETLS, and is sent with MAIL FROM ... REQUIRETLS;
     * when no MX qualifies it is returned with 5.7.30 (code EREQUIRETLS). Nodemailer's
     * `requireTLSExtensionEnabled` means the same.
     */
    requireTls?: boolean;
  }
}
