/**
 * Host names and IP addresses, as the policy table and the Exim host lists need them:
 * validation in the spirit of Postfix's valid_hostname(), IDN to A-labels, IP literals
 * parsed to bytes (for CIDR matching) and printed in one canonical form.
 */
import { parentPatterns, toAsciiDomain, type Checked } from '../names/index.js';

export { parentPatterns, type Checked };

const MAX_LABEL = 63;
/** Postfix's VALID_HOSTNAME_LEN. */
const MAX_NAME = 255;

/**
 * Normalizes a DNS name with the library's one normaliser (lib/names toAsciiDomain: trailing
 * dot, IDN to A-labels, lower case), then checks it as Postfix's valid_hostname() does: letters,
 * digits, '-' and '_' (Postfix tolerates underscores), no empty label, no label over 63
 * characters, no hyphen at a label's edge, not all digits (that would be an address).
 */
export function normalizeDomain(raw: string): Checked<string> {
  const ascii = toAsciiDomain(raw);
  if (!ascii.ok) return ascii;
  const why = hostnameProblem(ascii.value);
  return why === undefined ? ascii : { ok: false, reason: why };
}

/** Why an ASCII lower-case name is not a valid host name, or undefined when it is. */
export function hostnameProblem(s: string): string | undefined {
  if (s === '') return 'empty name';
  if (s.length > MAX_NAME) return `name longer than ${MAX_NAME} characters`;
  let numeric = true;
  for (const label of s.split('.')) {
    if (label === '') return 'empty label';
    if (label.length > MAX_LABEL) return `label longer than ${MAX_LABEL} characters`;
    const bad = /[^a-z0-9_-]/.exec(label);
    if (bad) return `invalid character "${bad[0]}"`;
    if (label.startsWith('-') || label.endsWith('-')) return 'misplaced hyphen';
    if (/[^0-9]/.test(label)) numeric = false;
  }
  if (numeric) return 'numeric name (write an IP address in brackets, as [192.0.2.1])';
  return undefined;
}

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** Canonical text: dotted quad, or RFC 5952 style lower-case compressed IPv6. */
  text: string;
}

/** Parses a dotted-quad IPv4 address (decimal, no leading zeros) or an IPv6 address (no zone). */
export function parseIp(s: string): IpAddress | undefined {
  const v4 = parseIpv4(s);
  if (v4) return { family: 4, bytes: v4, text: Array.from(v4).join('.') };
  const v6 = parseIpv6(s);
  if (v6) return { family: 6, bytes: v6, text: formatIpv6(v6) };
  return undefined;
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseIpv4(item);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(parseInt(item, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  // An embedded IPv4 address may only end the address.
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    all = head;
  }
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** RFC 5952: lower case, no leading zeros, the longest run (2+) of zero groups as '::'. */
function formatIpv6(bytes: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((bytes[i]! << 8) | bytes[i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it carries; others unchanged. */
export function unmapIpv4(ip: IpAddress): IpAddress {
  if (ip.family !== 6) return ip;
  const b = ip.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return ip;
  if (b[10] !== 0xff || b[11] !== 0xff) return ip;
  const v4 = b.slice(12, 16);
  return { family: 4, bytes: v4, text: Array.from(v4).join('.') };
}

export interface IpNetwork {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/** Whether `ip` lies in `net` (the same family, the first `prefix` bits equal). */
export function inNetwork(ip: IpAddress, net: IpNetwork): boolean {
  if (ip.family !== net.family) return false;
  let bits = net.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip.bytes[i]! & mask) !== (net.bytes[i]! & mask)) return false;
  }
  return true;
}
