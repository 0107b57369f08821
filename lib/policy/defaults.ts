/**
 * Global protocol and cipher settings for entries that name none: Postfix's smtp_tls_protocols /
 * smtp_tls_mandatory_protocols, smtp_tls_ciphers / smtp_tls_mandatory_ciphers and
 * smtp_tls_exclude_ciphers / smtp_tls_mandatory_exclude_ciphers, applied as policy_create() and
 * set_cipher_grade() apply them: by the level in effect for the host (after DANE has had its say),
 * `may` taking the opportunistic settings and every level above it the mandatory ones.
 */
import type { Level, Policy } from '../types.js';
import { DEFAULT_CERT_MATCH, isAuthenticatedLevel } from './levels.js';
import { legacyVersions } from './protocols.js';

export interface TlsDefaults {
  /** smtp_tls_protocols: at level may. */
  protocols?: string[];
  /** smtp_tls_mandatory_protocols: at encrypt and above. */
  mandatoryProtocols?: string[];
  /** smtp_tls_ciphers: the grade at level may. */
  ciphers?: string;
  /** smtp_tls_mandatory_ciphers: the grade at encrypt and above. */
  mandatoryCiphers?: string;
  /** smtp_tls_exclude_ciphers: excluded at every level that uses TLS. */
  exclude?: string[];
  /** smtp_tls_mandatory_exclude_ciphers: excluded too at encrypt and above. */
  mandatoryExclude?: string[];
  /**
   * smtp_tls_fingerprint_cert_match, smtp_tls_verify_cert_match, smtp_tls_secure_cert_match:
   * the `match` of a host at that level whose entry has none.
   */
  certMatch?: CertMatch;
}

export type CertMatch = Partial<Record<'fingerprint' | 'verify' | 'secure', readonly string[]>>;

/**
 * The match tokens for `level`: the entry's own, else the global setting for the level, else
 * Postfix's main.cf default (verify: hostname; secure: nexthop, dot-nexthop; fingerprint: none).
 */
export function certMatchFor(level: Level, match: readonly string[] | undefined, certMatch: CertMatch | undefined): readonly string[] {
  if (match && match.length) return match;
  if (level !== 'fingerprint' && level !== 'verify' && level !== 'secure') return [];
  return certMatch?.[level] ?? (level === 'fingerprint' ? [] : DEFAULT_CERT_MATCH[level]);
}

/** `policy` with the global settings filled in where the entry has none of its own. */
export function withTlsDefaults(policy: Policy, defaults: TlsDefaults | undefined): Policy {
  if (!defaults || policy.level === 'none') return policy; // no TLS, nothing to tune
  const mandatory = policy.level !== 'may';
  const protocols = policy.protocols ?? (mandatory ? defaults.mandatoryProtocols : defaults.protocols);
  const ciphers = policy.ciphers ?? (mandatory ? defaults.mandatoryCiphers : defaults.ciphers);
  // An entry's exclude= replaces both global exclusion lists (set_cipher_grade()).
  const globalExclude = [...(defaults.exclude ?? []), ...(mandatory ? (defaults.mandatoryExclude ?? []) : [])];
  const exclude = policy.exclude ?? (globalExclude.length ? globalExclude : undefined);
  if (protocols === policy.protocols && ciphers === policy.ciphers && exclude === policy.exclude) return policy;
  return {
    ...policy,
    ...(protocols ? { protocols } : {}),
    ...(ciphers ? { ciphers } : {}),
    ...(exclude ? { exclude } : {}),
  };
}

/**
 * Why tlsMandatoryProtocols cannot be used as given, or undefined. It applies at encrypt and at
 * every authenticated level (policy_create()); when it allows TLSv1 or TLSv1.1, which need
 * OpenSSL's security level 0 and get it only at may and encrypt (./protocols.ts), it is refused
 * while the level option, or a table entry without protocols of its own, is authenticated: there
 * the old versions could never be used. (A policyLookup answer at such a level, unknown until
 * sending, keeps the security level: TLSv1 and TLSv1.1 are then not negotiated.)
 */
export function mandatoryProtocolsProblem(
  defaults: TlsDefaults | undefined,
  written: string,
  applies: ReadonlyArray<{ policy: Policy; what: string }>,
): string | undefined {
  const legacy = legacyVersions(defaults?.mandatoryProtocols);
  if (legacy.length === 0) return undefined;
  const at = applies.find(({ policy }) => isAuthenticatedLevel(policy.level) && policy.protocols === undefined);
  if (!at) return undefined;
  return (
    `option tlsMandatoryProtocols ${JSON.stringify(written)} allows ${legacy.join(' and ')}, which OpenSSL 3 negotiates only at security level 0, ` +
    `and it applies to level "${at.policy.level}" (${at.what}), which never lowers it (only may and encrypt do): ` +
    'write >=TLSv1.2, or give the destinations that need the old versions entries at encrypt with protocols=>=TLSv1'
  );
}
