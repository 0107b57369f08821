/**
 * The session's own mail transactions (lib/smtp/transaction.ts), against raw SMTP peers on
 * 127.0.0.x (test/helpers/raw-peer.ts) that record every command and body they receive: with and
 * without PIPELINING, every way a reply can end a transaction, the server's declared SIZE, a
 * server that talks out of turn, and the deadlines of a session kept and used again.
 */
import { format } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { tlsPolicy, type TlsPolicyError } from '../lib/index.js';
import { Session, type TransactionResult } from '../lib/smtp/session.js';
import { socketOf } from '../lib/smtp/connection-internals.js';
import { startRawPeer, type RawPeer, type RawReply } from './helpers/raw-peer.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { makeLeaf, type Issued } from './helpers/pki.js';

const ip = loopbackBlock();
let nextHost = 2;
let cert: Issued;
const started: RawPeer[] = [];
beforeAll(async () => {
  cert = await makeLeaf('self', { names: ['mx.wire.test'] });
});
afterAll(async () => {
  await Promise.all(started.map((p) => p.close()));
});

const EHLO_PIPELINING = '250-raw-peer\r\n250-PIPELINING\r\n250 8BITMIME';
const EHLO_PLAIN = '250-raw-peer\r\n250 8BITMIME';
const BODY = 'Subject: wire\r\n\r\nhello\r\n.dot line\r\n';

async function peer(ehlo: string, script?: (command: string) => RawReply | undefined, tls = false): Promise<RawPeer> {
  const p = await startRawPeer({
    host: ip(nextHost++),
    ...(tls ? { cert: cert.certPem, key: cert.keyPem } : {}),
    script: (command) => (command.startsWith('EHLO') ? ehlo : script?.(command)),
  });
  started.push(p);
  return p;
}

async function open(p: RawPeer, options: { commandTimeout?: number; dataTimeout?: number; tls?: boolean; logger?: unknown } = {}): Promise<Session> {
  const { session, facts } = await Session.open({
    host: 'mx.wire.test',
    address: p.host,
    port: p.port,
    starttls: options.tls === true,
    tls: { servername: 'mx.wire.test' },
    ...(options.commandTimeout ? { commandTimeout: options.commandTimeout } : {}),
    ...(options.dataTimeout ? { dataTimeout: options.dataTimeout } : {}),
    ...(options.logger ? { logger: options.logger, debug: true } : {}),
  });
  expect(facts.failure).toBeUndefined();
  return session!;
}

