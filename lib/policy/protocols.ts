/**
 * Postfix protocol tokens (smtp_tls_protocols, smtp_tls_mandatory_protocols, the `protocols`
 * attribute) -> the TLS versions a handshake may use, and what OpenSSL 3 needs to use the old
 * ones. Pure; shared by the policy checks (which refuse what can never work) and the plan (which
 * turns the tokens into Node's minVersion/maxVersion).
 */
import { constants } from 'node:crypto';
import type { SecureVersion } from 'node:tls';
import type { Level } from '../types.js';

const VERSIONS: SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Every protocol name Postfix knows, oldest first; Node offers only the TLS ones. */
const PROTOCOLS = ['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
const NO_VERSION: Record<string, number> = {
  TLSv1: constants.SSL_OP_NO_TLSv1,
  'TLSv1.1': constants.SSL_OP_NO_TLSv1_1,
  'TLSv1.2': constants.SSL_OP_NO_TLSv1_2,
  'TLSv1.3': constants.SSL_OP_NO_TLSv1_3,
};

/**
 * The TLS versions the tokens leave, oldest first; undefined when there are no tokens (Node's
 * defaults apply). As Postfix's tls_proto_mask_lims (src/tls/tls_misc.c): plain names form an
 * inclusion list (everything else is excluded), `!name` excludes, `>=` and `<=` bound.
 */
function usableVersions(tokens: readonly string[] | undefined): SecureVersion[] | undefined {
  if (!tokens || tokens.length === 0) return undefined;
  const index = (name: string) => PROTOCOLS.indexOf(name as (typeof PROTOCOLS)[number]);
  const included = new Set<string>();
  const excluded = new Set<string>();
  let lo = 0;
  let hi = PROTOCOLS.length - 1;
  for (const raw of tokens) {
    const token = raw.trim();
    const bound = /^([<>]=)\s*(.+)$/.exec(token);
    const name = bound ? (bound[2] as string) : token.replace(/^!/, '');
    const i = index(name);
    if (i < 0) continue; // the policy module rejects unknown names
    if (bound?.[1] === '>=') lo = Math.max(lo, i);
    else if (bound) hi = Math.min(hi, i);
    else if (token.startsWith('!')) excluded.add(name);
    else included.add(name);
  }
  return VERSIONS.filter((v) => {
    const i = index(v);
    return i >= lo && i <= hi && !excluded.has(v) && (included.size === 0 || included.has(v));
  });
}

/**
 * Postfix protocol tokens -> the handshake's minVersion/maxVersion (and secureOptions for a hole
 * such as `!TLSv1.1` between allowed versions). When no TLS version is left the range is empty,
 * so no handshake can succeed.
 */
export function protocolRange(tokens: readonly string[] | undefined): { minVersion?: SecureVersion; maxVersion?: SecureVersion; secureOptions?: number } {
  const usable = usableVersions(tokens);
  if (!usable) return {};
  if (usable.length === 0) return { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' }; // no version: the handshake fails
  const minVersion = usable[0] as SecureVersion;
  const maxVersion = usable[usable.length - 1] as SecureVersion;
  const holes = VERSIONS.slice(VERSIONS.indexOf(minVersion), VERSIONS.indexOf(maxVersion) + 1).filter((v) => !usable.includes(v));
  const secureOptions = holes.reduce((bits, v) => bits | (NO_VERSION[v] ?? 0), 0);
  return { minVersion, maxVersion, ...(secureOptions ? { secureOptions } : {}) };
}

/**
 * The versions older than TLS 1.2 the tokens allow (TLSv1, TLSv1.1): `>=TLSv1`, `!SSLv2:!SSLv3`
 * (Postfix's historical defaults), `<=TLSv1.2`, `TLSv1.1`. OpenSSL 3 negotiates them only at
 * security level 0: their handshake signatures use SHA-1 or MD5+SHA-1, which OpenSSL 3.0
 * counts as below security level 1 (OpenSSL CHANGES 3.0: "SSL 3, TLS 1.0, TLS 1.1, and DTLS 1.0
 * only work at security level 0"), so at the default level such a server fails with
 * ERR_SSL_LEGACY_SIGALG_DISALLOWED_OR_UNSUPPORTED or no shared protocol.
 */
export function legacyVersions(tokens: readonly string[] | undefined): SecureVersion[] {
  return (usableVersions(tokens) ?? []).filter((v) => v === 'TLSv1' || v === 'TLSv1.1');
}

/**
 * Whether a host at `level` with these protocols gets OpenSSL's security level 0: only the
 * unauthenticated levels with TLS, may and encrypt, and only when the protocols allow a version
 * older than TLS 1.2. Those levels accept any certificate anyway (RFC 7435 section 3: any
 * encryption beats cleartext), and this is what Postfix did for `protocols=>=TLSv1` on OpenSSL
 * 1.1, where those versions worked at the default level. The authenticated levels never get it:
 * a policy that would need it there is refused (entry.ts, defaults.ts).
 */
export function lowersSecurityLevel(level: Level, tokens: readonly string[] | undefined): boolean {
  return (level === 'may' || level === 'encrypt') && legacyVersions(tokens).length > 0;
}

/** What is appended to the cipher string of a connection that lowers the security level. */
export const SECURITY_LEVEL_0 = '@SECLEVEL=0';
