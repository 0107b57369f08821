/**
 * Certificate names and reference names: Postfix's match strategies (expandMatch), the
 * names a certificate offers (certNames) and OpenSSL's X509_check_host() comparison as
 * Postfix configures it (nameMatches).
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { toDnsName } from '../names/index.js';

/** One entry of a certificate's subjectAltName, as Node prints it: `DNS`, `IP Address`, `email`, ... */
export interface AltName {
  type: string;
  value: string;
}

/** Where the match keywords point. */
export interface MatchContext {
  /** The MX host name (or the host, for a next hop that is not looked up in MX records). */
  hostname: string;
  /** The next-hop domain. */
  nexthop: string;
}

function matchError(message: string): Error {
  return Object.assign(new Error(message), { code: 'EMATCH' });
}

/**
 * A reference name in the form certificates carry: lowercase ASCII, A-labels for IDNs,
 * no trailing dot (lib/names toAsciiDomain, the library's one normaliser).
 */
function normalizeName(name: string): string {
  const ascii = toDnsName(name);
  if (ascii.ok) return ascii.value;
  if (/[^\x00-\x7f]/.test(name)) throw matchError(`match name "${name}" is not a valid internationalized domain name`);
  throw matchError(`match name "${name}" is not a valid domain name: ${ascii.reason}`);
}

/**
 * Expands Postfix's match strategies into the reference names to check the server's
 * certificate against: `hostname` (the MX host), `nexthop` (the next-hop domain),
 * `dot-nexthop` (any name below the next-hop domain), other tokens literally. A leading
 * '.' means any name strictly below that domain, never the domain itself. Keywords are
 * case-insensitive; names are lowercased, lose a trailing dot and have IDNs converted to
 * A-labels. A lone '.' and empty tokens are skipped (Postfix ignores them with a warning),
 * duplicates are dropped. Throws (code 'EMATCH') for a name that is not a valid IDN.
 */
export function expandMatch(tokens: readonly string[], ctx: MatchContext): string[] {
  const out: string[] = [];
  for (const raw of tokens) {
    const token = raw.trim();
    if (token === '') continue;
    let name: string;
    let subdomains = false;
    switch (token.toLowerCase()) {
      case 'hostname':
        name = ctx.hostname;
        break;
      case 'nexthop':
        name = ctx.nexthop;
        break;
      case 'dot-nexthop':
        name = ctx.nexthop;
        subdomains = true;
        break;
      default:
        name = token.replace(/[\u3002\uff0e\uff61]/g, '.');
        if (name.startsWith('.')) {
          name = name.slice(1);
          subdomains = true;
        }
    }
    name = name.trim();
    if (name === '' || name === '.') continue;
    const ref = (subdomains ? '.' : '') + normalizeName(name);
    if (ref !== '' && ref !== '.' && !out.includes(ref)) out.push(ref);
  }
  return out;
}

/**
 * Parses Node's `X509Certificate.subjectAltName` string: entries `TYPE:value` separated by
 * ', '. A value that Node considers unsafe (it contains '"', '\\', ',', '\'' or a byte
 * outside printable ASCII) is printed as a JSON string literal right after the `TYPE:`
 * prefix; safe values contain no ',' at all, so an unquoted value ends at the next ','.
 */
export function parseSubjectAltName(text: string | undefined): AltName[] {
  const out: AltName[] = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let end = j + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (end >= text.length) break;
      try {
        value = JSON.parse(text.slice(j, end + 1)) as string;
      } catch {
        break;
      }
      j = end + 1;
    } else {
      const comma = text.indexOf(',', j);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(j, end);
      j = end;
    }
    out.push({ type, value });
    if (j >= text.length) break;
    if (text.startsWith(', ', j)) i = j + 2;
    else break;
  }
  return out;
}

/** Undoes OpenSSL's RFC 2253 escaping (`\,`, `\+`, `\"`, `\#`, ...) and control-character escapes (`\0A`). */
function unescapeDnValue(value: string): string {
  return value.replace(/\\([0-9A-Fa-f]{2}|[\s\S])/g, (_, esc: string) => (esc.length === 2 ? String.fromCharCode(parseInt(esc, 16)) : esc));
}

/**
 * The values of the CN attributes in Node's `X509Certificate.subject` string: one RDN a
 * line, attributes of a multi-valued RDN joined by ' + ', values RFC 2253-escaped.
 */
export function subjectCommonNames(subject: string | undefined): string[] {
  const out: string[] = [];
  if (!subject) return out;
  for (const line of subject.split('\n')) {
    for (const attr of line.split(' + ')) {
      const eq = attr.indexOf('=');
      if (eq > 0 && attr.slice(0, eq) === 'CN') out.push(unescapeDnValue(attr.slice(eq + 1)));
    }
  }
  return out;
}

/**
 * The names a certificate offers for host name checks, as OpenSSL's X509_check_host()
 * sees them: its DNS subjectAltNames; the subject CNs only when there is no DNS
 * subjectAltName at all (other kinds, IP or email, do not count).
 */
export function certNames(der: Buffer): string[] {
  return certNamesOf(new X509Certificate(der));
}

/** certNames of a certificate already parsed. */
export function certNamesOf(cert: X509Certificate): string[] {
  const dns = parseSubjectAltName(cert.subjectAltName).filter((n) => n.type === 'DNS');
  if (dns.length > 0) return dns.map((n) => n.value).filter((v) => v !== '');
  return subjectCommonNames(cert.subject).filter((v) => v !== '');
}

