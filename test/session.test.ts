import { format } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oneLine, Session } from '../lib/smtp/session.js';
import { replyLine } from '../lib/text/index.js';
import { makeCA, makeLeaf, type Issued } from './helpers/pki.js';
import { loopbackBlock, startPeers, type Peer, type PeerBehaviour } from './helpers/smtp-peer.js';

const ip = loopbackBlock();
const behaviours: PeerBehaviour[] = [
  'starttls',
  'no-starttls',
  'starttls-454',
  'starttls-554',
  'handshake-fail',
  'drop-after-tls',
  'reply-421-after-tls',
  'implicit-tls',
];
let peers: Peer[] = [];

beforeAll(async () => {
  peers = await startPeers(behaviours.map((behaviour, i) => ({ host: ip(i + 2), behaviour })));
});
afterAll(async () => {
  await Promise.all(peers.map((p) => p.close()));
});

describe('Session facts, from real smtp-server peers', () => {
  const rows: Array<[PeerBehaviour, Record<string, unknown>]> = [
    ['starttls', { starttlsOffered: true, starttlsSent: true, tls: true, failure: undefined }],
    ['no-starttls', { starttlsOffered: false, starttlsSent: false, tls: false, failure: undefined }],
    ['starttls-454', { starttlsOffered: true, starttlsSent: true, tls: false, starttlsReply: '454 4.7.0 TLS not available due to local problem' }],
    ['starttls-554', { starttlsOffered: true, starttlsSent: true, tls: false, starttlsReply: '554 5.7.0 TLS not available' }],
    ['handshake-fail', { starttlsOffered: true, starttlsSent: true, tls: false, failure: 'handshake' }],
    ['drop-after-tls', { starttlsOffered: true, starttlsSent: true, tls: false, failure: 'tls-session' }],
    ['reply-421-after-tls', { starttlsOffered: true, starttlsSent: true, tls: false, failure: 'tls-reply' }],
    ['implicit-tls', { tls: true, failure: undefined }],
  ];
  for (const [behaviour, want] of rows) {
    it(`${behaviour}`, async () => {
      const peer = peers[behaviours.indexOf(behaviour)]!;
      const { facts, session } = await Session.open({
        host: 'mx.test',
        address: peer.host,
        port: peer.port,
        starttls: true,
        implicitTls: behaviour === 'implicit-tls',
        tls: { servername: 'mx.test' },
      });
      session?.quit();
      const got: Record<string, unknown> = { tls: facts.tls !== undefined, failure: facts.failure?.kind };
      if ('starttlsOffered' in want) got.starttlsOffered = facts.starttlsOffered;
      if ('starttlsSent' in want) got.starttlsSent = facts.starttlsSent;
      if ('starttlsReply' in want) got.starttlsReply = facts.starttlsReply;
      expect(got).toEqual(want);
      if (want.tls) {
        expect(facts.tls!.protocol).toMatch(/^TLSv1\.[23]$/);
        expect(facts.tls!.chain.length).toBeGreaterThan(0);
      }
      expect(peer.events.filter((e) => e.command !== 'CONNECT')).toEqual([]);
    });
  }
});

/** A Nodemailer-style logger that records each message as it would be printed. */
function recordingLogger(): {
  logger: Record<string, (entry: { tnx?: string }, message: string, ...args: unknown[]) => void>;
  lines: Array<{ tnx?: string | undefined; text: string }>;
} {
  const lines: Array<{ tnx?: string | undefined; text: string }> = [];
  const record = (entry: { tnx?: string }, message: string, ...args: unknown[]) => lines.push({ tnx: entry?.tnx, text: format(message, ...args) });
  return { logger: { trace: record, debug: record, info: record, warn: record, error: record, fatal: record }, lines };
}

/** What must never reach a line: C0 (CR, LF, ESC, BEL, NUL ...), DEL, C1, U+2028/9, bidi, BOM. */
const RAW = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/;

