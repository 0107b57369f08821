/**
 * planHost: the one place where one MX host's whole plan is made. Pure.
 *
 * Model: Postfix's policy_create() and dane_init() (src/smtp/smtp_tls_policy.c), which build
 * the whole per-host TLS policy in one function. Every rule that decides what a host gets before
 * any connection lives here, in this order:
 * 1. DANE (RFC 7672 section 2.2, dane_init): at dane and dane-only, the host's TLSA lookup
 *    decides: usable secure records are enforced (with the TLSA base domain as SNI, no CA store,
 *    and reference names from secure DNS only); no usable records turn dane into may or encrypt;
 *    a failed lookup, or dane-only without usable records, refuses the host before any
 *    connection (daneOutcome in ./dane.ts holds those rules).
 * 1b. MTA-STS (RFC 8461), for a destination at the default level (may, encrypt or dane: no table
 *    entry, no Exim host list) when DANE does not govern the host (RFC 8461 section 2: DANE takes
 *    precedence, also for a host no `mx` pattern covers): under `enforce`, a host that matches
 *    no pattern is refused (section 4.1) and one that matches runs at secure, its certificate
 *    matched against the MX host name the pattern vouches for (section 4.2; Postfix's `secure
 *    match=` the patterns as postfix-mta-sts-resolver maps it), without fallback; under
 *    `testing`, the host runs as before and the same check is judged and reported, never enforced.
 * 1c. REQUIRETLS (RFC 8689 section 4.2.1), for a message that asks for it: the host must be
 *    authenticated by DANE with a DNSSEC-secure MX (Verified) or by an MTA-STS policy in enforce
 *    mode that admits it (a relay: by its authenticated level); any other host is refused, and
 *    no fallback level or cleartext retry is left to the plan.
 * 2. Implicit TLS (SMTPS) has no cleartext to fall back to: none and may run as encrypt there,
 *    as Postfix requires of smtp_tls_wrappermode.
 * 3. A fallback level replaces an authenticated level that could not authenticate; a dane host
 *    already running as may or encrypt (no usable TLSA) has nothing left to fall back from; under
 *    hostsRequireTls a fallback to may becomes encrypt (TLS may be kept, never dropped).
 * 4. The level verifyPeer judges a non-DANE session at: none, may and dane (without records)
 *    accept any peer; dane-only without records never reaches a session.
 * 5. The shadow level's inputs (names, fingerprints, DANE records), judged after the session.
 * 6. The session key: everything that judged the TLS, so a session verified under one plan is
 *    never reused under another (Postfix's connection cache is keyed the same way).
 */
import { certMatchFor, withTlsDefaults, type CertMatch, type TlsDefaults } from '../policy/defaults.js';
import type { DigestAlgorithm, FallbackLevel, Level, Policy, ResultType, Stage } from '../types.js';
import { mxMatches } from '../mtasts/policy.js';
import { classifyTlsa, daneNames, formatTlsa } from '../dane/index.js';
import type { VerifyLevel } from '../pkix/index.js';
import { isDaneLevel } from '../policy/levels.js';
import { daneOutcome, type InsecureMxPolicy, type TlsaLookup } from './dane.js';
import { makePlan, matchNames, sessionKey, type DaneSession, type Plan } from './index.js';

/** What planHost knows of one MX address, gathered before any connection. */
export interface HostTarget {
  host: string;
  address: string;
  port: number;
  /** Whether the MX RRset that named the host was DNSSEC-secure (true for a relay or an implicit MX). */
  mxSecure: boolean;
  implicitTls: boolean;
  /** Whether the host came from MX records (not a relay, nor an implicit MX). */
  viaMx: boolean;
  /** The host's CNAME-expanded name, when the answer that expanded it was secure; else host. */
  canonical: string;
  /** The host's TLSA lookup, when its level or shadow level is a DANE level. */
  tlsa?: TlsaLookup;
}

