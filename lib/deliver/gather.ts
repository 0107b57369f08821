/**
 * gather: the facts one destination's delivery needs before any connection (I/O). For a
 * destination domain: its MX RRset (RFC 5321 section 5.1: no MX is the domain itself, a null MX
 * (RFC 7505) or NXDOMAIN a permanent failure), each host's addresses, and its TLSA records when
 * a DANE level (or shadow) may use them; for a relay, its addresses. Every answer keeps its
 * DNSSEC status, because DANE needs to know, for each host (as mox's gather does):
 * - whether the MX RRset that named it was secure (dane-only refuses an insecure one; dane
 *   reports a match Trusted instead of Verified);
 * - whether its address answer was secure (TLSA is used only then, RFC 7672 section 2.2.2) and
 *   the CNAME chain it followed (the end of a chain is a reference name only when secure);
 * - its TLSA records, or why there are none, or that the lookup failed (never read as "none").
 * Hosts are resolved in MX order, a few at a time, until `maxMxAddresses` addresses are found.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { AddressRecord, DnsAnswer, DnsResult } from '../dns/index.js';
import { wantsTlsa, type TlsaLookup } from '../plan/dane.js';
import type { HostTarget } from '../plan/host.js';
import { isDaneLevel } from '../policy/levels.js';
import { hostnameProblem } from '../policy/names.js';
import type { Policy } from '../types.js';
import { lookupTlsa, tlsaName } from './tlsa.js';
import type { DeliverDns, DeliverSettings, Destination } from './types.js';

export type TargetsResult = { targets: HostTarget[] } | { fail: { reason: string; code: string; temporary: boolean } };

/** MX host names looked up at the most, in delivery order (a hostile RRset may hold hundreds). */
export const MAX_MX_NAMES = 20;
/** Host lookups (addresses, with TLSA when wanted) in flight at once for one destination. */
const MAX_HOST_LOOKUPS_IN_FLIGHT = 5;

