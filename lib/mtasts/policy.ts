/**
 * MTA-STS texts, pure: the `_mta-sts` TXT record (RFC 8461 section 3.1), the policy file
 * (section 3.2), and the MX host rule (section 4.1).
 *
 * Parsing is strict where the RFC's grammar is (a record or policy that breaks it is "no usable
 * policy", with the reason in words) and lenient only where the RFC says so: unknown fields are
 * ignored, and of a repeated field other than `mx` the first is used (section 3.2).
 */

/** The `_mta-sts.<domain>` record (section 3.1). */
export interface StsRecord {
  /** `id`: 1 to 32 letters and digits; a new id announces a new policy. */
  id: string;
}

export type StsMode = 'enforce' | 'testing' | 'none';

/** A policy file, parsed (section 3.2). */
export interface StsPolicy {
  mode: StsMode;
  /** Seconds the policy may be cached, at most MAX_AGE_LIMIT. */
  maxAge: number;
  /** `mx` patterns, lower case: host names, or `*.` and a domain (one more leftmost label). */
  mx: string[];
  /** The policy's lines as served, without line ends (RFC 8460 section 4.4's policy-string). */
  lines: string[];
}

/** Section 3.2: "max_age ... maximum value of 31557600" (one year). */
export const MAX_AGE_LIMIT = 31_557_600;

/** Section 3.1: sts-id = 1*32(ALPHA / DIGIT). */
const ID = /^[A-Za-z0-9]{1,32}$/;
/** Section 3.1 / 3.2: field names, (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
const KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
/** Section 3.1: sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): visible characters but "=" and ";". */
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;
/** RFC 5321's sub-domain, A-labels only (section 3.2: "mx" patterns are written as A-labels). */
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * The MTA-STS record among a name's TXT records (each given with its strings concatenated,
 * section 3.1: "as if those strings are concatenated together without adding spaces"). Records
 * not starting with `v=STSv1` and a `;` are discarded; zero or several left is no policy.
 */
export function parseStsRecord(texts: readonly string[]): { record: StsRecord } | { none: string } {
  const candidates = texts.filter((t) => /^v=STSv1[ \t]*;/.test(t));
  if (candidates.length === 0) return { none: texts.length === 0 ? 'no TXT record' : 'no TXT record starts with "v=STSv1;"' };
  if (candidates.length > 1) return { none: `${candidates.length} TXT records start with "v=STSv1;" (section 3.1 requires exactly one)` };
  const text = candidates[0] as string;
  // sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field) [field-delim]
  const fields = text.split(';').slice(1);
  if (fields.length > 0 && fields[fields.length - 1]?.trim() === '') fields.pop(); // the optional final ";"
  let id: string | undefined;
  for (const raw of fields) {
    const field = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    const eq = field.indexOf('=');
    if (eq <= 0) return { none: `the TXT record "${text}" has a field without "=": "${field}"` };
    const key = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (!KEY.test(key)) return { none: `the TXT record "${text}" has an invalid field name "${key}"` };
    if (key === 'id') {
      if (!ID.test(value)) return { none: `the TXT record "${text}" has an invalid id "${value}" (1 to 32 letters and digits)` };
      id ??= value; // a repeated field: the first is used (section 3.2)
    } else if (!EXT_VALUE.test(value)) {
      return { none: `the TXT record "${text}" has an invalid value for ${key}` };
    }
  }
  if (id === undefined) return { none: `the TXT record "${text}" has no id` };
  return { record: { id } };
}

/** One `mx` pattern, checked and lower-cased; undefined when it is not one (section 3.2, 4.1). */
function mxPattern(value: string): string | undefined {
  const wildcard = value.startsWith('*.');
  const name = (wildcard ? value.slice(2) : value).replace(/\.$/, '');
  const labels = name.split('.');
  if (name.length === 0 || name.length > 253 || !labels.every((l) => LABEL.test(l))) return undefined;
  return `${wildcard ? '*.' : ''}${name.toLowerCase()}`;
}

/**
 * A policy file's body (section 3.2): CRLF- or LF-separated `key: value` lines; `version: STSv1`,
 * `mode`, `max_age` required, one or more `mx` unless the mode is `none`.
 */
export function parseStsPolicy(body: string): { policy: StsPolicy } | { invalid: string } {
  const lines = body.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop(); // the line end after the last field
  const kept: string[] = [];
  const seen = new Set<string>();
  let version: string | undefined;
  let mode: StsMode | undefined;
  let maxAge: number | undefined;
  const mx: string[] = [];
  for (const [index, line] of lines.entries()) {
    const where = `line ${index + 1}`;
    const trimmed = line.replace(/^[ \t]+|[ \t]+$/g, '');
    if (trimmed === '') return { invalid: `${where} is empty` };
    kept.push(trimmed);
    const colon = trimmed.indexOf(':');
    if (colon <= 0) return { invalid: `${where} is not "key: value": "${trimmed.slice(0, 80)}"` };
    const key = trimmed.slice(0, colon);
    const value = trimmed.slice(colon + 1).replace(/^[ \t]+/, '');
    if (!KEY.test(key)) return { invalid: `${where} has an invalid field name "${key.slice(0, 40)}"` };
    if (value === '') return { invalid: `${where}: ${key} has no value` };
    const first = !seen.has(key);
    seen.add(key);
    switch (key) {
      case 'version':
        if (value !== 'STSv1') return { invalid: `${where}: version is "${value}", not STSv1` };
        version = value;
        break;
      case 'mode':
        if (value !== 'enforce' && value !== 'testing' && value !== 'none') return { invalid: `${where}: mode "${value}" is not enforce, testing or none` };
        if (first) mode = value;
        break;
      case 'max_age':
        // max-age-value = 1*10(DIGIT); larger than one year is read as one year.
        if (!/^[0-9]{1,10}$/.test(value)) return { invalid: `${where}: max_age "${value}" is not 1 to 10 digits` };
        if (first) maxAge = Math.min(Number(value), MAX_AGE_LIMIT);
        break;
      case 'mx': {
        const pattern = mxPattern(value);
        if (!pattern) return { invalid: `${where}: mx "${value}" is not a host name or "*." and a domain in A-labels` };
        mx.push(pattern);
        break;
      }
      default:
        // Unknown fields are ignored (section 3.2): sts-policy-ext-value is printable text.
        if (!/^[\x20-\x7e\x80-\u{10ffff}]+$/u.test(value)) return { invalid: `${where}: ${key} has characters a policy may not hold` };
    }
  }
  if (version === undefined) return { invalid: 'no "version: STSv1" line' };
  if (mode === undefined) return { invalid: 'no mode line' };
  if (maxAge === undefined) return { invalid: 'no max_age line' };
  if (mode !== 'none' && mx.length === 0) return { invalid: `mode ${mode} without any mx line` };
  return { policy: { mode, maxAge, mx, lines: kept } };
}

/**
 * Whether an MX host matches a pattern (section 4.1): a host name matches itself; `*.d` matches
 * a name of exactly one more label than `d` ("*.example.com" matches "mx.example.com", not
 * "example.com" nor "a.mx.example.com"). Case-insensitive; a final dot is ignored.
 */
export function mxMatches(patterns: readonly string[], host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((pattern) => {
    const p = pattern.toLowerCase().replace(/\.$/, '');
    if (!p.startsWith('*.')) return name === p;
    const dot = name.indexOf('.');
    return dot > 0 && name.slice(dot + 1) === p.slice(2);
  });
}
