/**
 * Table keys and next hops: the forms Postfix's policy table is indexed by, normalized so
 * that the same destination always has the same key.
 */
import { normalizeDomain, parseIp, type Checked } from './names.js';

/** Service names Postfix users write after `[host]:`, as the ports they stand for. */
const SERVICES: Readonly<Record<string, number>> = Object.freeze({
  smtp: 25,
  submission: 587,
  submissions: 465,
  smtps: 465,
});

/**
 * The host inside `[...]`, canonical: a DNS name (A-labels, lower case), a dotted quad, or an
 * IPv6 address in RFC 5952 form without the `ipv6:` prefix (Postfix's next-hop parser,
 * host_port(), accepts both `[ipv6:2001:db8::1]` and `[2001:db8::1]`; both become the latter).
 */
export function normalizeBracketHost(inner: string): Checked<string> {
  const ipv6Prefixed = /^ipv6:/i.test(inner);
  const s = ipv6Prefixed ? inner.slice(5) : inner;
  if (ipv6Prefixed || s.includes(':')) {
    const ip = parseIp(s);
    return ip?.family === 6 ? { ok: true, value: ip.text } : { ok: false, reason: `malformed IPv6 address "${s}"` };
  }
  if (/^[0-9.]+$/.test(s)) {
    const ip = parseIp(s);
    return ip?.family === 4 ? { ok: true, value: ip.text } : { ok: false, reason: `malformed IPv4 address "${s}"` };
  }
  return normalizeDomain(s);
}

/** A port as written after `]:`: 1-65535, or smtp, submission, submissions, smtps. */
export function parsePort(s: string): Checked<number> {
  if (/^[0-9]+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 65535) return { ok: true, value: n };
    return { ok: false, reason: `port ${s} out of range 1-65535` };
  }
  const named = SERVICES[s.toLowerCase()];
  if (named !== undefined) return { ok: true, value: named };
  return { ok: false, reason: `bad port "${s}" (expected a number or one of ${Object.keys(SERVICES).join(', ')})` };
}

/**
 * Normalizes a policy table key: `example.com`, `.example.com`, `[host]`, `[host]:port`, `host:port`.
 * Lower case, A-labels, no trailing dot, canonical IP literals, numeric ports.
 */
export function normalizeKey(raw: string): Checked<string> {
  const s = raw.trim();
  if (s === '') return { ok: false, reason: 'empty destination' };
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close === -1) return { ok: false, reason: 'missing "]"' };
    const rest = s.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return { ok: false, reason: 'garbage after "]"' };
    const host = normalizeBracketHost(s.slice(1, close));
    if (!host.ok) return host;
    if (rest === '') return { ok: true, value: `[${host.value}]` };
    if (rest === ':') return { ok: false, reason: 'empty port after "]:"' };
    const port = parsePort(rest.slice(1));
    if (!port.ok) return port;
    return { ok: true, value: `[${host.value}]:${port.value}` };
  }
  if (s === '*') return { ok: false, reason: 'no wildcard entry; set the default level for destinations without one' };
  if (s.startsWith('.')) {
    const d = normalizeDomain(s.slice(1));
    return d.ok ? { ok: true, value: `.${d.value}` } : d;
  }
  if (s.includes(':')) {
    if (parseIp(s) || /^ipv6:/i.test(s)) return { ok: false, reason: 'an IP address must be in brackets, as [2001:db8::1]' };
    // `host:port`: the key Postfix looks up for a relayhost written without brackets with a
    // port (tls_policy_lookup(), one lookup as written); it matches `relay: 'host:port'`.
    const colon = s.lastIndexOf(':');
    const hostPart = s.slice(0, colon);
    if (/^[0-9.]+$/.test(hostPart)) return { ok: false, reason: 'an IP address must be in brackets, as [192.0.2.1]:25' };
    const host = normalizeDomain(hostPart);
    if (!host.ok) return host;
    const port = parsePort(s.slice(colon + 1));
    if (!port.ok) return port;
    return { ok: true, value: `${host.value}:${port.value}` };
  }
  if (/^[0-9.]+$/.test(s)) {
    return { ok: false, reason: parseIp(s) ? 'an IP address must be in brackets, as [192.0.2.1]' : 'numeric name' };
  }
  return normalizeDomain(s);
}
