/**
 * The policy table: Postfix's tls_policy file syntax or a JS object, checked entry by entry,
 * normalized, and looked up in Postfix's order.
 */
import { readFileSync } from 'node:fs';
import type { Policy } from '../types.js';
import { checkEntry, OBJECT_ATTRIBUTES, type RawAttribute, type RawEntry } from './entry.js';
import { PolicyError, type PolicyProblem } from './errors.js';
import { normalizeBracketHost, normalizeKey } from './keys.js';
import { parentPatterns, toAsciiDomain } from '../names/index.js';
import { parseIp } from './names.js';

/** One entry of the object form: a level name, or the level with attributes in camelCase. */
export type PolicyObjectEntry =
  | string
  | {
      level: string;
      match?: string | string[];
      protocols?: string | string[];
      ciphers?: string;
      exclude?: string | string[];
      servername?: string;
      caFile?: string;
      certFile?: string;
      keyFile?: string;
      fallback?: string;
      shadow?: string;
      tempfailTryclear?: boolean | string;
      /** Postfix 3.10's policy-source attributes (policy_type=, ...): see entry.ts. */
      policyType?: string;
      policyDomain?: string;
      policyTtl?: string;
      policyString?: string | string[];
      mxHostPattern?: string | string[];
      policyFailure?: string;
    };

/** What createPolicyTable() accepts. */
export type PolicyInput = string | Record<string, PolicyObjectEntry> | { file: string } | PolicyTable | undefined | null;

/** The next hop a policy is looked up for. */
export type NextHop =
  /** MX delivery to a recipient domain. */
  | { kind: 'domain'; domain: string }
  /** A fixed next hop, [host]:port, no MX lookup: a delivery's Destination ('relay'), or 'host'. */
  | { kind: 'relay' | 'host'; host: string; port?: number; written?: 'host' | 'host:port' };

/**
 * A checked, normalized, immutable policy table: normalized key -> Policy.
 * Build it with createPolicyTable(); an empty table is valid.
 */
export class PolicyTable {
  /** Where the table came from: a file name, '<text>', '<object>' or '<none>'. */
  readonly source: string;
  readonly #entries: ReadonlyMap<string, Policy>;