function shuffle<T>(items: T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** MX records -> host names in delivery order (preference, random among equals). */
export function orderMx(records: { exchange: string; preference: number }[]): string[] {
  const byPreference = new Map<number, string[]>();
  for (const r of records) {
    const list = byPreference.get(r.preference) ?? [];
    list.push(r.exchange.toLowerCase().replace(/\.$/, ''));
    byPreference.set(r.preference, list);
  }
  return [...byPreference.keys()].sort((a, b) => a - b).flatMap((p) => shuffle(byPreference.get(p) ?? []));
}

export async function gather(destination: Destination, dns: DeliverDns, settings: DeliverSettings, policy: Policy): Promise<TargetsResult> {
  let hosts: string[];
  const invalidHosts: string[] = [];
  let mxSecure = true; // a relay, or an implicit MX, is named by the caller or the domain itself
  let viaMx = false;
  let port = settings.port;
  let implicitTls = false;
  if (destination.kind === 'relay') {
    hosts = [destination.host];
    port = destination.port;
    implicitTls = destination.implicitTls;
  } else {
    const domain = destination.domain;
    const mx = await dns.mx(domain);
    settings.observe?.({ type: 'mx', destination: domain, answer: mx });
    if (mx.status === 'failed') return { fail: { reason: mx.reason, code: 'EDNS', temporary: true } };
    if (mx.rcode === 'NXDOMAIN') {
      return { fail: { reason: `${domain} does not exist (NXDOMAIN for its MX lookup)`, code: 'EDNS', temporary: false } };
    }
    if (mx.records.length === 0) {
      hosts = [domain]; // implicit MX (RFC 5321 section 5.1)
    } else if (mx.records.some((r) => r.exchange === '' || r.exchange === '.')) {
      return { fail: { reason: `${domain} accepts no mail: it publishes a null MX (RFC 7505)`, code: 'ENULLMX', temporary: false } };
    } else {
      // An MX target that is not a valid host name (it may carry `\.` or `\DDD` escapes from
      // the wire) is not used, as Postfix's smtp_addr skips a malformed MX host name.
      hosts = [];
      for (const host of orderMx(mx.records)) {
        const why = isIP(host) !== 0 ? undefined : hostnameProblem(host);
        if (why) {
          invalidHosts.push(`MX host ${host} is not a valid host name (${why}), so it is not used`);
          settings.logger.warn({ tnx: 'dns', destination: domain }, '%s: MX host %s is not a valid host name (%s), so it is not used', domain, host, why);
        } else hosts.push(host);
      }
      mxSecure = mx.status === 'secure';
      viaMx = true;
    }
  }
  const daneShadow = isDaneLevel(policy.shadow);
  const withTlsa = (wantsTlsa(policy.level, mxSecure, settings.insecureMxPolicy) || daneShadow) && policy.level !== 'none';
  // Why no TLSA is looked up, said where it is decided (the probe reports it as it is).
  const skipped =
    !isDaneLevel(policy.level) && !daneShadow
      ? `level ${policy.level} does not use DANE`
      : policy.level === 'none'
        ? 'level none uses no TLS'
        : `the MX RRset is not DNSSEC-secure (${policy.level === 'dane-only' ? 'level dane-only' : 'insecure MX policy may'})`;
  const lookupHost = async (host: string) => {
    if (isIP(host) !== 0) {
      const answer: DnsResult<AddressRecord> = {
        status: 'insecure',
        rcode: 'NOERROR',
        name: host,
        ttl: 0,
        records: [{ address: host, family: host.includes(':') ? 6 : 4 }],
        cnames: [],
        canonical: host,
      };
      return { host, answer, tlsa: withTlsa ? ({ status: 'none', why: `${host} is an address literal` } as TlsaLookup) : undefined };
    }
    // The TLSA query at the original name goes out with the address queries (one round trip).
    const original = withTlsa ? dns.tlsa(tlsaName(port, host)) : undefined;
    let answer = await dns.addresses(host);
    if (destination.kind === 'relay' && answer.status !== 'failed' && answer.records.length === 0) {
      // A relay named by the user resolves as getaddrinfo would, the hosts file included
      // (`localhost`, names only in /etc/hosts): only when DNS has no address for it, never
      // when the lookup failed, and as an insecure answer (no DNSSEC stands behind it).
      answer = await systemAddresses(host, answer);
    }
    if (!original || answer.status === 'failed') {
      original?.catch(() => undefined);
      return { host, answer, tlsa: undefined };
    }
    return { host, answer, tlsa: await lookupTlsa(dns, host, port, answer, original) };
  };
  const targets: HostTarget[] = [];
  const problems: string[] = [...invalidHosts];
  // Hosts are resolved in delivery order, a few at a time, until enough addresses are found
  // (Postfix's smtp_mx_address_limit cuts the list the same way), so a huge MX RRset costs a
  // bounded number of lookups instead of two or three per host at once.
  const hostLimit = Math.max(MAX_MX_NAMES, settings.maxMxAddresses);
  let next = 0;
  while (next < hosts.length && next < hostLimit && targets.length < settings.maxMxAddresses) {
    const width = Math.min(MAX_HOST_LOOKUPS_IN_FLIGHT, settings.maxMxAddresses - targets.length, hostLimit - next);
    const batch = hosts.slice(next, next + width);
    next += batch.length;
    for (const { host, answer, tlsa } of await Promise.all(batch.map(lookupHost))) {
      const tlsaSkipped = tlsa ? undefined : withTlsa ? 'the address lookup failed' : skipped;
      settings.observe?.({ type: 'host', host, addresses: answer, ...(tlsa ? { tlsa } : {}), ...(tlsaSkipped ? { tlsaSkipped } : {}) });
      if (answer.status === 'failed') {
        problems.push(answer.reason);
        continue;
      }
      const addresses = answer.records.map((r) => r.address).filter((a) => settings.ipv6 || !a.includes(':'));
      if (addresses.length === 0) problems.push(`${host} has no address${settings.ipv6 ? '' : ' (IPv4)'}`);
      // A name may authenticate a peer only when every answer that produced it was secure: the
      // end of a CNAME chain counts only when the address answer that carried it is (RFC 7672
      // sections 2.2.2 and 3.2.2; Postfix uses only names it got securely).
      const canonical = answer.status === 'secure' && answer.canonical ? answer.canonical : host;
      for (const address of addresses) targets.push({ host, address, port, mxSecure, implicitTls, viaMx, canonical, ...(tlsa ? { tlsa } : {}) });
    }
  }
  if (targets.length === 0 && next < hosts.length) problems.push(`the other ${hosts.length - next} MX hosts were not looked up (at most ${hostLimit} are)`);
  if (targets.length === 0) {
    const reason =
      destination.kind === 'relay'
        ? `relay ${destination.host}: no address to deliver to: ${problems.join('; ')}`
        : `${destination.domain}: no MX address to deliver to: ${problems.join('; ')}`;
    return { fail: { reason, code: 'EDNS', temporary: true } };
  }
  return { targets: targets.slice(0, settings.maxMxAddresses) };
}

/** The host's addresses from the system resolver (getaddrinfo: the hosts file, then DNS), IPv4 first; `none` when it has none either. */
async function systemAddresses(host: string, none: DnsAnswer<AddressRecord>): Promise<DnsResult<AddressRecord>> {
  try {
    const found = await lookup(host, { all: true });
    const records = found.map((a): AddressRecord => ({ address: a.address, family: a.family === 6 ? 6 : 4 })).sort((a, b) => a.family - b.family);
    if (records.length === 0) return none;
    return { status: 'insecure', rcode: 'NOERROR', name: none.name, ttl: 0, records, cnames: [], canonical: host };
  } catch {
    return none;
  }
}
