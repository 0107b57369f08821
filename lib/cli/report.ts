/**
 * probeReport: what `TlsPolicyTransport.probe()` found, as one plain, JSON-able document.
 * Pure: the certificates are read from the DER the session gathered (subjects, issuers, dates,
 * names, digests), no Buffer is kept, nothing is looked up again.
 *
 * The report follows the delivery path in its own order: the MX answer (with its DNSSEC
 * status), each MX host (addresses, TLSA and the usability of each record), each attempt (the
 * plan, what the session saw, the verdict, the decision, whether DATA would be sent), and the
 * result: what the transport would do with a message for this destination, and the exit status
 * the probe command returns for it.
 *
 * The report is data, and some of it is the peer's: replies and the messages that quote them
 * as lib/smtp gathered them (already escaped there), certificate subjects, issuers and names as
 * the certificate holds them, DNS names as the answers held them. It is never printed as it
 * is: formatProbe (format.ts) escapes every string for the terminal, and formatJson writes the
 * JSON form with every character a terminal could act on escaped.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { Attempt, DeliverEvent, Delivery, Destination } from '../deliver/index.js';
import type { Decision } from '../decide/index.js';
import type { Plan } from '../plan/index.js';
import type { TlsaLookup } from '../plan/dane.js';
import { isDaneLevel } from '../policy/levels.js';
import { classifyTlsa, formatTlsa } from '../dane/index.js';
import { certDigest, certNames, spkiDer, spkiDigest } from '../pkix/index.js';
import type { AuditRecord, DigestAlgorithm, DnssecStatus, FallbackLevel, Level, Stage, Trust } from '../types.js';
import type { DnssecMode, ValidationRecord } from '../dns/index.js';
import { VERSION } from '../version.js';
import { mxMatches, type StsLookup } from '../mtasts/index.js';

/** What `probe()` returns (lib/transport.ts). */
export interface ProbeResult {
  destination: Destination;
  delivery: Delivery;
  events: DeliverEvent[];
}

/** What the command knows besides the result: the settings the probe ran with. */
export interface ProbeContext {
  /** The target as the user wrote it. */
  target?: string;
  /** The default level (`--level`). */
  defaultLevel?: Level;
  /** The policy table file, when one was given. */
  policyFile?: string;
  /** The global fallback map as given (`--fallback`). */
  fallbackLevels?: string;
  port?: number;
  digest?: DigestAlgorithm;
  insecureMxPolicy?: 'may' | 'encrypt' | 'dane';
  /** The resolver's settings; `validations`: how each answer was judged ('validate' only). */
  resolver?: { servers: string[]; trustAd: boolean | 'loopback'; dnssec?: DnssecMode; validations?: ValidationRecord[] };
  /** Warnings to show (e.g. the resolver's, about servers whose AD bit is not believed). */
  warnings?: string[];
  /** The time certificates are judged at (default: now). */
  now?: Date;
}

export interface MxReport {
  domain: string;
  /** DNSSEC status of the MX answer. */
  dnssec: DnssecStatus;
  rcode?: 'NOERROR' | 'NXDOMAIN';
  /** Why the lookup failed, when it did. */
  reason?: string;
  records: { preference: number; exchange: string }[];
  /** No MX records: the domain itself is the MX host (RFC 5321 section 5.1). */
  implicit: boolean;
  /** A null MX (RFC 7505): the domain accepts no mail. */
  nullMx: boolean;
}

export interface TlsaRecordReport {
  /** Presentation form, `3 1 1 <hex>`. */
  record: string;
  usability: 'usable' | 'unusable' | 'ignored';
  reason?: string;
}

export type TlsaReport =
  { status: 'secure'; name: string; baseDomain: string; records: TlsaRecordReport[] } | { status: 'none'; why: string } | { status: 'failed'; reason: string };

export interface HostReport {
  name: string;
  /** DNSSEC status of the address answer. */
  dnssec: DnssecStatus;
  addresses: string[];
  /** The CNAME chain followed, when the name is an alias. */
  cnames: string[];
  /** The host is an address literal (a relay given as [192.0.2.1]): no DNS was asked. */
  literal?: true;
  reason?: string;
  /** The TLSA lookup; absent when there was none, with `tlsaSkipped` saying why. */
  tlsa?: TlsaReport;
  tlsaSkipped?: string;
}

