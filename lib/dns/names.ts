/**
 * Domain names for the resolver, in one textual form: the presentation form of RFC 1035 §5.1,
 * lowercased (RFC 4343: DNS compares ASCII letters without case), without the trailing dot
 * (the root is ''), with these escapes inside a label (RFC 4343 §2.1, RFC 1035 §5.1):
 * - a '.' as `\.` and a '\' as `\\`, so a dot in a name always separates labels;
 * - every octet outside 0x21-0x7E (space, controls, DEL, 8-bit octets) as `\DDD` (decimal),
 *   so a name never carries a space or a control character.
 * Names read from replies (lib/dns/wire.ts) and names given to the resolver (normalizeName)
 * end up in this same form, so they compare with `===`, and a name read from DNS can be asked
 * for again and means the same octets on the wire.
 *
 * Input names are normalised: lowercase, no trailing dot, IDN U-labels converted to A-labels
 * (RFC 5890/5891 via the WHATWG/UTS #46 mapping Node implements). Only labels that contain
 * non-ASCII characters are converted, one label at a time, so names that are not host names
 * (`_25._tcp.mx.example.com`, `1.2.0.192.in-addr.arpa`) pass through untouched: the whole-name
 * WHATWG host parser would read an all-numeric name as an IPv4 address and rewrite it.
 */
import { asciiLabel, mapIdnDots } from '../names/index.js';

/** RFC 1035 §2.3.4: labels are 63 octets or less, names 255 octets on the wire (253 as text). */
export const MAX_LABEL_OCTETS = 63;
export const MAX_NAME_OCTETS = 255;

const BACKSLASH = 0x5c;
const DOT = 0x2e;

/** Octets a label shows as they are: printable ASCII but '.' and '\' (RFC 4343 §2.1). */
function plain(octet: number): boolean {
  return octet >= 0x21 && octet <= 0x7e && octet !== DOT && octet !== BACKSLASH;
}

/** ASCII letters lowercased (RFC 4343 §3: only A-Z fold), then escaped as described above. */
export function presentLabel(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let text = '';
  for (let i = start; i < end; i++) {
    let octet = bytes[i]!;
    if (octet >= 0x41 && octet <= 0x5a) octet += 0x20;
    if (plain(octet)) text += String.fromCharCode(octet);
    else if (octet === DOT || octet === BACKSLASH) text += `\\${String.fromCharCode(octet)}`;
    else text += `\\${String(octet).padStart(3, '0')}`;
  }
  return text;
}

/** The labels of a name in the form above, as octets; '' (the root) has none. */
export function nameLabels(name: string): Buffer[] {
  if (name === '') return [];
  return parseLabels(name, name).labels.map((label) => Buffer.from(label.octets));
}

interface ParsedLabel {
  octets: number[];
  /** The characters as written, for IDNA conversion of labels without escapes. */
  text: string;
  escaped: boolean;
  nonAscii: boolean;
}

/**
 * Split presentation text into labels, reading `\DDD` and `\X` escapes (RFC 1035 §5.1).
 * Unescaped characters must be printable ASCII, or non-ASCII (for IDNA later).
 */
function parseLabels(text: string, input: string): { labels: ParsedLabel[] } {
  const labels: ParsedLabel[] = [];
  let current: ParsedLabel = { octets: [], text: '', escaped: false, nonAscii: false };
  const quoted = JSON.stringify(input);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) {
      current.escaped = true;
      const digits = /^[0-9]{3}/.exec(text.slice(i + 1, i + 4));
      if (digits) {
        const value = Number(digits[0]);
        if (value > 255) throw new TypeError(`DNS name ${quoted} has an escape \\${digits[0]} above 255`);
        current.octets.push(value);
        i += 3;
        continue;
      }
      const next = text.codePointAt(i + 1);
      if (next === undefined) throw new TypeError(`DNS name ${quoted} ends with a lone backslash`);
      if (next < 0x20 || next > 0x7e) {
        throw new TypeError(`DNS name ${quoted} has a backslash before a character that is not printable ASCII`);
      }
      current.octets.push(next);
      i += 1;
      continue;
    }
    if (c === DOT) {
      if (current.octets.length === 0 && current.text === '') {
        throw new TypeError(`DNS name ${quoted} has an empty label`);
      }
      labels.push(current);
      current = { octets: [], text: '', escaped: false, nonAscii: false };
      continue;
    }
    if (c > 0x7f) {
      current.nonAscii = true;
      current.text += text[i];
      continue;
    }
    if (c < 0x21 || c > 0x7e) throw new TypeError(`DNS name ${quoted} has a label with spaces or control characters`);
    current.octets.push(c);
    current.text += text[i];
  }
  if (current.octets.length > 0 || current.text !== '') labels.push(current);
  return { labels };
}

/**
 * Normalise a domain name for a query, or throw a TypeError saying why it cannot be one.
 * Bad names are programming or input errors, not DNS failures, so they throw. Escapes
 * (`\.`, `\\`, `\DDD`) are read as RFC 1035 §5.1 says, so a name this module printed reads
 * back to the same octets.
 */
export function normalizeName(input: string): string {
  if (typeof input !== 'string') throw new TypeError(`DNS name must be a string, got ${typeof input}`);
  // IDNA full stops separate labels, as in every other name the library reads (lib/names).
  const name = mapIdnDots(input.trim());
  // A trailing unescaped dot marks the name as absolute; the resolver's names all are.
  const absolute = name.endsWith('.') && !escapedAt(name, name.length - 1);
  const body = absolute ? name.slice(0, -1) : name;
  if (body === '') throw new TypeError(`DNS name must not be empty (got ${JSON.stringify(input)})`);
  if (body.endsWith('.') && !escapedAt(body, body.length - 1)) {
    throw new TypeError(`DNS name ${JSON.stringify(input)} has an empty label`);
  }
  const parsed = parseLabels(body, input).labels;
  let wire = 1;
  const out: string[] = [];
  for (const label of parsed) {
    let octets = label.octets;
    if (label.nonAscii) {
      // The library's one label normaliser (lib/names), as for recipients and policy keys.
      const mapped = label.escaped ? undefined : asciiLabel(label.text);
      const ascii = mapped?.ok ? mapped.value : '';
      if (ascii === '') {
        throw new TypeError(`DNS name ${JSON.stringify(input)} has a label that is not a valid IDN: ${JSON.stringify(label.text)}`);
      }
      if (!/^[\x21-\x7e]+$/.test(ascii)) {
        throw new TypeError(`DNS name ${JSON.stringify(input)} has a label with spaces or control characters`);
      }
      octets = [...Buffer.from(ascii, 'latin1')];
    }
    if (octets.length > MAX_LABEL_OCTETS) {
      throw new TypeError(`DNS name ${JSON.stringify(input)} has a label longer than ${MAX_LABEL_OCTETS} octets`);
    }
    wire += octets.length + 1;
    out.push(presentLabel(Uint8Array.from(octets)));
  }
  if (wire > MAX_NAME_OCTETS) {
    throw new TypeError(`DNS name ${JSON.stringify(input)} is longer than ${MAX_NAME_OCTETS} octets on the wire (253 characters)`);
  }
  return out.join('.');
}

/** Whether the character at `index` is escaped by an odd run of backslashes before it. */
function escapedAt(text: string, index: number): boolean {
  let count = 0;
  for (let i = index - 1; i >= 0 && text.charCodeAt(i) === BACKSLASH; i--) count++;
  return count % 2 === 1;
}