/** The settings planHost reads. */
export interface HostSettings {
  /** The next-hop domain (the recipient domain), or the relay host. */
  nexthop: string;
  insecureMxPolicy: InsecureMxPolicy;
  digest: DigestAlgorithm;
  /** The fallback level configured for a policy (the global map, or the entry's fallback=). */
  fallbackFor(policy: Policy): FallbackLevel | undefined;
  /** The CA and client certificate files a policy names, already read (a lookup, no I/O here). */
  files(policy: Policy): { ca?: string | Buffer | Array<string | Buffer>; cert?: string | Buffer; key?: string | Buffer };
  /** The global protocol and cipher settings, for a policy without its own (by the level in effect). */
  tlsDefaults?: TlsDefaults;
  /** Exim's tls_tempfail_tryclear when set globally, and the strict opportunistic rule. */
  rules: { tempfailTryclear?: boolean; strict: boolean };
  /** The SMTP AUTH identity this session would log in as (part of the session key). */
  authUser?: string;
  /** The recipient domain's MTA-STS policy in force (enforce or testing), when it has one. */
  sts?: StsForHost;
  /** The message requires REQUIRETLS (RFC 8689); `relay`: the next hop is the configured relay or an address literal, not an MX host. */
  requireTls?: { relay: boolean };
}

/** What planHost needs of an MTA-STS policy (lib/mtasts looks it up). */
export interface StsForHost {
  domain: string;
  id: string;
  mode: 'enforce' | 'testing';
  /** The `mx` patterns. */
  mx: string[];
  /** The policy's lines (RFC 8460's policy-string). */
  lines: string[];
}

/** What governed a host, in RFC 8460 section 4.4's words (policy-type). */
export type PolicyType = 'tlsa' | 'sts' | 'no-policy-found';

/** A shadow level's inputs, judged on the session's facts after it ran. */
export interface ShadowPlan {
  level: Level;
  /** verify/secure names, fingerprint digests. */
  names: string[];
  fingerprints: string[];
  /** At a DANE shadow: the records to judge with, or the result already known without a session. */
  dane?: { session: DaneSession } | { result: string; resultType?: ResultType };
  /** The result known without a session (an MTA-STS pattern the host does not match). */
  known?: string;
}

export interface HostPlan extends Plan {
  /** Why this host is not tried at all: a DANE requirement that no session can meet, or an MTA-STS policy that does not cover it. */
  refused?: string;
  /** RFC 8460's result type for the refusal. */
  refusedType?: ResultType;
  /** Where the refusal happened: `tlsa` (DANE), `policy` (an MTA-STS mx pattern). */
  refusedStage?: Stage;
  /** What governed the host (RFC 8460's policy-type): DANE records, an MTA-STS policy, or neither. */
  policyType: PolicyType;
  /** The MTA-STS policy that governed or was judged for this host, its mode, and how TLS-RPT describes it. */
  sts?: { domain: string; id: string; mode: 'enforce' | 'testing'; reported: NonNullable<Policy['reported']> };
  /** Under an MTA-STS policy in testing mode: the check judged after the session, never enforced. */
  stsTesting?: ShadowPlan;
  /** The message requires REQUIRETLS and this host may carry it (RFC 8689 section 4.2.1). */
  requireTls?: true;
  /** The host is refused because the message requires REQUIRETLS and nothing here authenticates it as RFC 8689 asks. */
  refusedForRequireTls?: true;
  /** The audit's `dane` field: the TLSA records enforced, or why DANE did not apply. */
  daneNote: string;
  /** The level verifyPeer judges a non-DANE session at. */
  verifyLevel: VerifyLevel;
  /** Exim's tls_tempfail_tryclear in force for this host (the entry's, else the global one). */
  tempfailTryclear?: boolean;
  shadowPlan?: ShadowPlan;
  /**
   * Whether a judgement of this host reads the certificates above the leaf: only DANE does
   * (the level, or a DANE shadow with records). Without it the session takes only the leaf
   * from the handshake: the PKIX levels judge the leaf and the handshake's own chain check.
   */
  peerChain: boolean;
  /** The key a session under this plan is reused with; undefined when the host is refused. */
  key?: string;
}

/**
 * The reference identifiers for DANE-TA: the base domain, and for an MX host its expanded and
 * original names. Not configurable (Postfix's dane_init): a policy's `match` never widens them.
 */