/** The characters a certificate name may hold to be matched at all (see nameMatches). */
const HOST_NAME_CHARS = /^[A-Za-z0-9._*-]+$/;

function isAlnum(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/** Case-insensitive comparison for ASCII letters only, as OpenSSL's equal_nocase(). */
function equalNoCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let l = a.charCodeAt(i);
    let r = b.charCodeAt(i);
    if (l === 0) return false;
    if (l >= 65 && l <= 90) l += 32;
    if (r >= 65 && r <= 90) r += 32;
    if (l !== r) return false;
  }
  return true;
}

/**
 * Where the wildcard of a certificate name is, or -1 when the name is no wildcard and can
 * only match literally. With Postfix's X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS the only
 * wildcard is a whole left-most label '*', in a name of at least three labels whose
 * labels are letters, digits and inner hyphens, the left-most not an A-label.
 */
function wildcardAt(name: string): number {
  let star = -1;
  let labelStart = true;
  let hyphenLast = false;
  let idna = false;
  let dots = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '*') {
      const atEnd = i === name.length - 1 || name[i + 1] === '.';
      if (star >= 0 || idna || dots > 0) return -1;
      if (!labelStart || !atEnd) return -1; // no partial-label wildcards
      star = i;
      labelStart = false;
    } else if (isAlnum(c)) {
      if (labelStart && name.slice(i, i + 4).toLowerCase() === 'xn--') idna = true;
      labelStart = false;
      hyphenLast = false;
    } else if (c === '.') {
      if (labelStart || hyphenLast) return -1;
      labelStart = true;
      hyphenLast = false;
      idna = false;
      dots++;
    } else if (c === '-') {
      if (labelStart) return -1;
      hyphenLast = true;
    } else {
      return -1;
    }
  }
  if (labelStart || hyphenLast || dots < 2) return -1;
  return star;
}

/**
 * Whether a certificate name matches a reference name, as OpenSSL's X509_check_host()
 * does with the flags Postfix sets (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS only):
 *  - ASCII case-insensitive comparison;
 *  - a certificate name `*.example.com` matches exactly one left-most label of letters,
 *    digits and hyphens (not example.com, not a.b.example.com); `f*.example.com` and
 *    `*.com` are no wildcards and match only literally;
 *  - a reference starting with '.' matches every certificate name that ends with it and
 *    is longer, whatever comes before, wildcard or not: `.example.com` matches
 *    `mx.example.com`, `a.b.example.com`, `*.example.com` and `*.sub.example.com`, but not
 *    `example.com`;
 *  - a certificate name with any character other than letters, digits, '-', '.', '_' and
 *    '*' (a NUL, a control, a line break, a bidi character, white space, ',', '=', '\\',
 *    non-ASCII) never matches anything.
 */
export function nameMatches(certName: string, pattern: string): boolean {
  if (certName === '' || pattern === '') return false;
  // Only a name in host name syntax can match: a certificate name is untrusted text, and one
  // holding a control, a line break, a bidi character, white space, ',', '=', '\\' or
  // anything else outside letters, digits, '-', '.', '_' and the wildcard '*' never matches.
  // OpenSSL would match such a name against a leading-dot reference (skip_prefix skips any
  // prefix but NUL), but no CA may issue one (RFC 5280 section 4.2.1.6: the preferred name
  // syntax of RFC 1034 section 3.5) and no reference name Postfix uses holds these
  // characters, so refusing them changes no legitimate verdict.
  if (!HOST_NAME_CHARS.test(certName)) return false;
  if (pattern.length > 1 && pattern.startsWith('.')) {
    // OpenSSL's implicit sub-domain match: compare with an equal-length suffix.
    if (certName.length < pattern.length) return false;
    return equalNoCase(certName.slice(certName.length - pattern.length), pattern);
  }
  const star = wildcardAt(certName);
  if (star < 0) return equalNoCase(certName, pattern);
  const prefix = certName.slice(0, star);
  const suffix = certName.slice(star + 1);
  if (pattern.length < prefix.length + suffix.length) return false;
  if (!equalNoCase(prefix, pattern.slice(0, prefix.length))) return false;
  const wildEnd = pattern.length - suffix.length;
  if (!equalNoCase(pattern.slice(wildEnd), suffix)) return false;
  const wild = pattern.slice(prefix.length, wildEnd);
  let allowIdna = false;
  if (prefix === '' && suffix.startsWith('.')) {
    if (wild === '') return false;
    allowIdna = true;
  }
  if (!allowIdna && pattern.slice(0, 4).toLowerCase() === 'xn--') return false;
  if (wild === '*') return true;
  for (const c of wild) if (!isAlnum(c) && c !== '-') return false;
  return true;
}

/** An IP address in one textual form, so that `::1` and `0:0::1` compare equal; undefined for a non-address. */
export function canonicalIp(text: string): string | undefined {
  const version = isIP(text);
  if (version === 0) return undefined;
  if (version === 4) return text;
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/**
 * The IP addresses a certificate's subjectAltName lists (iPAddress entries), in canonical form.
 * A reference identifier that is an IP address (a next hop written `[192.0.2.1]`) is matched
 * against these, as OpenSSL's X509_check_ip does, never against DNS names (RFC 6125 section
 * 3.1.3.2; RFC 5280 section 4.2.1.6).
 */
export function certIpAddresses(der: Buffer): string[] {
  const cert = new X509Certificate(der);
  return parseSubjectAltName(cert.subjectAltName)
    .filter((n) => n.type === 'IP Address')
    .map((n) => canonicalIp(n.value))
    .filter((v): v is string => v !== undefined);
}
