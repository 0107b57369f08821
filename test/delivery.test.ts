/**
 * Delivery across several MX hosts, relays, fallback levels, shadow levels, DNS edge cases and
 * routing, against real smtp-server peers and a real DNS server. Each test checks from the
 * server's side what crossed which channel.
 */
import { Readable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsPolicy } from '../lib/index.js';
import { certDigest } from '../lib/pkix/index.js';
import { makePki, makeWorld, type HostSpec, type Pki, type World } from './helpers/world.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import type { Issued } from './helpers/pki.js';

let pki: Pki;
let world: World;
let wrongCert: Issued;
const old = Date.now() - 3600_000;

const mx = (domain: string, exchange: string, preference = 10): ZoneRecord => ({ name: domain, type: 'MX', exchange, preference });

beforeAll(async () => {
  pki = await makePki();
  wrongCert = await pki.leaf(['mx.other.invalid']);
  const hosts: HostSpec[] = [
    { name: 'mx1.two.test', behaviour: 'handshake-fail' },
    { name: 'mx2.two.test', behaviour: 'starttls' },
    { name: 'mxa.allfail.test', behaviour: 'handshake-fail' },
    { name: 'mxb.allfail.test', behaviour: 'handshake-fail' },
    { name: 'mx1.t454.test', behaviour: 'starttls-454' },
    { name: 'mx2.t454.test', behaviour: 'starttls' },
    { name: 'mx.t554.test', behaviour: 'starttls-554' },
    { name: 'mx.ok.test', behaviour: 'starttls' },
    { name: 'mx.nostarttls.test', behaviour: 'no-starttls' },
    { name: 'mx.wrongname.test', behaviour: 'starttls', cert: wrongCert },
    { name: 'relay.test', behaviour: 'starttls', auth: true },
    { name: 'clearrelay.test', behaviour: 'no-starttls', auth: true },
    { name: 'smtps.test', behaviour: 'implicit-tls', auth: true },
    { name: 'implicit.test', behaviour: 'starttls' },
    { name: 'mx.rcpt.test', behaviour: 'starttls', rcptReplies: { 'bad@rcpt.test': '550 5.1.1 no such user', 'later@rcpt.test': '451 4.2.0 try again later' } },
    { name: 'mx.xn--bcher-kva.test', behaviour: 'starttls' },
    {
      name: 'mx1.soft.test',
      behaviour: 'starttls',
      rcptReplies: { 'later@soft.test': '451 4.2.0 try again later', 'gone@soft.test': '550 5.1.1 no such user' },
    },
    { name: 'mx2.soft.test', behaviour: 'starttls' },
    { name: 'mx1.busy.test', behaviour: 'starttls', mailReply: '451 4.3.0 try again later' },
    { name: 'mx2.busy.test', behaviour: 'starttls', mailReply: '451 4.3.0 try again later' },
    { name: 'mx3.busy.test', behaviour: 'starttls', mailReply: '451 4.3.0 try again later' },
  ];
  const records: ZoneRecord[] = [
    mx('two.test', 'mx1.two.test', 10),
    mx('two.test', 'mx2.two.test', 20),
    mx('allfail.test', 'mxa.allfail.test', 10),
    mx('allfail.test', 'mxb.allfail.test', 20),
    mx('t454.test', 'mx1.t454.test', 10),
    mx('t454.test', 'mx2.t454.test', 20),
    mx('t554.test', 'mx.t554.test'),
    mx('ok.test', 'mx.ok.test'),
    mx('nostarttls.test', 'mx.nostarttls.test'),
    mx('wrongname.test', 'mx.wrongname.test'),
    mx('rcpt.test', 'mx.rcpt.test'),
    mx('xn--bcher-kva.test', 'mx.xn--bcher-kva.test'),
    { name: 'nullmx.test', type: 'MX', exchange: '.', preference: 0 },
    mx('soft.test', 'mx1.soft.test', 10),
    mx('soft.test', 'mx2.soft.test', 20),
    mx('busy.test', 'mx1.busy.test', 10),
    mx('busy.test', 'mx2.busy.test', 20),
    mx('busy.test', 'mx3.busy.test', 30),
  ];
  world = await makeWorld(pki, hosts, records);
});
afterAll(async () => {
  await world?.close();
});

