/**
 * A DKIM verifier for tests (RFC 6376), for the one shape Nodemailer signs: rsa-sha256 with
 * relaxed/relaxed canonicalization, the public key given (no DNS). It checks the body hash (bh=)
 * and the signature (b=) over the header fields h= names, so a test proves a message is signed
 * and which fields the signature covers.
 *
 * Part of the test kit: erasable TypeScript only.
 */
import { createHash, verify } from 'node:crypto';

/** Section 3.4.4: relaxed body canonicalization. */
function relaxedBody(body: string): string {
  const lines = body.split('\r\n').map((line) => line.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length && lines.at(-1) === '') lines.pop();
  return lines.length ? `${lines.join('\r\n')}\r\n` : '';
}

/** Section 3.4.2: relaxed header canonicalization of one field. */
function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).trim().toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
  return `${name}:${value}`;
}

export function verifyDkim(raw: string, publicKeyPem: string): { ok: boolean; signed: string[]; domain: string; selector: string; reason?: string } {
  const message = raw.includes('\r\n') ? raw : raw.replace(/\n/g, '\r\n');
  const split = message.indexOf('\r\n\r\n');
  const head = message.slice(0, split);
  const body = message.slice(split + 4);
  const fields = head.split(/\r\n(?![ \t])/);
  const signature = fields.find((f) => /^dkim-signature\s*:/i.test(f));
  if (!signature) return { ok: false, signed: [], domain: '', selector: '', reason: 'no DKIM-Signature field' };
  const tags = Object.fromEntries(
    signature
      .slice(signature.indexOf(':') + 1)
      .split(';')
      .map((t) => t.replace(/\s+/g, ''))
      .filter((t) => t.includes('='))
      .map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]),
  );
  const signed = (tags.h ?? '').split(':').map((n) => n.toLowerCase());
  const base = { signed, domain: tags.d ?? '', selector: tags.s ?? '' };
  if (tags.a !== 'rsa-sha256' || tags.c !== 'relaxed/relaxed') return { ok: false, ...base, reason: `a=${tags.a} c=${tags.c} is not what this checker reads` };
  const bh = createHash('sha256').update(relaxedBody(body)).digest('base64');
  if (bh !== tags.bh) return { ok: false, ...base, reason: 'the body hash does not match' };
  // Section 5.4.2: each name in h= takes the last unused instance of that field, bottom up.
  const pool = fields.filter((f) => f !== signature);
  const data: string[] = [];
  for (const name of signed) {
    for (let i = pool.length - 1; i >= 0; i--) {
      if (pool[i]!.slice(0, pool[i]!.indexOf(':')).trim().toLowerCase() === name) {
        data.push(`${relaxedHeader(pool[i]!)}\r\n`);
        pool.splice(i, 1);
        break;
      }
    }
  }
  data.push(relaxedHeader(signature.replace(/(^|;)(\s*b\s*=)[^;]*/i, '$1$2')));
  const ok = verify('sha256', Buffer.from(data.join('')), publicKeyPem, Buffer.from(tags.b ?? '', 'base64'));
  return ok ? { ok, ...base } : { ok, ...base, reason: 'the signature does not verify' };
}
