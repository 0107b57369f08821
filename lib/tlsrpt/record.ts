/**
 * The TLSRPT policy record (RFC 8460 section 3), pure: the TXT record at `_smtp._tls.<domain>`
 * that says where a domain wants its reports. Read strictly, as section 3 says:
 *
 *   tlsrpt-record     = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
 *   field-delim       = *WSP ";" *WSP
 *   tlsrpt-field      = tlsrpt-rua / tlsrpt-extension    ; rua is required
 *   tlsrpt-version    = %s"v=TLSRPTv1"
 *   tlsrpt-rua        = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
 *   tlsrpt-uri        = URI   ; commas and exclamation points MUST be encoded
 *   tlsrpt-extension  = tlsrpt-ext-name "=" tlsrpt-ext-value
 *   tlsrpt-ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   tlsrpt-ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)
 *
 * "If multiple TXT records for _smtp._tls are returned by the resolver, records that do not begin
 * with v=TLSRPTv1; are discarded. If the number of resulting records is not one, or if the
 * resulting record is syntactically invalid, senders MUST assume the recipient domain does not
 * implement TLSRPT." A record with rua given twice has both lists' URIs. Of the URIs, `https:`
 * (a POST, section 5.4) and `mailto:` with one address and no header fields (a message, section
 * 5.3) are used; any other is left out with the reason, and a record left with none is one this
 * sender cannot deliver to.
 */

/** Where a report goes. */
export type ReportUri = { kind: 'https'; uri: string; url: URL } | { kind: 'mailto'; uri: string; address: string };

export type TlsRptRecord =
  | { record: { text: string; uris: ReportUri[]; ignored: string[] } }
  /** The domain does not implement TLSRPT (no record, several, or an invalid one): why. */
  | { none: string };

const WSP = '[ \\t]*';
const VERSION = new RegExp(`^v=TLSRPTv1${WSP};`);
const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;
/** RFC 3986's URI characters (unreserved, reserved, '%'), without ',' and '!', which must be encoded here. */
const URI_CHARS = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#[\]@$&'()*+;=%]+$/;
/** A mailto address: a local part and a domain (RFC 6068's addr-spec without header fields). */
const MAILBOX = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** One URI of a rua list: where it goes, or why it is not used. */
function reportUri(uri: string): ReportUri | { ignored: string } {
  if (!URI_CHARS.test(uri) || !URL.canParse(uri)) return { ignored: `"${uri}" is not a URI (RFC 8460 section 3; "," and "!" must be %-encoded)` };
  const url = new URL(uri);
  if (url.protocol === 'https:') {
    if (url.username || url.password) return { ignored: `"${uri}" carries credentials` };
    return { kind: 'https', uri, url };
  }
  if (url.protocol === 'mailto:') {
    if (url.search) return { ignored: `"${uri}" has header fields, which a report message does not take` };
    let address: string;
    try {
      address = decodeURIComponent(url.pathname);
    } catch {
      return { ignored: `"${uri}" has a bad %-escape` };
    }
    if (!MAILBOX.test(address)) return { ignored: `"${uri}" is not one email address` };
    return { kind: 'mailto', uri, address };
  }
  return { ignored: `"${uri}" has the scheme ${url.protocol.slice(0, -1)}; reports go to https: and mailto: only` };
}

/** Parses one record that begins with the version; the record, or why it is invalid. */
function parseRecord(text: string): { uris: ReportUri[]; ignored: string[] } | { invalid: string } {
  const rest = text.replace(VERSION, '');
  // field-delim splits the fields; a final delimiter is allowed.
  const fields = rest.split(new RegExp(`${WSP};${WSP}`));
  fields[0] = fields[0]!.replace(/^[ \t]+/, '');
  if (fields.at(-1)!.replace(/[ \t]+$/, '') === '' && fields.length > 1) fields.pop();
  else fields[fields.length - 1] = fields.at(-1)!.replace(/[ \t]+$/, '');
  const uris: ReportUri[] = [];
  const ignored: string[] = [];
  let rua = false;
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq <= 0) return { invalid: `the field "${field}" is not name=value` };
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === 'rua') {
      rua = true;
      for (const uri of value.split(new RegExp(`${WSP},${WSP}`))) {
        if (uri === '') return { invalid: 'rua has an empty URI' };
        const r = reportUri(uri);
        if ('ignored' in r) ignored.push(r.ignored);
        else uris.push(r);
      }
      continue;
    }
    if (!EXT_NAME.test(name)) return { invalid: `"${name}" is not a field name` };
    if (!EXT_VALUE.test(value)) return { invalid: `the value of ${name} has a character RFC 8460 section 3 does not allow` };
  }
  if (!rua) return { invalid: 'it has no rua field, which is required' };
  return { uris, ignored };
}

/** The TLSRPT record among a name's TXT records (each record's strings already joined). */
export function parseTlsRptRecords(texts: readonly string[]): TlsRptRecord {
  const candidates = texts.filter((t) => VERSION.test(t));
  if (candidates.length === 0) return { none: 'no TXT record begins with v=TLSRPTv1;' };
  if (candidates.length > 1) return { none: `${candidates.length} TXT records begin with v=TLSRPTv1; (RFC 8460 section 3 allows one)` };
  const text = candidates[0]!;
  const parsed = parseRecord(text);
  if ('invalid' in parsed) return { none: `the record "${text}" is invalid: ${parsed.invalid}` };
  return { record: { text, ...parsed } };
}
