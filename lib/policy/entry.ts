/**
 * One policy entry: a level and its attributes, checked as Postfix's tls_policy_lookup_one()
 * checks them (plus this project's own attributes), turned into a Policy.
 *
 * The file and the object form both arrive here as a RawEntry; every rule lives in
 * checkEntry(), so both forms accept and reject exactly the same things.
 */
import { LEVELS, type FallbackLevel, type Level, type Policy, type ReportedPolicy } from '../types.js';
import type { PolicyProblem } from './errors.js';
import { isAuthenticatedLevel, isStricter, lookupLevel, MATCH_LEVELS, PKIX_LEVELS, unknownLevelText } from './levels.js';
import { normalizeDomain } from './names.js';
import { legacyVersions } from './protocols.js';

/** Attribute names as the file spells them (the object form's camelCase maps onto these). */
export const ATTRIBUTES = [
  'match',
  'protocols',
  'ciphers',
  'exclude',
  'servername',
  'cafile',
  'cert_file',
  'key_file',
  'fallback',
  'shadow',
  'tempfail_tryclear',
  'policy_type',
  'policy_domain',
  'policy_ttl',
  'policy_string',
  'mx_host_pattern',
  'policy_failure',
] as const;
export type AttributeName = (typeof ATTRIBUTES)[number];

/** The object form's names for the same attributes. */
export const OBJECT_ATTRIBUTES: Readonly<Record<string, AttributeName>> = Object.freeze({
  match: 'match',
  protocols: 'protocols',
  ciphers: 'ciphers',
  exclude: 'exclude',
  servername: 'servername',
  caFile: 'cafile',
  certFile: 'cert_file',
  keyFile: 'key_file',
  fallback: 'fallback',
  shadow: 'shadow',
  tempfailTryclear: 'tempfail_tryclear',
  policyType: 'policy_type',
  policyDomain: 'policy_domain',
  policyTtl: 'policy_ttl',
  policyString: 'policy_string',
  mxHostPattern: 'mx_host_pattern',
  policyFailure: 'policy_failure',
});

/** Postfix policy attributes this library does not implement, with what to use instead. */
const POSTFIX_ONLY: Readonly<Record<string, string>> = Object.freeze({
  tafile: ' (use cafile)',
  connection_reuse: '',
  enable_rpk: '',
});

/** Cipher grades Postfix accepts for `ciphers` (tls_cipher_grade_table); low and export mean medium since Postfix 3.8. */
export const CIPHER_GRADES = ['high', 'medium', 'low', 'export', 'null'] as const;

