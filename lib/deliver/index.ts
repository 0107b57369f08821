/**
 * deliver: one destination's delivery, the loop over its MX addresses that applies `decide`.
 *
 * It gathers facts (DNS, sessions) and carries out decisions; it holds no TLS rule of its own.
 * The order follows Postfix's smtp_connect.c and seed 001:
 * 1. MX hosts by preference, random among equal preference; no MX -> the domain itself
 *    (implicit MX); a null MX (RFC 7505) or a domain that does not exist -> permanent failure.
 * 2. Up to `maxMxAddresses` addresses are tried with TLS as the plan asks. A TLS failure that
 *    allows a cleartext retry on a new connection ('plaintext-later') is put aside.
 * 3. Only when no MX took the mail over TLS, the put-aside addresses are retried in cleartext,
 *    in order ('plaintext-now' retries at once: Exim's tls_tempfail_tryclear).
 * The last MX's reply class decides whether a failed destination is temporary or permanent.
 */
import { isIP } from 'node:net';
import { hostnameProblem } from '../policy/names.js';
import { oneLine, Session, type SessionFacts } from '../smtp/session.js';
import { decide, type Decision, type OpportunisticRules } from '../decide/index.js';
import type { Plan } from '../plan/index.js';
import { planHost } from '../plan/host.js';
import { judge, judgeShadow } from '../verdict/index.js';
import type { SessionPool } from '../smtp/pool.js';
import type { SessionTracker } from '../smtp/tracker.js';
import { wantsTlsa, type InsecureMxPolicy, type TlsaLookup } from '../plan/dane.js';
import { auditDigests, SessionCerts } from '../verify/index.js';
import type { AddressRecord, CnameRecord, DnssecCheck, DnsResult, MxRecord, TlsaRecord } from '../dns/index.js';
import { lookupTlsa, tlsaName } from './tlsa.js';
import { renderTemplate } from '../audit/index.js';
import { conclude, finalFailure, newOutcome, recordFailure, sessionLimitReached, settleTransaction } from './outcome.js';
import type { AuditRecord, DigestAlgorithm, FallbackLevel, Level, Policy, Stage, Trust, Verdict } from '../types.js';

/** The DNS this module needs (lib/dns's Resolver has it). */
export interface DeliverDns {
  mx(name: string): Promise<DnsResult<MxRecord>>;
  addresses(name: string): Promise<DnsResult<AddressRecord>>;
  tlsa(name: string): Promise<DnsResult<TlsaRecord>>;
  cname(name: string): Promise<DnsResult<CnameRecord>>;
  /** The servers whose AD bit is believed (lib/dns's Resolver has it); none: DANE cannot apply. */
  readonly trustedServers?: readonly string[];
  /** Whether the trusted servers answer and validate DNSSEC (lib/dns's Resolver has it). */
  checkDnssec?(name?: string): Promise<DnssecCheck>;
}

/** Where one delivery goes: a recipient domain (MX lookup) or a fixed relay. */
export type Destination =
  | { kind: 'domain'; domain: string }
  | {
      kind: 'relay';
      host: string;
      port: number;
      implicitTls: boolean;
      /** The configured relay: the only next hop SMTP AUTH credentials are sent to. */
      authenticate?: boolean;
    };

export interface DeliverSettings {
  port: number;
  maxMxAddresses: number;
  /** Postfix's smtp_mx_session_limit: established sessions whose transaction failed, before giving up (0: no limit). */
  maxMxSessions: number;
  digest: DigestAlgorithm;
  rules: Omit<OpportunisticRules, 'messageAge' | 'tempfailTryclear'> & { tempfailTryclear?: boolean };
  auth?: { user: string; pass: string };
  allowPlaintextAuth: boolean;
  tlsFailuresPermanent: boolean;
  auditTemplate: string;
  name?: string;
  connectionTimeout?: number;
  greetingTimeout?: number;
  socketTimeout?: number;
  /** Deadline for each SMTP reply (ms). */
  commandTimeout?: number;
  /** Deadline for handing over the body, and for the reply to its end (ms). */
  dataTimeout?: number;
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
  /** Sees every fact gathered and decision made (the probe command builds its report from these). */
  observe?: (event: DeliverEvent) => void;
}

