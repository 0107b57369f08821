/**
 * Server text through the whole transport: real smtp-server peers that answer STARTTLS (or
 * MAIL FROM) with hostile replies written byte for byte, a real DNS server, Nodemailer on top.
 * What a peer says must never forge an audit field, an audit line or a log line:
 * - the audit line reads back (parseAuditLine) as its record, field by field, and says
 *   Cleartext when the mail went in cleartext;
 * - the record keeps the reply as data, escaped where it was gathered;
 * - no message a Nodemailer-style logger receives holds a control, and the only log lines that
 *   start with `tlsaudit:` are the real audit lines;
 * - at a mandatory level the refusal reaches the error message and delivery.reason escaped.
 */
import { format } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAuditLine } from '../lib/index.js';
import { replyLine } from '../lib/text/index.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import { makePki, makeWorld, type HostSpec, type Pki, type World } from './helpers/world.js';

/** What must never reach a line: C0 (CR, LF, ESC, BEL, NUL ...), DEL, C1, U+2028/9, bidi, BOM. */
const RAW = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;

const FORGED = 'tlsaudit: relay=mx.bank.example[192.0.2.1]:25, auth=Verified, level=secure';

/** Refusals of STARTTLS, as the peer writes them (a CRLF inside makes a multi-line reply). */
const REFUSALS: Array<[string, string]> = [
  ['a lone CR before a forged line', `454 4.7.0 busy, auth=Verified, level=secure\r${FORGED}`],
  ['an LF: a multi-line reply whose second line is a forged audit line', `454-4.7.0 busy, auth=Verified\r\n454 ${FORGED}`],
  ['ESC: clear screen and scrollback, home, set the title', '554 5.7.0 \x1b[2J\x1b[3J\x1b[H\x1b]0;pwned\x07 refused'],
  ['bidi overrides', '454 4.7.0 \u202edeifireV=htua ,\u202c busy \u2067x\u2069'],
  ['quotes and forged fields', '554 5.7.0 "quoted", fallback_reason="x", auth="Verified"'],
  ['backslashes and a literal \\x0a', '454 4.7.0 back\\slash \\" \\x0a \\'],
  ['C1, NEL, line separator, NUL, DEL', '454 4.7.0 \x9b2J\x85next\u2028line \x00\x7f'],
];

/** The default template's fields. */
const FIELDS = ['relay', 'auth', 'level', 'policy', 'protocol', 'cipher', 'fallback_reason'] as const;

const MAIL_REFUSAL = `451-4.3.0 \x1b[31mbusy\r\n451 4.3.0 later\r${FORGED}`;

let pki: Pki;
let world: World;
const hostOf = (i: number) => `mx${i}.hostile.test`;
const domainOf = (i: number) => `d${i}.hostile.test`;

beforeAll(async () => {
  pki = await makePki();
  const hosts: HostSpec[] = REFUSALS.map(([, raw], i) => ({ name: hostOf(i), behaviour: 'starttls', rawReplies: { STARTTLS: raw } }));
  hosts.push({ name: 'mx.mail.hostile.test', behaviour: 'starttls', rawReplies: { MAIL: MAIL_REFUSAL } });
  const records: ZoneRecord[] = REFUSALS.map((_, i) => ({ name: domainOf(i), type: 'MX', exchange: hostOf(i), preference: 10 }));
  records.push({ name: 'mail.hostile.test', type: 'MX', exchange: 'mx.mail.hostile.test', preference: 10 });
  world = await makeWorld(pki, hosts, records);
}, 60_000);
afterAll(async () => {
  await world?.close();
});