  /** @internal use createPolicyTable() */
  constructor(source: string, entries: ReadonlyMap<string, Policy>) {
    this.source = source;
    this.#entries = entries;
    Object.freeze(this);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry for a key written in any accepted spelling (`EXAMPLE.com.`, `[ipv6:2001:DB8::1]`). */
  get(key: string): Policy | undefined {
    const k = normalizeKey(key);
    return k.ok ? this.#entries.get(k.value) : undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Normalized keys, in input order. */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  entries(): [string, Policy][] {
    return [...this.#entries.entries()];
  }

  [Symbol.iterator](): IterableIterator<[string, Policy]> {
    return this.#entries.entries();
  }

  /** @internal exact lookup by normalized key */
  lookupExact(key: string): Policy | undefined {
    return this.#entries.get(key);
  }
}

/** The result of checking a policy without throwing: every problem, and the table when there are none. */
export interface PolicyCheck {
  problems: PolicyProblem[];
  table: PolicyTable | undefined;
}

/**
 * Builds a PolicyTable. A string containing whitespace is table text; any other non-empty
 * string, or `{ file }`, names a file read synchronously (its name is kept for messages);
 * an object maps keys to levels or `{ level, ...attributes }`; undefined gives an empty
 * table. Throws a PolicyError listing every problem.
 */
export function createPolicyTable(input: PolicyInput): PolicyTable {
  const { problems, table } = checkPolicyTable(input);
  if (!table) throw new PolicyError(problems);
  return table;
}

/** Like createPolicyTable(), but returns the problems instead of throwing (for check-policy). */
export function checkPolicyTable(input: PolicyInput): PolicyCheck {
  if (input instanceof PolicyTable) return { problems: [], table: input };
  if (input === undefined || input === null || input === '') {
    return { problems: [], table: new PolicyTable('<none>', new Map()) };
  }
  if (typeof input === 'string') {
    // Table text written inline (a template literal) is dedented; a file is read as Postfix reads it.
    return /\s/.test(input) ? checkPolicyText(input, '<text>', { dedent: true }) : checkPolicyFile(input);
  }
  if (typeof input === 'object' && !Array.isArray(input)) {
    const keys = Object.keys(input);
    if (keys.length === 1 && keys[0] === 'file' && typeof (input as { file: unknown }).file === 'string') {
      return checkPolicyFile((input as { file: string }).file);
    }
    return checkPolicyObject(input as Record<string, PolicyObjectEntry>);
  }
  return {
    problems: [{ file: '<input>', line: 0, message: `a policy must be text, an object or { file }, not ${typeof input}` }],
    table: undefined,
  };
}

/** Reads and checks a policy file; a file that cannot be read is one problem (line 0). */
export function checkPolicyFile(file: string): PolicyCheck {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { problems: [{ file, line: 0, message: `cannot read the policy file: ${e.code ?? e.message}` }], table: undefined };
  }
  return checkPolicyText(text, file);
}

/**
 * Checks table text in Postfix's syntax. `file` names it in messages.
 *
 * Lines: `#` as the first non-blank character makes a comment line; blank lines are
 * ignored; a line that starts with white space continues the logical line before it (and
 * comment or blank lines in between do not end it), as Postfix's readllines(). A `#` later
 * in a line is not special. Each logical line is `KEY LEVEL [name=value ...]`, the value
 * split at white space and commas, `{ name = value }` allowing both inside the value.
 */
export function checkPolicyText(text: string, file: string, options: { dedent?: boolean } = {}): PolicyCheck {
  const problems: PolicyProblem[] = [];
  const entries: RawEntry[] = [];
  for (const logical of logicalLines(text, file, problems, options.dedent === true)) {
    const { line } = logical;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(logical.text)!;
    const key = m[1]!;
    // each token's physical line: a problem is reported where its text is, continuation lines included
    const tokens = tokenize(m[2]!, logical.text.length - m[2]!.length).map((t) => ({ ...t, line: lineAt(logical, t.offset) }));
    const attributes: RawAttribute[] = [];
    for (const { text: token, line: at } of tokens.slice(1)) {
      if (token.startsWith('#')) {
        problems.push({ file, line: at, message: `"#" after the entry for ${key} does not start a comment (put comments on lines of their own)` });
        break;
      }
      const nv = splitAttribute(token);
      if (typeof nv === 'string') {
        problems.push({ file, line: at, message: `malformed attribute "${token}" for ${key}: ${nv}` });
      } else {
        attributes.push({ name: nv.name.toLowerCase(), display: nv.name, value: nv.value, line: at });
      }
    }
    entries.push({
      key,
      level: tokens[0]?.text,
      ...(tokens[0] ? { levelLine: tokens[0].line } : {}),
      attributes,
      file,
      line,
      source: `${file}:${line}`,
      objectForm: false,
    });
  }
  return build(entries, file, problems, 'line');
}

/** Checks the object form: `{ 'example.com': 'secure', '.example.org': { level: 'encrypt' } }`. */
export function checkPolicyObject(obj: Record<string, PolicyObjectEntry>): PolicyCheck {
  const file = '<object>';
  const problems: PolicyProblem[] = [];
  const entries: RawEntry[] = [];
  Object.entries(obj).forEach(([key, value], i) => {
    const line = i + 1;
    const base = { key, file, line, source: `${file} ${key}`, objectForm: true };
    if (typeof value === 'string') {
      entries.push({ ...base, level: value.trim(), attributes: [] });
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      problems.push({ file, line, message: `entry for ${key} must be a level name or { level, ... }` });
      return;
    }
    const attributes: RawAttribute[] = [];
    let level: string | undefined;
    let bad = false;
    for (const [name, v] of Object.entries(value)) {
      if (v === undefined) continue;
      if (name === 'level') {
        if (typeof v === 'string') level = v.trim();
        else {
          problems.push({ file, line, message: `level for ${key} must be a string` });
          bad = true;
        }
        continue;
      }
      const canonical = OBJECT_ATTRIBUTES[name] ?? name;
      const push = (s: string) => attributes.push({ name: canonical, display: name, value: s });
      if (typeof v === 'string') {
        push(v);
      } else if (typeof v === 'boolean' && canonical === 'tempfail_tryclear') {
        push(v ? 'yes' : 'no');
      } else if (
        Array.isArray(v) &&
        v.every((x) => typeof x === 'string') &&
        ['match', 'protocols', 'exclude', 'policy_string', 'mx_host_pattern'].includes(canonical)
      ) {
        // Several match values add up as repeated match attributes (so do policy strings and MX
        // patterns); protocols and exclude are lists.
        if (canonical === 'match' || canonical === 'policy_string' || canonical === 'mx_host_pattern') v.forEach(push);
        else push(v.join(':'));
      } else {
        const want =
          canonical === 'tempfail_tryclear'
            ? 'a boolean'
            : ['match', 'protocols', 'exclude', 'policy_string', 'mx_host_pattern'].includes(canonical)
              ? 'a string or an array of strings'
              : 'a string';
        problems.push({ file, line, message: `attribute "${name}" for ${key} must be ${want}` });
        bad = true;
      }
    }
    if (!bad) entries.push({ ...base, level, attributes });
  });
  return build(entries, file, problems, 'entry');
}

/** Normalizes keys, finds duplicates, checks entries, and builds the table when all is well. */
function build(entries: RawEntry[], source: string, problems: PolicyProblem[], unit: 'line' | 'entry'): PolicyCheck {
  const table = new Map<string, Policy>();
  const seen = new Map<string, number>();
  for (const raw of entries) {
    // The entry is checked even when its key is bad, so that every problem is reported at once.
    const key = normalizeKey(raw.key);
    let usable = key.ok;
    if (!key.ok) {
      problems.push({ file: raw.file, line: raw.line, message: `invalid destination "${raw.key}": ${key.reason}` });
    } else {
      const first = seen.get(key.value);
      if (first !== undefined) {
        problems.push({
          file: raw.file,
          line: raw.line,
          message: `${key.value} is listed twice, at ${unit === 'line' ? 'lines' : 'entries'} ${first} and ${raw.line}`,
        });
        usable = false;
      } else {
        seen.set(key.value, raw.line);
      }
    }
    const policy = checkEntry(raw, problems);
    if (policy && usable && key.ok) table.set(key.value, policy);
  }
  problems.sort((a, b) => a.line - b.line);
  return problems.length > 0 ? { problems, table: undefined } : { problems, table: new PolicyTable(source, table) };
}

/**
 * The files a table's entries name (cafile, cert_file, key_file), read now, so that a missing or
 * unreadable one is found by check-policy and when the transport is made, never at send time:
 * one problem per file that cannot be read or holds no PEM block, at the entry's line.
 */
export function checkPolicyFiles(table: PolicyTable): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const [key, policy] of table.entries()) {
    const at = /^(.*):(\d+)$/.exec(policy.source);
    const where = { file: at ? at[1]! : table.source, line: at ? Number(at[2]) : 0 };
    const files: Array<[string | undefined, string]> = [
      [policy.caFile, 'cafile'],
      [policy.certFile, 'cert_file'],
      [policy.keyFile, 'key_file'],
    ];
    for (const [path, attribute] of files) {
      if (path === undefined) continue;
      let text: string;
      try {
        text = readFileSync(path, 'latin1');
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        problems.push({ ...where, message: `${attribute} ${path} for ${key} cannot be read: ${e.code ?? e.message}` });
        continue;
      }
      if (!text.includes('-----BEGIN ')) problems.push({ ...where, message: `${attribute} ${path} for ${key} holds no PEM block` });
    }
  }
  return problems;
}

