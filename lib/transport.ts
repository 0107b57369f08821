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
import { readFileSync } from 'node:fs';
import { getLogger } from 'nodemailer/lib/shared';
import type { Logger } from 'nodemailer/lib/shared';
import { parseTemplate, DEFAULT_AUDIT_TEMPLATE } from './audit/index.js';
import { createResolver, type ResolverOptions } from './dns/index.js';
import { toDnsName } from './names/index.js';
import { lowerFirst, safeText } from './text/index.js';
import {
  deliver,
  type Delivery,
  type Destination,
  type DeliverDns,
  type DeliverEvent,
  type DeliverSettings,
  type DeliverHooks,
  type Parked,
} from './deliver/index.js';
import { SessionPool, type PoolOptions } from './smtp/pool.js';
import { SessionTracker } from './smtp/tracker.js';
import {
  applyHostLists,
  isDaneLevel,
  createPolicyTable,
  defaultPolicy,
  fallbackFor,
  lookupPolicy,
  parseFallbackLevels,
  type PolicyTableInput,
  type FallbackMapInput,
} from './policy/index.js';
import type { DigestAlgorithm, Level, Policy } from './types.js';

import { VERSION } from './version.js';

/** Options of `tlsPolicy()`. Each is documented once, in the README's option table. */
export interface TlsPolicyOptions {
  /** Default TLS security level for destinations without a policy entry (smtp_tls_security_level). Default `may`. */
  level?: Level;
  /** Per-destination policy: Postfix tls_policy text, `{ file }`, or an object keyed by destination. */
  policy?: PolicyTableInput;
  /** Fallback levels for authenticated levels: `"dane=encrypt, verify=may"` or `{ verify: 'encrypt' }`. */
  fallbackLevels?: FallbackMapInput;
  /** A fixed next hop instead of MX lookup: `smtp.example.com:587`, `[192.0.2.1]:25`, or `{ host, port, secure }`. */
  relay?: string | { host: string; port?: number; secure?: boolean };
  /** SMTP port for MX delivery. Default 25. */
  port?: number;
  /** SMTP AUTH credentials, sent only to the relay (requires `relay`), and never over cleartext. */
  auth?: { user: string; pass: string };
  /** Send AUTH over a cleartext channel. Default false: never. */
  allowPlaintextAuth?: boolean;
  /** DNS resolver options (servers, trustAd, timeout, attempts). Default: the system's resolvers. */
  resolver?: ResolverOptions;
  /** A CA file (PEM) for verify/secure, in place of Node's bundled CAs. */
  caFile?: string;
  /** Client certificate and key files (PEM) presented to every server, unless a policy entry names its own. */
  certFile?: string;
  keyFile?: string;
  /** Digest for fingerprints and audit digests (smtp_tls_fingerprint_digest). Default `sha256`. */
  fingerprintDigest?: DigestAlgorithm;
  /** Seconds a message must have been queued before a cleartext retry after a TLS failure (minimal_backoff_time). Default 300. */
  minimalBackoff?: number;
  /** Exim's tls_tempfail_tryclear. Default: unset, Postfix's behaviour. */
  tlsTempfailTryclear?: boolean;
  /** At `may`, cleartext only when STARTTLS was not offered; any STARTTLS or TLS failure defers. Default false. */
  strictOpportunistic?: boolean;
  /** Exim's hosts_require_tls: MX host patterns that must use TLS (at least encrypt). */
  hostsRequireTls?: string[];
  /** Exim's hosts_avoid_tls: MX host patterns that get no TLS. */
  hostsAvoidTls?: string[];
  /**
   * Postfix's smtp_tls_dane_insecure_mx_policy: what `dane` does when the MX RRset is not
   * DNSSEC-secure. `dane` (default): the host's secure TLSA is still enforced, a match is Trusted;
   * `may` or `encrypt`: that level, TLSA unused.
   */
  daneInsecureMxPolicy?: 'may' | 'encrypt' | 'dane';
  /** Make TLS-policy failures permanent (bounce) instead of temporary. Default false. */
  tlsFailuresPermanent?: boolean;
  /** The audit template (Postfix tlsfallback proposal's language). */
  auditTemplate?: string;
  /** How many destinations are delivered at once. Default 8. */
  maxConcurrentDestinations?: number;
  /** How many MX addresses are tried per destination (smtp_mx_address_limit). Default 5. */
  maxMxAddresses?: number;
  /**
   * How many MX sessions that completed EHLO and TLS but then failed the transaction (say a
   * 451 to MAIL FROM) are tried before the destination is deferred (smtp_mx_session_limit).
   * Sessions that fail earlier (connection, STARTTLS, TLS, verification) do not count.
   * Default 2; 0 for no limit.
   */
  maxMxSessions?: number;
  /** Try IPv6 addresses. Default true. */
  ipv6?: boolean;
  /** EHLO name. Default: the machine's host name. */
  name?: string;
  connectionTimeout?: number;
  greetingTimeout?: number;
  socketTimeout?: number;
  /**
   * Milliseconds within which each SMTP reply must be complete (a deadline, not an inactivity
   * timer: a reply trickling in a byte at a time fails too). Default 300000 (Postfix's
   * smtp_helo_timeout, smtp_mail_timeout, smtp_rcpt_timeout).
   */
  commandTimeout?: number;
  /**
   * Milliseconds within which the message body must be handed over, and again within which the
   * reply to its end must arrive. Default 600000 (Postfix's smtp_data_done_timeout).
   */
  dataTimeout?: number;
  /** A bunyan-compatible logger, or true for the console, as in Nodemailer. */
  logger?: unknown;
  /** Log SMTP traffic, as in Nodemailer. */
  debug?: boolean;
  /** The DNS to use instead of a Resolver made from `resolver` (a lib/dns Resolver, shared between transports). */
  dns?: DeliverDns;
  /**
   * Keep sessions open for the next message to the same address under the same plan (same
   * level, names, TLSA records, SNI, client certificate), as Postfix's connection cache does.
   * `false` opens a new session per message. Default: on, `{ maxConnectionsPerKey: 20, maxIdlePerKey: 20, maxIdle: 100,
   * idleTimeout: 5000, maxMessages: 500 }`.
   */
  connectionReuse?: boolean | PoolOptions;
  /** Sees every DNS answer, plan, session fact and decision (what the probe command uses). */
  observe?: DeliverSettings['observe'];
}

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

