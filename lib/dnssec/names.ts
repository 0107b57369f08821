/**
 * Domain names as the validator handles them: arrays of labels (octets, leftmost label first,
 * the root is the empty array), compared and ordered as RFC 4034 §6.1 says, and written in the
 * uncompressed wire form RFC 4034 §6.2 signs. Pure: no I/O.
 *
 * Text goes in and out through lib/dns/names.ts (one presentation form for the whole
 * library); this module adds what DNSSEC needs on top: canonical ordering, ancestry, the
 * closest common ancestor, wildcards, and reading names from RDATA octets.
 */
import { MAX_LABEL_OCTETS, MAX_NAME_OCTETS, nameLabels, normalizeName, presentLabel } from '../dns/names.js';

/** A domain name: its labels, leftmost first; [] is the root. */
export type Name = readonly Uint8Array[];

export const ROOT: Name = [];

const ASTERISK = 0x2a;

/** A name from presentation text (`www.example.`, `www.example`, `.` for the root). Throws a TypeError for a bad name. */
export function nameFromText(text: string): Name {
  const trimmed = text.trim();
  if (trimmed === '.' || trimmed === '') return ROOT;
  return nameLabels(normalizeName(trimmed));
}

/** The absolute presentation form, lowercase, with a trailing dot ('.' for the root). */
export function nameToText(name: Name): string {
  return name.length === 0 ? '.' : `${name.map((label) => presentLabel(label)).join('.')}.`;
}

/** The name as lib/dns writes it (lowercase, no trailing dot, '' for the root). */
export function nameToDns(name: Name): string {
  return name.map((label) => presentLabel(label)).join('.');
}

function lower(octet: number): number {
  return octet >= 0x41 && octet <= 0x5a ? octet + 0x20 : octet;
}

/** RFC 4034 §6.1: labels compare as octet strings with ASCII letters lowercased; a prefix sorts first. */
export function compareLabels(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = lower(a[i]!) - lower(b[i]!);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * RFC 4034 §6.1 canonical order: names compare label by label from the rightmost (most
 * significant) label; a name that runs out of labels first (an ancestor) sorts first.
 */
export function compareNames(a: Name, b: Name): number {
  let i = a.length - 1;
  let j = b.length - 1;
  for (; i >= 0 && j >= 0; i--, j--) {
    const d = compareLabels(a[i]!, b[j]!);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Equal without regard to ASCII case (RFC 4343). */
export function sameName(a: Name, b: Name): boolean {
  return a.length === b.length && compareNames(a, b) === 0;
}

/** Whether `name` is `ancestor` or below it. */
export function isSubdomain(name: Name, ancestor: Name): boolean {
  if (ancestor.length > name.length) return false;
  const offset = name.length - ancestor.length;
  for (let i = 0; i < ancestor.length; i++) {
    if (compareLabels(name[offset + i]!, ancestor[i]!) !== 0) return false;
  }
  return true;
}

/** Whether `name` is strictly below `ancestor`. */
export function isProperSubdomain(name: Name, ancestor: Name): boolean {
  return name.length > ancestor.length && isSubdomain(name, ancestor);
}

/** The `count` rightmost labels of a name (its ancestor at that depth). */
export function suffix(name: Name, count: number): Name {
  return name.slice(name.length - count);
}

/** The longest name both names are at or below. */
export function commonAncestor(a: Name, b: Name): Name {
  let n = 0;
  while (n < a.length && n < b.length && compareLabels(a[a.length - 1 - n]!, b[b.length - 1 - n]!) === 0) n++;
  return suffix(a, n);
}

/** Whether the leftmost label is `*` (RFC 4592 §2.1.1). */
export function isWildcard(name: Name): boolean {
  const first = name[0];
  return first !== undefined && first.length === 1 && first[0] === ASTERISK;
}

/** `*.<name>`. */
export function wildcardOf(name: Name): Name {
  return [Uint8Array.of(ASTERISK), ...name];
}

/** The labels an RRSIG's Labels field counts (RFC 4034 §3.1.3): the root and a leading `*` do not count. */
export function signedLabelCount(name: Name): number {
  return isWildcard(name) ? name.length - 1 : name.length;
}

/** The uncompressed wire form (RFC 1035 §3.1); `lowercase` gives RFC 4034 §6.2's canonical form. */
export function nameWire(name: Name, lowercase = true): Buffer {
  const size = name.reduce((sum, label) => sum + 1 + label.length, 1);
  const out = Buffer.alloc(size);
  let pos = 0;
  for (const label of name) {
    out[pos++] = label.length;
    for (let i = 0; i < label.length; i++) out[pos++] = lowercase ? lower(label[i]!) : label[i]!;
  }
  out[pos] = 0;
  return out;
}

/** A name lowercased (a copy). */
export function lowercaseName(name: Name): Name {
  return name.map((label) => Uint8Array.from(label, lower));
}

/**
 * An uncompressed name in RDATA at `pos` (RFC 4034 §6.2 / RFC 3597 §4: the names in the DNSSEC
 * record types are never compressed). Throws for a compression pointer, a reserved label type,
 * a name running past `end`, or one longer than 255 octets.
 */
export function readName(data: Uint8Array, pos: number, end = data.length): { name: Name; end: number } {
  const labels: Uint8Array[] = [];
  let octets = 1;
  for (;;) {
    if (pos >= end) throw new Error('a name runs past the end of its RDATA');
    const length = data[pos]!;
    if (length === 0) return { name: labels, end: pos + 1 };
    if (length > MAX_LABEL_OCTETS) {
      throw new Error(
        length >= 0xc0 ? 'a compressed name where RDATA names are never compressed' : `a label of reserved type 0x${(length & 0xc0).toString(16)}`,
      );
    }
    octets += length + 1;
    if (octets > MAX_NAME_OCTETS) throw new Error(`a name longer than ${MAX_NAME_OCTETS} octets`);
    if (pos + 1 + length > end) throw new Error('a label runs past the end of its RDATA');
    labels.push(data.slice(pos + 1, pos + 1 + length));
    pos += 1 + length;
  }
}
