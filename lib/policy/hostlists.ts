/**
 * Exim's hosts_require_tls and hosts_avoid_tls, as host lists over one MX host, mapped onto
 * the levels.
 *
 * Patterns (Exim spec, "Host lists"): `*` (any host), an exact name, `*suffix` (any name that
 * ends with suffix, e.g. `*.example.com`), an IP address, an IP network in CIDR notation
 * (`192.0.2.0/24`, `2001:db8::/32`); a leading `!` (white space may follow) negates. The first
 * matching item decides; when none matches, the host is in the list only if the last item was
 * negative (as if the list ended with `*`). An IPv4-mapped IPv6 address is matched as IPv4.
 *
 * Departures from Exim, all because this module does no I/O: an exact name is compared with
 * the MX host's name (Exim looks the pattern's addresses up and compares those with the
 * host's address); regular expressions (`^...`), lookups (`type;...`), `@`, `@[]`, named
 * lists (`+name`), file names and the empty pattern are rejected.
 */
import type { Policy } from '../types.js';
import { PolicyError, type PolicyProblem } from './errors.js';
import { isStricter } from './levels.js';
import { inNetwork, normalizeDomain, parseIp, unmapIpv4, type IpAddress } from './names.js';

type Matcher =
  | { kind: 'any' }
  | { kind: 'name'; name: string }
  | { kind: 'suffix'; suffix: string }
  | { kind: 'ip'; ip: IpAddress }
  | { kind: 'net'; family: 4 | 6; bytes: Uint8Array; prefix: number };

export interface HostListItem {
  /** The pattern as written. */
  readonly pattern: string;
  readonly negated: boolean;
  readonly matcher: Matcher;
}

/** A checked Exim host list. */
export interface HostList {
  /** The option it was given as, for messages and `source`: hostsRequireTls, hostsAvoidTls. */
  readonly option: string;
  readonly items: readonly HostListItem[];
}

/** The MX host being connected to: its name (from MX or the relay) and the address used. */
export interface HostIdentity {
  name: string;
  address: string;
}

export interface HostLists {
  hostsRequireTls?: readonly string[] | HostList;
  hostsAvoidTls?: readonly string[] | HostList;
}

/** Checks an Exim host list; throws a PolicyError (file = option, line = 1-based item) listing every bad pattern. */
export function parseHostList(patterns: readonly string[], option: string): HostList {
  const { list, problems } = checkHostList(patterns, option);
  if (problems.length > 0) throw new PolicyError(problems);
  return list;
}

/** Like parseHostList(), but returns the problems instead of throwing. */
export function checkHostList(patterns: readonly string[], option: string): { list: HostList; problems: PolicyProblem[] } {
  const problems: PolicyProblem[] = [];
  const items: HostListItem[] = [];
  if (!Array.isArray(patterns)) {
    problems.push({ file: option, line: 0, message: 'a host list must be an array of patterns' });
  } else {
    patterns.forEach((raw, i) => {
      const line = i + 1;
      if (typeof raw !== 'string') {
        problems.push({ file: option, line, message: `pattern ${line} must be a string` });
        return;
      }
      const pattern = raw.trim();
      const negated = pattern.startsWith('!');
      const body = negated ? pattern.slice(1).trimStart() : pattern;
      const m = compilePattern(body);
      if (typeof m === 'string') problems.push({ file: option, line, message: `${m} in pattern "${raw}"` });
      else items.push(Object.freeze({ pattern, negated, matcher: m }));
    });
  }
  return { list: Object.freeze({ option, items: Object.freeze(items) }), problems };
}

function compilePattern(p: string): Matcher | string {
  if (p === '') return 'empty pattern (it matches only local SMTP input in Exim, never a server)';
  if (p === '*') return { kind: 'any' };
  if (p.startsWith('^')) return 'regular expressions are not supported';
  if (p.startsWith('@')) return '"@" patterns are not supported';
  if (p.startsWith('+')) return 'named lists are not supported';
  if (p.startsWith('/')) return 'file names are not supported';
  if (p.startsWith('<')) return 'a list separator is not needed in an array';
  if (p.includes(';')) return 'lookups are not supported';
  if (p.startsWith('*')) {
    const rest = p.slice(1);
    const dot = rest.startsWith('.');
    const d = normalizeDomain(dot ? rest.slice(1) : rest);
    if (!d.ok) return `invalid wildcard: ${d.reason}`;
    return { kind: 'suffix', suffix: (dot ? '.' : '') + d.value };
  }
  const slash = p.indexOf('/');
  if (slash !== -1) {
    const ip = parseIp(p.slice(0, slash));
    if (!ip) return `malformed ${p.includes(':') ? 'IPv6' : 'IPv4'} address in CIDR`;
    const bits = ip.family === 4 ? 32 : 128;
    const len = p.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(len) || Number(len) > bits) return `bad mask length "${len}" (expected 0-${bits})`;
    return { kind: 'net', family: ip.family, bytes: ip.bytes, prefix: Number(len) };
  }
  const ip = parseIp(p);
  if (ip) return { kind: 'ip', ip };
  // As Exim: digits and dots only, or hex digits with colons, mean an address that went wrong.
  if (/^[0-9.]+$/.test(p)) return 'malformed IPv4 address';
  if (p.includes(':') && /^[0-9a-fA-F:.]+$/.test(p)) return 'malformed IPv6 address';
  const d = normalizeDomain(p);
  if (!d.ok) return `invalid host name: ${d.reason}`;
  return { kind: 'name', name: d.value };
}

