/**
 * The bytes of a mail transaction (lib/smtp/wire.ts), pure: the body as it goes after DATA
 * (checked byte for byte against Nodemailer's own DataStream, which this replaces), replies split
 * out of what a server sends, and the MAIL FROM line.
 */
import { describe, expect, it } from 'vitest';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { dataSlices, mailFromLine, MAX_REPLY_SIZE, needsSmtpUtf8, ReplyReader, ReplyTooLarge, validEnvelopeAddress } from '../lib/smtp/wire.js';

const body = (text: string) => Buffer.concat(dataSlices(Buffer.from(text, 'latin1'))).toString('latin1');

/** What Nodemailer's DataStream makes of the same bytes, fed in the given chunks. */
async function nodemailerData(chunks: Buffer[]): Promise<string> {
  const stream = new DataStream();
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => stream.on('end', resolve));
  for (const c of chunks) stream.write(c);
  stream.end();
  await done;
  return Buffer.concat(out).toString('latin1');
}

describe('dataSlices: the body after 354 (RFC 5321 sections 4.5.2 and 2.3.8)', () => {
  const cases: Array<[string, string, string]> = [
    ['empty message', '', '\r\n.\r\n'],
    ['one line without an end', 'a', 'a\r\n.\r\n'],
    ['one line with CRLF', 'a\r\n', 'a\r\n.\r\n'],
    ['a dot line in the middle', 'a\r\n.\r\nb\r\n', 'a\r\n..\r\nb\r\n.\r\n'],
    ['a dot first', '.a\r\n', '..a\r\n.\r\n'],
    ['a dot alone at the very start', '.', '..\r\n.\r\n'],
    ['two dots at a line start', 'a\r\n..b', 'a\r\n...b\r\n.\r\n'],
    ['a dot not at a line start', 'a.b\r\nc.\r\n', 'a.b\r\nc.\r\n.\r\n'],
    ['bare LF', 'a\nb\n', 'a\r\nb\r\n.\r\n'],
    ['bare LF then a dot', 'a\n.b', 'a\r\n..b\r\n.\r\n'],
    ['bare CR (SMTP smuggling: \\r.\\r is not an end)', 'a\r.\rb', 'a\r\n..\r\nb\r\n.\r\n'],
    ['bare CR at the end', 'a\r', 'a\r\n.\r\n'],
    ['CR CR LF', 'a\r\r\nb', 'a\r\n\r\nb\r\n.\r\n'],
    ['LF LF', '\n\n', '\r\n\r\n.\r\n'],
    ['an end-of-data look-alike inside', 'a\r\n.\r\n.\r\n', 'a\r\n..\r\n..\r\n.\r\n'],
    ['LF CR', 'a\n\rb', 'a\r\n\r\nb\r\n.\r\n'],
  ];
  it.each(cases)('%s', async (_name, input, want) => {
    expect(body(input)).toBe(want);
    expect(await nodemailerData([Buffer.from(input, 'latin1')])).toBe(want);
  });

  it('gives the same bytes as Nodemailer DataStream for 2,000 random messages of CR, LF, dots and letters', async () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const alphabet = ['\r', '\n', '.', 'a', '\r\n', '\r\n.'];
    for (let i = 0; i < 2000; i++) {
      const text = Array.from({ length: Math.floor(random() * 24) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      const bytes = Buffer.from(text, 'latin1');
      // DataStream fed in two chunks split anywhere: its state across chunks must agree too
      const cut = Math.floor(random() * (bytes.length + 1));
      expect(body(text), JSON.stringify(text)).toBe(await nodemailerData([bytes.subarray(0, cut), bytes.subarray(cut)]));
    }
  });

  it('hands out views of the message, not copies, and no empty slice', () => {
    const message = Buffer.from('line one\r\n.line two\r\n');
    const slices = dataSlices(message);
    expect(slices.every((s) => s.length > 0)).toBe(true);
    expect(slices[0]!.buffer).toBe(message.buffer);
  });
});

describe('ReplyReader: replies out of the bytes (RFC 5321 section 4.2.1)', () => {
  const read = (...chunks: string[]) => {
    const reader = new ReplyReader();
    return chunks.flatMap((c) => reader.push(Buffer.from(c, 'latin1')));
  };
  it.each([
    ['one line', ['250 ok\r\n'], ['250 ok']],
    ['multi-line', ['250-a\r\n250-b\r\n250 c\r\n'], ['250-a\n250-b\n250 c']],
    ['pipelined replies in one chunk', ['250 a\r\n250 b\r\n354 go\r\n'], ['250 a', '250 b', '354 go']],
    ['split inside a line', ['25', '0 o', 'k\r\n'], ['250 ok']],
    ['split between CR and LF', ['250 ok\r', '\n'], ['250 ok']],
    ['split inside a multi-line reply', ['250-a\r\n', '250 b\r\n'], ['250-a\n250 b']],
    ['bare LF line ends', ['250-a\n250 b\n'], ['250-a\n250 b']],
    ['empty lines between replies are skipped', ['\r\n250 a\r\n\r\n250 b\r\n'], ['250 a', '250 b']],
    ['a line without text after the code', ['250\r\n'], ['250']],
    ['no line end yet', ['250 ok'], []],
    ['UTF-8 text decoded', ['250 gr\xc3\xbc\xc3\x9f\r\n'], ['250 grüß']],
    ['invalid UTF-8 kept byte for byte', ['250 \xff\xfe\r\n'], ['250 \xff\xfe']],
  ] as Array<[string, string[], string[]]>)('%s', (_name, chunks, want) => {
    expect(read(...chunks)).toEqual(want);
  });

  it('an unterminated failure reply is what the server left when it closed; anything else is not', () => {
    const reader = new ReplyReader();
    reader.push(Buffer.from('421 4.3.2 shutting down'));
    expect(reader.rest()).toBe('421 4.3.2 shutting down');
    const partial = new ReplyReader();
    partial.push(Buffer.from('55'));
    expect(partial.rest()).toBeUndefined();
    const ok = new ReplyReader();
    ok.push(Buffer.from('250 fine'));
    expect(ok.rest()).toBeUndefined();
    const multi = new ReplyReader();
    multi.push(Buffer.from('554-first\r\n554 sec'));
    expect(multi.rest()).toBe('554-first\n554 sec');
  });

  it('a line that never ends, or a reply that never ends, past 1 MiB is refused, however it is chunked', () => {
    const line = new ReplyReader();
    expect(() => {
      for (let i = 0; i <= MAX_REPLY_SIZE / 1024; i++) line.push(Buffer.alloc(1024, 0x61));
    }).toThrow(ReplyTooLarge);
    const lines = new ReplyReader();
    const chunk = Buffer.from('250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n'.repeat(1000));
    expect(() => {
      for (let i = 0; i < MAX_REPLY_SIZE / chunk.length + 2; i++) lines.push(chunk);
    }).toThrow(ReplyTooLarge);
    // just under the limit is fine
    const under = new ReplyReader();
    expect(under.push(Buffer.from(`250 ${'x'.repeat(MAX_REPLY_SIZE - 100)}\r\n`))).toHaveLength(1);
  });
});

describe('MAIL FROM and envelope addresses', () => {
  const all = { pipelining: true, size: true, smtpUtf8: true, requireTls: true };
  const none = { pipelining: false, size: false, smtpUtf8: false, requireTls: false };
  it.each([
    ['plain', 'a@b.test', { size: 0, smtpUtf8: false, requireTls: false }, all, 'MAIL FROM:<a@b.test>'],
    ['SIZE when offered (RFC 1870)', 'a@b.test', { size: 1234, smtpUtf8: false, requireTls: false }, all, 'MAIL FROM:<a@b.test> SIZE=1234'],
    ['no SIZE when not offered', 'a@b.test', { size: 1234, smtpUtf8: false, requireTls: false }, none, 'MAIL FROM:<a@b.test>'],
    ['SMTPUTF8 when needed and offered (RFC 6531)', 'ü@b.test', { size: 5, smtpUtf8: true, requireTls: false }, all, 'MAIL FROM:<ü@b.test> SMTPUTF8 SIZE=5'],
    ['no SMTPUTF8 when not offered', 'ü@b.test', { size: 0, smtpUtf8: true, requireTls: false }, none, 'MAIL FROM:<ü@b.test>'],
    ['REQUIRETLS (RFC 8689 section 4.1)', 'a@b.test', { size: 5, smtpUtf8: false, requireTls: true }, all, 'MAIL FROM:<a@b.test> SIZE=5 REQUIRETLS'],
    ['null reverse path', '', { size: 0, smtpUtf8: false, requireTls: false }, none, 'MAIL FROM:<>'],
  ] as const)('%s', (_name, from, options, ext, want) => {
    expect(mailFromLine(from, options, ext)).toBe(want);
  });
  it.each([
    ['a@b.test', true],
    ['a@b.test>\r\nRCPT TO:<x@y.test', false],
    ['a\n@b', false],
    ['a<b@c', false],
    ['a\r@b', false],
  ])('address %j valid: %s', (address, valid) => {
    expect(validEnvelopeAddress(address)).toBe(valid);
  });
  it('SMTPUTF8 is needed for any character beyond ASCII', () => {
    expect(needsSmtpUtf8('a@b.test')).toBe(false);
    expect(needsSmtpUtf8('ü@b.test')).toBe(true);
    expect(needsSmtpUtf8('a@例え.test')).toBe(true);
    expect(needsSmtpUtf8('\x7f@b')).toBe(false);
  });
});