function peer(name: string) {
  const p = world.peers.get(name);
  if (!p) throw new Error(`no peer ${name}`);
  return p;
}

/** MAIL/RCPT/AUTH/DATA a peer sees while `fn` runs, as [command, secure]. */
async function seenBy<T>(names: string[], fn: () => Promise<T>): Promise<{ result: T; seen: Record<string, Array<[string, boolean]>> }> {
  const before = new Map(names.map((n) => [n, peer(n).events.length]));
  const result = await fn();
  const seen: Record<string, Array<[string, boolean]>> = {};
  for (const n of names) {
    seen[n] = peer(n)
      .events.slice(before.get(n))
      .filter((e) => e.command !== 'CONNECT')
      .map((e) => [e.command, e.secure]);
  }
  return { result, seen };
}

const SENT_CLEAR: Array<[string, boolean]> = [
  ['MAIL', false],
  ['RCPT', false],
  ['DATA', false],
];
const SENT_TLS: Array<[string, boolean]> = [
  ['MAIL', true],
  ['RCPT', true],
  ['DATA', true],
];

describe('several MX hosts', () => {
  it('a TLS failure at the first MX moves on to the second, which takes the mail over TLS', async () => {
    const { result, seen } = await seenBy(['mx1.two.test', 'mx2.two.test'], () => world.send({ level: 'may' }, { to: 'u@two.test', queuedAt: old }));
    expect(result.error).toBeUndefined();
    const attempts = result.info!.deliveries[0]!.attempts;
    expect(attempts.map((a) => [a.mx, a.mode, a.decision])).toEqual([
      ['mx1.two.test', 'tls', 'cleartext-later'],
      ['mx2.two.test', 'tls', 'send'],
    ]);
    expect(seen).toEqual({ 'mx1.two.test': [], 'mx2.two.test': SENT_TLS });
  });

  it('cleartext only after every MX failed TLS (the other MX hosts first), in MX order, for an old message', async () => {
    const { result, seen } = await seenBy(['mxa.allfail.test', 'mxb.allfail.test'], () =>
      world.send({ level: 'may' }, { to: 'u@allfail.test', queuedAt: old }),
    );
    expect(result.error).toBeUndefined();
    expect(result.info!.deliveries[0]!.attempts.map((a) => [a.mx, a.mode, a.decision])).toEqual([
      ['mxa.allfail.test', 'tls', 'cleartext-later'],
      ['mxb.allfail.test', 'tls', 'cleartext-later'],
      ['mxa.allfail.test', 'cleartext-retry', 'send'],
    ]);
    const last = result.info!.deliveries[0]!.attempts[2]!;
    expect(last.audit.auth).toBe('Cleartext');
    expect(last.audit.fallback_reason).toMatch(/cleartext retry of mxa\.allfail\.test\[[\d.]+\]:\d+ after a TLS failure/);
    expect(seen).toEqual({ 'mxa.allfail.test': SENT_CLEAR, 'mxb.allfail.test': [] });
  });

  it('a new message is deferred, never sent in cleartext, when every MX fails TLS', async () => {
    const { result, seen } = await seenBy(['mxa.allfail.test', 'mxb.allfail.test'], () => world.send({ level: 'may' }, { to: 'u@allfail.test' }));
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(/mxa\.allfail\.test.*TLS handshake failed.*300 s old.*mxb\.allfail\.test.*TLS handshake failed/);
    expect(seen).toEqual({ 'mxa.allfail.test': [], 'mxb.allfail.test': [] });
  });

  it('no cleartext retry when AUTH is configured (a relay), however old the message', async () => {
    const relay = { host: peer('mxa.allfail.test').host, port: peer('mxa.allfail.test').port };
    const { result, seen } = await seenBy(['mxa.allfail.test', 'mxb.allfail.test'], () =>
      world.send({ level: 'may', relay, auth: { user: 'u', pass: 'secret' } }, { to: 'u@allfail.test', queuedAt: old }),
    );
    expect(result.error?.message).toMatch(/no cleartext retry because SMTP AUTH is configured/);
    expect(seen).toEqual({ 'mxa.allfail.test': [], 'mxb.allfail.test': [] });
  });

  it('tlsTempfailTryclear=true: cleartext at once on the failing MX, before the next MX, with no age gate', async () => {
    const { result, seen } = await seenBy(['mxa.allfail.test', 'mxb.allfail.test'], () =>
      world.send({ level: 'may', tlsTempfailTryclear: true }, { to: 'u@allfail.test' }),
    );
    expect(result.error).toBeUndefined();
    expect(result.info!.deliveries[0]!.attempts.map((a) => [a.mx, a.mode, a.decision])).toEqual([
      ['mxa.allfail.test', 'tls', 'cleartext-now'],
      ['mxa.allfail.test', 'cleartext-retry', 'send'],
    ]);
    expect(seen).toEqual({ 'mxa.allfail.test': SENT_CLEAR, 'mxb.allfail.test': [] });
  });

  it('tlsTempfailTryclear=false: a failed handshake is a temporary failure of that MX, never cleartext', async () => {
    const { result, seen } = await seenBy(['mxa.allfail.test', 'mxb.allfail.test'], () =>
      world.send({ level: 'may', tlsTempfailTryclear: false }, { to: 'u@allfail.test', queuedAt: old }),
    );
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(/tlsTempfailTryclear is false, so no cleartext/);
    expect(seen).toEqual({ 'mxa.allfail.test': [], 'mxb.allfail.test': [] });
  });

  it('454 to STARTTLS at may: cleartext on the same connection (Postfix, Exim default)', async () => {
    const { result, seen } = await seenBy(['mx1.t454.test', 'mx2.t454.test'], () => world.send({ level: 'may' }, { to: 'u@t454.test' }));
    expect(result.error).toBeUndefined();
    const a = result.info!.deliveries[0]!.attempts;
    expect(a.map((x) => [x.mx, x.decision])).toEqual([['mx1.t454.test', 'send']]);
    expect(a[0]!.audit.fallback_reason).toMatch(/^mx1\.t454\.test\[[\d.]+\]:\d+ refused STARTTLS: 454 4\.7\.0 TLS not available due to local problem$/);
    expect(a[0]!.audit.reply).toMatch(/^250 /);
    expect(seen).toEqual({ 'mx1.t454.test': SENT_CLEAR, 'mx2.t454.test': [] });
  });

  it('454 to STARTTLS with tlsTempfailTryclear=false: that MX fails, the next one is tried with TLS', async () => {
    const { result, seen } = await seenBy(['mx1.t454.test', 'mx2.t454.test'], () =>
      world.send({ level: 'may', tlsTempfailTryclear: false }, { to: 'u@t454.test' }),
    );
    expect(result.error).toBeUndefined();
    expect(result.info!.deliveries[0]!.attempts.map((x) => [x.mx, x.decision])).toEqual([
      ['mx1.t454.test', 'next'],
      ['mx2.t454.test', 'send'],
    ]);
    expect(seen).toEqual({ 'mx1.t454.test': [], 'mx2.t454.test': SENT_TLS });
  });

  it('strict opportunistic TLS: a 554 to STARTTLS defers instead of going cleartext', async () => {
    const { result, seen } = await seenBy(['mx.t554.test'], () => world.send({ level: 'may', strictOpportunistic: true }, { to: 'u@t554.test' }));
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(/refused STARTTLS: 554 5\.7\.0 TLS not available; cleartext is allowed only when STARTTLS is not offered/);
    expect(seen).toEqual({ 'mx.t554.test': [] });
  });
});