/**
 * Strips the white space common to every line that is not blank, so that a table written
 * indented inside a template literal reads as Postfix's own (never indented) files do; lines
 * indented further than that stay continuation lines.
 */
function dedent(lines: string[]): string[] {
  let common: string | undefined;
  for (const line of lines) {
    if (line.trim() === '') continue;
    const indent = /^[ \t]*/.exec(line)![0];
    if (common === undefined || !indent.startsWith(common)) {
      let n = 0;
      while (common !== undefined && n < common.length && n < indent.length && common[n] === indent[n]) n++;
      common = common === undefined ? indent : common.slice(0, n);
    }
    if (common === '') return lines;
  }
  return common ? lines.map((line) => (line.startsWith(common) ? line.slice(common.length) : line)) : lines;
}

/** A Postfix logical line: its text, the number of its first line, and where each physical line of it starts in the text. */
interface LogicalLine {
  line: number;
  text: string;
  /** Offsets in `text` at which each physical line begins, with its line number, in order. */
  parts: { offset: number; line: number }[];
}

/** The physical line of the character at `offset` in a logical line. */
function lineAt(logical: LogicalLine, offset: number): number {
  let line = logical.line;
  for (const part of logical.parts) if (part.offset <= offset) line = part.line;
  return line;
}

/** Joins physical lines into Postfix logical lines; a logical line's number is its first line. */
function logicalLines(text: string, file: string, problems: PolicyProblem[], dedentLines: boolean): LogicalLine[] {
  const out: LogicalLine[] = [];
  const physical = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const lines = dedentLines ? dedent(physical) : physical;
  lines.forEach((physical, i) => {
    const trimmed = physical.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (/^\s/.test(physical)) {
      const last = out[out.length - 1];
      if (last) {
        last.parts.push({ offset: last.text.length, line: i + 1 });
        last.text += physical;
      } else problems.push({ file, line: i + 1, message: 'continuation line (starting with white space) without an entry before it' });
      return;
    }
    out.push({ line: i + 1, text: physical, parts: [{ offset: 0, line: i + 1 }] });
  });
  // a logical line starts with its key, so only its end has white space to trim: the offsets hold
  for (const l of out) l.text = l.text.trimEnd();
  return out;
}

/**
 * Splits at white space and commas, keeping `{...}` groups (nested) together, as Postfix's
 * mystrtokq(); each token with its offset (from `base`, where `s` starts in its logical line).
 */
