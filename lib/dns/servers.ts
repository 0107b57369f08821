/**
 * Name server addresses: parsing `servers` options and /etc/resolv.conf, and deciding
 * which servers sit on loopback (whose AD bit the default `trustAd: 'loopback'` believes).
 */
import { readFileSync } from 'node:fs';
import { isIP, isIPv4, isIPv6 } from 'node:net';

export interface ServerAddress {
  /** IP address, without brackets. */
  address: string;
  port: number;
  family: 4 | 6;
  /** `127.0.0.1:53`, `[::1]:53`: how the server is named in reasons and warnings. */
  label: string;
}

const DEFAULT_PORT = 53;

/** Where resolv.conf(5) lives. */
export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

/**
 * Parse `'127.0.0.1'`, `'127.0.0.1:5353'`, `'::1'`, `'[::1]'` or `'[::1]:53'`.
 * Only IP addresses are accepted: the resolver cannot look up its own servers.
 * Throws a TypeError for anything else.
 */
export function parseServer(spec: string): ServerAddress {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new TypeError(`DNS server must be an IP address string, got ${JSON.stringify(spec)}`);
  }
  const text = spec.trim();
  let address: string;
  let port = DEFAULT_PORT;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    address = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (isIP(text)) {
    address = text;
  } else {
    const hostPort = /^([^:]+):(\d+)$/.exec(text);
    if (!hostPort) throw new TypeError(`DNS server ${JSON.stringify(spec)} is not an IP address with an optional port`);
    address = hostPort[1]!;
    port = Number(hostPort[2]);
  }
  if (!isIP(address)) throw new TypeError(`DNS server ${JSON.stringify(spec)} is not an IP address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`DNS server ${JSON.stringify(spec)} has an invalid port`);
  }
  const family = isIPv6(address) ? 6 : 4;
  return { address, port, family, label: family === 6 ? `[${address}]:${port}` : `${address}:${port}` };
}

/**
 * The `nameserver` lines of a resolv.conf text, in order. resolv.conf(5) puts one address
 * per line and uses port 53; `#` and `;` start comments.
 */
export function parseResolvConf(text: string): string[] {
  const servers: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    // Cut at the first '#' or ';' by one scan of the line: a pattern like /[#;].*$/ tries
    // every comment character as a start and rescans the rest of the line from each, which
    // is quadratic on a long line of them that does not end where `$` can match (a lone CR).
    const cut = raw.search(/[#;]/);
    const line = (cut < 0 ? raw : raw.slice(0, cut)).trim();
    const match = /^nameserver\s+(\S+)/.exec(line);
    if (match && isIP(match[1]!.replace(/%.*$/, ''))) servers.push(match[1]!);
  }
  return servers;
}

/**
 * The system's name servers from /etc/resolv.conf; when it names none (or cannot be read),
 * resolv.conf(5)'s default: the name server on the local machine.
 */
export function systemServers(path = DEFAULT_RESOLV_CONF): string[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // Missing or unreadable: fall through to the default.
  }
  const servers = parseResolvConf(text);
  return servers.length > 0 ? servers : ['127.0.0.1'];
}

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback (::ffff:127.x.y.z). */
export function isLoopback(address: string): boolean {
  if (isIPv4(address)) return address.startsWith('127.');
  if (!isIPv6(address)) return false;
  const lower = address.toLowerCase().replace(/%.*$/, '');
  if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1]!.startsWith('127.');
  return false;
}