describe('recipients deferred by one MX', () => {
  it('are tried at the next MX, as Postfix keeps soft-failed recipients for a backup server', async () => {
    const { result, seen } = await seenBy(['mx1.soft.test', 'mx2.soft.test'], () =>
      world.send({ level: 'encrypt' }, { to: ['now@soft.test', 'later@soft.test', 'gone@soft.test'] }),
    );
    expect(result.error).toBeUndefined();
    const d = result.info!.deliveries[0]!;
    expect([d.status, d.accepted, d.rejected, d.pending]).toEqual(['partial', ['now@soft.test', 'later@soft.test'], ['gone@soft.test'], []]);
    expect(d.attempts.map((a) => [a.mx, a.decision])).toEqual([
      ['mx1.soft.test', 'send'],
      ['mx2.soft.test', 'send'],
    ]);
    expect(seen['mx2.soft.test']).toEqual([
      ['MAIL', true],
      ['RCPT', true],
      ['DATA', true],
    ]);
    const mx2 = peer('mx2.soft.test').messages.at(-1)!;
    expect(mx2.to).toEqual(['later@soft.test']);
  });
});

describe('smtp_mx_session_limit', () => {
  const busy = ['mx1.busy.test', 'mx2.busy.test', 'mx3.busy.test'];
  it('after two established sessions whose transaction failed, the destination is deferred', async () => {
    const { result, seen } = await seenBy(busy, () => world.send({ level: 'encrypt' }, { to: 'u@busy.test' }));
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(/mx1\.busy\.test\S* answered 451 4\.3\.0 try again later; mx2\.busy\.test\S* answered 451/);
    expect(seen).toEqual({ 'mx1.busy.test': [['MAIL', true]], 'mx2.busy.test': [['MAIL', true]], 'mx3.busy.test': [] });
  });
  it('maxMxSessions: 0 tries every MX', async () => {
    const { seen } = await seenBy(busy, () => world.send({ level: 'encrypt', maxMxSessions: 0 }, { to: 'u@busy.test' }));
    expect(seen['mx3.busy.test']).toEqual([['MAIL', true]]);
  });
});

