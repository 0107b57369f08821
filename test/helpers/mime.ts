/**
 * Reading a message a test peer received: its header fields (unfolded, names in lower case) and,
 * for a multipart message, its parts with theirs, and a part's body decoded from base64 when it
 * says so. Enough for the messages this library builds; not a general MIME parser.
 *
 * Part of the test kit: erasable TypeScript only.
 */
export interface MimePart {
  /** Each field's values, by lower-case name, in order. */
  headers: Map<string, string[]>;
  /** The raw body (after the blank line). */
  body: string;
  parts: MimePart[];
}

/** A header value's main value and its parameters (name in lower case, quotes removed). */
export function parameters(value: string): { value: string; params: Record<string, string> } {
  const [main, ...rest] = value.split(';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const m = /^\s*([^=\s]+)\s*=\s*(?:"([^"]*)"|(\S*))\s*$/.exec(p);
    if (m) params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  }
  return { value: main!.trim().toLowerCase(), params };
}

export function parseMime(raw: string): MimePart {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 2);
  const headers = new Map<string, string[]>();
  for (const field of head.split(/\n(?![ \t])/)) {
    const colon = field.indexOf(':');
    if (colon <= 0) continue;
    const name = field.slice(0, colon).trim().toLowerCase();
    const value = field
      .slice(colon + 1)
      .replace(/\n[ \t]+/g, ' ')
      .trim();
    headers.set(name, [...(headers.get(name) ?? []), value]);
  }
  const type = parameters(headers.get('content-type')?.[0] ?? 'text/plain');
  const parts: MimePart[] = [];
  if (type.value.startsWith('multipart/') && type.params.boundary) {
    const delimiter = `--${type.params.boundary}`;
    const sections = body.split(new RegExp(`(?:^|\\n)${delimiter.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*(?:\\n|$)`));
    for (const section of sections.slice(1)) if (section.trim() !== '') parts.push(parseMime(section));
  }
  return { headers, body, parts };
}

/** A part's body as bytes, decoded from base64 when its Content-Transfer-Encoding says so. */
export function decodedBody(part: MimePart): Buffer {
  const encoding = part.headers.get('content-transfer-encoding')?.[0]?.toLowerCase();
  return encoding === 'base64' ? Buffer.from(part.body.replace(/\s+/g, ''), 'base64') : Buffer.from(part.body, 'utf8');
}