/** What `sendMail` rejects with when no recipient was accepted. */
export class TlsPolicyError extends Error {
  /** ETLS, EDNS, ENULLMX, ECONNECTION, EENVELOPE, EMESSAGE, EAUTH, ECONFIG. */
  code: string;
  temporary: boolean;
  deliveries: Delivery[];
  rejected: string[];
  pending: string[];
  constructor(message: string, code: string, temporary: boolean, deliveries: Delivery[] = []) {
    super(message);
    this.name = 'TlsPolicyError';
    this.code = code;
    this.temporary = temporary;
    this.deliveries = deliveries;
    this.rejected = deliveries.flatMap((d) => d.rejected);
    this.pending = deliveries.flatMap((d) => d.pending);
  }
}

interface MailLike {
  data: { queuedAt?: Date | number | string; [key: string]: unknown };
  message: {
    getEnvelope(): { from: string | false; to: string[] };
    messageId(): string;
    build(callback: (err: Error | null, message: Buffer) => void): void;
  };
}

const DEFAULTS = {
  level: 'may' as Level,
  port: 25,
  digest: 'sha256' as DigestAlgorithm,
  minimalBackoff: 300,
  maxConcurrentDestinations: 8,
  maxMxAddresses: 5,
  maxMxSessions: 2,
};

/**
 * Why an envelope address cannot be put in a MAIL FROM or RCPT TO command, or undefined: a line
 * break would end the command (and could inject another), other controls and `<`, `>` cannot
 * appear in a path (RFC 5321 section 4.1.2). Checked before any connection, so such an address
 * is refused at once for good, never retried at every MX.
 */
export function envelopeProblem(address: string): string | undefined {
  if (/[\r\n]/.test(address)) return 'it holds a line break';
  if (/[\x00-\x1f\x7f]/.test(address)) return 'it holds a control character';
  if (/[<>]/.test(address)) return 'it holds "<" or ">"';
  return undefined;
}