describe('fallback levels and shadow levels', () => {
  it('verify=encrypt: a wrong name is delivered at encrypt, the audit says policy verify and why', async () => {
    const { result, seen } = await seenBy(['mx.wrongname.test'], () =>
      world.send({ level: 'verify', fallbackLevels: 'verify=encrypt' }, { to: 'u@wrongname.test' }),
    );
    expect(result.error).toBeUndefined();
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect([audit.level, audit.policy, audit.auth]).toEqual(['encrypt', 'verify', 'Trusted']);
    expect(audit.fallback_reason).toMatch(/mx\.other\.invalid/);
    expect(result.info!.deliveries[0]!.attempts[0]!.auditLine).toMatch(/level=encrypt, policy=verify/);
    expect(seen).toEqual({ 'mx.wrongname.test': SENT_TLS });
  });

  it('a destination with fallback=none is not downgraded by the global map', async () => {
    const { result, seen } = await seenBy(['mx.wrongname.test'], () =>
      world.send({ level: 'may', fallbackLevels: 'verify=encrypt', policy: 'wrongname.test verify fallback=none' }, { to: 'u@wrongname.test' }),
    );
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.message).toMatch(/wrongname\.test: delivery at level verify failed: .*mx\.other\.invalid/);
    expect(seen).toEqual({ 'mx.wrongname.test': [] });
  });

  it('fallback=may lets an authenticated level go cleartext when STARTTLS is not offered, and says so', async () => {
    const { result, seen } = await seenBy(['mx.nostarttls.test'], () =>
      world.send({ policy: 'nostarttls.test secure fallback=may' }, { to: 'u@nostarttls.test' }),
    );
    expect(result.error).toBeUndefined();
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect([audit.level, audit.policy, audit.auth]).toEqual(['may', 'secure', 'Cleartext']);
    expect(audit.fallback_reason).toMatch(/offered no STARTTLS/);
    expect(seen).toEqual({ 'mx.nostarttls.test': SENT_CLEAR });
  });

  it('shadow=verify under may: delivered at may, the audit says verify would have failed and why', async () => {
    const { result } = await seenBy(['mx.wrongname.test'], () => world.send({ policy: 'wrongname.test may shadow=verify' }, { to: 'u@wrongname.test' }));
    const audit = result.info!.deliveries[0]!.attempts[0]!.audit;
    expect([audit.level, audit.shadow]).toEqual(['may', 'verify']);
    expect(audit.shadow_result).toMatch(/^fail: .*mx\.other\.invalid/);
  });

  it('shadow=verify passes where verify would pass', async () => {
    const { result } = await seenBy(['mx.ok.test'], () => world.send({ policy: { 'ok.test': { level: 'may', shadow: 'verify' } } }, { to: 'u@ok.test' }));
    expect(result.info!.deliveries[0]!.attempts[0]!.audit.shadow_result).toBe('pass');
  });

  it('fingerprint: the certificate digest authenticates; another digest does not', async () => {
    const good = certDigest(wrongCert.der, 'sha256');
    const ok = await seenBy(['mx.wrongname.test'], () => world.send({ policy: `wrongname.test fingerprint match=${good}` }, { to: 'u@wrongname.test' }));
    expect(ok.result.info!.deliveries[0]!.attempts[0]!.audit.auth).toBe('Verified');
    expect(ok.seen).toEqual({ 'mx.wrongname.test': SENT_TLS });
    const bad = await seenBy(['mx.wrongname.test'], () =>
      world.send({ policy: `wrongname.test fingerprint match=${'AB:'.repeat(31)}AB` }, { to: 'u@wrongname.test' }),
    );
    expect(bad.result.error?.code).toBe('ETLS');
    expect(bad.seen).toEqual({ 'mx.wrongname.test': [] });
  });
});