function tokenize(s: string, base = 0): { text: string; offset: number }[] {
  const out: { text: string; offset: number }[] = [];
  const sep = (c: string) => c === ',' || /\s/.test(c);
  let i = 0;
  while (i < s.length) {
    while (i < s.length && sep(s[i]!)) i++;
    if (i >= s.length) break;
    const start = i;
    let depth = 0;
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (c === '{') depth++;
      else if (c === '}' && depth > 0) depth--;
      else if (depth === 0 && sep(c)) break;
    }
    out.push({ text: s.slice(start, i), offset: base + start });
  }
  return out;
}

/** `name=value` or `{ name = value }` (Postfix's extpar() + split_nameval()); a string is the reason it is malformed. */
function splitAttribute(token: string): { name: string; value: string } | string {
  let t = token;
  if (t.startsWith('{')) {
    let depth = 0;
    let close = -1;
    for (let i = 0; i < t.length; i++) {
      if (t[i] === '{') depth++;
      else if (t[i] === '}' && --depth === 0) {
        close = i;
        break;
      }
    }
    if (close === -1) return `missing "}"`;
    if (close !== t.length - 1) return `text after "}"`;
    t = t.slice(1, close).trim().replace(/\s+/g, ' ');
  }
  const m = /^\s*([^\s=]*)\s*(=?)\s*([\s\S]*?)\s*$/.exec(t)!;
  if (m[1] === '') return 'missing attribute name';
  if (m[2] !== '=') return `missing "=" after attribute name`;
  return { name: m[1]!, value: m[3]! };
}

/**
 * The keys tried for a next hop, in order. A domain: itself, then its parent patterns
 * nearest first (a.b.example.com, .b.example.com, .example.com, .com), as Postfix's
 * tls_policy_lookup(). A host: `[host]:port`, then `[host]`.
 *
 * Postfix looks up a bracketed next hop exactly as written, once: `[host]:587` finds only
 * `[host]:587`, `[host]` only `[host]`. Here the relay always has a port, so `[host]:port`
 * is tried first and `[host]` serves as the entry for every port of that host.
 * A domain that is not a valid host name (`mail-.example.com`, `a+b.example.com`) still walks its
 * parent patterns, so a parent entry is never skipped for a name delivery goes ahead with.
 *
 * A relay written without brackets is first looked up as Postfix looks up such a relayhost
 * (tls_policy_lookup(): a valid host name walks its parents, anything else is one lookup as
 * written): `host` gives `host`, `.parent`, ...; `host:port` gives `host:port` alone. Then the
 * bracketed keys, because this library never does an MX lookup for a relay, so the relay is the
 * fixed host `[host]:port` names too.
 */
export function lookupKeys(nexthop: NextHop): string[] {
  // The keys depend on the next hop alone, and a sender sends to the same few again and again.
  const id = nexthop.kind === 'domain' ? `d ${nexthop.domain}` : `h ${nexthop.host} ${nexthop.port ?? ''} ${nexthop.written ?? ''}`;
  let keys = keysOf.get(id);
  if (keys === undefined) {
    keys = keysFor(nexthop);
    if (keysOf.size >= MAX_KEYS_OF) keysOf.clear();
    keysOf.set(id, keys);
  }
  return [...keys];
}

const keysOf = new Map<string, readonly string[]>();
const MAX_KEYS_OF = 1024;

function keysFor(nexthop: NextHop): string[] {
  if (nexthop.kind === 'domain') {
    // Every name delivery uses walks its parent patterns, valid host name or not: a
    // `.example.com` entry must apply to `mail-.example.com` too (a name the table could not hold
    // as a key of its own, but mail can still be sent to).
    const d = toAsciiDomain(nexthop.domain);
    const name = d.ok ? d.value : nexthop.domain.toLowerCase();
    return [name, ...parentPatterns(name)];
  }
  let host = nexthop.host.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const h = normalizeBracketHost(host);
  const name = h.ok ? h.value : host.toLowerCase();
  const bracket = `[${name}]`;
  const bracketed = nexthop.port === undefined ? [bracket] : [`${bracket}:${nexthop.port}`, bracket];
  // An address is never a valid host name (Postfix looks `192.0.2.1` up once, and a table cannot
  // hold that key), so only a name gets the unbracketed keys.
  if (!h.ok || parseIp(name)) return bracketed;
  if (nexthop.written === 'host') return [name, ...parentPatterns(name), ...bracketed];
  if (nexthop.written === 'host:port' && nexthop.port !== undefined) return [`${name}:${nexthop.port}`, ...bracketed];
  return bracketed;
}

/** The policy for a next hop: the first table entry in lookupKeys() order, else `defaultPolicy`. */
export function lookupPolicy(table: PolicyTable | undefined, nexthop: NextHop, defaultPolicy: Policy): Policy {
  if (table) {
    for (const key of lookupKeys(nexthop)) {
      const p = table.lookupExact(key);
      if (p) return p;
    }
  }
  return defaultPolicy;
}