export interface CertificateReport {
  /** Position in the chain the server sent, 0 = leaf. */
  depth: number;
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** `valid`, `expired` or `not yet valid` at the time of the report (`unknown` when unreadable). */
  validity: 'valid' | 'expired' | 'not yet valid' | 'unknown';
  selfSigned: boolean;
  /** DNS subjectAltNames, or the subject CN when there are none (what verify matches). */
  names: string[];
  /** The digest algorithm of the two digests below (`--digest`). */
  digest: DigestAlgorithm;
  /** Digest of the DER certificate, Postfix's fingerprint format. */
  certDigest: string;
  /** Digest of the DER SubjectPublicKeyInfo. */
  spkiDigest: string;
  /** The TLSA record (SHA2-256 of the public key) that would match this certificate: `3 1 1 ...` for the leaf, `2 1 1 ...` above it. */
  tlsa: string;
  /** Set when the certificate could not be read; the other fields are then empty. */
  error?: string;
}

export interface AttemptReport {
  mx: string;
  address: string;
  port: number;
  /** `host[address]:port`. */
  where: string;
  /** tls: as planned; cleartext-retry: the new cleartext connection after a TLS failure. */
  mode: Attempt['mode'];
  plan: {
    level: Level;
    /** Names the certificate must match (verify, secure, and DANE-TA). */
    names: string[];
    /** Fingerprints (fingerprint level). */
    fingerprints: string[];
    /** The SNI name sent, when one is. */
    sni?: string;
    implicitTls: boolean;
    protocols?: string[];
    ciphers?: string;
    fallback?: FallbackLevel;
    shadow?: Level;
    /** Whether TLSA records authenticate this session (then no CA is used: the chain is judged by DANE alone). */
    daneEnforced: boolean;
    /** DANE: the records enforced, or why DANE did not apply (the audit's `dane`). */
    dane?: string;
  };
  /** False when the MX was not connected to (its TLSA lookup failed, or dane-only found none). */
  connected: boolean;
  session: {
    starttlsOffered: boolean;
    starttlsSent: boolean;
    /** The server's refusal of STARTTLS. */
    starttlsReply?: string;
    protocol?: string;
    cipher?: string;
    /** Whether OpenSSL verified the chain against the CA set. */
    authorized?: boolean;
    authorizationError?: string;
    chain: CertificateReport[];
    failure?: { kind: string; message: string; reply?: string };
  };
  verdict: {
    /** Verified, Trusted, Untrusted, Anonymous, Cleartext; empty when there was no session. */
    trust: Trust | '';
    /** Whether the level's requirements were met by the peer (absent without TLS). */
    ok?: boolean;
    reason?: string;
    matched?: string;
  };
  decision: {
    action: Decision['action'];
    level?: Level;
    trust?: Trust;
    downgradedFrom?: Level;
    reason?: string;
    stage?: Stage;
    temporary?: boolean;
  };
  /** Whether MAIL FROM, RCPT and DATA would go over this session (the probe sends none of them). */
  wouldSendData: boolean;
  shadowResult?: string;
  audit: AuditRecord;
  auditLine: string;
}

export interface ResultReport {
  status: Delivery['status'];
  /** deliver: at the level asked; fallback: only below it; defer; bounce. */
  action: 'deliver' | 'fallback' | 'defer' | 'bounce';
  /** The session that would carry the mail. */
  via?: { mx: string; address: string; port: number; where: string; level: Level; trust: Trust | ''; mode: Attempt['mode'] };
  /** Set when the mail would only go below the level asked. */
  fallback?: { from: Level; to: Level; reason: string };
  /** Why the mail would not be sent, or why it would travel in cleartext. */
  reason?: string;
  code?: string;
  temporary?: boolean;
  /** The probe command's exit status: 0 deliver, 1 fallback, defer or bounce. */
  exitStatus: 0 | 1;
  /** The final line. */
  summary: string;
}

