/**
 * plan: what one MX host gets, from the destination's policy. Pure.
 *
 * Postfix's rules (smtp_tls_policy.c, postconf(5)):
 * - verify matches `hostname` by default (smtp_tls_verify_cert_match), secure matches
 *   `nexthop, dot-nexthop` (smtp_tls_secure_cert_match): secure never trusts names taken from
 *   insecure DNS, so `hostname` counts at secure only when the MX answer was DNSSEC-secure (or
 *   the host is the next hop itself: a relay, or an implicit MX).
 * - fingerprint matches the `match` digests (smtp_tls_fingerprint_digest, sha256 here).
 * - `protocols` takes Postfix's forms (`!TLSv1:!TLSv1.1`, `>=TLSv1.2`) and becomes the
 *   handshake's minVersion/maxVersion; `ciphers` takes Postfix's grade names or an OpenSSL list.
 *   At may and encrypt, protocols that allow TLSv1 or TLSv1.1 also lower OpenSSL's security
 *   level to 0 for that connection, without which OpenSSL 3 never negotiates them
 *   (../policy/protocols.ts); the authenticated levels never lower it.
 * - SNI: `servername` (hostname | nexthop | a name); this library sends the MX host name by
 *   default (Node's habit, and what most servers with several certificates need), where
 *   Postfix sends none unless asked.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_CIPHERS, type ConnectionOptions } from 'node:tls';
import type { TlsaRecord } from '../dns/index.js';
import type { DigestAlgorithm, FallbackLevel, Level, Policy } from '../types.js';
import { certMatchFor, type CertMatch } from '../policy/defaults.js';
import { expandMatch } from '../pkix/index.js';
import { lowersSecurityLevel, protocolRange, SECURITY_LEVEL_0 } from '../policy/protocols.js';

export { protocolRange } from '../policy/protocols.js';

export interface PlanInput {
  policy: Policy;
  /** The next-hop domain (recipient domain), or the relay host. */
  nexthop: string;
  /** The MX host name (equal to nexthop for a relay or an implicit MX). */
  host: string;
  address: string;
  port: number;
  /** Whether the MX RRset that named this host was DNSSEC-secure. */
  mxSecure: boolean;
  /** TLS from the first byte (SMTPS). */
  implicitTls?: boolean;
  fallback?: FallbackLevel;
  digest: DigestAlgorithm;
  /** The global match settings for a level whose entry has no match (smtp_tls_*_cert_match). */
  certMatch?: CertMatch | undefined;
  /** Files read by the caller: CA bundle and client certificate/key, already loaded. */
  files: { ca?: string | Buffer | Array<string | Buffer>; cert?: string | Buffer; key?: string | Buffer };
}

export interface Plan {
  nexthop: string;
  host: string;
  address: string;
  port: number;
  /** `host[address]:port`, as Postfix names a server. */
  where: string;
  level: Level;
  policy: Policy;
  fallback?: FallbackLevel;
  shadow?: Level;
  /** Names a verify/secure certificate must match (leading '.' = any subdomain). */
  names: string[];
  /** Fingerprints for the fingerprint level, as written (normalized by verify). */
  fingerprints: string[];
  digest: DigestAlgorithm;
  implicitTls: boolean;
  /** Options for the TLS handshake. */
  tls: ConnectionOptions;
  /** DANE as enforced for this host, when its level is dane or dane-only with usable TLSA records. */
  dane?: DaneSession;
}

/** DANE as enforced for one host: the usable records and what a match is reported as. */
export interface DaneSession {
  records: TlsaRecord[];
  /** Where the records were found: `_25._tcp.mx1.example.net`. */
  tlsaName: string;
  /** The TLSA base domain (the SNI name). */
  baseDomain: string;
  trust: 'Verified' | 'Trusted';
  /** The reference identifiers for DANE-TA name checks (names from DNSSEC-secure answers only). */
  names: string[];
}

/** Postfix's grades; since Postfix 3.8 `low` and `export` mean `medium`; `null` is only NULL ciphers. */
const CIPHER_GRADES: Record<string, string> = {
  high: 'HIGH:!aNULL:!eNULL',
  medium: 'HIGH:MEDIUM:!aNULL:!eNULL',
  low: 'HIGH:MEDIUM:!aNULL:!eNULL',
  export: 'HIGH:MEDIUM:!aNULL:!eNULL',
  null: 'eNULL:!aNULL',
};

/** Postfix's cipher grade (or an OpenSSL list) plus `exclude` -> an OpenSSL cipher string. */
export function cipherList(ciphers: string | undefined, exclude: string[] | undefined): string | undefined {
  if (!ciphers && !exclude?.length) return undefined;
  const base = ciphers ? (CIPHER_GRADES[ciphers.toLowerCase()] ?? ciphers) : 'DEFAULT';
  return [base, ...(exclude ?? []).map((e) => `!${e}`)].join(':');
}

