/**
 * config: options -> the settings a delivery runs with. Every option is checked here, once,
 * when the transport is made: an unknown name is an error that suggests the nearest known one,
 * and Nodemailer's own SMTP options get a message that says what to write instead (keeping
 * `host` would otherwise silently turn a smarthost setup into direct MX delivery). The defaults
 * live here, in one place. Files the options and the policy table name are read here too, so a
 * missing one fails at creation, not at send time.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Logger } from 'nodemailer/lib/shared';
import { parseTemplate, DEFAULT_AUDIT_TEMPLATE } from './audit/index.js';
import type { ResolverOptions } from './dns/index.js';
import type { DeliverDns, DeliverHooks, DeliverSettings, Destination, Parked } from './deliver/index.js';
import { TlsPolicyError } from './errors.js';
import {
  applyHostLists,
  checkPolicyFiles,
  checkPolicyObject,
  PolicyError,
  createPolicyTable,
  defaultPolicy,
  fallbackFor,
  isDaneLevel,
  lookupPolicy,
  lookupPolicyAsync,
  parseFallbackLevels,
  type PolicyLookup,
  type PolicyTable,
  type PolicyTableInput,
  type FallbackMapInput,
} from './policy/index.js';
import { mandatoryProtocolsProblem, type TlsDefaults } from './policy/defaults.js';
import { parseRelay } from './route.js';
import { SessionPool, type PoolOptions } from './smtp/pool.js';
import { TicketCache, type TicketCacheOptions } from './smtp/tickets.js';
import type { SessionTimeouts } from './smtp/session.js';
import type { SessionTracker } from './smtp/tracker.js';
import type { DigestAlgorithm, Level, Policy } from './types.js';
import { STS_DEFAULTS, type StsSettings } from './mtasts/index.js';
import { openStores, type CounterStore, type KeyValueStore, type StoreOption } from './store/index.js';
import type { TlsRptSettings } from './tlsrpt/index.js';

/** Options of `tlsPolicy()`. Each is documented once, in the README's option table. */
export interface TlsPolicyOptions {
  /** Default TLS security level for destinations without a policy entry (smtp_tls_security_level). Default `may`. */
  level?: Level;
  /** Per-destination policy: Postfix tls_policy text, `{ file }`, or an object keyed by destination. */
  policy?: PolicyTableInput;
  /** An async policy source (a database, Postfix's socketmap): key -> table line's right-hand side or object entry, asked after the table for each key. */
  policyLookup?: PolicyLookup;
  /** Fallback levels for authenticated levels: `"dane=encrypt, verify=may"` or `{ verify: 'encrypt' }`. */
  fallbackLevels?: FallbackMapInput;
  /** A fixed next hop instead of MX lookup: `smtp.example.com:587`, `[192.0.2.1]:25`, or `{ host, port, secure }`. */
  relay?: string | { host: string; port?: number; secure?: boolean };
  /** SMTP port for MX delivery. Default 25. */
  port?: number;
  /** SMTP AUTH credentials, sent only to the relay (requires `relay`), and never over cleartext. */
  auth?: { user: string; pass: string };
  /** Send AUTH over a cleartext channel. Default false: never. */
  allowCleartextAuth?: boolean;
  /** The former name of allowCleartextAuth, still accepted. */
  allowPlaintextAuth?: boolean;
  /** DNS resolver options (servers, trustAd, timeout, attempts). Default: the system's resolvers. */
  resolver?: ResolverOptions;
  /** A CA file (PEM) for verify/secure, in place of Node's bundled CAs. */
  caFile?: string;
  /** A CA file (PEM) for verify/secure, trusted in addition to Node's bundled CAs (Exim's tls_verify_certificates). */
  extraCaFile?: string;
  /** Client certificate and key files (PEM) presented to every server, unless a policy entry names its own. */
  certFile?: string;
  keyFile?: string;
  /** Digest for fingerprints and audit digests (smtp_tls_fingerprint_digest). Default `sha256`. */
  fingerprintDigest?: DigestAlgorithm;
  /** Seconds a message must have been queued before a cleartext retry after a TLS failure (minimal_backoff_time). Default 300. */
  minimalBackoff?: number;
  /** Exim's tls_tempfail_tryclear. Default: unset, Postfix's behaviour. */
  tlsTempfailTryclear?: boolean;
  /** TLS protocols at level may, for entries without `protocols` (smtp_tls_protocols): `'>=TLSv1.2'`. Default: Node's. */
  tlsProtocols?: string | string[];
  /** TLS protocols at encrypt and above, for entries without `protocols` (smtp_tls_mandatory_protocols). Default: Node's. */
  tlsMandatoryProtocols?: string | string[];
  /** Cipher grade at level may, for entries without `ciphers` (smtp_tls_ciphers): high, medium, null. Default: Node's. */
  tlsCiphers?: string;
  /** Cipher grade at encrypt and above, for entries without `ciphers` (smtp_tls_mandatory_ciphers). Default: Node's. */
  tlsMandatoryCiphers?: string;
  /** Ciphers excluded at every TLS level, for entries without `exclude` (smtp_tls_exclude_ciphers). */
  tlsExcludeCiphers?: string | string[];
  /** Ciphers excluded too at encrypt and above, for entries without `exclude` (smtp_tls_mandatory_exclude_ciphers). */
  tlsMandatoryExcludeCiphers?: string | string[];
  /** Digests for level fingerprint where an entry has no `match` (smtp_tls_fingerprint_cert_match); required by `level: 'fingerprint'`. */
  fingerprintCertMatch?: string | string[];
  /** Names for level verify where an entry has no `match` (smtp_tls_verify_cert_match). Default `hostname`. */
  verifyCertMatch?: string | string[];
  /** Names for level secure where an entry has no `match` (smtp_tls_secure_cert_match). Default `nexthop, dot-nexthop`. */
  secureCertMatch?: string | string[];
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
  /**
   * TLS session resumption (Postfix's TLS session cache): the TLS session of a session that
   * carried mail is kept under its plan key and offered on the next connection to the same
   * address under the same plan; the chain it was verified with is judged again. `false` turns
   * it off; `{ max: 1000, lifetime: 3600000 }` (ms) are the defaults.
   */
  tlsSessionCache?: boolean | TicketCacheOptions;
  /** Sees every DNS answer, plan, session fact and decision (what the probe command uses). */
  observe?: DeliverSettings['observe'];
  /**
   * MTA-STS (RFC 8461) for recipient domains at the default level (may, encrypt, dane): on by
   * default; `false` turns it off; an object sets `caFile` (the policy host's CAs), `port` (443)
   * and `fetchTimeout` (ms, default 20000).
   */
  mtaSts?: boolean | MtaStsOptions;
  /** Where MTA-STS policies are cached: a Keyv instance (any Keyv store, e.g. Redis), or `{ file }` (SQLite). Default: memory. */
  store?: StoreOption;
  /**
   * Honour a message's `TLS-Required: No` header (RFC 8689 section 4.2.2): DANE and MTA-STS are
   * not enforced for it (a policy-table entry still is). Default true; false ignores the header.
   */
  honorTlsRequiredNo?: boolean;
  /**
   * SMTP TLS Reporting (RFC 8460): count every new TLS session to a recipient domain (success, or
   * failure with its result type) in the store, and build and deliver the daily reports
   * (`transport.tlsReports`). Off unless given (Postfix's smtp_tlsrpt_enable = no).
   */
  tlsRpt?: false | TlsRptOptions;
}