/** The recipient domain's MTA-STS lookup, as the probe shows it (RFC 8461). */
export interface MtaStsReport {
  domain: string;
  /** The `_mta-sts` TXT record read, when there was one. */
  record?: { id: string; text: string };
  /** The policy fetch made now, if one was. */
  fetch?: { url: string; ok: boolean; status?: number; contentType?: string; bytes?: number; ms: number; reason?: string };
  /** The policy in force, and where it came from. */
  policy?: { id: string; mode: 'enforce' | 'testing'; mx: string[]; maxAge: number; lines: string[]; expires: string };
  /** `fetched`: fetched now and cached; `cache`: from the cache; `none`: no policy applies. */
  cache: 'fetched' | 'cache' | 'none';
  /** A failure to get a live policy, with RFC 8460's result type. */
  failure?: { resultType: string; reason: string };
  notes: string[];
  /** The MX hosts and whether the policy's patterns admit each (RFC 8461 section 4.1). */
  admits: Array<{ host: string; admitted: boolean }>;
}

export interface ProbeReport {
  tool: { name: 'nodemailer-tls-policy'; version: string; command: 'probe' };
  target: string;
  destination: Destination;
  policy: {
    level: Level;
    source: string;
    fallback?: FallbackLevel;
    shadow?: Level;
  };
  config: {
    port?: number;
    defaultLevel?: Level;
    policyFile?: string;
    fallbackLevels?: string;
    digest?: DigestAlgorithm;
    insecureMxPolicy?: string;
    resolver?: { servers: string[]; trustAd: boolean | 'loopback'; dnssec?: DnssecMode };
  };
  warnings: string[];
  /** 'validate' only: per name asked, the chain of trust walked and the verdict, in the order asked. */
  dnssec?: ValidationRecord[];
  mx?: MxReport;
  /** Present when MTA-STS was looked up for the destination. */
  mtaSts?: MtaStsReport;
  hosts: HostReport[];
  attempts: AttemptReport[];
  result: ResultReport;
}

function mtaStsReport(lookup: StsLookup, mx: MxReport | undefined): MtaStsReport {
  const f = lookup.fetch;
  const p = lookup.policy;
  const hosts = mx ? (mx.implicit ? [mx.domain] : mx.records.map((r) => r.exchange).filter((h) => h !== '.')) : [];
  return {
    domain: lookup.domain,
    ...(lookup.record ? { record: { ...lookup.record } } : {}),
    ...(f
      ? {
          fetch: {
            url: `https://${f.host}/.well-known/mta-sts.txt`,
            ok: f.ok,
            ms: f.ms,
            ...(f.ok ? { status: f.status, contentType: f.contentType, bytes: f.bytes } : { reason: f.reason }),
            ...(!f.ok && f.status !== undefined ? { status: f.status } : {}),
            ...(!f.ok && f.contentType !== undefined ? { contentType: f.contentType } : {}),
          },
        }
      : {}),
    ...(p ? { policy: { id: p.id, mode: p.mode, mx: [...p.mx], maxAge: p.maxAge, lines: [...p.lines], expires: new Date(p.expiresAt).toISOString() } } : {}),
    cache: p ? p.from : 'none',
    ...(lookup.failure ? { failure: { ...lookup.failure } } : {}),
    notes: [...lookup.notes],
    admits: p ? hosts.map((host) => ({ host, admitted: mxMatches(p.mx, host) })) : [],
  };
}

/** `CN=a\nO=b` -> `CN=a, O=b`. */
function oneLineName(name: string): string {
  return name
    .split('\n')
    .map((part) => part.trim())
    .filter(Boolean)
    .join(', ');
}

function isoDate(text: string): string {
  const t = Date.parse(text);
  return Number.isFinite(t) ? new Date(t).toISOString() : text;
}