function daneNamesFor(target: HostTarget, baseDomain: string): string[] {
  return daneNames({ baseDomain, ...(target.viaMx ? { host: target.host, canonical: target.canonical } : {}) });
}

/** The level verifyPeer judges at: levels that do not authenticate accept any peer. */
export function verifyLevelOf(level: Level): VerifyLevel {
  if (level === 'none' || level === 'may' || level === 'dane') return 'may';
  if (level === 'dane-only') return 'encrypt';
  return level;
}

function shadowPlan(shadow: Level, policy: Policy, target: HostTarget, where: string, nexthop: string, certMatch: CertMatch | undefined): ShadowPlan {
  const base = { level: shadow, names: [] as string[], fingerprints: [] as string[] };
  if (isDaneLevel(shadow)) {
    const lookup = target.tlsa ?? { status: 'none' as const, why: 'TLSA was not looked up' };
    if (lookup.status === 'failed') return { ...base, dane: { result: `fail: ${lookup.reason}`, resultType: 'dnssec-invalid' } };
    if (lookup.status === 'none')
      return {
        ...base,
        dane: shadow === 'dane' ? { result: 'pass' } : { result: `fail: ${where} has no secure TLSA records (${lookup.why})`, resultType: 'dane-required' },
      };
    const usable = classifyTlsa(lookup.records).usable;
    if (usable.length === 0) return { ...base, dane: { result: 'pass' } };
    return {
      ...base,
      dane: {
        session: { records: usable, tlsaName: lookup.name, baseDomain: lookup.baseDomain, trust: 'Verified', names: daneNamesFor(target, lookup.baseDomain) },
      },
    };
  }
  if (shadow === 'verify' || shadow === 'secure') {
    // A shadow never trusts the MX host name from DNS it did not check.
    return { ...base, names: matchNames(shadow, policy.match, { nexthop, host: target.host, mxSecure: false, certMatch }) };
  }
  if (shadow === 'fingerprint') return { ...base, fingerprints: [...certMatchFor(shadow, policy.match, certMatch)] };
  return base;
}

/**
 * The whole plan for one MX address under `policy` (the destination's policy after Exim's host
 * lists): level, names, DANE records and names, SNI, CA, fallback, shadow, session key, or why
 * the host is refused. See the top of this file for the rules, in order.
 */