/** The `tlsRpt` option's settings. */
export interface TlsRptOptions {
  /** The report's organization-name (RFC 8460 section 4.4): who sends it. Required. */
  organization: string;
  /** The report's contact-info: an email address for questions about it. Required. */
  contact: string;
  /** The submitter's domain: TLS-Report-Submitter, the subject and the report-id (section 5.3). Default: the contact address's domain. */
  submitter?: string;
  /** From: of reports sent by mail. Default: `contact`. */
  from?: string;
  /** Report days without any failure too. Default false: only days with a failure (as mox does). */
  sendAll?: boolean;
  /** Milliseconds an https: report delivery may take. Default 30000. */
  httpsTimeout?: number;
  /** A CA file (PEM) for https: report collectors, in place of the transport's `caFile` or Node's CAs. */
  caFile?: string;
}

const TLS_RPT_OPTIONS = new Set(['organization', 'contact', 'submitter', 'from', 'sendAll', 'httpsTimeout', 'caFile']);

/** The `mtaSts` option's settings. */
export interface MtaStsOptions {
  /** A CA file (PEM) for the policy host `mta-sts.<domain>`, in place of the transport's `caFile` or Node's CAs. */
  caFile?: string;
  /** The policy host's HTTPS port. Default 443. */
  port?: number;
  /** Milliseconds the whole policy fetch may take. Default 20000 (RFC 8461 section 3.3 suggests at most 60000). */
  fetchTimeout?: number;
}

