/**
 * What the dane and dane-only levels become for one MX host, once its TLSA lookup is done. Pure.
 *
 * RFC 7672 section 2.2 and Postfix (smtp_tls_policy.c dane_init, postconf(5)
 * smtp_tls_dane_insecure_mx_policy), rule by rule:
 * - the TLSA lookup failed (SERVFAIL, bogus, timeout) -> that MX fails temporarily, never a
 *   downgrade, for dane and dane-only alike;
 * - no secure TLSA (secure denial, insecure TLSA, insecure host addresses) -> dane runs as may
 *   (as encrypt when hostsRequireTls covers the host); dane-only fails that MX;
 * - secure TLSA records that are all unusable -> dane runs as encrypt (TLS without
 *   authentication); dane-only fails that MX ("TLSA records unusable");
 * - secure, usable TLSA (DANE-TA(2) or DANE-EE(3)) -> authenticated TLS is mandatory, Verified;
 * - the MX RRset that named the host was insecure: dane-only fails that MX ("non DNSSEC
 *   destination"); dane follows the insecure MX policy: `may` -> may (no TLSA lookup);
 *   `encrypt` -> encrypt when TLSA records exist, may when none; `dane` (Postfix's default) ->
 *   the TLSA records are enforced, and a match is Trusted, never Verified.
 * A relay or an implicit MX has no MX RRset: its own name is used, as if secure.
 */
import { classifyTlsa, formatTlsa } from '../dane/index.js';
import type { TlsaRecord } from '../dns/index.js';
import type { Level, ResultType } from '../types.js';

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
  /** This MX fails, temporarily, with RFC 8460's result type. */
  | { fail: string; resultType: ResultType };

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
  if (level === 'dane-only') return mxSecure;
  if (level !== 'dane') return false;
  return mxSecure || insecureMxPolicy !== 'may';
}

export function daneOutcome(level: 'dane' | 'dane-only', lookup: TlsaLookup, ctx: DaneContext): DaneOutcome {
  const opportunistic = level === 'dane';
  const noDane = (why: string): DaneOutcome =>
    opportunistic
      ? { level: ctx.requireTls ? 'encrypt' : 'may', why }
      : { fail: `${ctx.where}: ${why}, which level dane-only does not allow`, resultType: 'dane-required' };
  if (!ctx.mxSecure && (!opportunistic || ctx.insecureMxPolicy === 'may')) {
    return noDane(`the MX RRset is not DNSSEC-secure${opportunistic ? ' (insecure MX policy may)' : ''}`);
  }
  // RFC 8460 section 4.3: no valid records were returned from the resolver.
  if (lookup.status === 'failed')
    return { fail: `${lookup.reason}; ${ctx.where} is not tried at level ${level} without its TLSA records`, resultType: 'dnssec-invalid' };
  if (lookup.status === 'none') return noDane(`no secure TLSA records (${lookup.why})`);
  const { usable, unusable } = classifyTlsa(lookup.records);
  if (usable.length === 0) {
    const list = unusable.map((u) => formatTlsa(u.record)).join(', ');
    const why = `the TLSA records at ${lookup.name} are all unusable (${list})`;
    return opportunistic
      ? { level: 'encrypt', why: `${why}, so TLS is mandatory without authentication` }
      : { fail: `${ctx.where}: ${why}, which level dane-only does not allow`, resultType: 'tlsa-invalid' };
  }
  if (!ctx.mxSecure && ctx.insecureMxPolicy === 'encrypt') {
    return { level: 'encrypt', why: `the MX RRset is not DNSSEC-secure (insecure MX policy encrypt): TLSA at ${lookup.name} cannot authenticate` };
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
