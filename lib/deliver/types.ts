/**
 * The vocabulary of a delivery as data: the DNS and settings it needs, the hooks into policy,
 * the events it reports, and what it returns (attempts and the delivery).
 */
import type { TlsDefaults } from '../policy/defaults.js';
import type { Decision, OpportunisticRules } from '../decide/index.js';
import type { AddressRecord, CnameRecord, DnssecCheck, DnsResult, MxRecord, TlsaRecord, TxtRecord } from '../dns/index.js';
import type { MtaSts, StsLookup } from '../mtasts/index.js';
import type { InsecureMxPolicy, TlsaLookup } from '../plan/dane.js';
import type { Plan } from '../plan/index.js';
import type { HostPlan } from '../plan/host.js';
import type { SessionPool } from '../smtp/pool.js';
import type { TicketCache } from '../smtp/tickets.js';
import type { SessionFacts, SessionTimeouts } from '../smtp/session.js';
import type { SessionTracker } from '../smtp/tracker.js';
import type { AuditRecord, Destination, DigestAlgorithm, FallbackLevel, Level, Policy, ResultType, Stage, Trust, Verdict } from '../types.js';

/** The DNS this module needs (lib/dns's Resolver has it). */
export interface DeliverDns {
  mx(name: string): Promise<DnsResult<MxRecord>>;
  addresses(name: string): Promise<DnsResult<AddressRecord>>;
  tlsa(name: string): Promise<DnsResult<TlsaRecord>>;
  cname(name: string): Promise<DnsResult<CnameRecord>>;
  /** TXT records (MTA-STS discovery); without it, MTA-STS cannot be used. */
  txt?(name: string): Promise<DnsResult<TxtRecord>>;
  /** How answers become secure (lib/dns's Resolver has it): 'validate' needs no trusted server. */
  readonly dnssec?: 'validate' | 'trust-ad' | 'off';
  /** The servers whose AD bit is believed (lib/dns's Resolver has it); none, unless dnssec is 'validate': DANE cannot apply. */
  readonly trustedServers?: readonly string[];
  /** Whether the trusted servers answer and validate DNSSEC (lib/dns's Resolver has it). */
  checkDnssec?(name?: string): Promise<DnssecCheck>;
}

/** One message as a delivery carries it. */
export interface DeliverMail {
  from: string;
  recipients: string[];
  message: Buffer;
  /** Seconds since it was queued (Postfix's cleartext-retry rule). */
  messageAge: number;
  /** Stop before AUTH too (the probe), while deciding as if AUTH would follow. */
  skipLogin?: boolean;
  /** The message requires REQUIRETLS (RFC 8689 section 4.1: the sendMail option requireTls). */
  requireTls?: boolean;
  /** The message carries `TLS-Required: No` and the transport honours it (RFC 8689 section 4.2.2). */
  tlsRequiredNo?: boolean;
}

export interface DeliverSettings {
  port: number;
  maxMxAddresses: number;
  /** Postfix's smtp_mx_session_limit: established sessions whose transaction failed, before giving up (0: no limit). */
  maxMxSessions: number;
  digest: DigestAlgorithm;
  /** The global protocol and cipher settings (smtp_tls_protocols and the rest), for entries without their own. */
  tlsDefaults?: TlsDefaults;
  rules: Omit<OpportunisticRules, 'messageAge' | 'tempfailTryclear'> & { tempfailTryclear?: boolean };
  auth?: { user: string; pass: string };
  allowCleartextAuth: boolean;
  tlsFailuresPermanent: boolean;
  auditTemplate: string;
  name?: string;
  /** MTA-STS lookups (RFC 8461); absent when turned off (`mtaSts: false`). */
  mtaSts?: MtaSts;
  /** The session's timeouts and deadlines, as the options gave them. */
  timeouts: SessionTimeouts;
  /** Sessions in progress, ended by the transport's close(); `closed` says why once it was. */
  tracker?: SessionTracker;
  ipv6: boolean;
  /** Postfix's smtp_tls_dane_insecure_mx_policy. */
  insecureMxPolicy: InsecureMxPolicy;
  debug: boolean;
  /** Nodemailer-style logger (already made with getLogger). */
  logger: { info(...a: unknown[]): void; warn(...a: unknown[]): void; debug(...a: unknown[]): void };
  /** Passed to SMTPConnection for SMTP-level logging. */
  smtpLogger?: unknown;
  /** Idle sessions kept for reuse under the same plan (undefined: a new session per message). */
  pool?: SessionPool<Parked>;
  /** TLS sessions kept for resumption, by plan key (absent when turned off). */
  tickets?: TicketCache;
  /** Sees every fact gathered and decision made (the probe command builds its report from these). */
  observe?: (event: DeliverEvent) => void;
  /** TLS reporting (RFC 8460): told of every attempt, counts the ones that are new TLS sessions (lib/tlsrpt); never throws. */
  tlsRpt?: { session(input: AttemptReport): Promise<void> };
}