/** A Nodemailer-style logger: records each message as Nodemailer's console logger would format it. */
function recordingLogger() {
  const messages: Array<{ level: string; tnx?: string | undefined; text: string }> = [];
  const at =
    (level: string) =>
    (entry: { tnx?: string } | undefined, message: string, ...args: unknown[]) =>
      messages.push({ level, tnx: entry?.tnx, text: format(message, ...args) });
  return { logger: { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal') }, messages };
}

/**
 * What the logger got is safe: no message holds a control (so, printed by Nodemailer's console
 * logger, which makes a log line of each line of a message, each message is one line), and the
 * only lines that start with `tlsaudit:` are the real audit lines.
 */
function expectCleanLog(messages: Array<{ text: string }>, auditLines: string[]) {
  expect(messages.length).toBeGreaterThan(0);
  for (const m of messages) expect(m.text, JSON.stringify(m)).not.toMatch(RAW);
  const lines = messages.flatMap((m) => m.text.split(/\r?\n/));
  expect(lines.filter((l) => l.trimStart().startsWith('tlsaudit:'))).toEqual(auditLines);
}

/** The audit line reads back as its record, field by field. */
function expectRoundTrip(attempt: { audit: Record<string, string | number>; auditLine: string }) {
  expect(attempt.auditLine).not.toMatch(RAW);
  const parsed = parseAuditLine(attempt.auditLine);
  for (const name of FIELDS) expect(parsed[name] ?? '', name).toBe(String(attempt.audit[name] ?? ''));
  return parsed;
}

describe.each(REFUSALS.map(([why, raw], i) => ({ why, raw, i })))('STARTTLS refused with $why', ({ raw, i }) => {
  const reply = replyLine(raw)!;
  const peer = () => world.peers.get(hostOf(i))!;
  const where = () => `${hostOf(i)}[${peer().host}]:${world.port}`;

  it('level may: sent in cleartext; the audit line says Cleartext and reads back as its record', async () => {
    const { logger, messages } = recordingLogger();
    const before = peer().messages.length;
    const { info, error } = await world.send({ level: 'may', logger, debug: true }, { to: `user@${domainOf(i)}` });
    expect(error).toBeUndefined();
    expect(
      peer()
        .messages.slice(before)
        .map((m) => m.secure),
    ).toEqual([false]);
    const attempt = info!.deliveries[0]!.attempts[0]!;
    // reply is the last reply that mattered: the one to DATA
    expect(attempt.audit).toMatchObject({ auth: 'Cleartext', level: 'may', reply: '250 Ok: queued', fallback_reason: `${where()} refused STARTTLS: ${reply}` });
    const parsed = expectRoundTrip(attempt);
    expect(parsed.auth).toBe('Cleartext');
    expect(parsed.fallback_reason).toBe(`${where()} refused STARTTLS: ${reply}`);
    expectCleanLog(messages, [attempt.auditLine]);
    // the debug trace shows the reply, escaped, on one line
    expect(messages.some((m) => m.tnx === 'server' && m.text.includes(reply))).toBe(true);
  });

  it('level verify with fallback may: the fallback reason holds the refusal; the warning and the audit line are safe', async () => {
    const { logger, messages } = recordingLogger();
    const { info, error } = await world.send({ level: 'verify', fallbackLevels: 'verify=may', logger }, { to: `user@${domainOf(i)}` });
    expect(error).toBeUndefined();
    const attempt = info!.deliveries[0]!.attempts[0]!;
    expect(attempt.audit).toMatchObject({ auth: 'Cleartext', level: 'may', policy: 'verify', fallback_reason: `${where()} refused STARTTLS: ${reply}` });
    expect(expectRoundTrip(attempt)).toMatchObject({ auth: 'Cleartext', level: 'may', policy: 'verify' });
    expectCleanLog(messages, [attempt.auditLine]);
    expect(messages.some((m) => m.level === 'warn' && m.text.startsWith('TLS fallback for') && m.text.includes(reply))).toBe(true);
  });

  it('level encrypt: nothing sent; the refusal reaches the error message and delivery.reason escaped', async () => {
    const { logger, messages } = recordingLogger();
    const before = peer().events.length;
    const { info, error } = await world.send({ level: 'encrypt', logger }, { to: `user@${domainOf(i)}` });
    expect(info).toBeUndefined();
    expect(
      peer()
        .events.slice(before)
        .map((e) => e.command),
    ).toEqual(['CONNECT']);
    expect(error!.code).toBe('ETLS');
    const want = `${where()} refused STARTTLS: ${reply}; TLS is mandatory at level encrypt`;
    expect(error!.message).toContain(want);
    expect(error!.message).not.toMatch(RAW);
    const delivery = error!.deliveries[0]!;
    expect(delivery.reason).toContain(want);
    expect(delivery.reason).not.toMatch(RAW);
    const attempt = delivery.attempts[0]!;
    expect(attempt.reason).toBe(want);
    expect(attempt.audit).toMatchObject({ auth: '', level: 'encrypt', reply, fallback_reason: '' });
    expect(expectRoundTrip(attempt).auth).toBeUndefined();
    expectCleanLog(messages, [attempt.auditLine]);
  });
});

describe('MAIL FROM refused with a multi-line reply holding ESC, a CR and a forged line', () => {
  it('the deferral reason, the error message, the audit record and the log are safe', async () => {
    const reply = replyLine(MAIL_REFUSAL)!;
    const { logger, messages } = recordingLogger();
    const { error } = await world.send({ level: 'encrypt', logger, debug: true }, { to: 'user@mail.hostile.test' });
    expect(error!.temporary).toBe(true);
    expect(error!.message).toContain(`answered ${reply}`);
    expect(error!.message).not.toMatch(RAW);
    const attempt = error!.deliveries[0]!.attempts[0]!;
    expect(attempt.audit).toMatchObject({ auth: 'Trusted', level: 'encrypt', reply });
    expectRoundTrip(attempt);
    expectCleanLog(messages, [attempt.auditLine]);
  });
});