describe('Exim host lists', () => {
  it('hostsRequireTls makes a may destination mandatory for that host', async () => {
    const { result, seen } = await seenBy(['mx.nostarttls.test'], () =>
      world.send({ level: 'may', hostsRequireTls: ['*.nostarttls.test'] }, { to: 'u@nostarttls.test' }),
    );
    expect(result.error?.message).toMatch(/offered no STARTTLS; TLS is mandatory at level encrypt/);
    expect(seen).toEqual({ 'mx.nostarttls.test': [] });
  });
  it('hostsAvoidTls sends in cleartext to that host', async () => {
    const { seen } = await seenBy(['mx.ok.test'], () => world.send({ level: 'may', hostsAvoidTls: ['mx.ok.test'] }, { to: 'u@ok.test' }));
    expect(seen).toEqual({ 'mx.ok.test': SENT_CLEAR });
  });
});

describe('relay', () => {
  const relayOf = (name: string, secure = false) => ({ host: peer(name).host, port: peer(name).port, secure });
  it('AUTH goes inside TLS to a relay that offers STARTTLS', async () => {
    const { result, seen } = await seenBy(['relay.test'], () =>
      world.send({ level: 'encrypt', relay: relayOf('relay.test'), auth: { user: 'alice', pass: 'secret' } }, { to: ['a@one.example', 'b@two.example'] }),
    );
    expect(result.error).toBeUndefined();
    expect(result.info!.accepted).toEqual(['a@one.example', 'b@two.example']);
    expect(seen['relay.test']).toEqual([
      ['AUTH', true],
      ['MAIL', true],
      ['RCPT', true],
      ['RCPT', true],
      ['DATA', true],
    ]);
  });
  it('AUTH never crosses cleartext: a may relay without STARTTLS fails rather than send credentials', async () => {
    const { result, seen } = await seenBy(['clearrelay.test'], () =>
      world.send({ level: 'may', relay: relayOf('clearrelay.test'), auth: { user: 'alice', pass: 'secret' } }, { to: 'a@one.example' }),
    );
    expect(result.error?.message).toMatch(/offered no STARTTLS, and SMTP AUTH is never sent over cleartext/);
    expect(seen).toEqual({ 'clearrelay.test': [] });
  });
  it('allowCleartextAuth: the user said so explicitly', async () => {
    const { seen } = await seenBy(['clearrelay.test'], () =>
      world.send(
        { level: 'may', relay: relayOf('clearrelay.test'), auth: { user: 'alice', pass: 'secret' }, allowCleartextAuth: true },
        { to: 'a@one.example' },
      ),
    );
    expect(seen['clearrelay.test']).toEqual([['AUTH', false], ...SENT_CLEAR]);
  });
  it('implicit TLS (SMTPS) relay at encrypt', async () => {
    const { result, seen } = await seenBy(['smtps.test'], () =>
      world.send({ level: 'encrypt', relay: relayOf('smtps.test', true), auth: { user: 'alice', pass: 'secret' } }, { to: 'a@one.example' }),
    );
    expect(result.info!.deliveries[0]!.attempts[0]!.audit.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(seen['smtps.test']).toEqual([['AUTH', true], ...SENT_TLS]);
  });
  it('a refused AUTH defers (as Postfix smtp_sasl_auth_soft_bounce), code EAUTH, nothing of the mail sent', async () => {
    const { result, seen } = await seenBy(['relay.test'], () =>
      world.send({ level: 'encrypt', relay: relayOf('relay.test'), auth: { user: 'alice', pass: 'wrong' } }, { to: 'a@one.example' }),
    );
    expect(result.error?.code).toBe('EAUTH');
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(/refused SMTP AUTH: 535 5\.7\.8/);
    expect(seen['relay.test']).toEqual([['AUTH', true]]);
  });
  it('AUTH configured but the relay offers none: EAUTH, temporary, nothing of the mail sent unauthenticated', async () => {
    const { result, seen } = await seenBy(['mx.ok.test'], () =>
      world.send({ level: 'encrypt', relay: relayOf('mx.ok.test'), auth: { user: 'alice', pass: 'secret' } }, { to: 'a@one.example' }),
    );
    expect(result.error?.code).toBe('EAUTH');
    expect(result.error?.temporary).toBe(true);
    expect(result.error?.message).toMatch(/offered no SMTP AUTH \(its EHLO reply has no AUTH line\), and AUTH is configured for this relay/);
    expect(seen['mx.ok.test']).toEqual([]);
  });
  it('verify() checks the relay up to MAIL FROM, and reports the TLS failure', async () => {
    const transport = tlsPolicy({ level: 'encrypt', relay: relayOf('clearrelay.test'), caFile: pki.caFile });
    await expect(transport.verify()).rejects.toMatchObject({ code: 'ETLS', message: expect.stringMatching(/offered no STARTTLS/) });
    const good = tlsPolicy({ level: 'encrypt', relay: relayOf('relay.test'), caFile: pki.caFile, auth: { user: 'alice', pass: 'secret' } });
    await expect(good.verify()).resolves.toBe(true);
  });
});

describe('DNS and routing', () => {
  it('a null MX (RFC 7505) bounces at once', async () => {
    const { result } = await seenBy([], () => world.send({}, { to: 'u@nullmx.test' }));
    expect(result.error?.code).toBe('ENULLMX');
    expect(result.error?.temporary).toBe(false);
    expect(result.error?.rejected).toEqual(['u@nullmx.test']);
    expect(result.error?.message).toBe('nullmx.test: delivery at level may failed: nullmx.test accepts no mail: it publishes a null MX (RFC 7505)');
  });
  it('a recipient with an invalid domain is rejected alone; the others are still delivered', async () => {
    const long = `${'a'.repeat(64)}.test`;
    const { result } = await seenBy([], () => world.send({}, { to: ['u@ok.test', `x@${long}`] }));
    expect(result.info!.accepted).toEqual(['u@ok.test']);
    expect(result.info!.rejected).toEqual([`x@${long}`]);
    expect(result.info!.deliveries.at(-1)).toMatchObject({ status: 'bounced', code: 'EENVELOPE' });
  });
  it('a domain that does not exist bounces', async () => {
    const { result } = await seenBy([], () => world.send({}, { to: 'u@nosuch.test' }));
    expect(result.error?.code).toBe('EDNS');
    expect(result.error?.temporary).toBe(false);
  });
  it('no MX: the domain itself is the MX (implicit MX)', async () => {
    const { result, seen } = await seenBy(['implicit.test'], () => world.send({ level: 'verify' }, { to: 'u@implicit.test' }));
    expect(result.error).toBeUndefined();
    expect(result.info!.deliveries[0]!.attempts[0]!.mx).toBe('implicit.test');
    expect(seen).toEqual({ 'implicit.test': SENT_TLS });
  });
  it('an IDN recipient domain is delivered to as its A-label', async () => {
    const { result, seen } = await seenBy(['mx.xn--bcher-kva.test'], () => world.send({}, { to: 'u@bücher.test' }));
    expect(result.error).toBeUndefined();
    expect(result.info!.deliveries[0]!.destination).toBe('xn--bcher-kva.test');
    expect(seen['mx.xn--bcher-kva.test']).toEqual(SENT_TLS);
  });
  it('one destination per domain; accepted, rejected and pending recipients are reported', async () => {
    const { result } = await seenBy(['mx.ok.test', 'mx.nostarttls.test', 'mx.rcpt.test'], () =>
      world.send({ level: 'encrypt' }, { to: ['a@ok.test', 'b@ok.test', 'c@nostarttls.test', 'good@rcpt.test', 'bad@rcpt.test', 'later@rcpt.test'] }),
    );
    expect(result.error).toBeUndefined();
    const info = result.info!;
    expect(info.deliveries.map((d) => [d.destination, d.status])).toEqual([
      ['ok.test', 'delivered'],
      ['nostarttls.test', 'deferred'],
      ['rcpt.test', 'partial'],
    ]);
    expect(info.accepted).toEqual(['a@ok.test', 'b@ok.test', 'good@rcpt.test']);
    expect(info.rejected).toEqual(['bad@rcpt.test']);
    expect(info.pending).toEqual(['c@nostarttls.test', 'later@rcpt.test']);
    // each recipient's own reply, with the server that gave it
    const replies = info.deliveries[2]!.replies!;
    expect(replies['bad@rcpt.test']).toMatch(/^mx\.rcpt\.test\[[\d.]+\]:\d+: 550 5\.1\.1 no such user$/);
    expect(replies['later@rcpt.test']).toMatch(/^mx\.rcpt\.test\[[\d.]+\]:\d+: 451 4\.2\.0 try again later$/);
    expect(replies['good@rcpt.test']).toMatch(/^mx\.rcpt\.test\[[\d.]+\]:\d+: 250 /);
    expect(info.deliveries[1]!.replies).toBeUndefined(); // no server answered for c@nostarttls.test
  });
  it('the message is built once: every destination gets the same bytes, attachment streams included', async () => {
    const ok = peer('mx.ok.test');
    const rcpt = peer('mx.rcpt.test');
    const [n1, n2] = [ok.messages.length, rcpt.messages.length];
    const { result } = await seenBy([], () =>
      world.send(
        {},
        { to: ['a@ok.test', 'good@rcpt.test'], attachments: [{ filename: 'a.txt', content: Readable.from([Buffer.from('streamed attachment body')]) }] },
      ),
    );
    expect(result.error).toBeUndefined();
    const a = ok.messages.slice(n1);
    const b = rcpt.messages.slice(n2);
    expect(a.length).toBe(1);
    expect(b.length).toBe(1);
    expect(a[0]!.data).toBe(b[0]!.data);
    expect(a[0]!.data).toContain(Buffer.from('streamed attachment body').toString('base64'));
  });
});

describe('configuration errors at creation', () => {
  it('a bad policy file line names the file, the line and the problem', () => {
    const file = join(pki.dir, 'tls_policy');
    writeFileSync(file, '# comment\nexample.com secure\nexample.net verfy\n');
    expect(() => tlsPolicy({ policy: { file } })).toThrow(/tls_policy:3: .*verfy/);
  });
  it('AUTH without a relay is rejected: credentials never go to MX hosts', () => {
    expect(() => tlsPolicy({ auth: { user: 'u', pass: 'p' } })).toThrow(/option auth needs option relay/);
  });
  it('a bad fallback map, audit template, relay or port is rejected', () => {
    expect(() => tlsPolicy({ fallbackLevels: 'may=encrypt' })).toThrow(/may/);
    expect(() => tlsPolicy({ auditTemplate: 'x ${relay' })).toThrow();
    expect(() => tlsPolicy({ relay: 'a:b:c' })).toThrow(/relay/);
    expect(() => tlsPolicy({ port: 0 })).toThrow(/port/);
    expect(() => tlsPolicy({ level: 'sekure' as never })).toThrow(/sekure/);
    expect(() => tlsPolicy({ caFile: '/nonexistent/ca.pem' })).toThrow(/cannot read CA file \/nonexistent\/ca\.pem/);
  });
});

describe('probe', () => {
  it('runs the delivery path up to MAIL FROM and reports the events, sending nothing', async () => {
    const transport = tlsPolicy({
      level: 'verify',
      port: world.port,
      caFile: pki.caFile,
      dns: (await import('../lib/dns/index.js')).createResolver({ servers: [world.dns.server] }),
    });
    const { result, seen } = await seenBy(['mx1.two.test', 'mx2.two.test'], () => transport.probe('two.test'));
    expect(result.delivery.status).toBe('delivered');
    expect(result.events.map((e) => e.type)).toEqual(['mx', 'host', 'host', 'attempt', 'attempt']);
    expect(result.delivery.attempts.map((a) => [a.mx, a.decision, a.trust])).toEqual([
      ['mx1.two.test', 'next', ''],
      ['mx2.two.test', 'send', 'Verified'],
    ]);
    expect(seen).toEqual({ 'mx1.two.test': [], 'mx2.two.test': [] });
  });
});

describe('implicit TLS relay at may', () => {
  it('runs as encrypt: TLS is inherent, no cleartext fallback exists', async () => {
    const p = world.peers.get('smtps.test')!;
    const { result } = await seenBy(['smtps.test'], () =>
      world.send({ level: 'may', relay: { host: p.host, port: p.port, secure: true }, auth: { user: 'alice', pass: 'secret' } }, { to: 'a@one.example' }),
    );
    expect(result.info!.deliveries[0]!.attempts[0]!.audit.level).toBe('encrypt');
  });
});

describe('implicit TLS with a fallback to may', () => {
  it('a failed handshake on an SMTPS port is not retried in "cleartext" (which would be TLS again, forever)', async () => {
    const { createServer } = await import('node:net');
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    try {
      for (const extra of [{}, { tlsTempfailTryclear: true }]) {
        connections = 0;
        const { error } = await world.send(
          { relay: { host: '127.0.0.1', port, secure: true }, level: 'verify', fallbackLevels: 'verify=may', ...extra },
          { to: 'u@x.test', queuedAt: old },
        );
        expect(error?.temporary).toBe(true);
        expect(error?.message).toMatch(/an implicit TLS port has no cleartext to retry with/);
        expect(connections).toBe(1);
      }
    } finally {
      server.close();
    }
  });
});

describe('hostsRequireTls against a fallback to may', () => {
  it('verify=may never ends in cleartext for a host that must use TLS', async () => {
    const { result, seen } = await seenBy(['mx.nostarttls.test'], () =>
      world.send({ level: 'verify', fallbackLevels: 'verify=may', hostsRequireTls: ['*'] }, { to: 'u@nostarttls.test' }),
    );
    expect(result.error?.code).toBe('ETLS');
    expect(result.error?.message).toMatch(/offered no STARTTLS; TLS is mandatory at level verify \(its fallback level encrypt needs TLS too\)/);
    expect(seen).toEqual({ 'mx.nostarttls.test': [] });
  });
});