/** The item that decides whether the host is in the list (first match wins), or undefined when none matches. */
export function matchHostList(list: HostList, host: HostIdentity): HostListItem | undefined {
  const n = normalizeDomain(host.name ?? '');
  const name = n.ok ? n.value : (host.name ?? '').toLowerCase().replace(/\.$/, '');
  const parsed = parseIp((host.address ?? '').trim());
  const ip = parsed ? unmapIpv4(parsed) : undefined;
  for (const item of list.items) {
    const m = item.matcher;
    let hit = false;
    switch (m.kind) {
      case 'any':
        hit = true;
        break;
      case 'name':
        hit = name !== '' && name === m.name;
        break;
      case 'suffix':
        hit = name !== '' && name.endsWith(m.suffix);
        break;
      case 'ip':
        hit = ip !== undefined && ip.family === m.ip.family && ip.text === m.ip.text;
        break;
      case 'net':
        hit = ip !== undefined && inNetwork(ip, m);
        break;
    }
    if (hit) return item;
  }
  return undefined;
}

/** Whether the host is in the list, with Exim's rule for a list whose last item is negative. */
export function inHostList(list: HostList, host: HostIdentity): boolean {
  const item = matchHostList(list, host);
  if (item) return !item.negated;
  const last = list.items[list.items.length - 1];
  return last !== undefined && last.negated;
}

const compiled = new WeakMap<readonly string[], HostList>();

function toHostList(value: readonly string[] | HostList, option: string): HostList {
  if (!Array.isArray(value)) return value as HostList;
  const arr = value as readonly string[];
  let list = compiled.get(arr);
  if (!list || list.option !== option) {
    list = parseHostList(arr, option);
    compiled.set(arr, list);
  }
  return list;
}

/**
 * Applies Exim's lists to the policy found for one MX host.
 *
 * - In hostsRequireTls: a level of none or may becomes encrypt (source `hostsRequireTls`);
 *   a level that already requires TLS stays as it is. `dane` stays `dane`: raising it to
 *   encrypt would drop DANE authentication.
 * - In hostsAvoidTls (and not in hostsRequireTls): a level of may becomes none (source
 *   `hostsAvoidTls`). Exim checks hosts_require_tls after skipping STARTTLS for a host in
 *   hosts_avoid_tls and then refuses to send in clear, so a requirement always beats
 *   avoidance; likewise here a level that requires TLS (or dane, which does with TLSA
 *   records) is never lowered to cleartext by hostsAvoidTls.
 *
 * The lists are checked on first use (a PolicyError names the option); pass HostList values
 * from parseHostList() to check them earlier.
 */
export function applyHostLists(policy: Policy, host: HostIdentity, lists: HostLists): Policy {
  const require = lists.hostsRequireTls ? toHostList(lists.hostsRequireTls, 'hostsRequireTls') : undefined;
  const avoid = lists.hostsAvoidTls ? toHostList(lists.hostsAvoidTls, 'hostsAvoidTls') : undefined;
  if (require && inHostList(require, host)) {
    // A level that already has TLS stays (dane's TLSA, verify's names still authenticate), but
    // is marked so that nothing lowers it to cleartext: dane without TLSA, a fallback to may.
    if (policy.level !== 'none' && policy.level !== 'may') return Object.freeze({ ...policy, requireTls: true, source: `${policy.source}, ${require.option}` });
    const { tempfailTryclear: _dropped, shadow, ...rest } = policy;
    const raised: Policy = { ...rest, level: 'encrypt', source: require.option };
    if (shadow !== undefined && isStricter(shadow, 'encrypt')) raised.shadow = shadow;
    return Object.freeze(raised);
  }
  if (avoid && inHostList(avoid, host)) {
    if (policy.level !== 'may') return policy;
    return Object.freeze({ level: 'none', source: avoid.option });
  }
  return policy;
}