const MTA_STS_OPTIONS = new Set(['caFile', 'port', 'fetchTimeout']);

export const DEFAULTS = {
  level: 'may' as Level,
  port: 25,
  digest: 'sha256' as DigestAlgorithm,
  minimalBackoff: 300,
  maxConcurrentDestinations: 8,
  maxMxAddresses: 5,
  maxMxSessions: 2,
};

/** Every option name tlsPolicy() takes (TlsPolicyOptions); a name not here is an error. */
export const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'level',
  'policy',
  'policyLookup',
  'fallbackLevels',
  'relay',
  'port',
  'auth',
  'allowCleartextAuth',
  'allowPlaintextAuth',
  'resolver',
  'caFile',
  'extraCaFile',
  'certFile',
  'keyFile',
  'fingerprintDigest',
  'minimalBackoff',
  'tlsTempfailTryclear',
  'strictOpportunistic',
  'tlsProtocols',
  'tlsMandatoryProtocols',
  'tlsCiphers',
  'tlsMandatoryCiphers',
  'tlsExcludeCiphers',
  'tlsMandatoryExcludeCiphers',
  'fingerprintCertMatch',
  'verifyCertMatch',
  'secureCertMatch',
  'mtaSts',
  'store',
  'honorTlsRequiredNo',
  'tlsRpt',
  'hostsRequireTls',
  'hostsAvoidTls',
  'daneInsecureMxPolicy',
  'tlsFailuresPermanent',
  'auditTemplate',
  'maxConcurrentDestinations',
  'maxMxAddresses',
  'maxMxSessions',
  'ipv6',
  'name',
  'connectionTimeout',
  'greetingTimeout',
  'socketTimeout',
  'commandTimeout',
  'dataTimeout',
  'logger',
  'debug',
  'dns',
  'connectionReuse',
  'tlsSessionCache',
  'observe',
] satisfies Array<keyof TlsPolicyOptions>);

/**
 * Nodemailer's SMTP transport options that mean something else here, or nothing: what to write
 * instead. (`port`, `auth`, `name`, `logger`, `debug` and the three Nodemailer timeouts are
 * options here too, with the same meaning, except that `port` is the port of MX delivery.)
 */
const NODEMAILER_OPTIONS: Readonly<Record<string, string>> = {
  host: "to send through a smarthost, write relay: 'host:port' (host alone would be ignored and mail would go to each recipient's MX hosts)",
  secure: 'write relay: { host, port: 465, secure: true } for implicit TLS (SMTPS)',
  service: "write relay: 'smtp.provider.example:587' with the provider's host",
  requireTLS: "write level: 'encrypt' (or verify, secure) to make TLS mandatory",
  ignoreTLS: "write level: 'none' to send without TLS",
  opportunisticTLS: "level: 'may' is the default: TLS when offered",
  tls: 'write caFile, certFile and keyFile, and per destination the policy attributes (protocols, ciphers, servername, cafile)',
  pool: 'sessions are reused by default: write connectionReuse (false, or { maxConnectionsPerKey, ... })',
  maxConnections: 'write connectionReuse: { maxConnectionsPerKey } (and maxConcurrentDestinations)',
  maxMessages: 'write connectionReuse: { maxMessages }',
  rateDelta: 'rate limiting is not supported',
  rateLimit: 'rate limiting is not supported',
  dnsTimeout: 'write resolver: { timeout }',
  localAddress: 'choosing a local address is not supported',
  proxy: 'proxies are not supported',
  authMethod: 'the AUTH method is the strongest the relay offers; it cannot be chosen',
  lmtp: 'LMTP is not supported',
  url: 'write the options as an object: relay, auth, level',
  transactionLog: 'write debug: true',
  socket: 'a ready-made socket is not supported',
  connection: 'a ready-made connection is not supported',
  customAuth: 'custom AUTH methods are not supported',
};