export function planHost(policy: Policy, target: HostTarget, settings: HostSettings): HostPlan {
  const where = `${target.host}[${target.address}]:${target.port}`;
  let effective: Policy = policy;
  let dane: DaneSession | undefined;
  let daneNote = '';
  let refused: { reason: string; resultType?: ResultType; stage: Stage } | undefined;
  // An MTA-STS policy from a policy source: the MX host must match one of its patterns, and
  // the certificate is then matched against that host name, which the pattern (fetched over
  // HTTPS) authenticates (RFC 8461 section 4.1; Postfix's smtp_tls_authorize_mx_hostname()
  // with smtp_tls_enforce_sts_mx_patterns = yes, and match replaced by hostname).
  let sts = stsMxRule(policy, target.host);
  if (sts?.matched === false) {
    refused = {
      reason: `${where}: MX host ${target.host} matches no mx_host_pattern of the MTA-STS policy${sts.domain ? ` of ${sts.domain}` : ''} (${sts.patterns.join(', ')})`,
      resultType: 'validation-failure',
      stage: 'policy',
    };
  }
  if (sts && policy.match?.length) effective = { ...effective, match: ['hostname'] };
  if (isDaneLevel(policy.level) && !refused) {
    const outcome = daneOutcome(policy.level, target.tlsa ?? { status: 'none', why: 'TLSA was not looked up' }, {
      where,
      mxSecure: target.mxSecure,
      insecureMxPolicy: settings.insecureMxPolicy,
      ...(policy.requireTls ? { requireTls: true } : {}),
    });
    if ('fail' in outcome) refused = { reason: outcome.fail, resultType: outcome.resultType, stage: 'tlsa' };
    else if ('records' in outcome) {
      dane = {
        records: outcome.records,
        tlsaName: outcome.tlsaName,
        baseDomain: outcome.baseDomain,
        trust: outcome.trust,
        names: daneNamesFor(target, outcome.baseDomain),
      };
      daneNote = `${outcome.tlsaName}: ${outcome.records.map(formatTlsa).join(', ')}${outcome.note ? ` (${outcome.note})` : ''}`;
    } else {
      effective = { ...policy, level: outcome.level };
      daneNote = outcome.why;
    }
  }
  // 1b. MTA-STS, where DANE does not govern: neither records enforced nor a DANE refusal (a failed
  // TLSA lookup is never overridden by MTA-STS, RFC 8461 section 2).
  const fromSts = settings.sts && stsGoverns(policy) && !dane && !refused ? settings.sts : undefined;
  let requireTlsRefusal: string | undefined;
  let stsTesting: ShadowPlan | undefined;
  if (fromSts) {
    const matched = mxMatches(fromSts.mx, target.host);
    if (fromSts.mode === 'enforce') {
      sts = { matched, patterns: fromSts.mx, domain: fromSts.domain };
      if (!matched) {
        refused = { reason: stsRefusal(where, target.host, fromSts), resultType: 'validation-failure', stage: 'policy' };
        // For a REQUIRETLS message this MX can never qualify while the policy stands (RFC 8689 section 4.2.1).
        if (settings.requireTls) requireTlsRefusal = refused.reason;
      }
      // Section 4.2: TLS with a certificate that chains to a trusted CA and carries the MX host
      // name; the name is trusted because the HTTPS-fetched pattern covers it. No fallback level.
      effective = {
        level: 'secure',
        match: ['hostname'],
        source: `the MTA-STS policy of ${fromSts.domain} (id ${fromSts.id})`,
        reported: stsReported(fromSts),
      };
    } else {
      stsTesting = {
        level: 'secure',
        names: matched ? [target.host] : [],
        fingerprints: [],
        ...(matched ? {} : { known: `fail: ${stsRefusal(where, target.host, fromSts)}` }),
      };
    }
  }
  // 1c. REQUIRETLS: DANE (Verified: a DNSSEC-secure MX) or MTA-STS enforce, or an authenticated relay.
  if (settings.requireTls && !refused) {
    const byDane = dane?.trust === 'Verified';
    const bySts = fromSts?.mode === 'enforce';
    const byRelay =
      settings.requireTls.relay && (effective.level === 'fingerprint' || effective.level === 'verify' || effective.level === 'secure' || dane !== undefined);
    if (!byDane && !bySts && !byRelay) {
      const why = dane
        ? `DANE authenticates it only as ${dane.trust} (its MX RRset is not DNSSEC-secure)`
        : settings.requireTls.relay
          ? `the relay's level ${effective.level} does not authenticate it`
          : `it is authenticated neither by DANE${daneNote ? ` (${daneNote})` : ''} nor by an MTA-STS policy in enforce mode`;
      requireTlsRefusal = `${where}: the message requires REQUIRETLS (RFC 8689 section 4.2.1), but ${why}`;
      // Not a TLS failure under the recipient's policy (nothing for TLS-RPT): the message's own demand.
      refused = { reason: requireTlsRefusal, stage: 'policy' };
    }
  }
  if (target.implicitTls && (effective.level === 'none' || effective.level === 'may')) effective = { ...effective, level: 'encrypt' };
  // main.cf protocols and ciphers by the level now in effect, after DANE (Postfix's policy_create()).
  effective = withTlsDefaults(effective, settings.tlsDefaults);
  // REQUIRETLS leaves no way down: no fallback level (RFC 8689 section 4.2.1).
  const configured = effective.level === policy.level && !settings.requireTls ? settings.fallbackFor(policy) : undefined;
  const fallback = configured === 'may' && policy.requireTls ? 'encrypt' : configured;
  const plan = makePlan({
    policy: effective,
    nexthop: settings.nexthop,
    host: target.host,
    address: target.address,
    port: target.port,
    mxSecure: target.mxSecure || sts?.matched === true,
    implicitTls: target.implicitTls,
    digest: settings.digest,
    certMatch: settings.tlsDefaults?.certMatch,
    files: settings.files(effective),
    ...(fallback ? { fallback } : {}),
  });
  if (dane) {
    // SNI carries the TLSA base domain; no CA store, so the chain is exactly what the server sent.
    plan.tls = { ...plan.tls, servername: dane.baseDomain, ca: [] };
    plan.dane = dane;
  }
  const tempfailTryclear = settings.requireTls ? false : (effective.tempfailTryclear ?? settings.rules.tempfailTryclear);
  const host: HostPlan = {
    ...plan,
    daneNote,
    policyType: dane ? 'tlsa' : fromSts || policy.reported?.type === 'sts' ? 'sts' : 'no-policy-found',
    ...(fromSts ? { sts: { domain: fromSts.domain, id: fromSts.id, mode: fromSts.mode, reported: stsReported(fromSts) } } : {}),
    ...(stsTesting ? { stsTesting } : {}),
    ...(settings.requireTls && !refused ? { requireTls: true as const } : {}),
    verifyLevel: verifyLevelOf(plan.level),
    ...(tempfailTryclear !== undefined ? { tempfailTryclear } : {}),
    ...(plan.shadow ? { shadowPlan: shadowPlan(plan.shadow, plan.policy, target, where, settings.nexthop, settings.tlsDefaults?.certMatch) } : {}),
    peerChain: false,
  };
  host.peerChain = dane !== undefined || readsChain(host.shadowPlan) || readsChain(host.stsTesting);
  if (refused) {
    return {
      ...host,
      refused: refused.reason,
      ...(refused.resultType ? { refusedType: refused.resultType } : {}),
      refusedStage: refused.stage,
      ...(requireTlsRefusal ? { refusedForRequireTls: true as const } : {}),
    };
  }
  // A REQUIRETLS message never takes a session judged for one without (its REQUIRETLS check is part of the decision kept with it).
  // A session (or a kept TLS session) that took only the leaf is never judged by a plan that reads the chain.
  host.key = sessionKey(plan, dane, settings.authUser, [
    tempfailTryclear ?? null,
    settings.rules.strict,
    settings.requireTls ? 'requiretls' : null,
    host.peerChain ? 'chain' : 'leaf',
  ]);
  return host;
}

