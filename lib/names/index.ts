/**
 * names: the one normaliser for every domain name the library compares. Pure.
 *
 * A recipient's domain, a policy table key, an Exim host-list pattern, a `match` name, a relay
 * host, a name asked of DNS: each must become the same ASCII string for the same name, or a
 * policy written for one spelling silently misses another (`ẞtrasse.de secure` stored as one
 * name while `user@ẞtrasse.de` is delivered to another).
 *
 * The rules, in order:
 * - one trailing dot is removed (a fully qualified name is the same name);
 * - the IDNA label separators U+3002, U+FF0E and U+FF61 are full stops (UTS #46 section 4.1,
 *   RFC 3490 section 3.1);
 * - each label that holds non-ASCII characters is mapped to an A-label with UTS #46
 *   non-transitional processing, as browsers and Node's `url.domainToASCII` do (so U+1E9E maps to
 *   `ss`, `ß` is kept and encoded, case is folded by the mapping itself); labels are converted
 *   one at a time, so that names that are not host names (`_25._tcp`, an all-numeric label) pass
 *   through untouched: the whole-name WHATWG host parser would read `1.2.3.4` or `0x7f.1` as an
 *   IPv4 address and rewrite it;
 * - ASCII letters are lowercased (RFC 4343: DNS names compare case-insensitively in ASCII only);
 * - an empty label and a label over 63 octets are errors (RFC 1035 section 2.3.4), with the
 *   reason; `toDnsName` also refuses spaces, control characters and names over 253 characters.
 * Stricter rules (Postfix's valid_hostname for table keys) are the caller's, applied to the
 * normalised name.
 */
import { domainToASCII } from 'node:url';

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** RFC 1035 section 2.3.4: 63 octets a label, 255 octets on the wire (253 characters as text). */
export const MAX_LABEL = 63;
export const MAX_NAME = 253;

/** UTS #46 section 4.1: these separate labels as '.' does. */
const IDN_DOTS = /[\u3002\uff0e\uff61]/g;

/**
 * One label in ASCII: an ASCII label lowercased (A-Z only, RFC 4343); a label with non-ASCII
 * characters mapped to an A-label by UTS #46 (its mapping folds case itself). The resolver's
 * own name parser (lib/dns/names.ts, which also reads RFC 1035 escapes) uses it for each label.
 */
export function asciiLabel(label: string): Checked<string> {
  let ascii = label;
  if (!/^[\x00-\x7f]*$/.test(label)) {
    ascii = domainToASCII(label);
    // An empty result: not valid IDNA. A dot: the mapping turned the label into several.
    if (ascii === '' || ascii.includes('.')) return { ok: false, reason: 'not a valid internationalized domain name' };
  }
  return { ok: true, value: ascii.replace(/[A-Z]+/g, (c) => c.toLowerCase()) };
}

/** UTS #46 section 4.1 full stops as '.'. */
export function mapIdnDots(name: string): string {
  return name.replace(IDN_DOTS, '.');
}

/**
 * The ASCII form of a domain name, or why it has none: mapping, empty labels and the label
 * length only. What else a name must be is the caller's to check on the result: a DNS name
 * (`dnsNameProblem`), a host name in a policy table (Postfix's valid_hostname).
 */
export function toAsciiDomain(raw: string): Checked<string> {
  if (typeof raw !== 'string') return { ok: false, reason: `a domain name must be a string, not ${typeof raw}` };
  let name = mapIdnDots(raw);
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '') return { ok: false, reason: 'empty name' };
  const labels: string[] = [];
  for (const label of name.split('.')) {
    if (label === '') return { ok: false, reason: 'empty label' };
    const ascii = asciiLabel(label);
    if (!ascii.ok) return ascii;
    if (ascii.value.length > MAX_LABEL) return { ok: false, reason: `label longer than ${MAX_LABEL} characters` };
    labels.push(ascii.value);
  }
  return { ok: true, value: labels.join('.') };
}

/** Why a name from toAsciiDomain cannot be asked of DNS, or undefined: a space or control character, or over 253 characters. */
export function dnsNameProblem(ascii: string): string | undefined {
  if (!/^[\x21-\x7e]+$/.test(ascii)) return 'a label holds a space or a control character';
  if (ascii.length > MAX_NAME) return `name longer than ${MAX_NAME} characters`;
  return undefined;
}

/** toAsciiDomain, then dnsNameProblem: a name that can be asked of DNS. */
export function toDnsName(raw: string): Checked<string> {
  const ascii = toAsciiDomain(raw);
  if (!ascii.ok) return ascii;
  const why = dnsNameProblem(ascii.value);
  return why === undefined ? ascii : { ok: false, reason: why };
}

/** The parent-domain patterns Postfix tries for a domain, nearest first: a.b.c -> .b.c, .c */
export function parentPatterns(domain: string): string[] {
  const out: string[] = [];
  for (let i = domain.indexOf('.', 1); i !== -1; i = domain.indexOf('.', i + 1)) out.push(domain.slice(i));
  return out;
}