/** What `observe` sees, in order: the MX answer, each host's addresses and TLSA, each attempt. */
export type DeliverEvent =
  | { type: 'mx'; destination: string; answer: DnsResult<MxRecord> }
  | { type: 'host'; host: string; addresses: DnsResult<AddressRecord>; tlsa?: TlsaLookup }
  | { type: 'attempt'; destination: string; attempt: Attempt; plan: Plan; facts: SessionFacts; decision: Decision; verdict?: Verdict };

export interface DeliverHooks {
  /** The policy for this destination, after table lookup. */
  policyFor(destination: Destination): Policy;
  /** Exim's host lists applied to one MX host. */
  hostPolicy(policy: Policy, host: { name: string; address: string }): Policy;
  /** The fallback level for a policy, if any. */
  fallbackFor(policy: Policy): FallbackLevel | undefined;
  /** Reads (and caches) the files a policy names. */
  files(policy: Policy): { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
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
  attempts: Attempt[];
  /** Why it failed, one sentence per MX, when it did. */
  reason?: string;
  /** Machine-readable failure code: ETLS (TLS policy), EDNS, ECONNECTION, EENVELOPE, EMESSAGE, EAUTH. */
  code?: string;
  temporary?: boolean;
}

interface Target {
  host: string;
  address: string;
  port: number;
  /** Whether the name of this host came from a DNSSEC-secure MX RRset (true for a relay or an implicit MX). */
  mxSecure: boolean;
  implicitTls: boolean;
  /** The host's TLSA lookup, when its policy (or shadow) is a DANE level. */
  tlsa?: TlsaLookup;
  /** Whether the host came from MX records (not a relay, nor an implicit MX). */
  viaMx: boolean;
  /** The host's CNAME-expanded name, when the answer that expanded it was DNSSEC-secure; else host. */
  canonical: string;
}

type TargetsResult = { targets: Target[] } | { fail: { reason: string; code: string; temporary: boolean } };

/** MX host names looked up at the most, in delivery order (a hostile RRset may hold hundreds). */
export const MAX_MX_NAMES = 20;
/** Host lookups (addresses, with TLSA when wanted) in flight at once for one destination. */
const MAX_HOST_LOOKUPS_IN_FLIGHT = 5;

function shuffle<T>(items: T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** MX records -> host names in delivery order (preference, random among equals). */
export function orderMx(records: { exchange: string; preference: number }[]): string[] {
  const byPreference = new Map<number, string[]>();
  for (const r of records) {
    const list = byPreference.get(r.preference) ?? [];
    list.push(r.exchange.toLowerCase().replace(/\.$/, ''));
    byPreference.set(r.preference, list);
  }
  return [...byPreference.keys()].sort((a, b) => a - b).flatMap((p) => shuffle(byPreference.get(p) ?? []));
}

async function resolveTargets(destination: Destination, dns: DeliverDns, settings: DeliverSettings, policy: Policy): Promise<TargetsResult> {
  let hosts: string[];
  const invalidHosts: string[] = [];
  let mxSecure = true; // a relay, or an implicit MX, is named by the caller or the domain itself
  let viaMx = false;
  let port = settings.port;
  let implicitTls = false;
  if (destination.kind === 'relay') {
    hosts = [destination.host];
    port = destination.port;
    implicitTls = destination.implicitTls;
  } else {
    const domain = destination.domain;
    const mx = await dns.mx(domain);
    settings.observe?.({ type: 'mx', destination: domain, answer: mx });
    if (mx.status === 'failed') return { fail: { reason: mx.reason, code: 'EDNS', temporary: true } };
    if (mx.rcode === 'NXDOMAIN') {
      return { fail: { reason: `${domain} does not exist (NXDOMAIN for its MX lookup)`, code: 'EDNS', temporary: false } };
    }
    if (mx.records.length === 0) {
      hosts = [domain]; // implicit MX (RFC 5321 section 5.1)
    } else if (mx.records.some((r) => r.exchange === '' || r.exchange === '.')) {
      return { fail: { reason: `${domain} accepts no mail: it publishes a null MX (RFC 7505)`, code: 'ENULLMX', temporary: false } };
    } else {
      // An MX target that is not a valid host name (it may carry `\.` or `\DDD` escapes from
      // the wire) is not used, as Postfix's smtp_addr skips a malformed MX host name.
      hosts = [];
      for (const host of orderMx(mx.records)) {
        const why = isIP(host) !== 0 ? undefined : hostnameProblem(host);
        if (why) {
          invalidHosts.push(`MX host ${host} is not a valid host name (${why}), so it is not used`);
          settings.logger.warn({ tnx: 'dns', destination: domain }, '%s: MX host %s is not a valid host name (%s), so it is not used', domain, host, why);
        }
        else hosts.push(host);
      }
      mxSecure = mx.status === 'secure';
      viaMx = true;
    }
  }
  const daneShadow = policy.shadow === 'dane' || policy.shadow === 'dane-only';
  const withTlsa = (wantsTlsa(policy.level, mxSecure, settings.insecureMxPolicy) || daneShadow) && policy.level !== 'none';
  const lookupHost = async (host: string) => {
    if (isIP(host) !== 0) {
      const answer: DnsResult<AddressRecord> = { status: 'insecure', rcode: 'NOERROR', name: host, ttl: 0, records: [{ address: host, family: host.includes(':') ? 6 : 4 }], cnames: [], canonical: host };
      return { host, answer, tlsa: withTlsa ? ({ status: 'none', why: `${host} is an address literal` } as TlsaLookup) : undefined };
    }
    // The TLSA query at the original name goes out with the address queries (one round trip).
    const original = withTlsa ? dns.tlsa(tlsaName(port, host)) : undefined;
    const answer = await dns.addresses(host);
    if (!original || answer.status === 'failed') {
      original?.catch(() => undefined);
      return { host, answer, tlsa: undefined };
    }
    return { host, answer, tlsa: await lookupTlsa(dns, host, port, answer, original) };
  };
  const targets: Target[] = [];
  const problems: string[] = [...invalidHosts];
  // Hosts are resolved in delivery order, a few at a time, until enough addresses are found
  // (Postfix's smtp_mx_address_limit cuts the list the same way), so a huge MX RRset costs a
  // bounded number of lookups instead of two or three per host at once.
  const hostLimit = Math.max(MAX_MX_NAMES, settings.maxMxAddresses);
  let next = 0;
  while (next < hosts.length && next < hostLimit && targets.length < settings.maxMxAddresses) {
    const width = Math.min(MAX_HOST_LOOKUPS_IN_FLIGHT, settings.maxMxAddresses - targets.length, hostLimit - next);
    const batch = hosts.slice(next, next + width);
    next += batch.length;
    for (const { host, answer, tlsa } of await Promise.all(batch.map(lookupHost))) {
      settings.observe?.({ type: 'host', host, addresses: answer, ...(tlsa ? { tlsa } : {}) });
      if (answer.status === 'failed') {
        problems.push(answer.reason);
        continue;
      }
      const addresses = answer.records.map((r) => r.address).filter((a) => settings.ipv6 || !a.includes(':'));
      if (addresses.length === 0) problems.push(`${host} has no address${settings.ipv6 ? '' : ' (IPv4)'}`);
      // A name may authenticate a peer only when every answer that produced it was secure: the
      // end of a CNAME chain counts only when the address answer that carried it is (RFC 7672
      // sections 2.2.2 and 3.2.2; Postfix uses only names it got securely).
      const canonical = answer.status === 'secure' && answer.canonical ? answer.canonical : host;
      for (const address of addresses) targets.push({ host, address, port, mxSecure, implicitTls, viaMx, canonical, ...(tlsa ? { tlsa } : {}) });
    }
  }
  if (targets.length === 0 && next < hosts.length) problems.push(`the other ${hosts.length - next} MX hosts were not looked up (at most ${hostLimit} are)`);
  if (targets.length === 0) {
    const where = destination.kind === 'relay' ? destination.host : destination.domain;
    return { fail: { reason: `${where}: no MX address to deliver to: ${problems.join('; ')}`, code: 'EDNS', temporary: true } };
  }
  return { targets: targets.slice(0, settings.maxMxAddresses) };
}

interface SessionRun {
  attempt: Attempt;
  decision: Decision;
  /** The failure code when it is not the decision's (EAUTH). */
  failureCode?: string;
  plan: Plan;
  facts: SessionFacts;
  verdict?: Verdict;
  /** Set when the transaction ran. */
  transaction?: Awaited<ReturnType<Session['send']>>;
}

export async function deliver(
  destination: Destination,
  /** `skipLogin`: stop before AUTH too (the probe), while deciding as if AUTH would follow. */
  mail: { from: string; recipients: string[]; message: Buffer; messageAge: number; skipLogin?: boolean },
  dns: DeliverDns,
  settings: DeliverSettings,
  hooks: DeliverHooks,
): Promise<Delivery> {
  const nexthop = destination.kind === 'relay' ? destination.host : destination.domain;
  const policy = hooks.policyFor(destination);
  const delivery: Delivery = {
    destination: nexthop,
    level: policy.level,
    policySource: policy.source,
    status: 'deferred',
    accepted: [],
    rejected: [],
    pending: [],
    attempts: [],
  };
  // What the attempts add up to (lib/deliver/outcome.ts holds the rules).
  const outcome = newOutcome(mail.recipients);
  const end = (failure?: { reason: string; code: string; temporary: boolean }): Delivery => Object.assign(delivery, conclude(outcome, failure, settings.tlsFailuresPermanent));
  const fail = (reason: string, code: string, temporary: boolean): Delivery => end({ reason, code, temporary });

  if (settings.tracker?.closed) return fail(`${nexthop}: ${settings.tracker.closed}; recipients left pending`, 'ECONNECTION', true);
  const resolved = await resolveTargets(destination, dns, settings, policy);
  if ('fail' in resolved) return fail(`${nexthop}: delivery at level ${policy.level} failed: ${resolved.fail.reason}`, resolved.fail.code, resolved.fail.temporary);

  const rules: OpportunisticRules = {
    minimalBackoff: settings.rules.minimalBackoff,
    strict: settings.rules.strict ?? false,
    messageAge: mail.messageAge,
    ...(settings.rules.tempfailTryclear !== undefined ? { tempfailTryclear: settings.rules.tempfailTryclear } : {}),
  };

  // SMTP AUTH goes only to the configured relay: never to an MX host, nor to an address literal
  // a recipient named (Postfix sends SASL only to next hops it has credentials for).
  const authenticate = settings.auth !== undefined && destination.kind === 'relay' && destination.authenticate === true;

  const runSession = async (target: Target, mode: 'tls' | 'cleartext-retry', fresh = false): Promise<SessionRun> => {
    // Everything this host gets is decided before any connection, in one place (lib/plan/host.ts).
    const plan = planHost(hooks.hostPolicy(policy, { name: target.host, address: target.address }), target, {
      nexthop,
      insecureMxPolicy: settings.insecureMxPolicy,
      digest: settings.digest,
      fallbackFor: hooks.fallbackFor,
      files: hooks.files,
      rules: { strict: rules.strict ?? false, ...(rules.tempfailTryclear !== undefined ? { tempfailTryclear: rules.tempfailTryclear } : {}) },
      ...(authenticate && settings.auth ? { authUser: settings.auth.user } : {}),
    });
    const refused = plan.refused;
    const daneNote = plan.daneNote;
    const tempfailTryclear = plan.tempfailTryclear;
    // A session parked after an earlier message under the same plan key is used as it is:
    // its TLS was judged for exactly this plan, and the decision taken then still holds.
    const key = settings.pool && mode === 'tls' ? plan.key : undefined;
    const pool = key ? settings.pool : undefined;
    const slot = key && pool ? await pool.acquire(key, !fresh) : undefined;
    // The transport was closed while this delivery waited for a session slot: nothing is opened.
    const notTried = slot?.closed ? `was not tried: ${settings.tracker?.closed ?? 'the transport was closed'}` : undefined;
    const parked = slot?.parked;
    let slotOpen = pool !== undefined && !notTried; // until the session goes back with give(), or release() ends the slot
    let facts: SessionFacts;
    let session: Session | undefined;
    let verdict: Verdict | undefined;
    let decision: Decision;
    let digests: Parked['digests'];
    let shadow: string;
    const giveBack = (session: Session, messages: number) => {
      slotOpen = false;
      pool!.give(key!, session, { facts, decision, digests, shadowResult: shadow, ...(verdict ? { verdict } : {}) }, messages);
    };
    try {
      if (parked) {
        ({ facts, verdict, decision, digests, shadowResult: shadow } = parked.data);
        session = parked.session;
      } else {
        ({ facts, session } = refused
          ? { facts: { starttlsOffered: false, starttlsSent: false } as SessionFacts, session: undefined }
          : notTried
            ? { facts: { starttlsOffered: false, starttlsSent: false, failure: { kind: 'connect', message: notTried } } as SessionFacts, session: undefined }
            : await Session.open({
              host: plan.host,
              address: plan.address,
              port: plan.port,
              implicitTls: plan.implicitTls,
              starttls: mode === 'tls' && plan.level !== 'none',
              tls: plan.tls,
              ...(settings.name ? { name: settings.name } : {}),
              ...(settings.connectionTimeout ? { connectionTimeout: settings.connectionTimeout } : {}),
              ...(settings.greetingTimeout ? { greetingTimeout: settings.greetingTimeout } : {}),
              ...(settings.socketTimeout ? { socketTimeout: settings.socketTimeout } : {}),
              ...(settings.commandTimeout ? { commandTimeout: settings.commandTimeout } : {}),
              ...(settings.dataTimeout ? { dataTimeout: settings.dataTimeout } : {}),
              ...(settings.tracker ? { tracker: settings.tracker } : {}),
              logger: settings.smtpLogger,
              debug: settings.debug,
            }));
        // Each certificate of the session is parsed and hashed once, for every judgement on it.
        const certs = new SessionCerts();
        verdict = judge(plan, facts, certs);
        decision = refused
          ? { action: 'next', temporary: true, stage: 'tlsa', reason: refused }
          : decide({
              where: plan.where,
              level: plan.level,
              ...(plan.fallback ? { fallback: plan.fallback } : {}),
              rules: { ...rules, ...(tempfailTryclear !== undefined ? { tempfailTryclear } : {}) },
              hasAuth: authenticate,
              allowPlaintextAuth: settings.allowPlaintextAuth,
              plaintextRetry: mode === 'cleartext-retry',
              implicitTls: plan.implicitTls,
              facts: {
                starttlsOffered: facts.starttlsOffered,
                tls: facts.tls !== undefined,
                ...(facts.starttlsReply ? { starttlsReply: facts.starttlsReply } : {}),
                ...(facts.failure ? { failure: facts.failure } : {}),
              },
              ...(verdict ? { verdict } : {}),
            });
        digests = auditDigests(facts.tls ?? null, settings.digest, certs);
        shadow = judgeShadow(plan, facts, certs);
      }
      const sent = decision.action === 'send' ? decision : undefined;
      const level: Level = sent ? sent.level : plan.level;
      // a failed attempt sent nothing: its auth is the verdict on TLS when there was one, else empty
      const trust: Trust | '' = sent ? sent.trust : facts.tls ? (verdict?.trust ?? '') : '';
      const reason = 'reason' in decision ? decision.reason : undefined;
      const audit: AuditRecord = {
        relay: plan.where,
        destination: nexthop,
        mx: plan.host,
        address: plan.address,
        port: plan.port,
        level,
        policy: sent?.downgradedFrom ?? '',
        auth: trust,
        protocol: facts.tls?.protocol ?? '',
        cipher: facts.tls?.cipher ?? '',
        cert_digest: digests.cert_digest,
        spki_digest: digests.spki_digest,
        fallback_reason: sent && reason ? reason : '',
        shadow: plan.shadow ?? '',
        shadow_result: shadow,
        reply: facts.failure?.reply ?? facts.starttlsReply ?? '',
        matched: verdict?.matched ?? '',
        dane: daneNote,
      };
      const attempt: Attempt = {
        mx: plan.host,
        address: plan.address,
        port: plan.port,
        mode,
        level,
        trust,
        decision: decision.action,
        ...(reason ? { reason } : {}),
        ...('stage' in decision && decision.stage ? { stage: decision.stage } : {}),
        audit,
        auditLine: '',
      };
      if (decision.action !== 'send' || !session) {
        session?.quit();
        return { attempt, decision, plan, facts, ...(verdict ? { verdict } : {}) };
      }
      if (decision.downgradedFrom) {
        settings.logger.warn({ tnx: 'tls-policy', destination: nexthop, relay: plan.where }, 'TLS fallback for %s: level %s instead of %s: %s', nexthop, decision.level, decision.downgradedFrom, reason);
      }
      if (authenticate && settings.auth && !parked && !mail.skipLogin) {
        if (!session.encrypted && !settings.allowPlaintextAuth) {
          // decide() never sends in cleartext with AUTH configured; this is the last guard.
          session.close();
          throw new Error(`internal: refusing to send AUTH over cleartext to ${plan.where}`);
        }
        try {
          await session.login(settings.auth);
        } catch (err) {
          const e = err as { response?: string; responseCode?: number; message: string };
          session.quit();
          attempt.decision = 'next';
          attempt.reason = `${plan.where} refused SMTP AUTH: ${oneLine(e.response) ?? e.message}`;
          attempt.audit.reply = oneLine(e.response) ?? '';
          // Postfix's smtp_sasl_auth_soft_bounce (default yes): a refused AUTH defers, never bounces.
          return {
            attempt,
            failureCode: 'EAUTH',
            decision: { action: 'next', temporary: true, reason: attempt.reason },
            plan,
            facts,
            ...(verdict ? { verdict } : {}),
          };
        }
      }
      if (mail.recipients.length === 0) {
        // verify() and probe(): everything up to MAIL FROM was done and passed.
        if (pool) giveBack(session, parked?.messages ?? 0);
        else session.quit();
        return { attempt, decision, plan, facts, ...(verdict ? { verdict } : {}), transaction: { ok: true, recipients: [] } };
      }
      const transaction = await session.send(mail.from, outcome.remaining, mail.message);
      if (parked && !transaction.ok && !transaction.reply && !transaction.dataSent && !session.alive) {
        // The server closed the parked session while it was idle, before DATA: the message did not
        // reach it, so a new session may carry it (after DATA it may have, and is not sent again here).
        slotOpen = false;
        pool!.release(key!);
        return runSession(target, mode, true);
      }
      if (pool && transaction.ok) giveBack(session, (parked?.messages ?? 0) + 1);
      else session.quit();
      attempt.reused = parked !== undefined;
      attempt.reply = transaction.reply;
      attempt.audit.reply = transaction.reply ?? '';
      return { attempt, decision, plan, facts, ...(verdict ? { verdict } : {}), transaction };
    } finally {
      if (slotOpen) pool!.release(key!);
    }
  };

  const record = (run: SessionRun) => {
    run.attempt.auditLine = renderTemplate(settings.auditTemplate, run.attempt.audit, { quoteValues: true });
    delivery.attempts.push(run.attempt);
    settings.logger.info({ tnx: 'tls-audit', destination: nexthop }, '%s', run.attempt.auditLine);
    settings.observe?.({ type: 'attempt', destination: nexthop, attempt: run.attempt, plan: run.plan, facts: run.facts, decision: run.decision, ...(run.verdict ? { verdict: run.verdict } : {}) });
  };

  /** Applies a finished transaction; returns true when this destination is done. */
  const settle = (run: SessionRun): boolean => {
    if (!run.transaction) return false;
    const settled = settleTransaction(outcome, run.transaction, run.attempt.audit.relay, nexthop);
    if (settled.done) return true;
    if (settled.failed) {
      run.attempt.decision = 'next';
      run.attempt.transactionFailed = true;
      run.attempt.reason = settled.failed;
    }
    return false;
  };

  const later: Target[] = [];
  const tryTarget = async (target: Target, mode: 'tls' | 'cleartext-retry'): Promise<boolean> => {
    const run = await runSession(target, mode);
    record(run);
    const d = run.decision;
    if (d.action === 'send') return settle(run);
    // A cleartext retry is planned only from a TLS attempt, so a retry can never loop.
    if (d.action === 'plaintext-now' && mode === 'tls') {
      settings.logger.warn({ tnx: 'tls-policy', destination: nexthop }, '%s; retrying in cleartext at once (tlsTempfailTryclear)', d.reason);
      return tryTarget(target, 'cleartext-retry');
    }
    if (d.action === 'plaintext-later' && mode === 'tls') later.push(target);
    recordFailure(outcome, d, run.failureCode);
    return false;
  };

  const limitReached = () => sessionLimitReached(outcome, settings.maxMxSessions);
  // After each attempt: stop when a server may already hold the message, or the transport was closed.
  const stopped = (): Delivery | undefined => {
    if (outcome.mayBeDelivered) return fail(`${nexthop}: ${outcome.mayBeDelivered}; recipients left pending`, 'ECONNECTION', true);
    const closed = settings.tracker?.closed;
    if (closed) return fail(`${nexthop}: ${closed}; recipients left pending${outcome.failures.length ? ` (${outcome.failures.join('; ')})` : ''}`, 'ECONNECTION', true);
    return undefined;
  };
  for (const target of resolved.targets) {
    const stop = stopped();
    if (stop) return stop;
    if (await tryTarget(target, 'tls')) return end();
    if (limitReached()) break;
  }
  for (const target of limitReached() ? [] : [...later]) {
    const stop = stopped();
    if (stop) return stop;
    if (await tryTarget(target, 'cleartext-retry')) return end();
    if (limitReached()) break;
  }
  const stop = stopped();
  if (stop) return stop;
  const tlsFailureSeen = delivery.attempts.some((a) => a.stage !== undefined && a.decision !== 'send');
  return end(finalFailure(outcome, { nexthop, level: policy.level, tlsFailureSeen }));
}