/** One certificate of the chain, read from its DER. */
export function certificateReport(der: Buffer, depth: number, digest: DigestAlgorithm, now: Date = new Date()): CertificateReport {
  try {
    const cert = new X509Certificate(der);
    const notBefore = isoDate(cert.validFrom);
    const notAfter = isoDate(cert.validTo);
    const t = now.getTime();
    const validity = t < Date.parse(notBefore) ? 'not yet valid' : t > Date.parse(notAfter) ? 'expired' : 'valid';
    const spkiSha256 = createHash('sha256').update(spkiDer(der)).digest('hex');
    return {
      depth,
      subject: oneLineName(cert.subject),
      issuer: oneLineName(cert.issuer),
      notBefore,
      notAfter,
      validity,
      selfSigned: cert.subject === cert.issuer && cert.verify(cert.publicKey),
      names: certNames(der),
      digest,
      certDigest: certDigest(der, digest),
      spkiDigest: spkiDigest(der, digest),
      tlsa: `${depth === 0 ? 3 : 2} 1 1 ${spkiSha256}`,
    };
  } catch (err) {
    return {
      depth,
      subject: '',
      issuer: '',
      notBefore: '',
      notAfter: '',
      validity: 'unknown',
      selfSigned: false,
      names: [],
      digest,
      certDigest: certDigest(der, digest),
      spkiDigest: '',
      tlsa: '',
      error: `cannot read the certificate: ${(err as Error).message}`,
    };
  }
}

function tlsaReport(lookup: TlsaLookup): TlsaReport {
  if (lookup.status === 'none') return { status: 'none', why: lookup.why };
  if (lookup.status === 'failed') return { status: 'failed', reason: lookup.reason };
  const { usable, unusable, ignored } = classifyTlsa(lookup.records);
  const records: TlsaRecordReport[] = lookup.records.map((record) => {
    const bad = unusable.find((u) => u.record === record);
    if (bad) return { record: formatTlsa(record), usability: 'unusable', reason: bad.reason };
    const skipped = ignored.find((u) => u.record === record);
    if (skipped) return { record: formatTlsa(record), usability: 'ignored', reason: skipped.reason };
    return { record: formatTlsa(record), usability: usable.includes(record) ? 'usable' : 'unusable' };
  });
  return { status: 'secure', name: lookup.name, baseDomain: lookup.baseDomain, records };
}

function mxReport(event: Extract<DeliverEvent, { type: 'mx' }>): MxReport {
  const answer = event.answer;
  if (answer.status === 'failed') {
    return { domain: event.destination, dnssec: 'failed', reason: answer.reason, records: [], implicit: false, nullMx: false };
  }
  const records = answer.records
    .map((r) => ({ preference: r.preference, exchange: r.exchange === '' ? '.' : r.exchange }))
    .sort((a, b) => a.preference - b.preference);
  return {
    domain: event.destination,
    dnssec: answer.status,
    rcode: answer.rcode,
    records,
    implicit: answer.rcode === 'NOERROR' && records.length === 0,
    nullMx: records.some((r) => r.exchange === '.'),
  };
}

function hostReport(event: Extract<DeliverEvent, { type: 'host' }>): HostReport {
  const answer = event.addresses;
  const base =
    answer.status === 'failed'
      ? { name: event.host, dnssec: 'failed' as const, addresses: [], cnames: [], reason: answer.reason }
      : {
          name: event.host,
          dnssec: answer.status,
          addresses: answer.records.map((r) => r.address),
          cnames: answer.cnames,
          ...(answer.records.length === 0 ? { reason: `${event.host} has no address (${answer.rcode === 'NXDOMAIN' ? 'NXDOMAIN' : 'NODATA'})` } : {}),
        };
  return {
    ...base,
    ...(isIP(event.host) ? { literal: true as const } : {}),
    ...(event.tlsa ? { tlsa: tlsaReport(event.tlsa) } : {}),
    ...(event.tlsaSkipped ? { tlsaSkipped: event.tlsaSkipped } : {}),
  };
}

/** The names the peer is matched against: DANE's reference identifiers when DANE was enforced, else the plan's. */
function planNames(plan: Plan): string[] {
  return [...(plan.dane ? plan.dane.names : plan.names)];
}