const send = (s: Session, to: string[] = ['a@wire.test'], body = BODY): Promise<TransactionResult> => s.send('s@origin.test', to, Buffer.from(body));
/** The commands of the peer's first connection from the first that begins with `verb` (none when it never came). */
const after = (p: RawPeer, verb: string) => {
  const commands = p.connections[0]!.commands;
  const at = commands.findIndex((c) => c.startsWith(verb));
  return at < 0 ? [] : commands.slice(at);
};
const waitFor = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('a transaction on the session own wire', () => {
  it('with PIPELINING: MAIL, RCPT and DATA go in one batch (RCPT and DATA arrive while MAIL is unanswered)', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c.startsWith('MAIL') ? 'silence' : undefined));
    const s = await open(p, { commandTimeout: 300 });
    const result = await send(s, ['a@wire.test', 'b@wire.test']);
    expect(after(p, 'MAIL')).toEqual(['MAIL FROM:<s@origin.test>', 'RCPT TO:<a@wire.test>', 'RCPT TO:<b@wire.test>', 'DATA']);
    expect(result.ok).toBe(false);
    expect(result.failure?.message).toMatch(/no complete reply to DATA within 300 ms/);
    expect(result.failure?.temporary).toBe(true);
    expect(s.alive).toBe(false);
  });

  it('without PIPELINING: one command at a time (nothing follows an unanswered MAIL)', async () => {
    const p = await peer(EHLO_PLAIN, (c) => (c.startsWith('MAIL') ? 'silence' : undefined));
    const s = await open(p, { commandTimeout: 300 });
    const result = await send(s, ['a@wire.test', 'b@wire.test']);
    expect(after(p, 'MAIL')).toEqual(['MAIL FROM:<s@origin.test>']);
    expect(result.failure?.message).toMatch(/no complete reply to MAIL within 300 ms/);
  });

  it.each([
    ['PIPELINING', EHLO_PIPELINING],
    ['no PIPELINING', EHLO_PLAIN],
  ])('%s: the message arrives whole, dot-stuffed on the wire, each recipient accepted with the final reply', async (_name, ehlo) => {
    const p = await peer(ehlo, (c) => (c === '.' ? '250 2.0.0 queued as W1' : undefined));
    const s = await open(p);
    const result = await send(s, ['a@wire.test', 'b@wire.test']);
    expect(result).toMatchObject({ ok: true, reply: '250 2.0.0 queued as W1' });
    expect(result.recipients.map((r) => r.status)).toEqual(['accepted', 'accepted']);
    expect(p.messages()).toEqual(['Subject: wire\r\n\r\nhello\r\n.dot line']);
    s.quit();
    await waitFor(() => p.connections[0]!.commands.includes('QUIT'));
    expect(p.connections[0]!.commands.at(-1)).toBe('QUIT');
  });

  it('some recipients refused: the rest get the message, each refused one keeps its own reply', async () => {
    const p = await peer(EHLO_PIPELINING, (c) =>
      c === 'RCPT TO:<b@wire.test>' ? '550 5.1.1 no such user' : c === 'RCPT TO:<c@wire.test>' ? '450 4.2.1 try later' : undefined,
    );
    const s = await open(p);
    const result = await send(s, ['a@wire.test', 'b@wire.test', 'c@wire.test']);
    expect(result.ok).toBe(true);
    expect(result.recipients).toEqual([
      { recipient: 'a@wire.test', status: 'accepted', reply: '250 2.0.0 Ok: queued' },
      { recipient: 'b@wire.test', status: 'rejected', reply: '550 5.1.1 no such user' },
      { recipient: 'c@wire.test', status: 'deferred', reply: '450 4.2.1 try later' },
    ]);
    expect(p.messages()).toHaveLength(1);
  });

  it.each([
    ['451 to the end of the message', '451 4.3.0 try later', 'deferred'],
    ['554 to the end of the message', '554 5.6.0 bad content', 'rejected'],
  ])('some recipients refused, then %s: each refused one keeps its own answer, the accepted one gets the failure', async (_name, final, status) => {
    const p = await peer(EHLO_PIPELINING, (c) =>
      c === 'RCPT TO:<b@wire.test>' ? '550 5.1.1 no such user' : c === 'RCPT TO:<c@wire.test>' ? '450 4.2.1 mailbox busy' : c === '.' ? final : undefined,
    );
    const s = await open(p);
    const result = await send(s, ['a@wire.test', 'b@wire.test', 'c@wire.test']);
    expect(result.ok).toBe(false);
    expect(result.recipients).toEqual([
      { recipient: 'a@wire.test', status, reply: final },
      { recipient: 'b@wire.test', status: 'rejected', reply: '550 5.1.1 no such user' },
      { recipient: 'c@wire.test', status: 'deferred', reply: '450 4.2.1 mailbox busy' },
    ]);
  });

  it('every recipient refused and the server still says 354 to DATA: no message goes, only the end of an empty one (RFC 2920 section 3.1)', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c.startsWith('RCPT') ? '550 5.1.1 no such user' : undefined));
    const s = await open(p);
    const result = await send(s, ['a@wire.test', 'b@wire.test']);
    expect(result.ok).toBe(false);
    expect(result.recipients.map((r) => [r.status, r.reply])).toEqual([
      ['rejected', '550 5.1.1 no such user'],
      ['rejected', '550 5.1.1 no such user'],
    ]);
    expect(p.messages()).toEqual(['']);
    expect(after(p, 'DATA')).toEqual(['DATA', '.']);
  });

  it('MAIL refused without PIPELINING: no RCPT follows; the failure is permanent with the reply', async () => {
    const p = await peer(EHLO_PLAIN, (c) => (c.startsWith('MAIL') ? '550 5.7.1 sender refused' : undefined));
    const s = await open(p);
    const result = await send(s);
    expect(after(p, 'MAIL')).toEqual(['MAIL FROM:<s@origin.test>']);
    expect(result.failure).toMatchObject({ message: 'Mail command failed: 550 5.7.1 sender refused', replyCode: 550, temporary: false, command: 'MAIL FROM' });
    expect(result.recipients[0]).toMatchObject({ status: 'rejected', reply: '550 5.7.1 sender refused' });
  });

  it('MAIL refused with PIPELINING and a 354 to DATA: the connection is dropped, no body goes', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c.startsWith('MAIL') ? '451 4.3.0 try later' : undefined));
    const s = await open(p);
    const result = await send(s);
    expect(result.failure).toMatchObject({ message: 'Mail command failed: 451 4.3.0 try later', temporary: true });
    expect(p.messages()).toEqual([]);
    await waitFor(() => !s.alive);
    expect(s.alive).toBe(false);
  });

  it.each([
    [
      'DATA',
      (c: string) => (c === 'DATA' ? '554 5.5.1 no valid recipients' : undefined),
      { message: 'Data command failed: 554 5.5.1 no valid recipients', temporary: false, command: 'DATA' },
    ],
    [
      'the end of the message',
      (c: string) => (c === '.' ? '552 5.3.4 too big' : undefined),
      { message: 'Message failed: 552 5.3.4 too big', temporary: false, command: 'DATA' },
    ],
    [
      'RCPT, with 421 (the server closes)',
      (c: string) => (c.startsWith('RCPT') ? { reply: '421 4.3.2 shutting down', thenClose: true as const } : undefined),
      { message: 'Server closed the connection: 421 4.3.2 shutting down', temporary: true },
    ],
  ])('a refusal of %s ends the transaction with its reply', async (_name, script, failure) => {
    const p = await peer(EHLO_PIPELINING, script);
    const s = await open(p);
    const result = await send(s);
    expect(result.ok).toBe(false);
    expect(result.failure).toMatchObject(failure);
  });

  it('the server closes after the body with no reply: the body counts as sent (the server may hold it)', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c === '.' ? 'drop' : undefined));
    const s = await open(p);
    const result = await send(s);
    expect(result).toMatchObject({ ok: false, bodySent: true, dataSent: true, failure: { message: 'Connection closed unexpectedly', temporary: true } });
    expect(p.messages()).toHaveLength(1);
  });

  it('the server closes at MAIL with an unterminated failure reply: that reply is the failure', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c.startsWith('MAIL') ? { reply: '421 4.4.2 idle', thenClose: true } : undefined));
    const s = await open(p);
    const result = await send(s);
    expect(result.failure).toMatchObject({ replyCode: 421, temporary: true });
    expect(result.bodySent).toBe(false);
  });

  it('a message above the SIZE the server declared is not offered: no MAIL, a permanent failure (RFC 1870, as Postfix)', async () => {
    const p = await peer('250-raw-peer\r\n250-PIPELINING\r\n250 SIZE 20');
    const s = await open(p);
    const result = await send(s);
    expect(after(p, 'MAIL')).toEqual([]);
    expect(result.failure).toMatchObject({
      replyCode: 552,
      code: 'EMESSAGE',
      temporary: false,
      message: `message size ${Buffer.byteLength(BODY)} exceeds the size limit 20 that the server declared (EHLO SIZE)`,
    });
    expect(result.recipients[0]?.status).toBe('rejected');
    // within the limit: SIZE goes with MAIL FROM
    const q = await peer('250-raw-peer\r\n250-PIPELINING\r\n250 SIZE 100000');
    const t = await open(q);
    expect((await send(t)).ok).toBe(true);
    expect(after(q, 'MAIL')[0]).toBe(`MAIL FROM:<s@origin.test> SIZE=${Buffer.byteLength(BODY)}`);
  });

  it('an envelope address that would end the command line is refused before anything is written', async () => {
    const p = await peer(EHLO_PIPELINING);
    const s = await open(p);
    const result = await send(s, ['a@wire.test>\r\nRCPT TO:<evil@wire.test']);
    expect(result.failure?.message).toMatch(/^Invalid recipient/);
    expect(after(p, 'MAIL')).toEqual([]);
  });

  it('a reply nobody asked for ends a kept session: it is out of step and never carries a message', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c === '.' ? '250 ok\r\n250 surprise' : undefined));
    const s = await open(p);
    expect((await send(s)).ok).toBe(true);
    await waitFor(() => !s.alive);
    expect(s.alive).toBe(false);
    const again = await send(s);
    expect(again.ok).toBe(false);
    expect(p.messages()).toHaveLength(1);
  });

  it('a kept session is not failed later by the deadlines of a message it finished (over TLS)', async () => {
    const p = await peer(EHLO_PIPELINING.replace('250-raw-peer', '250-raw-peer\r\n250-STARTTLS'), undefined, true);
    const s = await open(p, { commandTimeout: 200, dataTimeout: 200, tls: true });
    expect(s.encrypted).toBe(true);
    expect((await send(s)).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(s.alive).toBe(true);
    expect((await send(s)).ok).toBe(true);
    expect(p.messages()).toHaveLength(2);
    expect(p.connections[0]!.secure.slice(p.connections[0]!.commands.findIndex((c) => c.startsWith('MAIL')))).not.toContain(false);
    s.quit();
  });

  it('a server that trickles the reply to the end of the message fails the session at the data deadline', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c === '.' ? { trickle: '250-still going\r\n', every: 20, forever: true } : undefined));
    const s = await open(p, { dataTimeout: 300 });
    const result = await send(s);
    expect(result.failure?.message).toMatch(/no reply to the end of the message within 300 ms/);
    expect(result.bodySent).toBe(true);
  });

  it('with debug, the transaction log has each command, each line of the message and each reply, every one escaped', async () => {
    const p = await peer(EHLO_PIPELINING, (c) => (c === '.' ? '250 2.0.0 queued \x1b[31mred\x1b[0m' : undefined));
    const lines: Array<{ tnx?: string | undefined; text: string }> = [];
    const record = (entry: { tnx?: string }, message: string, ...args: unknown[]) => lines.push({ tnx: entry?.tnx, text: format(message, ...args) });
    const logger = { trace: record, debug: record, info: record, warn: record, error: record, fatal: record };
    const s = await open(p, { logger });
    expect((await send(s)).ok).toBe(true);
    const of = (tnx: string) => lines.filter((l) => l.tnx === tnx).map((l) => l.text);
    expect(of('client')).toEqual(expect.arrayContaining(['MAIL FROM:<s@origin.test>', 'RCPT TO:<a@wire.test>', 'DATA']));
    expect(of('message')).toEqual(expect.arrayContaining(['Subject: wire', 'hello', '..dot line']));
    const final = of('server').find((t) => t.startsWith('250 2.0.0 queued'));
    expect(final).toBeDefined();
    expect(final).not.toContain('\x1b');
    expect(lines.every((l) => !/[\r\n\x1b]/.test(l.text))).toBe(true);
  });

  it('a large body goes in pieces as the socket drains: never a copy of the whole message waiting in the socket (over TLS)', async () => {
    const p = await peer(EHLO_PIPELINING.replace('250-raw-peer', '250-raw-peer\r\n250-STARTTLS'), undefined, true);
    const s = await open(p, { tls: true });
    const socket = socketOf((s as unknown as { connection: object }).connection)!;
    let most = 0;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    (socket as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
      const room = write(...args);
      most = Math.max(most, socket.writableLength);
      return room;
    };
    const line = `${'x'.repeat(76)}\r\n`;
    const big = `Subject: big\r\n\r\n${line.repeat(50_000)}`; // 3.9 MB
    const result = await send(s, ['a@wire.test'], big);
    expect(result.ok).toBe(true);
    expect(p.messages()[0]?.length).toBe(big.length - 2); // the peer keeps the body without its last CRLF
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(256 * 1024);
  });

  it('through the transport: a message above the SIZE the relay declared bounces with EMESSAGE, naming the relay, and nothing is offered', async () => {
    const p = await peer('250-raw-peer\r\n250-PIPELINING\r\n250 SIZE 100');
    const transport = nodemailer.createTransport(tlsPolicy({ relay: `[${p.host}]:${p.port}`, level: 'may', mtaSts: false, connectionReuse: false }));
    const error = await transport.sendMail({ from: 's@origin.test', to: 'a@wire.test', subject: 'big', text: 'x'.repeat(500) }).then(
      () => undefined,
      (e: TlsPolicyError) => e,
    );
    transport.close();
    expect(error).toMatchObject({ code: 'EMESSAGE', temporary: false, rejected: ['a@wire.test'] });
    expect(error!.message).toMatch(new RegExp(`not offered to .*${p.host.replace(/\./g, '\\.')}.*exceeds the size limit 100`));
    expect(after(p, 'MAIL')).toEqual([]);
  });
});