/** One attempt as TLS reporting reads it. */
export interface AttemptReport {
  destination: Destination;
  attempt: Attempt;
  plan: HostPlan;
  facts: SessionFacts;
  /** The recipient domain's MTA-STS lookup, when there was one. */
  lookup?: StsLookup;
}

/** What `observe` sees, in order: the MX answer, each host's addresses and TLSA, each attempt. */
export type DeliverEvent =
  | { type: 'mx'; destination: string; answer: DnsResult<MxRecord> }
  /** One host's addresses, and its TLSA lookup or, when there was none, why (`tlsaSkipped`). */
  | { type: 'host'; host: string; addresses: DnsResult<AddressRecord>; tlsa?: TlsaLookup; tlsaSkipped?: string }
  | { type: 'attempt'; destination: string; attempt: Attempt; plan: Plan; facts: SessionFacts; decision: Decision; verdict?: Verdict };

export interface DeliverHooks {
  /**
   * The policy for this destination, after table lookup (and the policyLookup function); a
   * PolicyLookupError when that function failed, which defers the delivery.
   */
  policyFor(destination: Destination): Policy | Promise<Policy>;
  /** The default level (the level option): what a delivery whose policy lookup failed reports. */
  defaultLevel: Level;
  /** Exim's host lists applied to one MX host. */
  hostPolicy(policy: Policy, host: { name: string; address: string }): Policy;
  /** The fallback level for a policy, if any. */
  fallbackFor(policy: Policy): FallbackLevel | undefined;
  /** Reads (and caches) the files a policy names. */
  files(policy: Policy): { ca?: string | Buffer | Array<string | Buffer>; cert?: string | Buffer; key?: string | Buffer };
}

/** What a parked session keeps: what was seen and decided when it was opened. */
export interface Parked {
  facts: SessionFacts;
  decision: Decision;
  verdict?: Verdict;
  /** The peer certificate's audit digests, computed once per session. */
  digests: { cert_digest: string; spki_digest: string };
  /** The shadow level's result on this session, judged once. */
  shadowResult: string;
  /** An MTA-STS policy in testing mode: its result on this session, judged once. */
  stsResult: string;
}

/** One session with one MX address, with its audit record. */
export interface Attempt {
  mx: string;
  address: string;
  port: number;
  /** tls: as the plan asked; cleartext-retry: the cleartext retry after a TLS failure. */
  mode: 'tls' | 'cleartext-retry';
  level: Level;
  trust: Trust | '';
  /** Whether the session was reused from an earlier message under the same plan. */
  reused?: boolean;
  /** The session was established (EHLO and TLS as the level asks) but the transaction failed as a whole. */
  transactionFailed?: boolean;
  /** What was decided: sent (the transaction ran), next MX, or cleartext retry. */
  decision: Decision['action'];
  /** Why this MX failed, or why the mail went below the level asked. */
  reason?: string;
  stage?: Stage;
  /** RFC 8460's result type when TLS under the policy failed (also when a fallback then sent the mail). */
  resultType?: ResultType;
  reply?: string;
  audit: AuditRecord;
  /** The audit template rendered for this attempt. */
  auditLine: string;
}

export interface Delivery {
  destination: string;
  /** The level asked for this destination (its policy). */
  level: Level;
  policySource: string;
  status: 'delivered' | 'partial' | 'deferred' | 'bounced';
  accepted: string[];
  rejected: string[];
  pending: string[];
  /** The final reply to the message, when it was sent. */
  response?: string;
  /**
   * Each recipient's own last reply from a server, with the server: `mx1.example.net[192.0.2.1]:25:
   * 550 5.1.1 no such user` (a refused or deferred RCPT TO, or the reply that accepted it).
   */
  replies?: Record<string, string>;
  attempts: Attempt[];
  /** The recipient domain's MTA-STS lookup, when MTA-STS applied to it (see StsLookup). */
  mtaSts?: StsLookup;
  /** Why it failed, one sentence per MX, when it did. */
  reason?: string;
  /** Machine-readable failure code: ETLS (TLS policy), EDNS, ECONNECTION, EENVELOPE, EMESSAGE, EAUTH. */
  code?: string;
  temporary?: boolean;
}

export type { Destination } from '../types.js';
