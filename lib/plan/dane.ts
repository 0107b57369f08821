/**
 * What the dane and dane-only levels become for one MX host, once its TLSA lookup is done. Pure.
 *
 * RFC 7672 section 2.2 and Postfix (smtp_tls_policy.c, postconf(5) smtp_tls_dane_insecure_mx_policy):
 * - secure, usable TLSA (DANE-TA(2) or DANE-EE(3)) -> authenticated TLS is mandatory; success is
 *   Verified, or Trusted when the MX RRset that named the host was insecure (insecure MX policy
 *   `dane`, Postfix's default);
 * - secure TLSA records that are all unusable -> TLS is mandatory without authentication
 *   (encrypt), for dane and dane-only alike;
 * - no secure TLSA (secure denial, insecure TLSA, insecure host addresses) -> dane runs as may
 *   (as encrypt when hostsRequireTls covers the host); dane-only fails that MX;
 * - the TLSA lookup failed (SERVFAIL, bogus, timeout) -> that MX fails temporarily, never a
 *   downgrade, for dane and dane-only alike;
 * - insecure MX RRset with insecure MX policy `may` or `encrypt` -> that level, TLSA unused.
 */
import { classifyTlsa, formatTlsa } from '../dane/index.js';
import type { TlsaRecord } from '../dns/index.js';
import type { Level } from '../types.js';

/** Postfix's smtp_tls_dane_insecure_mx_policy. */
export type InsecureMxPolicy = 'may' | 'encrypt' | 'dane';

/** The outcome of one host's TLSA lookup (lib/deliver does the lookup). */
export type TlsaLookup =
  /** A secure, non-empty TLSA RRset at `name`; `baseDomain` is the name it was found under. */
  | { status: 'secure'; records: TlsaRecord[]; baseDomain: string; name: string }
  /** No secure TLSA: a secure denial, an insecure answer, or no lookup because the host's addresses are insecure. */
  | { status: 'none'; why: string }
  /** The lookup failed: SERVFAIL (bogus), timeout, malformed reply. */
  | { status: 'failed'; reason: string };

export type DaneOutcome =
  /** Enforce DANE with these usable records. */
  | { level: 'dane' | 'dane-only'; records: TlsaRecord[]; baseDomain: string; tlsaName: string; trust: 'Verified' | 'Trusted'; note?: string }
  /** Run at a plain level instead, with why. */
  | { level: Extract<Level, 'may' | 'encrypt'>; why: string }
  /** This MX fails, temporarily. */
  | { fail: string };

export interface DaneContext {
  /** `host[address]:port`, for sentences. */
  where: string;
  /** Whether the MX RRset was DNSSEC-secure (true for a relay or an implicit MX). */
  mxSecure: boolean;
  insecureMxPolicy: InsecureMxPolicy;
  /** hostsRequireTls covers the host: never cleartext. */
  requireTls?: boolean;
}

/** Whether TLSA should be looked up at all for this host (saves the queries when it is not used). */
export function wantsTlsa(level: Level, mxSecure: boolean, insecureMxPolicy: InsecureMxPolicy): boolean {
  if (level === 'dane-only') return true;
  if (level !== 'dane') return false;
  return mxSecure || insecureMxPolicy === 'dane';
}

export function daneOutcome(level: 'dane' | 'dane-only', lookup: TlsaLookup, ctx: DaneContext): DaneOutcome {
  const opportunistic = level === 'dane';
  if (opportunistic && !ctx.mxSecure && ctx.insecureMxPolicy !== 'dane') {
    return { level: ctx.requireTls && ctx.insecureMxPolicy === 'may' ? 'encrypt' : ctx.insecureMxPolicy, why: `the MX RRset is not DNSSEC-secure (insecure MX policy ${ctx.insecureMxPolicy})` };
  }
  if (lookup.status === 'failed') return { fail: `${lookup.reason}; ${ctx.where} is not tried at level ${level} without its TLSA records` };
  if (lookup.status === 'none') {
    if (!opportunistic) return { fail: `${ctx.where} has no secure TLSA records (${lookup.why}), which level dane-only requires` };
    return { level: ctx.requireTls ? 'encrypt' : 'may', why: `no secure TLSA records: ${lookup.why}` };
  }
  const { usable, unusable } = classifyTlsa(lookup.records);
  if (usable.length === 0) {
    const list = unusable.map((u) => formatTlsa('record' in u ? (u.record as TlsaRecord) : (u as unknown as TlsaRecord))).join(', ');
    return { level: 'encrypt', why: `the TLSA records at ${lookup.name} are all unusable (${list}), so TLS is mandatory without authentication` };
  }
  return {
    level,
    records: usable,
    baseDomain: lookup.baseDomain,
    tlsaName: lookup.name,
    trust: ctx.mxSecure ? 'Verified' : 'Trusted',
    ...(ctx.mxSecure ? {} : { note: 'the MX RRset is not DNSSEC-secure: a DANE match is reported as Trusted' }),
  };
}