/** The Levenshtein distance of two short strings (for "did you mean"). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** A wrong option is an error, never silently ignored: every unknown name, with what to write instead. */
function checkOptionNames(options: object): void {
  const problems: string[] = [];
  for (const name of Object.keys(options)) {
    if (KNOWN_OPTIONS.has(name)) continue;
    const advice = NODEMAILER_OPTIONS[name];
    if (advice) {
      problems.push(`option ${name} is Nodemailer's SMTP transport option, not this transport's: ${advice}`);
      continue;
    }
    const near = [...KNOWN_OPTIONS].map((known) => ({ known, d: distance(name, known) })).sort((x, y) => x.d - y.d)[0];
    const suggestion = near && near.d <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean ${near.known}?)` : '';
    problems.push(`unknown option ${JSON.stringify(name)}${suggestion}`);
  }
  if (problems.length > 0) throw new TlsPolicyError(problems.join('; '), 'ECONFIG', false);
}

/** The session timeout options, in milliseconds. */
const TIMEOUTS = ['connectionTimeout', 'greetingTimeout', 'socketTimeout', 'commandTimeout', 'dataTimeout'] as const satisfies ReadonlyArray<
  keyof SessionTimeouts
>;

/** What configure() makes of the options. */
export interface Configured {
  settings: DeliverSettings;
  hooks: DeliverHooks;
  /** The configured relay, when there is one: the only next hop AUTH goes to. */
  relay: Extract<Destination, { kind: 'relay' }> | undefined;
  table: PolicyTable;
  /** The default policy (the level option). */
  base: Policy;
  /** Whether any level or shadow level in the configuration is dane or dane-only. */
  daneConfigured: boolean;
  /** MTA-STS's settings; undefined when it is off (`mtaSts: false`, or a relay takes all mail). */
  mtaSts?: StsSettings;
  /** TLS reporting's settings; undefined when it is off. */
  tlsRpt?: TlsRptSettings;
  /** The TLS-RPT counters of the `store` option. */
  counters: CounterStore;
}

/** The tlsSessionCache option, checked: the cache, or nothing when it is off. */
function ticketCache(option: TlsPolicyOptions['tlsSessionCache']): { tickets: TicketCache } | undefined {
  if (option === false) return undefined;
  if (option === undefined || option === true) return { tickets: new TicketCache() };
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw new TlsPolicyError('option tlsSessionCache must be true, false or { max, lifetime }', 'ECONFIG', false);
  }
  for (const [name, value] of Object.entries(option)) {
    if (name !== 'max' && name !== 'lifetime') throw new TlsPolicyError(`unknown option tlsSessionCache.${name} (known: max, lifetime)`, 'ECONFIG', false);
    if (!(Number.isInteger(value) && (value as number) > 0)) {
      throw new TlsPolicyError(`option tlsSessionCache.${name} must be a whole number above 0, not ${JSON.stringify(value)}`, 'ECONFIG', false);
    }
  }
  return { tickets: new TicketCache(option) };
}

/** Checks the mtaSts and store options; the settings, or undefined when MTA-STS is off. */
function parseMtaSts(
  options: TlsPolicyOptions,
  store: KeyValueStore,
  read: (path: string | undefined, what: string) => Buffer | undefined,
  defaultCa: Array<string | Buffer> | undefined,
): StsSettings | undefined {
  const value = options.mtaSts ?? true;
  if (typeof value !== 'boolean' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new TlsPolicyError('option mtaSts must be true, false or an object { caFile, port, fetchTimeout }', 'ECONFIG', false);
  }
  const sts: MtaStsOptions = typeof value === 'object' ? value : {};
  for (const name of Object.keys(sts)) {
    if (!MTA_STS_OPTIONS.has(name)) throw new TlsPolicyError(`unknown option mtaSts.${name} (known: ${[...MTA_STS_OPTIONS].join(', ')})`, 'ECONFIG', false);
  }
  if (sts.port !== undefined && !(Number.isInteger(sts.port) && sts.port >= 1 && sts.port <= 65535)) {
    throw new TlsPolicyError(`option mtaSts.port must be a port number (1 to 65535), not ${String(sts.port)}`, 'ECONFIG', false);
  }
  if (sts.fetchTimeout !== undefined && !(typeof sts.fetchTimeout === 'number' && sts.fetchTimeout > 0 && sts.fetchTimeout <= 600_000)) {
    throw new TlsPolicyError(`option mtaSts.fetchTimeout must be milliseconds above 0 and at most 600000, not ${String(sts.fetchTimeout)}`, 'ECONFIG', false);
  }
  if (value === false || options.relay) return undefined;
  const ca = read(sts.caFile, 'mtaSts.caFile') ?? read(options.caFile, 'CA file') ?? defaultCa;
  return {
    store,
    shared: options.store !== undefined,
    port: sts.port ?? STS_DEFAULTS.port,
    fetchTimeout: sts.fetchTimeout ?? STS_DEFAULTS.fetchTimeout,
    ...(ca ? { ca } : {}),
  };
}

/** An addr-spec as the report's contact-info and From need it (RFC 5322 section 3.4.1, dot-atom local part or a quoted one; a domain name). */
const ADDRESS =
  /^(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*|"[^"\\\r\n]*")@([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$/;
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Checks the tlsRpt option; its settings, or undefined when TLS reporting is off. */
function parseTlsRpt(
  options: TlsPolicyOptions,
  read: (path: string | undefined, what: string) => Buffer | undefined,
  defaultCa: Array<string | Buffer> | undefined,
): TlsRptSettings | undefined {
  const value = options.tlsRpt;
  if (value === undefined || value === false) return undefined;
  const shape = 'an object { organization, contact, submitter, from, sendAll, httpsTimeout, caFile }';
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TlsPolicyError(`option tlsRpt must be false or ${shape}`, 'ECONFIG', false);
  for (const name of Object.keys(value)) {
    if (!TLS_RPT_OPTIONS.has(name)) throw new TlsPolicyError(`unknown option tlsRpt.${name} (known: ${[...TLS_RPT_OPTIONS].join(', ')})`, 'ECONFIG', false);
  }
  const o = value;
  if (typeof o.organization !== 'string' || o.organization.trim() === '' || /[\u0000-\u001f\u007f]/.test(o.organization)) {
    throw new TlsPolicyError(
      'option tlsRpt.organization must be the name of the organization sending the reports (RFC 8460 organization-name), one line of text',
      'ECONFIG',
      false,
    );
  }
  const contact = typeof o.contact === 'string' ? ADDRESS.exec(o.contact) : null;
  if (!contact) {
    throw new TlsPolicyError(`option tlsRpt.contact must be an email address (RFC 8460 contact-info), not ${JSON.stringify(o.contact)}`, 'ECONFIG', false);
  }
  if (o.submitter !== undefined && (typeof o.submitter !== 'string' || !DOMAIN.test(o.submitter))) {
    throw new TlsPolicyError(
      `option tlsRpt.submitter must be a domain name (RFC 8460 section 5.3's TLS-Report-Submitter), not ${JSON.stringify(o.submitter)}`,
      'ECONFIG',
      false,
    );
  }
  if (o.from !== undefined && (typeof o.from !== 'string' || !ADDRESS.test(o.from))) {
    throw new TlsPolicyError(`option tlsRpt.from must be an email address, not ${JSON.stringify(o.from)}`, 'ECONFIG', false);
  }
  if (o.sendAll !== undefined && typeof o.sendAll !== 'boolean')
    throw new TlsPolicyError(`option tlsRpt.sendAll must be true or false, not ${JSON.stringify(o.sendAll)}`, 'ECONFIG', false);
  if (o.httpsTimeout !== undefined && !(Number.isInteger(o.httpsTimeout) && o.httpsTimeout > 0 && o.httpsTimeout <= 600_000)) {
    throw new TlsPolicyError(`option tlsRpt.httpsTimeout must be milliseconds above 0 and at most 600000, not ${String(o.httpsTimeout)}`, 'ECONFIG', false);
  }
  const ca = read(o.caFile, 'tlsRpt.caFile') ?? read(options.caFile, 'CA file') ?? defaultCa;
  return {
    organization: o.organization.trim(),
    contact: o.contact,
    submitter: (o.submitter ?? contact[1]!).toLowerCase(),
    from: o.from ?? o.contact,
    sendAll: o.sendAll === true,
    httpsTimeout: o.httpsTimeout ?? 30_000,
    ...(ca ? { ca } : {}),
  };
}

