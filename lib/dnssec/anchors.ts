/**
 * Trust anchors: the IANA root key-signing keys built in, and anchor files in the two formats
 * operators already have (for private roots, test trees, or a pinned key):
 *
 * - Zone-file lines (RFC 1035 §5.1) of DS or DNSKEY records, as Unbound's
 *   `trust-anchor-file` and `auto-trust-anchor-file` and Debian's /usr/share/dns/root.key
 *   hold them: `. IN DS 20326 8 2 E06D...`, `example. 3600 IN DNSKEY 257 3 13 base64...`,
 *   with `;` comments, parentheses across lines, `$ORIGIN`, `$TTL`, `@` and relative names.
 * - BIND's statements: `trust-anchors { . initial-key 257 3 8 "..."; . static-ds 20326 8 2
 *   "..."; };` (also initial-ds and static-key), the older `managed-keys { ... };` and
 *   `trusted-keys { . 257 3 8 "..."; };`, with `//`, `#` and `/* *\/` comments. `initial-*`
 *   entries are taken as static anchors: RFC 5011 rollover tracking is not done here.
 *
 * A line that cannot be read throws a TrustAnchorError naming the source and line.
 */
import { nameFromText, nameToText, type Name } from './names.js';
import { RRTYPE, parseDnskey, parseDs, type Dnskey, type Ds, type Rr } from './records.js';
import { ALGORITHM } from './verify.js';
import type { TrustPoint } from './keys.js';

/**
 * The IANA root zone KSKs as DS records (https://data.iana.org/root-anchors/root-anchors.xml;
 * the same lines as Debian's dns-root-data /usr/share/dns/root.ds): KSK-2017 (tag 20326) and
 * KSK-2024 (tag 38696), both RSA/SHA-256 (algorithm 8), SHA-256 digests (type 2).
 */
export const ROOT_ANCHOR_LINES: readonly string[] = [
  '. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D',
  '. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16',
];

export interface TrustAnchor extends TrustPoint {
  zone: Name;
  ds: Ds[];
  keys: Dnskey[];
}

export class TrustAnchorError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    why: string,
  ) {
    super(`${source}:${line}: ${why}`);
    this.name = 'TrustAnchorError';
  }
}

/** The built-in root anchors. */
export function rootTrustAnchors(): TrustAnchor[] {
  return parseTrustAnchors(ROOT_ANCHOR_LINES.join('\n'), 'built-in root anchors');
}

/** Anchors from a file's text in either format (see the top of this file), grouped by zone in the order first seen. */
export function parseTrustAnchors(text: string, source = 'trust anchors'): TrustAnchor[] {
  // BIND's statement names cannot start a zone-file record (a DS or DNSKEY line).
  const bind = /(^|[\s;}])(trust-anchors|managed-keys|trusted-keys)\s*\{/m.test(text);
  const records = bind ? parseBind(text, source) : parseZoneFile(text, source);
  const anchors: TrustAnchor[] = [];
  for (const rr of records) {
    let anchor = anchors.find((entry) => nameToText(entry.zone) === nameToText(rr.owner));
    if (!anchor) {
      anchor = { zone: rr.owner, ds: [], keys: [] };
      anchors.push(anchor);
    }
    if (rr.type === RRTYPE.DS) anchor.ds.push(parseDs(rr));
    else anchor.keys.push(parseDnskey(rr));
  }
  return anchors;
}

/* ----------------------------------------------------------------------------------------
 * RDATA in presentation form, shared by both formats.
 */

const ALGORITHM_NAMES = new Map<string, number>([...Object.entries(ALGORITHM)].map(([name, code]) => [name.replace(/_/g, '-'), code]));

function number(token: string | undefined, what: string, max: number): number {
  if (token === undefined) throw new Error(`${what} is missing`);
  if (!/^\d+$/.test(token) || Number(token) > max) throw new Error(`${what} ${JSON.stringify(token)} is not a number from 0 to ${max}`);
  return Number(token);
}

function algorithm(token: string | undefined): number {
  const named = token === undefined ? undefined : ALGORITHM_NAMES.get(token.toUpperCase());
  return named ?? number(token, 'algorithm', 255);
}