/** Protocol names (Postfix's protocol_table), spelled as Postfix and OpenSSL spell them. */
const PROTOCOLS = ['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
/** Names allowed after >= and <= (Postfix's tls_version_table has no SSLv2). */
const BOUND_PROTOCOLS = ['SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
/** Hex protocol versions Postfix accepts after >= and <=, as the names Node knows. */
const HEX_VERSIONS: Readonly<Record<number, string>> = Object.freeze({
  0x0300: 'SSLv3',
  0x0301: 'TLSv1',
  0x0302: 'TLSv1.1',
  0x0303: 'TLSv1.2',
  0x0304: 'TLSv1.3',
});

/** Digest lengths in bytes: md5, sha1, sha224, sha256, sha384, sha512 (DigestAlgorithm). */
const DIGEST_BYTES = [16, 20, 28, 32, 48, 64] as const;

/** Keywords a verify/secure `match` may name instead of a domain. */
const MATCH_KEYWORDS = ['hostname', 'nexthop', 'dot-nexthop'] as const;

/** Attributes that may appear once per entry; `match` may repeat, its values add up (as Postfix). */
const REPEATABLE: ReadonlySet<AttributeName> = new Set(['match', 'policy_string', 'mx_host_pattern']);

export interface RawAttribute {
  /** Canonical (file) name, lower case, or an unknown name as written. */
  name: string;
  /** The name as the user wrote it, for messages. */
  display: string;
  value: string;
  /** The line it is on (a continuation line's own number), when not the entry's first line's. */
  line?: number;
}

export interface RawEntry {
  /** The key as written, for messages. */
  key: string;
  /** The level as written; undefined when missing. */
  level: string | undefined;
  attributes: RawAttribute[];
  file: string;
  /** The line the entry starts on (the object form: its index from 1). */
  line: number;
  /** The line the level is on, when not the entry's first. */
  levelLine?: number;
  /** What to call the thing the policy came from: `policy.txt:12`, `<object> example.com`. */
  source: string;
  /** Whether the names in messages are the object form's (camelCase). */
  objectForm: boolean;
}

const splitList = (v: string): string[] => v.split(/[\s,:]+/).filter((t) => t !== '');

/**
 * Checks one entry. Returns the Policy, or undefined when any problem was found (all of
 * them pushed to `problems`).
 */
export function checkEntry(raw: RawEntry, problems: PolicyProblem[]): Policy | undefined {
  const before = problems.length;
  const k = raw.key;
  // A problem with one attribute is reported at that attribute's line: in a Postfix table an
  // entry may go on over continuation lines (lines that start with white space).
  const report = (message: string, at?: RawAttribute) => problems.push({ file: raw.file, line: at?.line ?? raw.line, message });
  const reportLevel = (message: string) => problems.push({ file: raw.file, line: raw.levelLine ?? raw.line, message });
  const nameOf = (a: AttributeName): string => {
    if (!raw.objectForm) return a;
    for (const [obj, file] of Object.entries(OBJECT_ATTRIBUTES)) if (file === a) return obj;
    return a;
  };

  if (raw.level === undefined || raw.level === '') {
    report(`no level for ${k} (expected one of ${LEVELS.join(', ')})`);
    return undefined;
  }
  if (raw.level.includes('=')) {
    reportLevel(`no level for ${k} before "${raw.level}" (expected one of ${LEVELS.join(', ')})`);
    return undefined;
  }
  const level = lookupLevel(raw.level);
  if (level === undefined) {
    reportLevel(unknownLevelText(raw.level, 'level', k));
    return undefined;
  }

  // Sort attributes by name; reject unknown names and repeats of single-instance attributes.
  const byName = new Map<AttributeName, RawAttribute[]>();
  for (const a of raw.attributes) {
    const known = raw.objectForm ? Object.hasOwn(OBJECT_ATTRIBUTES, a.display) : (ATTRIBUTES as readonly string[]).includes(a.name);
    if (!known) {
      const postfixOnly = POSTFIX_ONLY[a.display.toLowerCase()];
      if (postfixOnly !== undefined) {
        report(`attribute "${a.display}" for ${k} is a Postfix attribute this library does not support${postfixOnly}`, a);
      } else {
        const names = raw.objectForm ? ['level', ...Object.keys(OBJECT_ATTRIBUTES)] : [...ATTRIBUTES];
        report(`unknown attribute "${a.display}" for ${k} (expected one of ${names.join(', ')})`, a);
      }
      continue;
    }
    const name = a.name as AttributeName;
    const list = byName.get(name) ?? [];
    if (list.length === 1 && !REPEATABLE.has(name)) report(`attribute "${a.display}" is given more than once for ${k}`, a);
    list.push(a);
    byName.set(name, list);
  }
  const one = (name: AttributeName): RawAttribute | undefined => byName.get(name)?.[0];

  // Postfix ignores (and warns about) every attribute with TLS disabled; here that is an error.
  if (level === 'none') {
    for (const list of byName.values()) {
      report(`attribute "${list[0]!.display}" is not allowed at level "none" for ${k} (TLS is disabled)`, list[0]);
    }
    return problems.length === before ? freezePolicy({ level, source: raw.source }) : undefined;
  }

  const notAllowed = (a: RawAttribute, why: string) => report(`attribute "${a.display}" is not allowed at level "${level}" for ${k} (${why})`, a);
  const nonEmpty = (a: RawAttribute): boolean => {
    if (a.value.trim() !== '') return true;
    report(`attribute "${a.display}" has an empty value for ${k}`, a);
    return false;
  };

  const policy: { -readonly [K in keyof Policy]: Policy[K] } = { level, source: raw.source };

  // shadow: a stricter level, evaluated and reported but never enforced.
  const shadowAttr = one('shadow');
  let shadow: Level | undefined;
  if (shadowAttr && nonEmpty(shadowAttr)) {
    const s = lookupLevel(shadowAttr.value.trim());
    if (s === undefined) report(unknownLevelText(shadowAttr.value.trim(), 'shadow level', k), shadowAttr);
    else if (!isStricter(s, level)) report(`shadow level "${s}" for ${k} is not stricter than level "${level}"`, shadowAttr);
    else shadow = s;
  }

  // fallback: only where there is authentication to give up (the tlsfallback proposal; TLS_MUST_MATCH).
  const fallbackAttr = one('fallback');
  let fallback: FallbackLevel | 'none' | undefined;
  if (fallbackAttr) {
    if (!isAuthenticatedLevel(level)) {
      notAllowed(fallbackAttr, 'only dane, dane-only, fingerprint, verify and secure have a fallback');
    } else if (nonEmpty(fallbackAttr)) {
      const v = fallbackAttr.value.trim().toLowerCase();
      if (v === 'may' || v === 'encrypt' || v === 'none') fallback = v;
      else report(`invalid fallback "${fallbackAttr.value.trim()}" for ${k} (expected may, encrypt or none)`, fallbackAttr);
    }
  }

  // match: fingerprints (split at '|') or names (split at ':'), for the level that uses them,
  // which is the entry's own level or else its shadow level.
  const inMatchLevels = (l: Level | undefined) => l !== undefined && (MATCH_LEVELS as readonly string[]).includes(l);
  const matchLevel = inMatchLevels(level) ? level : inMatchLevels(shadow) ? shadow : undefined;
  const matchAttrs = byName.get('match') ?? [];
  if (matchAttrs.length > 0) {
    if (matchLevel === undefined) {
      notAllowed(matchAttrs[0]!, 'only fingerprint, verify and secure use it');
    } else {
      const tokens: string[] = [];
      for (const a of matchAttrs) {
        if (!nonEmpty(a)) continue;
        if (matchLevel !== 'fingerprint' && /^[0-9a-f]{2}(?::[0-9a-f]{2}){7,}$/i.test(a.value.trim())) {
          report(`match "${a.value.trim()}" for ${k} is a fingerprint, but level "${matchLevel}" matches names`, a);
          continue;
        }
        const parts = a.value.split(matchLevel === 'fingerprint' ? '|' : ':');
        for (const part of parts) {
          const t = part.trim();
          if (t === '') continue;
          const why = matchLevel === 'fingerprint' ? fingerprintProblem(t) : matchNameProblem(t);
          if (why) report(`${why} for ${k}`, a);
          else tokens.push(t);
        }
      }
      if (tokens.length > 0) policy.match = tokens;
    }
  }
  if (matchLevel === 'fingerprint' && matchAttrs.length === 0) {
    const what = level === 'fingerprint' ? 'level "fingerprint"' : 'shadow level "fingerprint"';
    report(`${what} for ${k} needs at least one ${nameOf('match')}=<digest>`);
  }

  const protocolsAttr = one('protocols');
  if (protocolsAttr) {
    // An empty value is allowed: as in Postfix, it means every protocol.
    const out: string[] = [];
    for (const t of splitList(protocolsAttr.value)) {
      const p = normalizeProtocol(t);
      if (p === undefined) {
        report(`unknown protocol "${t}" for ${k} (expected ${PROTOCOLS.join(', ')}, with an optional "!", or ">=" / "<=" and a version)`, protocolsAttr);
      } else if (p !== '') {
        out.push(p);
      }
    }
    policy.protocols = out;
    // TLSv1 and TLSv1.1 need OpenSSL's security level 0 (./protocols.ts), which is lowered only
    // at may and encrypt: at a level that authenticates the server they could never be used.
    const legacy = legacyVersions(out);
    if (legacy.length > 0 && isAuthenticatedLevel(level)) {
      report(
        `${protocolsAttr.display} "${protocolsAttr.value.trim()}" for ${k} allows ${legacy.join(' and ')}, which OpenSSL 3 negotiates only at security level 0, and level "${level}" never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destination level encrypt`,
        protocolsAttr,
      );
    }
  }

  const ciphersAttr = one('ciphers');
  if (ciphersAttr && nonEmpty(ciphersAttr)) {
    const grade = ciphersAttr.value.trim().toLowerCase();
    if ((CIPHER_GRADES as readonly string[]).includes(grade)) policy.ciphers = grade;
    else report(`unknown cipher grade "${ciphersAttr.value.trim()}" for ${k} (expected one of ${CIPHER_GRADES.join(', ')})`, ciphersAttr);
  }

  const excludeAttr = one('exclude');
  if (excludeAttr) {
    const out: string[] = [];
    for (const t of splitList(excludeAttr.value)) {
      if (/^[!+\-@]/.test(t)) report(`invalid cipher exclusion "${t}" for ${k} (no leading "!", "+", "-" or "@")`, excludeAttr);
      else out.push(t);
    }
    policy.exclude = out;
  }

  const servernameAttr = one('servername');
  if (servernameAttr && nonEmpty(servernameAttr)) {
    const v = servernameAttr.value.trim();
    const lower = v.toLowerCase();
    if (lower === 'hostname' || lower === 'nexthop') {
      policy.servername = lower;
    } else {
      const d = normalizeDomain(v);
      if (d.ok) policy.servername = d.value;
      else report(`servername "${v}" for ${k} is not a valid host name: ${d.reason} (expected hostname, nexthop or a DNS name)`, servernameAttr);
    }
  }

  const cafileAttr = one('cafile');
  if (cafileAttr) {
    const pkix = (l: Level | undefined) => l !== undefined && (PKIX_LEVELS as readonly string[]).includes(l);
    if (!pkix(level) && !pkix(shadow)) notAllowed(cafileAttr, 'only verify and secure check CA signatures');
    else if (nonEmpty(cafileAttr)) policy.caFile = cafileAttr.value.trim();
  }

  const certAttr = one('cert_file');
  const keyAttr = one('key_file');
  if (certAttr && nonEmpty(certAttr)) policy.certFile = certAttr.value.trim();
  if (keyAttr && nonEmpty(keyAttr)) policy.keyFile = keyAttr.value.trim();
  if (certAttr && !keyAttr) report(`attribute "${certAttr.display}" for ${k} needs ${nameOf('key_file')} too`, certAttr);
  if (keyAttr && !certAttr) report(`attribute "${keyAttr.display}" for ${k} needs ${nameOf('cert_file')} too`, keyAttr);

  // tempfail_tryclear (Exim): only where a TLS failure can end in cleartext.
  const tryclearAttr = one('tempfail_tryclear');
  if (tryclearAttr) {
    const cleartextReachable = level === 'may' || level === 'dane' || (isAuthenticatedLevel(level) && fallback !== 'none' && fallback !== 'encrypt');
    const v = tryclearAttr.value.trim().toLowerCase();
    if (!cleartextReachable) {
      notAllowed(tryclearAttr, fallback !== undefined ? `fallback=${fallback} never sends in clear` : 'it never sends in clear');
    } else if (v === 'yes' || v === 'true') {
      policy.tempfailTryclear = true;
    } else if (v === 'no' || v === 'false') {
      policy.tempfailTryclear = false;
    } else {
      report(`invalid ${tryclearAttr.display} "${tryclearAttr.value.trim()}" for ${k} (expected yes, no, true or false)`, tryclearAttr);
    }
  }

  const reported = reportedPolicy(byName, k, report);
  if (reported) policy.reported = reported;

  if (fallback !== undefined) policy.fallback = fallback;
  if (shadow !== undefined) policy.shadow = shadow;
  return problems.length === before ? freezePolicy(policy) : undefined;
}

const POLICY_TYPES = ['sts', 'no-policy-found'] as const;
const POLICY_FAILURES = ['sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid', 'validation-failure'] as const;

/**
 * Postfix 3.10's attributes for an outside policy source (smtp_tls_policy.c): policy_type is
 * required by the others; policy_type, policy_domain, policy_ttl and policy_failure appear once,
 * policy_string and mx_host_pattern any number of times.
 */
function reportedPolicy(
  byName: Map<AttributeName, RawAttribute[]>,
  k: string,
  report: (message: string, at: RawAttribute) => void,
): ReportedPolicy | undefined {
  const one = (name: AttributeName) => byName.get(name)?.[0];
  const typeAttr = one('policy_type');
  const dependent = (['policy_domain', 'policy_ttl', 'policy_string', 'mx_host_pattern', 'policy_failure'] as const).filter((n) => byName.has(n));
  if (!typeAttr) {
    for (const n of dependent) report(`attribute "${byName.get(n)![0]!.display}" for ${k} needs a policy_type too`, byName.get(n)![0]!);
    return undefined;
  }
  const type = typeAttr.value.trim().toLowerCase();
  if (!(POLICY_TYPES as readonly string[]).includes(type)) {
    report(`invalid ${typeAttr.display} "${typeAttr.value.trim()}" for ${k} (expected ${POLICY_TYPES.join(' or ')})`, typeAttr);
    return undefined;
  }
  const out: ReportedPolicy = { type: type as ReportedPolicy['type'] };
  const domainAttr = one('policy_domain');
  if (domainAttr) {
    const d = normalizeDomain(domainAttr.value.trim());
    if (d.ok) out.domain = d.value;
    else report(`invalid ${domainAttr.display} "${domainAttr.value.trim()}" for ${k}: ${d.reason}`, domainAttr);
  }
  const ttlAttr = one('policy_ttl');
  if (ttlAttr) {
    const v = ttlAttr.value.trim();
    if (/^[0-9]{1,10}$/.test(v)) out.ttl = Number(v);
    else report(`invalid ${ttlAttr.display} "${v}" for ${k} (expected a number of seconds)`, ttlAttr);
  }
  const strings = byName.get('policy_string');
  if (strings) out.strings = strings.map((a) => a.value.trim());
  const patterns = byName.get('mx_host_pattern');
  if (patterns) {
    out.mxHostPatterns = [];
    for (const a of patterns) {
      const p = a.value.trim().toLowerCase();
      // RFC 8461 section 4.1: a host name, or "*." and a name for exactly one more label
      const d = normalizeDomain(p.startsWith('*.') ? p.slice(2) : p);
      if (d.ok) out.mxHostPatterns.push(p.startsWith('*.') ? `*.${d.value}` : d.value);
      else report(`invalid ${a.display} "${a.value.trim()}" for ${k}: ${d.reason} (expected a host name or *.domain)`, a);
    }
  }
  const failureAttr = one('policy_failure');
  if (failureAttr) {
    const v = failureAttr.value.trim().toLowerCase();
    if ((POLICY_FAILURES as readonly string[]).includes(v)) out.failure = v as NonNullable<ReportedPolicy['failure']>;
    else report(`invalid ${failureAttr.display} "${failureAttr.value.trim()}" for ${k} (expected one of ${POLICY_FAILURES.join(', ')})`, failureAttr);
  }
  return out;
}

/** Why a fingerprint is malformed (with "for <key>" to follow), or undefined. */
export function fingerprintProblem(t: string): string | undefined {
  if (!/^[0-9a-f]{2}(?::?[0-9a-f]{2})*$/i.test(t)) {
    return `malformed fingerprint "${t}" (expected hex digit pairs, optionally separated by colons)`;
  }
  const bytes = t.replace(/:/g, '').length / 2;
  if (!(DIGEST_BYTES as readonly number[]).includes(bytes)) {
    return `fingerprint "${t}" has ${bytes} bytes, the length of no digest (expected ${DIGEST_BYTES.join(', ')})`;
  }
  return undefined;
}

/** Why a verify/secure match token is invalid (with "for <key>" to follow), or undefined. */
function matchNameProblem(t: string): string | undefined {
  if ((MATCH_KEYWORDS as readonly string[]).includes(t.toLowerCase())) return undefined;
  const d = normalizeDomain(t.startsWith('.') ? t.slice(1) : t);
  if (d.ok) return undefined;
  return `invalid match "${t}": ${d.reason} (expected hostname, nexthop, dot-nexthop, a domain or .domain)`;
}

/**
 * A protocol token in canonical spelling: `TLSv1.2`, `!SSLv3`, `>=TLSv1.2`, `<=TLSv1.3`
 * (hex versions after >= / <= become names). '' for a bound of "none" (no bound, as
 * Postfix's tls_version_table), undefined when unknown.
 */
function normalizeProtocol(t: string): string | undefined {
  const bound = t.startsWith('>=') ? '>=' : t.startsWith('<=') ? '<=' : '';
  if (bound) {
    const v = t.slice(2);
    if (v.toLowerCase() === 'none') return '';
    const name = BOUND_PROTOCOLS.find((p) => p.toLowerCase() === v.toLowerCase());
    if (name) return bound + name;
    if (/^(0x)?[0-9a-f]{1,4}$/i.test(v)) {
      const hexName = HEX_VERSIONS[parseInt(v.replace(/^0x/i, ''), 16)];
      return hexName ? bound + hexName : undefined;
    }
    return undefined;
  }
  const neg = t.startsWith('!') ? '!' : '';
  const name = PROTOCOLS.find((p) => p.toLowerCase() === t.slice(neg.length).toLowerCase());
  return name ? neg + name : undefined;
}

function freezePolicy(p: Policy): Policy {
  for (const v of Object.values(p)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze(p);
}
