/**
 * text: strings that came from the network, made safe to print. Pure.
 *
 * Everything a peer controls (SMTP replies and EHLO lines, certificate subjects, issuers and
 * names, DNS names from answers) can reach a log line, an audit line, an error message or a
 * terminal. Such a string must never be able to end a line, rewrite a line on a terminal, or
 * reorder what a reader sees. So, once, where a fact is gathered:
 * - C0 controls (U+0000-U+001F, including CR, LF, TAB and ESC) and DEL (U+007F) become `\xNN`;
 * - C1 controls (U+0080-U+009F, including NEL and CSI), the Unicode line and paragraph separators
 *   (U+2028, U+2029), the bidirectional formatting characters (U+061C, U+200E, U+200F,
 *   U+202A-U+202E, U+2066-U+2069) and the byte order mark (U+FEFF) become `\u{NNNN}`;
 * - a backslash becomes `\\`, so that an escape in the output always means an escape: a peer
 *   that sends the four characters `\x0a` is shown as `\\x0a`, never as an escaped line feed.
 * Everything else, printable ASCII and printable Unicode, is kept as it is.
 *
 * `quoteValue` is for values inside `name=value, name=value` lines (the audit line): a value
 * that holds the line's own separators (`,`, `=`, `"`), a backslash, or white space at either
 * end is written as a double-quoted string with `"` and `\` escaped, so that no value can ever
 * read as another field.
 */

/** The characters `safeText` escapes (see above). */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\\\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
/** The same without the backslash: what must never reach a line, escaped or not. */
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

function escapeChar(c: string): string {
  if (c === '\\') return '\\\\';
  const code = c.charCodeAt(0);
  if (code < 0x80) return `\\x${code.toString(16).padStart(2, '0')}`;
  return `\\u{${code.toString(16).padStart(4, '0')}}`;
}

/** The string with every control, separator and bidi character escaped visibly (see above). */
export function safeText(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/**
 * Controls, separators and bidi characters escaped, backslashes left alone: for text that is
 * already safe (where it is a no-op) or that is about to be quoted. Idempotent.
 */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, escapeChar);
}

/** Whether `text` holds no control, separator or bidi character (backslashes allowed). */
export function hasNoControls(text: string): boolean {
  return !new RegExp(CONTROLS.source).test(text);
}

/**
 * A server reply as one safe line: the lines of a multi-line reply joined with a space, then
 * escaped by `safeText`. `undefined` stays `undefined`.
 */
export function replyLine(reply: string | undefined): string | undefined {
  if (reply === undefined) return undefined;
  return safeText(reply.replace(/\r?\n/g, ' ').trim());
}

/** Characters that make a `name=value` value need quotes. */
const NEEDS_QUOTES = /[,="\\]|^\s|\s$/;

/**
 * A value for a `name=value, ...` line: any control still in it escaped (`escapeControls`: the
 * value is normally safe already), then double-quoted with `"` and `\` escaped when it holds
 * `,`, `=`, `"`, `\` or starts or ends with white space. `unquoteValue` undoes the quoting.
 */
export function quoteValue(value: string): string {
  const safe = escapeControls(value);
  if (!NEEDS_QUOTES.test(safe)) return safe;
  return `"${safe.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The value `quoteValue` wrote: a quoted string unquoted, anything else as it is. */
export function unquoteValue(text: string): string {
  if (text.length < 2 || !text.startsWith('"') || !text.endsWith('"')) return text;
  return text.slice(1, -1).replace(/\\([\s\S])/g, '$1');
}

/** A sentence's first word lowercased to follow a colon ("...: connection closed"), unless it is an acronym (DNS, TLS). */
export function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text.charAt(0).toLowerCase() + text.slice(1) : text;
}