function attemptReport(event: Extract<DeliverEvent, { type: 'attempt' }>, now: Date): AttemptReport {
  const { attempt, plan, facts, decision, verdict } = event;
  const connected = !(decision.action === 'next' && (decision.stage === 'tlsa' || decision.stage === 'policy'));
  const tls = facts.tls;
  const sni = typeof plan.tls.servername === 'string' && plan.tls.servername !== '' ? plan.tls.servername : undefined;
  const session: AttemptReport['session'] = {
    starttlsOffered: facts.starttlsOffered,
    starttlsSent: facts.starttlsSent,
    ...(facts.starttlsReply ? { starttlsReply: facts.starttlsReply } : {}),
    ...(tls
      ? {
          protocol: tls.protocol,
          cipher: tls.cipher,
          authorized: tls.authorized,
          ...(tls.authorizationError ? { authorizationError: tls.authorizationError } : {}),
        }
      : {}),
    chain: (tls?.chain ?? []).map((der, i) => certificateReport(der, i, plan.digest, now)),
    ...(facts.failure
      ? { failure: { kind: facts.failure.kind, message: facts.failure.message, ...(facts.failure.reply ? { reply: facts.failure.reply } : {}) } }
      : {}),
  };
  const trust: Trust | '' = verdict?.trust ?? (connected && !facts.failure && !tls ? 'Cleartext' : '');
  const d: AttemptReport['decision'] = { action: decision.action };
  if (decision.action === 'send') {
    d.level = decision.level;
    d.trust = decision.trust;
    if (decision.downgradedFrom) d.downgradedFrom = decision.downgradedFrom;
  }
  // the attempt's reason is the decision's, or what happened after it (e.g. AUTH refused)
  const reason = attempt.reason ?? ('reason' in decision ? decision.reason : undefined);
  if (reason) d.reason = reason;
  if ('stage' in decision && decision.stage) d.stage = decision.stage;
  if (decision.action === 'next') d.temporary = decision.temporary;
  return {
    mx: attempt.mx,
    address: attempt.address,
    port: attempt.port,
    where: plan.where,
    mode: attempt.mode,
    plan: {
      level: plan.level,
      names: planNames(plan),
      daneEnforced: connected && isDaneLevel(plan.level),
      fingerprints: [...plan.fingerprints],
      ...(sni ? { sni } : {}),
      implicitTls: plan.implicitTls,
      ...(plan.policy.protocols ? { protocols: [...plan.policy.protocols] } : {}),
      ...(plan.policy.ciphers ? { ciphers: plan.policy.ciphers } : {}),
      ...(plan.fallback ? { fallback: plan.fallback } : {}),
      ...(plan.shadow ? { shadow: plan.shadow } : {}),
      ...(attempt.audit.dane ? { dane: attempt.audit.dane } : {}),
    },
    connected,
    session,
    verdict: {
      trust,
      ...(verdict ? { ok: verdict.ok } : {}),
      ...(verdict?.reason ? { reason: verdict.reason } : {}),
      ...(verdict?.matched ? { matched: verdict.matched } : {}),
    },
    decision: d,
    wouldSendData: attempt.decision === 'send',
    ...(attempt.audit.shadow ? { shadowResult: attempt.audit.shadow_result } : {}),
    audit: { ...attempt.audit },
    auditLine: attempt.auditLine,
  };
}

