/**
 * Domain name normalisation for the resolver: lowercase, no trailing dot, IDN U-labels
 * converted to A-labels (RFC 5890/5891 via the WHATWG/UTS #46 mapping Node implements).
 *
 * Only labels that contain non-ASCII characters are converted, one label at a time, so
 * names that are not host names (`_25._tcp.mx.example.com`, `1.2.0.192.in-addr.arpa`) pass
 * through untouched: the whole-name WHATWG host parser would read an all-numeric name as
 * an IPv4 address and rewrite it.
 */
import { domainToASCII } from 'node:url';

/** RFC 1035 §2.3.4: labels are 63 octets or less, names 255 octets on the wire (253 as text). */
const MAX_LABEL = 63;
const MAX_NAME_TEXT = 253;

/**
 * Normalise a domain name for a query, or throw a TypeError saying why it cannot be one.
 * Bad names are programming or input errors, not DNS failures, so they throw.
 */
export function normalizeName(input: string): string {
  if (typeof input !== 'string') throw new TypeError(`DNS name must be a string, got ${typeof input}`);
  let name = input.trim();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '') throw new TypeError(`DNS name must not be empty (got ${JSON.stringify(input)})`);
  const labels = name.split('.').map((label) => {
    if (label === '') throw new TypeError(`DNS name ${JSON.stringify(input)} has an empty label`);
    if (/^[\x00-\x7f]*$/.test(label)) return label.toLowerCase();
    const ascii = domainToASCII(label);
    // An empty result means the label is not valid IDNA; a dot means the mapping turned
    // the label into something else entirely (e.g. full-width digits into an IPv4 address).
    if (ascii === '' || ascii.includes('.')) {
      throw new TypeError(`DNS name ${JSON.stringify(input)} has a label that is not a valid IDN: ${JSON.stringify(label)}`);
    }
    return ascii.toLowerCase();
  });
  for (const label of labels) {
    if (label.length > MAX_LABEL) {
      throw new TypeError(`DNS name ${JSON.stringify(input)} has a label longer than ${MAX_LABEL} octets`);
    }
    if (!/^[\x21-\x7e]+$/.test(label)) {
      throw new TypeError(`DNS name ${JSON.stringify(input)} has a label with spaces or control characters`);
    }
  }
  const result = labels.join('.');
  if (result.length > MAX_NAME_TEXT) {
    throw new TypeError(`DNS name ${JSON.stringify(input)} is longer than ${MAX_NAME_TEXT} characters`);
  }
  return result;
}

/** Lowercase a name read from a reply and drop any trailing dot; the root is ''. */
export function canonicalWireName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
