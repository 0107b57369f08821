/**
 * The reference identifiers a DANE-TA(2) chain's leaf is matched against (RFC 7672
 * section 3.2.2, RFC 7671 section 7): built with verify's expandMatch, so that names
 * are normalized (lowercase, no trailing dot, A-labels) exactly as at the verify level.
 */
import { expandMatch } from '../pkix/index.js';

export interface DaneNamesInput {
  /** The TLSA base domain: where the TLSA records were found (after any secure CNAME expansion). */
  baseDomain: string;
  /** The MX host name, as found in the MX record (before CNAME expansion); omit for a next hop not from MX (relay, implicit MX). */
  host?: string;
  /** The MX host's CNAME-expanded name, when it differs. */
  canonical?: string;
  /** Extra `match` tokens from the policy: names, `.domain`, `hostname`, `nexthop`, `dot-nexthop`. */
  match?: readonly string[];
  /** The next-hop domain, for the `nexthop` and `dot-nexthop` keywords; defaults to `host`. */
  nexthop?: string;
}

/**
 * The reference identifiers for DANE-TA(2) name checks, in order and without duplicates, as
 * Postfix's dane_init builds them: the TLSA base domain first, then for an MX host its
 * CNAME-expanded name and the name from the MX record (none for a relay or an implicit MX),
 * then the policy's match names expanded by expandMatch (`hostname` is the MX host, `nexthop`
 * the next-hop domain, a leading '.' any name below). Throws as expandMatch does (code
 * 'EMATCH') for a name that is not a valid IDN.
 */
export function daneNames(input: DaneNamesInput): string[] {
  const host = input.host ?? input.baseDomain;
  const nexthop = input.nexthop ?? host;
  // The 'hostname' keyword normalizes a literal name without reading it as a keyword.
  const literal = (name: string | undefined) => (name ? expandMatch(['hostname'], { hostname: name, nexthop }) : []);
  const names = [
    ...literal(input.baseDomain),
    ...literal(input.canonical),
    ...literal(input.host),
    ...expandMatch(input.match ?? [], { hostname: host, nexthop }),
  ];
  return names.filter((n, i) => names.indexOf(n) === i);
}