function hex(text: string, what: string): Buffer {
  if (text === '' || text.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(text)) throw new Error(`${what} is not hexadecimal octets`);
  return Buffer.from(text, 'hex');
}

function base64(text: string, what: string): Buffer {
  if (text === '' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new Error(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/** RFC 4034 §5.3: key tag, algorithm, digest type, digest (hex, may be split by spaces). */
function dsRdata(fields: string[]): Buffer {
  const tag = number(fields[0], 'DS key tag', 0xffff);
  const head = Buffer.from([tag >> 8, tag & 0xff, algorithm(fields[1]), number(fields[2], 'DS digest type', 255)]);
  return Buffer.concat([head, hex(fields.slice(3).join(''), 'DS digest')]);
}

/** RFC 4034 §2.2: flags, protocol, algorithm, public key (base64, may be split by spaces). */
function dnskeyRdata(fields: string[]): Buffer {
  const flags = number(fields[0], 'DNSKEY flags', 0xffff);
  const head = Buffer.from([flags >> 8, flags & 0xff, number(fields[1], 'DNSKEY protocol', 255), algorithm(fields[2])]);
  return Buffer.concat([head, base64(fields.slice(3).join(''), 'DNSKEY public key')]);
}

function absoluteName(token: string, origin: Name | undefined): Name {
  if (token === '@') {
    if (!origin) throw new Error("'@' without an $ORIGIN");
    return origin;
  }
  if (token.endsWith('.') && !token.endsWith('\\.')) return nameFromText(token);
  if (!origin) throw new Error(`relative name ${JSON.stringify(token)} without an $ORIGIN`);
  return [...nameFromText(token), ...origin];
}

/* ----------------------------------------------------------------------------------------
 * Zone-file format.
 */

/** Split a line into fields: `;` starts a comment; parentheses are noted, not fields. Quotes are not part of DS or DNSKEY syntax. */
function fields(line: string): { tokens: string[]; open: number } {
  const body = line.replace(/;.*$/, '');
  const open = (body.match(/\(/g) ?? []).length - (body.match(/\)/g) ?? []).length;
  return { tokens: body.replace(/[()]/g, ' ').split(/\s+/).filter(Boolean), open };
}

function parseZoneFile(text: string, source: string): Rr[] {
  const out: Rr[] = [];
  const lines = text.split(/\r?\n/);
  let origin: Name | undefined;
  let owner: Name | undefined;
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    const first = lines[i]!;
    let { tokens, open } = fields(first);
    // A record in parentheses continues over the following lines (RFC 1035 §5.1).
    while (open > 0 && i + 1 < lines.length) {
      const more = fields(lines[++i]!);
      tokens = [...tokens, ...more.tokens];
      open += more.open;
    }
    if (open !== 0) throw new TrustAnchorError(source, start, 'unbalanced parentheses');
    if (tokens.length === 0) continue;
    try {
      const directive = tokens[0]!.toUpperCase();
      if (directive === '$ORIGIN') {
        if (tokens.length !== 2) throw new Error('$ORIGIN takes one name');
        origin = absoluteName(tokens[1]!, undefined);
        continue;
      }
      if (directive === '$TTL') continue;
      if (directive.startsWith('$')) throw new Error(`the directive ${tokens[0]} is not supported in a trust anchor file`);
      // A line starting with white space has the previous owner (RFC 1035 §5.1).
      if (!/^\s/.test(first)) owner = absoluteName(tokens.shift()!, origin);
      if (!owner) throw new Error('a record without an owner name');
      let ttl = 0;
      let type: string | undefined;
      while (tokens.length > 0 && type === undefined) {
        const token = tokens.shift()!;
        const upper = token.toUpperCase();
        if (/^\d+$/.test(token)) ttl = Number(token);
        else if (upper === 'IN') continue;
        else if (['CH', 'HS', 'CS', 'ANY'].includes(upper) || /^CLASS\d+$/.test(upper)) throw new Error(`class ${token}: trust anchors are of class IN`);
        else type = upper;
      }
      if (type === 'DS') out.push({ owner, type: RRTYPE.DS, class: 1, ttl, rdata: dsRdata(tokens) });
      else if (type === 'DNSKEY') out.push({ owner, type: RRTYPE.DNSKEY, class: 1, ttl, rdata: dnskeyRdata(tokens) });
      else throw new Error(type === undefined ? 'a record without a type' : `a ${type} record: trust anchors are DS or DNSKEY records`);
    } catch (error) {
      if (error instanceof TrustAnchorError) throw error;
      throw new TrustAnchorError(source, start, (error as Error).message);
    }
  }
  return out;
}

/* ----------------------------------------------------------------------------------------
 * BIND format.
 */

interface Token {
  text: string;
  line: number;
  quoted: boolean;
}

function tokenize(text: string, source: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  for (let i = 0; i < text.length;) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new TrustAnchorError(source, line, 'a /* comment that never ends');
      for (let j = i; j < end; j++) if (text[j] === '\n') line++;
      i = end + 2;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new TrustAnchorError(source, line, 'a quoted string that never ends');
      const body = text.slice(i + 1, end);
      tokens.push({ text: body, line, quoted: true });
      line += (body.match(/\n/g) ?? []).length;
      i = end + 1;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push({ text: c, line, quoted: false });
      i++;
    } else {
      let j = i;
      while (j < text.length && !/[\s{};"]/.test(text[j]!)) j++;
      tokens.push({ text: text.slice(i, j), line, quoted: false });
      i = j;
    }
  }
  return tokens;
}

const BIND_KINDS: Record<string, 'key' | 'ds'> = { 'initial-key': 'key', 'static-key': 'key', 'initial-ds': 'ds', 'static-ds': 'ds' };

function parseBind(text: string, source: string): Rr[] {
  const tokens = tokenize(text, source);
  const out: Rr[] = [];
  let pos = 0;
  const fail = (token: Token | undefined, why: string): never => {
    throw new TrustAnchorError(source, token?.line ?? tokens[tokens.length - 1]?.line ?? 1, why);
  };
  const expect = (want: string) => {
    const token = tokens[pos++];
    if (token?.text !== want || token.quoted) fail(token, `expected '${want}', found ${token ? JSON.stringify(token.text) : 'the end of the file'}`);
  };
  while (pos < tokens.length) {
    const statement = tokens[pos++]!;
    if (!['trust-anchors', 'managed-keys', 'trusted-keys'].includes(statement.text)) {
      fail(statement, `expected trust-anchors, managed-keys or trusted-keys, found ${JSON.stringify(statement.text)}`);
    }
    expect('{');
    while (tokens[pos] && !(tokens[pos]!.text === '}' && !tokens[pos]!.quoted)) {
      const start = tokens[pos]!;
      const entry: Token[] = [];
      while (tokens[pos] && !(tokens[pos]!.text === ';' && !tokens[pos]!.quoted)) {
        if (!tokens[pos]!.quoted && (tokens[pos]!.text === '{' || tokens[pos]!.text === '}'))
          fail(start, `expected ';' after the entry that starts with ${JSON.stringify(start.text)}`);
        entry.push(tokens[pos++]!);
      }
      expect(';');
      try {
        const owner = absoluteName(entry[0]!.text === '.' || entry[0]!.text.endsWith('.') ? entry[0]!.text : `${entry[0]!.text}.`, undefined);
        const words = entry.slice(1).map((token) => token.text);
        // trusted-keys entries have no kind: `name flags protocol algorithm "key"`.
        const kind = statement.text === 'trusted-keys' ? 'key' : BIND_KINDS[words.shift() ?? ''];
        if (kind === undefined) throw new Error(`expected initial-key, static-key, initial-ds or static-ds after ${nameToText(owner)}`);
        const data = words.flatMap((word) => word.split(/\s+/)).filter(Boolean);
        const rr: Rr =
          kind === 'ds'
            ? { owner, type: RRTYPE.DS, class: 1, ttl: 0, rdata: dsRdata(data) }
            : { owner, type: RRTYPE.DNSKEY, class: 1, ttl: 0, rdata: dnskeyRdata(data) };
        out.push(rr);
      } catch (error) {
        if (error instanceof TrustAnchorError) throw error;
        fail(start, (error as Error).message);
      }
    }
    expect('}');
    expect(';');
  }
  return out;
}