/** Whether a report-only check judges the chain: a DANE shadow with records to match. */
function readsChain(check: ShadowPlan | undefined): boolean {
  return check?.dane !== undefined && 'session' in check.dane;
}

/**
 * The MTA-STS MX rule for a host, when the policy carries one (type sts, mx_host_pattern given,
 * a level that matches names): whether the host matches a pattern. A pattern is a host name, or
 * `*.` and a domain standing for exactly one more label (RFC 8461 section 4.1).
 */
export function stsMxRule(policy: Policy, host: string): { matched: boolean; patterns: string[]; domain?: string } | undefined {
  const r = policy.reported;
  if (r?.type !== 'sts' || !r.mxHostPatterns?.length) return undefined;
  if (policy.level !== 'verify' && policy.level !== 'secure') return undefined;
  return { matched: mxMatches(r.mxHostPatterns, host), patterns: r.mxHostPatterns, ...(r.domain ? { domain: r.domain } : {}) };
}

/**
 * Whether an MTA-STS policy the library fetched may govern a destination under `policy`: only
 * the default level's may, encrypt or dane (an entry in the policy table or a policy source, and
 * a level Exim's host lists set, are the operator's word; none stays none; dane-only never runs
 * without DANE).
 */
export function stsGoverns(policy: Policy): boolean {
  return policy.source === 'default' && (policy.level === 'may' || policy.level === 'encrypt' || policy.level === 'dane');
}

function stsRefusal(where: string, host: string, sts: StsForHost): string {
  return `${where}: MX host ${host} matches no mx pattern of the MTA-STS policy of ${sts.domain} (id ${sts.id}, mode ${sts.mode}): ${sts.mx.join(', ')} (RFC 8461 section 4.1)`;
}

function stsReported(sts: StsForHost): NonNullable<Policy['reported']> {
  return { type: 'sts', domain: sts.domain, strings: sts.lines, mxHostPatterns: sts.mx };
}