function resultReport(delivery: Delivery, attempts: AttemptReport[]): ResultReport {
  const name = delivery.destination;
  if (delivery.status === 'delivered' || delivery.status === 'partial') {
    const sender = [...attempts].reverse().find((a) => a.wouldSendData);
    if (!sender) {
      // Not reachable through deliver(); kept total for safety.
      return { status: delivery.status, action: 'deliver', exitStatus: 0, summary: `would deliver to ${name}` };
    }
    const level = sender.decision.level ?? sender.plan.level;
    const trust = sender.decision.trust ?? sender.verdict.trust;
    const via = { mx: sender.mx, address: sender.address, port: sender.port, where: sender.where, level, trust, mode: sender.mode };
    const reason = sender.decision.reason;
    const from = sender.decision.downgradedFrom;
    if (from || sender.mode === 'cleartext-retry') {
      const fromLevel = from ?? delivery.level;
      const why = reason ?? 'a TLS failure';
      return {
        status: delivery.status,
        action: 'fallback',
        via,
        fallback: { from: fromLevel, to: level, reason: why },
        reason: why,
        exitStatus: 1,
        summary:
          sender.mode === 'cleartext-retry' && !from
            ? `would deliver to ${name} only by a fallback: a cleartext retry via ${sender.where} at level ${level} (${trust || 'Cleartext'}), because ${why}`
            : `would deliver to ${name} only by a fallback: via ${sender.where} at level ${level} instead of ${fromLevel} (${trust}), because ${why}`,
      };
    }
    const clear = trust === 'Cleartext' ? `, in cleartext${reason ? ` (${reason})` : ''}` : '';
    return {
      status: delivery.status,
      action: 'deliver',
      via,
      ...(reason ? { reason } : {}),
      exitStatus: 0,
      summary: `would deliver to ${name} via ${sender.where} at level ${level} (${trust})${clear}`,
    };
  }
  const bounce = delivery.status === 'bounced';
  const reason = delivery.reason ?? 'no MX could be used';
  const code = delivery.code;
  return {
    status: delivery.status,
    action: bounce ? 'bounce' : 'defer',
    reason,
    ...(code ? { code } : {}),
    temporary: !bounce,
    exitStatus: 1,
    summary: `would ${bounce ? 'bounce' : 'defer'} mail for ${name}${code ? ` (${code}, ${bounce ? 'permanent' : 'temporary'})` : ''}: ${reason}`,
  };
}

/**
 * Turns a probe result into a report. `context` adds what the command knew (target, settings,
 * warnings); without it the report still stands on the result alone.
 */
export function probeReport(result: ProbeResult, context: ProbeContext = {}): ProbeReport {
  const now = context.now ?? new Date();
  const { destination, delivery, events } = result;
  let mx: MxReport | undefined;
  const hosts: HostReport[] = [];
  const attempts: AttemptReport[] = [];
  for (const event of events) {
    if (event.type === 'mx') mx = mxReport(event);
    else if (event.type === 'host') {
      hosts.push(hostReport(event));
    } else {
      attempts.push(attemptReport(event, now));
    }
  }
  const firstPlan = attempts[0]?.plan;
  const target = context.target ?? (destination.kind === 'domain' ? destination.domain : `[${destination.host}]:${destination.port}`);
  return {
    tool: { name: 'nodemailer-tls-policy', version: VERSION, command: 'probe' },
    target,
    destination: { ...destination },
    policy: {
      level: delivery.level,
      source: delivery.policySource,
      ...(firstPlan?.fallback ? { fallback: firstPlan.fallback } : {}),
      ...(firstPlan?.shadow ? { shadow: firstPlan.shadow } : {}),
    },
    config: {
      ...(context.port !== undefined ? { port: context.port } : {}),
      ...(context.defaultLevel ? { defaultLevel: context.defaultLevel } : {}),
      ...(context.policyFile ? { policyFile: context.policyFile } : {}),
      ...(context.fallbackLevels ? { fallbackLevels: context.fallbackLevels } : {}),
      ...(context.digest ? { digest: context.digest } : {}),
      ...(context.insecureMxPolicy ? { insecureMxPolicy: context.insecureMxPolicy } : {}),
      ...(context.resolver
        ? {
            resolver: {
              servers: [...context.resolver.servers],
              trustAd: context.resolver.trustAd,
              ...(context.resolver.dnssec ? { dnssec: context.resolver.dnssec } : {}),
            },
          }
        : {}),
    },
    warnings: [...(context.warnings ?? [])],
    ...(context.resolver?.validations ? { dnssec: context.resolver.validations.map((v) => ({ ...v, chain: [...v.chain] })) } : {}),
    ...(mx ? { mx } : {}),
    ...(delivery.mtaSts ? { mtaSts: mtaStsReport(delivery.mtaSts, mx) } : {}),
    hosts,
    attempts,
    result: resultReport(delivery, attempts),
  };
}

/** The exit status of `probe` for a report: 0 deliver at the level asked, 1 otherwise. */
export function probeExitStatus(report: ProbeReport): 0 | 1 {
  return report.result.exitStatus;
}