/** Checks every option and builds the settings; throws TlsPolicyError (ECONFIG, EPOLICY) on a wrong one. */
export function configure(options: TlsPolicyOptions, logger: Logger, tracker: SessionTracker): Configured {
  const level = options.level ?? DEFAULTS.level;
  const base = defaultPolicy(level, 'level option');
  checkOptionNames(options);
  const relay = options.relay ? { ...parseRelay(options.relay), authenticate: true } : undefined;
  if (options.auth && !options.relay) {
    throw new TlsPolicyError(
      'option auth needs option relay: SMTP AUTH credentials are sent only to the configured relay, never to MX hosts',
      'ECONFIG',
      false,
    );
  }
  if (relay?.implicitTls && base.level === 'none') {
    throw new TlsPolicyError(`relay ${relay.host}:${relay.port} uses implicit TLS (SMTPS), which level none cannot use`, 'ECONFIG', false);
  }
  const table = createPolicyTable(options.policy);
  const policyLookup = options.policyLookup;
  if (policyLookup !== undefined && typeof policyLookup !== 'function') {
    throw new TlsPolicyError(`option policyLookup must be a function (key) => entry, not ${typeof policyLookup}`, 'ECONFIG', false);
  }
  const fallbackMap = parseFallbackLevels(options.fallbackLevels);
  if (options.daneInsecureMxPolicy !== undefined && !['may', 'encrypt', 'dane'].includes(options.daneInsecureMxPolicy)) {
    throw new TlsPolicyError(`option daneInsecureMxPolicy must be may, encrypt or dane, not ${String(options.daneInsecureMxPolicy)}`, 'ECONFIG', false);
  }
  const auditTemplate = options.auditTemplate ?? DEFAULT_AUDIT_TEMPLATE;
  parseTemplate(auditTemplate);
  if (options.maxMxSessions !== undefined && (!Number.isInteger(options.maxMxSessions) || options.maxMxSessions < 0)) {
    throw new TlsPolicyError(`option maxMxSessions must be 0 or a positive integer, not ${String(options.maxMxSessions)}`, 'ECONFIG', false);
  }
  for (const [name, value] of TIMEOUTS.map((name) => [name, options[name]] as const)) {
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
  if (options.honorTlsRequiredNo !== undefined && typeof options.honorTlsRequiredNo !== 'boolean') {
    throw new TlsPolicyError(`option honorTlsRequiredNo must be true or false, not ${JSON.stringify(options.honorTlsRequiredNo)}`, 'ECONFIG', false);
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
  // Read the global files now, so a missing one fails at creation; and every file the policy
  // table names, so that a missing cafile= fails here too, never at send time.
  read(options.caFile, 'CA file');
  if (options.caFile && options.extraCaFile) {
    throw new TlsPolicyError(
      `options caFile and extraCaFile exclude each other: caFile replaces Node's CAs, extraCaFile adds to them (give ${options.caFile} as one of them)`,
      'ECONFIG',
      false,
    );
  }
  // Node's `ca` option replaces its bundled CAs, so adding means passing both; one array, built
  // once, so the session reuse key (by identity) is the same for every delivery.
  const extraCa = read(options.extraCaFile, 'extra CA file');
  const defaultCa: Array<string | Buffer> | undefined = extraCa ? [...rootCertificates, extraCa] : undefined;
  read(options.certFile, 'client certificate file');
  read(options.keyFile, 'client key file');
  const stores = openStores(options.store);
  const mtaSts = parseMtaSts(options, stores.cache, read, defaultCa);
  const tlsRpt = parseTlsRpt(options, read, defaultCa);
  const fileProblems = checkPolicyFiles(table);
  if (fileProblems.length > 0) throw new PolicyError(fileProblems);
  const hostLists = {
    ...(options.hostsRequireTls ? { hostsRequireTls: options.hostsRequireTls } : {}),
    ...(options.hostsAvoidTls ? { hostsAvoidTls: options.hostsAvoidTls } : {}),
  };
  applyHostLists(base, { name: 'validate.invalid', address: '0.0.0.0' }, hostLists); // validates the patterns
  const tlsDefaults = parseTlsDefaults(options, base.level);
  const applies = [
    { policy: base, what: 'the level option' },
    ...table.entries().map(([key, policy]) => ({ policy, what: `the entry for ${key}, ${policy.source}` })),
  ];
  const legacyProblem = mandatoryProtocolsProblem(tlsDefaults, [options.tlsMandatoryProtocols ?? []].flat().join(', '), applies);
  if (legacyProblem) throw new TlsPolicyError(legacyProblem, 'ECONFIG', false);
  const settings: DeliverSettings = {
    port: options.port ?? DEFAULTS.port,
    ...(tlsDefaults ? { tlsDefaults } : {}),
    maxMxAddresses: options.maxMxAddresses ?? DEFAULTS.maxMxAddresses,
    maxMxSessions: options.maxMxSessions ?? DEFAULTS.maxMxSessions,
    digest: options.fingerprintDigest ?? DEFAULTS.digest,
    rules: {
      minimalBackoff: options.minimalBackoff ?? DEFAULTS.minimalBackoff,
      strict: options.strictOpportunistic === true,
      ...(options.tlsTempfailTryclear !== undefined ? { tempfailTryclear: options.tlsTempfailTryclear } : {}),
    },
    ...(options.auth ? { auth: options.auth } : {}),
    allowCleartextAuth: (options.allowCleartextAuth ?? options.allowPlaintextAuth) === true,
    tlsFailuresPermanent: options.tlsFailuresPermanent === true,
    auditTemplate,
    ...(options.name ? { name: options.name } : {}),
    timeouts: Object.fromEntries(TIMEOUTS.filter((name) => options[name] !== undefined).map((name) => [name, options[name]])) as SessionTimeouts,
    tracker,
    ipv6: options.ipv6 !== false,
    insecureMxPolicy: options.daneInsecureMxPolicy ?? 'dane',
    debug: options.debug === true,
    logger,
    smtpLogger: options.logger,
    ...(options.observe ? { observe: options.observe } : {}),
    ...(options.connectionReuse === false ? {} : { pool: new SessionPool<Parked>(typeof options.connectionReuse === 'object' ? options.connectionReuse : {}) }),
    ...(ticketCache(options.tlsSessionCache) ?? {}),
  };
  const hooks: DeliverHooks = {
    policyFor: policyLookup
      ? (destination) => lookupPolicyAsync(table, policyLookup, destination, base)
      : (destination) => lookupPolicy(table, destination, base),
    defaultLevel: base.level,
    hostPolicy: (policy, host) => applyHostLists(policy, host, hostLists),
    fallbackFor: (policy: Policy) => fallbackFor(policy, fallbackMap),
    files: (policy: Policy) => {
      // a cafile= attribute replaces every default, as smtp_tls_CAfile would for that destination
      const ca = policy.caFile ? read(policy.caFile, 'CA file') : (read(options.caFile, 'CA file') ?? defaultCa);
      const cert = read(policy.certFile ?? options.certFile, 'client certificate file');
      const key = read(policy.keyFile ?? options.keyFile, 'client key file');
      return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
    },
  };
  const daneConfigured = isDaneLevel(base.level) || table.entries().some(([, p]) => isDaneLevel(p.level) || isDaneLevel(p.shadow));
  return { settings, hooks, relay, table, base, daneConfigured, ...(mtaSts ? { mtaSts } : {}), ...(tlsRpt ? { tlsRpt } : {}), counters: stores.counters };
}

/** The global protocol, cipher and match options, checked as the same attributes of a policy entry are. */
const TLS_DEFAULT_OPTIONS = [
  ['tlsProtocols', 'protocols', 'protocols', 'encrypt'],
  ['tlsMandatoryProtocols', 'protocols', 'mandatoryProtocols', 'encrypt'],
  ['tlsCiphers', 'ciphers', 'ciphers', 'encrypt'],
  ['tlsMandatoryCiphers', 'ciphers', 'mandatoryCiphers', 'encrypt'],
  ['tlsExcludeCiphers', 'exclude', 'exclude', 'encrypt'],
  ['tlsMandatoryExcludeCiphers', 'exclude', 'mandatoryExclude', 'encrypt'],
  ['fingerprintCertMatch', 'match', 'fingerprint', 'fingerprint'],
  ['verifyCertMatch', 'match', 'verify', 'verify'],
  ['secureCertMatch', 'match', 'secure', 'secure'],
] as const;

/** The global protocol, cipher and match options checked (ECONFIG, naming the option) and parsed; the CLI checks its flags with it. */
export function parseTlsDefaults(options: TlsPolicyOptions, defaultLevel: Level): TlsDefaults | undefined {
  const out: Record<string, unknown> = {};
  const certMatch: Record<string, unknown> = {};
  for (const [option, attribute, field, level] of TLS_DEFAULT_OPTIONS) {
    const value = options[option];
    if (value === undefined) continue;
    if (typeof value !== 'string' && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
      throw new TlsPolicyError(`option ${option} must be a string${attribute === 'ciphers' ? '' : ' or an array of strings'}`, 'ECONFIG', false);
    }
    // One checker for the option and the table attribute: an entry at the option's level under
    // a key no table holds, its problem reworded to name the option.
    const key = 'option.invalid';
    const check = checkPolicyObject({ [key]: { level, [attribute]: value } });
    const problem = check.problems[0];
    if (problem || !check.table) {
      const message = (problem?.message ?? 'invalid').replace(` for ${key}`, '').replace(/ needs at least one match=<digest>$/, ' needs at least one digest');
      const attributeProblem = /^attribute "[^"]+" (.*)$/.exec(message);
      throw new TlsPolicyError(attributeProblem ? `option ${option} ${attributeProblem[1]}` : `option ${option}: ${message}`, 'ECONFIG', false);
    }
    const parsed = check.table.get(key)?.[attribute];
    if (parsed === undefined) continue;
    if (attribute === 'match') certMatch[field] = parsed;
    else out[field] = parsed;
  }
  // Postfix's fingerprint level has no default digests: a global fingerprint level without them
  // could never deliver, so it is refused here rather than at every send.
  if (defaultLevel === 'fingerprint' && certMatch.fingerprint === undefined) {
    throw new TlsPolicyError(
      "level fingerprint needs option fingerprintCertMatch: the digest of the server's certificate or public key (smtp_tls_fingerprint_cert_match)",
      'ECONFIG',
      false,
    );
  }
  if (Object.keys(certMatch).length) out.certMatch = certMatch;
  return Object.keys(out).length ? (out as TlsDefaults) : undefined;
}