/**
 * The names a verify/secure certificate must match: the policy's `match` tokens (or the level's
 * default), expanded by verify's `expandMatch`. At secure, `hostname` is dropped unless the MX
 * answer was DNSSEC-secure (or the host is the next hop itself).
 */
export function matchNames(
  level: Level,
  tokens: readonly string[] | undefined,
  ctx: { nexthop: string; host: string; mxSecure: boolean; certMatch?: CertMatch | undefined },
): string[] {
  const list = level === 'verify' || level === 'secure' ? certMatchFor(level, tokens, ctx.certMatch) : [];
  const trusted = level !== 'secure' || ctx.mxSecure || ctx.host.toLowerCase() === ctx.nexthop.toLowerCase();
  return expandMatch(
    list.filter((t) => trusted || t.toLowerCase() !== 'hostname'),
    { hostname: ctx.host, nexthop: ctx.nexthop },
  );
}

export function makePlan(input: PlanInput): Plan {
  const { policy } = input;
  const level = policy.level;
  const authenticated = level === 'verify' || level === 'secure';
  const servername = policy.servername;
  const sni = servername === undefined || servername === 'hostname' ? input.host : servername === 'nexthop' ? input.nexthop : servername;
  // OpenSSL reads the security level from the cipher string (`@SECLEVEL=n`), per connection.
  const listed = cipherList(policy.ciphers, policy.exclude);
  const ciphers = lowersSecurityLevel(level, policy.protocols) ? `${listed ?? DEFAULT_CIPHERS}:${SECURITY_LEVEL_0}` : listed;
  const tls: ConnectionOptions = {
    ...(sni && !/^[\d.]+$|:/.test(sni) ? { servername: sni } : {}),
    ...protocolRange(policy.protocols),
    ...(ciphers ? { ciphers } : {}),
    ...(input.files.ca ? { ca: input.files.ca } : {}),
    ...(input.files.cert ? { cert: input.files.cert, key: input.files.key } : {}),
  };
  return {
    nexthop: input.nexthop,
    host: input.host,
    address: input.address,
    port: input.port,
    where: `${input.host}[${input.address}]:${input.port}`,
    level,
    policy,
    ...(input.fallback ? { fallback: input.fallback } : {}),
    ...(policy.shadow ? { shadow: policy.shadow } : {}),
    names: authenticated
      ? matchNames(level, policy.match, { nexthop: input.nexthop, host: input.host, mxSecure: input.mxSecure, certMatch: input.certMatch })
      : [],
    fingerprints: level === 'fingerprint' ? [...certMatchFor(level, policy.match, input.certMatch)] : [],
    digest: input.digest,
    implicitTls: input.implicitTls === true,
    tls,
  };
}

/**
 * What a TLS secure context is made of (CA, client certificate and key, protocols, ciphers):
 * plans with the same key can share one context (lib/smtp/session.ts builds each once).
 */
export function tlsContextKey(tls: ConnectionOptions): string {
  return JSON.stringify([
    fileId(tls.ca),
    fileId(tls.cert),
    fileId(tls.key),
    tls.minVersion ?? '',
    tls.maxVersion ?? '',
    tls.secureOptions ?? 0,
    tls.ciphers ?? '',
  ]);
}

const fileIds = new WeakMap<object, string>();
let nextFileId = 0;
/** A short identity for a CA or certificate buffer (the same buffer object, the same id). */
function fileId(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return `s:${createHash('sha256').update(value).digest('base64')}`;
  if (typeof value !== 'object' || value === null) return String(value);
  if (Array.isArray(value) && value.length === 0) return 'none'; // DANE sessions: no CA store
  let id = fileIds.get(value);
  if (!id) {
    id = `f${nextFileId++}`;
    fileIds.set(value, id);
  }
  return id;
}

/**
 * The key under which an idle session may be reused: everything that decided how its TLS was
 * judged. Two plans with the same key would have accepted the same session, so a session
 * verified for one is never handed to a plan that would have judged it differently.
 */
export function sessionKey(
  plan: Plan,
  dane: { records: { usage: number; selector: number; matchingType: number; data: Buffer }[]; baseDomain: string; trust: string; names: string[] } | undefined,
  authUser: string | undefined,
  /** Whatever else the decision on this session read (e.g. tempfailTryclear, strict). */
  decisionInputs: unknown[],
): string {
  const tls = plan.tls;
  return JSON.stringify([
    plan.address,
    plan.port,
    plan.implicitTls,
    plan.host,
    plan.level,
    plan.fallback ?? '',
    plan.names,
    plan.fingerprints,
    plan.digest,
    dane ? [dane.baseDomain, dane.trust, dane.names, dane.records.map((r) => `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`)] : null,
    tls.servername ?? '',
    tls.minVersion ?? '',
    tls.maxVersion ?? '',
    tls.secureOptions ?? 0,
    tls.ciphers ?? '',
    fileId(tls.ca),
    fileId(tls.cert),
    fileId(tls.key),
    authUser ?? '',
    decisionInputs,
  ]);
}