/** `user@Bücher.example` -> `bücher.example` as an A-label; `user@[192.0.2.1]` -> the literal. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) throw new TlsPolicyError(`recipient ${safeText(address)} has no domain`, 'EENVELOPE', false);
  const domain = address.slice(at + 1).trim();
  if (domain.startsWith('[') && domain.endsWith(']')) return domain.toLowerCase();
  // The same normaliser as policy keys, so a table entry and a recipient always agree.
  const ascii = toDnsName(domain);
  if (!ascii.ok) throw new TlsPolicyError(`recipient ${safeText(address)} has an invalid domain: ${ascii.reason}`, 'EENVELOPE', false);
  return ascii.value;
}

/** A recipient whose address cannot be delivered to at all (no or an invalid domain): bounced. */
function refusedDelivery(recipient: string, err: Error): Delivery {
  return {
    destination: safeText(recipient.slice(recipient.lastIndexOf('@') + 1)),
    level: 'none',
    policySource: 'none',
    status: 'bounced',
    accepted: [],
    rejected: [recipient],
    pending: [],
    attempts: [],
    reason: err.message,
    code: 'EENVELOPE',
    temporary: false,
  };
}

/** `smtp.example.com:587`, `[192.0.2.1]:25`, `[::1]:2525`, or an object -> a relay destination. */
export function parseRelay(relay: NonNullable<TlsPolicyOptions['relay']>): Extract<Destination, { kind: 'relay' }> {
  let host: string;
  let port: number | undefined;
  let secure: boolean | undefined;
  if (typeof relay === 'string') {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(relay.trim()) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(relay.trim());
    if (!m) throw new TlsPolicyError(`relay "${relay}" is not host, host:port or [host]:port`, 'ECONFIG', false);
    host = m[1] as string;
    port = m[2] ? Number(m[2]) : undefined;
  } else {
    host = relay.host.replace(/^\[|\]$/g, '');
    port = relay.port;
    secure = relay.secure;
  }
  if (host.toLowerCase().startsWith('ipv6:')) host = host.slice(5);
  const finalPort = port ?? (secure ? 465 : 25);
  if (!Number.isInteger(finalPort) || finalPort < 1 || finalPort > 65535) {
    throw new TlsPolicyError(`relay port ${finalPort} is not a port number`, 'ECONFIG', false);
  }
  let name = host.toLowerCase();
  if (!host.includes(':')) {
    const ascii = toDnsName(host);
    if (!ascii.ok) throw new TlsPolicyError(`relay host "${host}" is not a valid name: ${ascii.reason}`, 'ECONFIG', false);
    name = ascii.value;
  }
  return { kind: 'relay', host: name, port: finalPort, implicitTls: secure ?? finalPort === 465 };
}