describe('server text is gathered safe: one line, every control escaped', () => {
  // Raw replies, written byte for byte by the peer (smtp-server would blank the controls).
  const forged = 'tlsaudit: relay=mx.bank.example[192.0.2.1]:25, auth=Verified';
  const rows: Array<{ name: string; raw: Partial<Record<'GREETING' | 'EHLO' | 'STARTTLS' | 'AUTH' | 'MAIL' | 'RCPT' | 'DATA', string>>; auth?: boolean }> = [
    { name: 'starttls-cr', raw: { STARTTLS: `454 4.7.0 busy, auth=Verified, level=secure\r${forged}` } },
    { name: 'starttls-multiline', raw: { STARTTLS: `454-4.7.0 busy\r\n454 ${forged}` } },
    { name: 'starttls-esc', raw: { STARTTLS: '554 5.7.0 \x1b[2J\x1b[3J\x1b[H\x1b]0;pwned\x07 no \\x0a' } },
    { name: 'greeting', raw: { GREETING: `554 5.3.2 go away\r${forged}\x1b[2J` } },
    { name: 'ehlo', raw: { EHLO: `421 4.3.2 bye\u202e\r${forged}` } },
    { name: 'mail', raw: { MAIL: `451-4.3.0 \x1b[31mred\r\n451 4.3.0 busy\r${forged}` } },
    { name: 'rcpt', raw: { RCPT: '550 5.1.1 \x9b2J \x85 no\u2028such "user"' } },
    { name: 'data', raw: { DATA: '554 5.6.0 \u202egnp.exe\u202c \x00\x7f refused' } },
    { name: 'auth', raw: { AUTH: `535 5.7.8 \x1b[2J bad\r${forged}` }, auth: true },
  ];
  let hostile: Peer[] = [];
  beforeAll(async () => {
    const block = loopbackBlock();
    hostile = await startPeers(
      rows.map((r, i) => ({ host: block(i + 2), behaviour: 'starttls' as const, rawReplies: r.raw, ...(r.auth ? { auth: true } : {}) })),
    );
  });
  afterAll(async () => {
    await Promise.all(hostile.map((p) => p.close()));
  });
  const open = (name: string, logger?: unknown) => {
    const peer = hostile[rows.findIndex((r) => r.name === name)]!;
    return Session.open({
      host: 'mx.test',
      address: peer.host,
      port: peer.port,
      starttls: true,
      tls: { servername: 'mx.test' },
      ...(logger ? { logger, debug: true } : {}),
    });
  };

  it.each([
    ['starttls-cr', `454 4.7.0 busy, auth=Verified, level=secure\\x0d${forged}`],
    ['starttls-multiline', `454-4.7.0 busy 454 ${forged}`],
    ['starttls-esc', '554 5.7.0 \\x1b[2J\\x1b[3J\\x1b[H\\x1b]0;pwned\\x07 no \\\\x0a'],
  ])('the STARTTLS refusal (%s)', async (name, want) => {
    const { logger, lines } = recordingLogger();
    const { facts, session } = await open(name, logger);
    session?.quit();
    expect(facts.starttlsReply).toBe(want);
    // the debug trace, where SMTPConnection logs each reply, holds no raw control either
    expect(lines.some((l) => l.tnx === 'server' && l.text.includes(want))).toBe(true);
    for (const l of lines) expect(l.text, JSON.stringify(l)).not.toMatch(RAW);
  });

  it.each([
    ['greeting', 'reply', `554 5.3.2 go away\\x0d${forged}\\x1b[2J`],
    ['ehlo', 'reply', `421 4.3.2 bye\\u{202e}\\x0d${forged}`],
  ])('a refused %s: the failure', async (name, kind, reply) => {
    const { logger, lines } = recordingLogger();
    const { facts } = await open(name, logger);
    expect(facts.failure).toEqual({ kind, message: `the server answered ${reply}`, reply, replyCode: Number(reply.slice(0, 3)) });
    // SMTPConnection's own error message quotes the reply: logged safe, on one line
    expect(lines.some((l) => l.text.includes(reply))).toBe(true);
    for (const l of lines) expect(l.text, JSON.stringify(l)).not.toMatch(RAW);
  });

  it.each([
    [
      'mail',
      {
        reply: `451-4.3.0 \\x1b[31mred 451 4.3.0 busy\\x0d${forged}`,
        status: 'deferred',
        message: /^Mail command failed: 451-4\.3\.0 \\x1b\[31mred 451 4\.3\.0 busy\\x0dtlsaudit: /,
      },
    ],
    ['rcpt', { reply: '550 5.1.1 \\u{009b}2J \\u{0085} no\\u{2028}such "user"', status: 'rejected' }],
    [
      'data',
      { reply: '554 5.6.0 \\u{202e}gnp.exe\\u{202c} \\x00\\x7f refused', status: 'rejected', message: /^Data command failed: 554 5\.6\.0 \\u\{202e\}gnp/ },
    ],
  ] as const)('a refused transaction (%s): replies and messages', async (name, want) => {
    const { facts, session } = await open(name);
    expect(facts.tls).toBeDefined();
    const result = await session!.send('a@origin.test', ['b@x.test'], Buffer.from('Subject: t\r\n\r\nhello\r\n'));
    session!.quit();
    expect(result.ok).toBe(false);
    expect(result.recipients).toEqual([{ recipient: 'b@x.test', status: want.status, reply: want.reply }]);
    expect(result.reply).toBe(want.reply);
    if ('message' in want) {
      expect(result.failure!.reply).toBe(want.reply);
      expect(result.failure!.message).toMatch(want.message);
    }
    for (const text of [result.reply, result.failure?.message, result.failure?.reply, ...result.recipients.map((r) => r.reply)]) {
      if (text !== undefined) expect(text).not.toMatch(RAW);
    }
  });

  it('a refused AUTH: the error message and response', async () => {
    const { facts, session } = await open('auth');
    expect(facts.tls).toBeDefined();
    const error = (await session!.login({ user: 'u', pass: 'p' }).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { response?: string; responseCode?: number };
    session!.quit();
    const reply = `535 5.7.8 \\x1b[2J bad\\x0d${forged}`;
    expect(error).toBeInstanceOf(Error);
    expect(error.response).toBe(reply);
    expect(error.responseCode).toBe(535);
    expect(error.message).toBe(`Invalid login: ${reply}`);
  });
});

describe('oneLine', () => {
  it.each([
    [undefined, undefined],
    ['250 ok', '250 ok'],
    ['250-a\r\n250 b\n', '250-a 250 b'],
    ['454 a\rb\x1b[2J\u202e', '454 a\\x0db\\x1b[2J\\u{202e}'],
  ])('%j -> %j', (input, want) => {
    expect(oneLine(input)).toBe(want);
  });
  it('is a no-op on what the session gathered (replyLine), so it never escapes twice', () => {
    for (const raw of ['454 a\\b\rc', '250 "q" \\x0a', '5\u202e\x1b']) {
      const gathered = replyLine(raw)!;
      expect(oneLine(gathered)).toBe(gathered);
    }
  });
});

describe('the certificates taken from the handshake: the whole chain, or only the leaf (SessionOptions.peerChain)', () => {
  let chained: Peer | undefined;
  let withStranger: Peer | undefined;
  let leaf: Issued;
  let intermediate: Issued;
  let root: Issued;
  let stranger: Issued;
  beforeAll(async () => {
    root = await makeCA('session chain root');
    intermediate = await makeCA('session chain intermediate', { issuer: root });
    stranger = await makeCA('session chain stranger');
    leaf = await makeLeaf(intermediate, { names: ['mx.chain.test'] });
    [chained, withStranger] = await startPeers([
      { host: ip(20), behaviour: 'starttls', cert: leaf.chainPem, key: leaf.keyPem },
      // a certificate off the issuer path between the leaf and its issuer, and the root at the end
      { host: ip(21), behaviour: 'starttls', cert: leaf.certPem + stranger.certPem + intermediate.certPem + root.certPem, key: leaf.keyPem },
    ]);
  });
  afterAll(async () => {
    await Promise.all([chained?.close(), withStranger?.close()]);
  });
  /** A session with `peer` whose local CA store holds the root; quit at once, its facts kept. */
  const openWithRoot = async (peer: Peer) => {
    const { facts, session } = await Session.open({
      host: 'mx.chain.test',
      address: peer.host,
      port: peer.port,
      starttls: true,
      tls: { servername: 'mx.chain.test', ca: [root.certPem] },
    });
    session?.quit();
    return facts;
  };

  it('every certificate the server sent, in the order sent: what OpenSSL searches for issuers, nothing dropped, nothing added', async () => {
    // The local CA store knows the root: the handshake verifies the chain with it, and still the chain is what was sent.
    const facts = await openWithRoot(withStranger!);
    expect(facts.tls?.authorized).toBe(true);
    expect(facts.tls?.chain.map((der) => der.toString('hex'))).toEqual([leaf.der, stranger.der, intermediate.der, root.der].map((der) => der.toString('hex')));
  });

  it('nothing the server did not send: a root found in the local CA store is not added', async () => {
    const facts = await openWithRoot(chained!);
    expect(facts.tls?.authorized).toBe(true);
    expect(facts.tls?.chain.map((der) => der.toString('hex'))).toEqual([leaf.der, intermediate.der].map((der) => der.toString('hex')));
  });

  it.each([
    ['by default, the chain the server sent', undefined, 2],
    ['peerChain: true, the same', true, 2],
    ['peerChain: false, the leaf alone', false, 1],
  ] as const)('%s', async (_name, peerChain, count) => {
    const { facts, session } = await Session.open({
      host: 'mx.chain.test',
      address: chained!.host,
      port: chained!.port,
      starttls: true,
      tls: { servername: 'mx.chain.test' },
      ...(peerChain !== undefined ? { peerChain } : {}),
    });
    session?.quit();
    expect(facts.tls?.chain.map((der) => der.toString('hex'))).toEqual([leaf.der, intermediate.der].slice(0, count).map((der) => der.toString('hex')));
  });
});
