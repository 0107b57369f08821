/**
 * The TLSA lookup for one MX host (I/O), following RFC 7672 section 2.2.2 as Postfix does:
 * - TLSA is used only when the host's address records are DNSSEC-secure, or the host name is a
 *   secure CNAME (its target may sit in an unsigned zone; then only the original name counts);
 * - for a CNAME host, the fully expanded name is tried first, then the original name; the name
 *   that answered with secure TLSA records is the TLSA base domain (and the SNI name);
 * - a failed lookup (SERVFAIL, bogus, timeout) is a failure, never "no TLSA".
 * The lookup at the original name is started together with the address lookup (same round
 * trip); its answer is only used when the rules above allow it.
 */
import type { DnsResult, TlsaRecord } from '../dns/index.js';
import type { TlsaLookup } from '../plan/dane.js';

export interface TlsaDns {
  tlsa(name: string): Promise<DnsResult<TlsaRecord>>;
  cname(name: string): Promise<DnsResult<{ target: string }>>;
}

/** `_25._tcp.mx1.example.net`. */
export function tlsaName(port: number, host: string): string {
  return `_${port}._tcp.${host}`;
}

type Step = { found: TlsaLookup & { status: 'secure' } } | { failed: TlsaLookup & { status: 'failed' } } | { none: string };

function judge(answer: DnsResult<TlsaRecord>, name: string, baseDomain: string): Step {
  if (answer.status === 'failed') return { failed: { status: 'failed', reason: answer.reason } };
  if (answer.status === 'insecure') return { none: `the TLSA answer for ${name} is not DNSSEC-secure` };
  if (answer.records.length === 0) return { none: `${name} has no TLSA records (${answer.rcode === 'NXDOMAIN' ? 'NXDOMAIN' : 'NODATA'}, DNSSEC-secure)` };
  return { found: { status: 'secure', records: answer.records, baseDomain, name } };
}

/**
 * @param addresses the host's address answer (its status and CNAME chain decide what is allowed)
 * @param original the TLSA lookup at the original name, already started
 */
export async function lookupTlsa(
  dns: TlsaDns,
  host: string,
  port: number,
  addresses: { status: 'secure' | 'insecure'; cnames: string[]; canonical: string },
  original: Promise<DnsResult<TlsaRecord>>,
): Promise<TlsaLookup> {
  const originalName = tlsaName(port, host);
  const aliased = addresses.cnames.length > 0 && addresses.canonical !== host;
  if (addresses.status !== 'secure') {
    if (!aliased) return { status: 'none', why: `the addresses of ${host} are not DNSSEC-secure` };
    const alias = await dns.cname(host);
    if (alias.status !== 'secure' || alias.records.length === 0) {
      return { status: 'none', why: `the addresses of ${host} are not DNSSEC-secure, nor is it a secure CNAME` };
    }
    const step = judge(await original, originalName, host);
    return 'found' in step ? step.found : 'failed' in step ? step.failed : { status: 'none', why: step.none };
  }
  const reasons: string[] = [];
  if (aliased) {
    const expandedName = tlsaName(port, addresses.canonical);
    const step = judge(await dns.tlsa(expandedName), expandedName, addresses.canonical);
    if ('found' in step) return step.found;
    if ('failed' in step) return step.failed;
    reasons.push(step.none);
  }
  const step = judge(await original, originalName, host);
  if ('found' in step) return step.found;
  if ('failed' in step) return step.failed;
  reasons.push(step.none);
  return { status: 'none', why: reasons.join('; ') };
}