function messageAge(queuedAt: unknown, now: number): number {
  if (queuedAt === undefined || queuedAt === null) return 0; // a message with no age is new
  const t = queuedAt instanceof Date ? queuedAt.getTime() : typeof queuedAt === 'number' ? queuedAt : Date.parse(String(queuedAt));
  if (!Number.isFinite(t)) throw new TlsPolicyError(`queuedAt ${String(queuedAt)} is not a date`, 'ECONFIG', false);
  return Math.max(0, (now - t) / 1000);
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

  constructor(options: TlsPolicyOptions = {}) {
    super();
    this.options = options;
    this.logger = getLogger({ logger: options.logger as never }, { component: 'tls-policy' } as never);
    const level = options.level ?? DEFAULTS.level;
    const base = defaultPolicy(level, 'level option');
    if (options.relay) this.relay = { ...parseRelay(options.relay), authenticate: true };
    if (options.auth && !options.relay) {
      throw new TlsPolicyError(
        'option auth needs option relay: SMTP AUTH credentials are sent only to the configured relay, never to MX hosts',
        'ECONFIG',
        false,
      );
    }
    if (this.relay?.implicitTls && base.level === 'none') {
      throw new TlsPolicyError(`relay ${this.relay.host}:${this.relay.port} uses implicit TLS (SMTPS), which level none cannot use`, 'ECONFIG', false);
    }
    const table = createPolicyTable(options.policy);
    const fallbackMap = parseFallbackLevels(options.fallbackLevels);
    if (options.daneInsecureMxPolicy !== undefined && !['may', 'encrypt', 'dane'].includes(options.daneInsecureMxPolicy)) {
      throw new TlsPolicyError(`option daneInsecureMxPolicy must be may, encrypt or dane, not ${String(options.daneInsecureMxPolicy)}`, 'ECONFIG', false);
    }
    const auditTemplate = options.auditTemplate ?? DEFAULT_AUDIT_TEMPLATE;
    parseTemplate(auditTemplate);
    if (options.maxMxSessions !== undefined && (!Number.isInteger(options.maxMxSessions) || options.maxMxSessions < 0)) {
      throw new TlsPolicyError(`option maxMxSessions must be 0 or a positive integer, not ${String(options.maxMxSessions)}`, 'ECONFIG', false);
    }
    for (const [name, value] of [
      ['commandTimeout', options.commandTimeout],
      ['dataTimeout', options.dataTimeout],
      ['connectionTimeout', options.connectionTimeout],
      ['greetingTimeout', options.greetingTimeout],
      ['socketTimeout', options.socketTimeout],
    ] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        throw new TlsPolicyError(`option ${name} must be a positive integer (milliseconds), not ${String(value)}`, 'ECONFIG', false);
      }
    }
    for (const [name, value] of [
      ['port', options.port],
      ['maxMxAddresses', options.maxMxAddresses],
      ['maxConcurrentDestinations', options.maxConcurrentDestinations],
    ] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1 || (name === 'port' && value > 65535))) {
        throw new TlsPolicyError(`option ${name} must be a positive integer${name === 'port' ? ' up to 65535' : ''}, not ${String(value)}`, 'ECONFIG', false);
      }
    }
    if (options.auth && (typeof options.auth.user !== 'string' || typeof options.auth.pass !== 'string')) {
      throw new TlsPolicyError('option auth needs a user and a pass', 'ECONFIG', false);
    }
    const files = new Map<string, Buffer>();
    const read = (path: string | undefined, what: string): Buffer | undefined => {
      if (!path) return undefined;
      let content = files.get(path);
      if (!content) {
        try {
          content = readFileSync(path);
        } catch (err) {
          throw new TlsPolicyError(`cannot read ${what} ${path}: ${(err as Error).message}`, 'ECONFIG', false);
        }
        files.set(path, content);
      }
      return content;
    };
    // Read the global files now, so a missing one fails at creation.
    read(options.caFile, 'CA file');
    read(options.certFile, 'client certificate file');
    read(options.keyFile, 'client key file');
    const hostLists = {
      ...(options.hostsRequireTls ? { hostsRequireTls: options.hostsRequireTls } : {}),
      ...(options.hostsAvoidTls ? { hostsAvoidTls: options.hostsAvoidTls } : {}),
    };
    applyHostLists(base, { name: 'validate.invalid', address: '0.0.0.0' }, hostLists); // validates the patterns
    this.settings = {
      port: options.port ?? DEFAULTS.port,
      maxMxAddresses: options.maxMxAddresses ?? DEFAULTS.maxMxAddresses,
      maxMxSessions: options.maxMxSessions ?? DEFAULTS.maxMxSessions,
      digest: options.fingerprintDigest ?? DEFAULTS.digest,
      rules: {
        minimalBackoff: options.minimalBackoff ?? DEFAULTS.minimalBackoff,
        strict: options.strictOpportunistic === true,
        ...(options.tlsTempfailTryclear !== undefined ? { tempfailTryclear: options.tlsTempfailTryclear } : {}),
      },
      ...(options.auth ? { auth: options.auth } : {}),
      allowPlaintextAuth: options.allowPlaintextAuth === true,
      tlsFailuresPermanent: options.tlsFailuresPermanent === true,
      auditTemplate,
      ...(options.name ? { name: options.name } : {}),
      ...(options.connectionTimeout ? { connectionTimeout: options.connectionTimeout } : {}),
      ...(options.greetingTimeout ? { greetingTimeout: options.greetingTimeout } : {}),
      ...(options.socketTimeout ? { socketTimeout: options.socketTimeout } : {}),
      ...(options.commandTimeout ? { commandTimeout: options.commandTimeout } : {}),
      ...(options.dataTimeout ? { dataTimeout: options.dataTimeout } : {}),
      tracker: this.tracker,
      ipv6: options.ipv6 !== false,
      insecureMxPolicy: options.daneInsecureMxPolicy ?? 'dane',
      debug: options.debug === true,
      logger: this.logger,
      smtpLogger: options.logger,
      ...(options.observe ? { observe: options.observe } : {}),
      ...(options.connectionReuse === false
        ? {}
        : { pool: new SessionPool<Parked>(typeof options.connectionReuse === 'object' ? options.connectionReuse : {}) }),
    };
    this.hooks = {
      policyFor: (destination) =>
        lookupPolicy(
          table,
          destination.kind === 'relay' ? { kind: 'host', host: destination.host, port: destination.port } : { kind: 'domain', domain: destination.domain },
          base,
        ),
      hostPolicy: (policy, host) => applyHostLists(policy, host, hostLists),
      fallbackFor: (policy: Policy) => fallbackFor(policy, fallbackMap),
      files: (policy: Policy) => {
        const ca = read(policy.caFile ?? options.caFile, 'CA file');
        const cert = read(policy.certFile ?? options.certFile, 'client certificate file');
        const key = read(policy.keyFile ?? options.keyFile, 'client key file');
        return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
      },
    };
    this.dns = options.dns ?? createResolver({ ...(options.resolver ?? {}), logger: this.logger });
    // Ready for work: a caller that waits for 'idle' before sending starts now.
    setImmediate(() => {
      if (this.isIdle()) this.emit('idle');
    });
    this.daneConfigured = isDaneLevel(base.level) || table.entries().some(([, p]) => isDaneLevel(p.level) || isDaneLevel(p.shadow));
    if (this.daneConfigured && this.dns.trustedServers?.length === 0) {
      // DANE that is silently inactive is the failure nobody sees: say so once, now.
      this.dnssecChecked = true;
      this.logger.warn(
        { tnx: 'dns' },
        'DANE is configured, but no DNS server is trusted to validate DNSSEC, so every answer is insecure: dane runs as may and dane-only delivers nothing; name a validating resolver in resolver.servers (one on loopback is trusted by default) or set resolver.trustAd',
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

  private async sendMail(mail: MailLike): Promise<TlsPolicySentInfo> {
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
    const message = await new Promise<Buffer>((resolve, reject) => mail.message.build((err, buf) => (err ? reject(err) : resolve(buf))));
    const groups = new Map<string, { destination: Destination; recipients: string[] }>();
    const invalid: Delivery[] = [];
    for (const recipient of recipients) {
      let key: string;
      try {
        const problem = envelopeProblem(recipient);
        if (problem) throw new TlsPolicyError(`recipient "${safeText(recipient)}" cannot be sent in RCPT TO: ${problem}`, 'EENVELOPE', false);
        key = this.relay ? 'relay' : domainOf(recipient);
      } catch (err) {
        invalid.push(refusedDelivery(recipient, err as Error));
        continue;
      }
      let group = groups.get(key);
      if (!group) {
        const destination: Destination =
          this.relay ??
          (key.startsWith('[')
            ? { kind: 'relay', host: key.slice(1, -1).replace(/^ipv6:/i, ''), port: this.settings.port, implicitTls: false }
            : { kind: 'domain', domain: key });
        group = { destination, recipients: [] };
        groups.set(key, group);
      }
      group.recipients.push(recipient);
    }
    const level = this.options.level ?? DEFAULTS.level;
    const delivered = await mapLimit([...groups.values()], this.options.maxConcurrentDestinations ?? DEFAULTS.maxConcurrentDestinations, (group) =>
      deliver(group.destination, { from, recipients: group.recipients, message, messageAge: age }, this.dns, this.settings, this.hooks).catch(
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
   * `target` is a domain (MX lookup), or `[host]:port` / `[host]` (a fixed next hop);
   * `messageAge` (seconds) judges the message as that old (Postfix's cleartext-retry rule).
   * A probe never uses or parks reused sessions: every fact it reports is fresh.
   */
  async probe(target: string, options: { messageAge?: number } = {}): Promise<{ destination: Destination; delivery: Delivery; events: DeliverEvent[] }> {
    const events: DeliverEvent[] = [];
    const text = target.trim();
    const destination: Destination = text.startsWith('[')
      ? parseRelay(/\]:\d+$/.test(text) ? text : `${text}:${this.settings.port}`)
      : { kind: 'domain', domain: domainOf(`probe@${text}`) };
    const { pool: _fresh, ...own } = this.settings; // a probe always opens its own sessions
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
  }

  /** Idle sessions kept for reuse, and how often one was reused. */
  get connections(): { idle: number; reused: number } {
    return { idle: this.settings.pool?.size ?? 0, reused: this.settings.pool?.reused ?? 0 };
  }

  /** Whether it can take more work now: fewer than `maxConcurrentDestinations` sends in flight. */
  isIdle(): boolean {
    return this.inFlight < (this.options.maxConcurrentDestinations ?? DEFAULTS.maxConcurrentDestinations) && !this.tracker.closed;
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
  }
}
