/**
 * Hostile SMTP peers and DNS: every send settles within a bound derived from the configured
 * timeouts, a message is never given to two MX hosts in one call, close() ends what it should,
 * and a huge MX RRset costs a bounded number of lookups.
 *
 * Real parts: raw TCP SMTP peers on 127.0.0.x that trickle, stall or drop at each stage
 * (test/helpers/raw-peer.ts), a DNS server (dns2) serving the MX records, a real Resolver.
 */
import { format } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyError, type TlsPolicyOptions, type TlsPolicySentInfo } from '../lib/index.js';
import { MAX_MX_NAMES } from '../lib/deliver/index.js';
import { startRawPeer, type RawPeer, type RawReply } from './helpers/raw-peer.js';
import { startDnsServer, type TestDnsServer, type ZoneRecord } from './helpers/dns-server.js';
import { loopbackBlock } from './helpers/smtp-peer.js';
import { makeLeaf, type Issued } from './helpers/pki.js';

const ip = loopbackBlock();
let nextHost = 2;
let cert: Issued;
const started: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  cert = await makeLeaf('self', { names: ['mx.hostile.test'] });
});
afterAll(async () => {
  await Promise.all(started.map((s) => s.close()));
});

async function peer(script?: (command: string) => RawReply | undefined, port?: number, tls = true): Promise<RawPeer> {
  const p = await startRawPeer({
    host: ip(nextHost++),
    ...(port ? { port } : {}),
    ...(tls ? { cert: cert.certPem, key: cert.keyPem } : {}),
    ...(script ? { script } : {}),
  });
  started.push(p);
  return p;
}

async function dnsFor(zone: ZoneRecord[]): Promise<TestDnsServer> {
  const d = await startDnsServer({ host: ip(nextHost++), zone });
  started.push(d);
  return d;
}

/** Two MX hosts on one port: `first` (preference 10) and `second` (20), for domain `name`. */
async function twoMx(name: string, first: RawPeer, second: RawPeer): Promise<TestDnsServer> {
  return dnsFor([
    { name, type: 'MX', exchange: `mx1.${name}`, preference: 10 },
    { name, type: 'MX', exchange: `mx2.${name}`, preference: 20 },
    { name: `mx1.${name}`, type: 'A', address: first.host },
    { name: `mx2.${name}`, type: 'A', address: second.host },
  ]);
}

const FAST: TlsPolicyOptions = { commandTimeout: 300, dataTimeout: 400, greetingTimeout: 2000, connectionTimeout: 2000, connectionReuse: false };

async function send(options: TlsPolicyOptions, to: string | string[] = 'u@hostile.test') {
  const transport = nodemailer.createTransport(tlsPolicy(options));
  try {
    const info = await transport.sendMail({ from: 's@origin.test', to, subject: 'hostile', text: 'hello' });
    return { info, error: undefined as TlsPolicyError | undefined };
  } catch (error) {
    return { info: undefined, error: error as TlsPolicyError };
  } finally {
    transport.close();
  }
}

const trickle = (text: string): RawReply => ({ trickle: text, every: 20, forever: true });

/** Each stage a peer can stall at, and the script that stalls there. */
const STAGES: Array<[string, (command: string) => RawReply | undefined, RegExp]> = [
  ['the greeting', (c) => (c === 'CONNECT' ? trickle('220-raw-peer\r\n') : undefined), /no complete greeting within 300 ms/],
  ['the EHLO reply', (c) => (c.startsWith('EHLO') ? trickle('250-raw-peer\r\n') : undefined), /no complete reply to EHLO within 300 ms/],
  ['the STARTTLS reply', (c) => (c === 'STARTTLS' ? trickle('2') : undefined), /no complete reply to STARTTLS within 300 ms/],
  ['the MAIL FROM reply', (c) => (c.startsWith('MAIL') ? trickle('250-ok\r\n') : undefined), /no complete reply to (MAIL|RCPT|DATA) within 300 ms/],
  ['the RCPT TO reply', (c) => (c.startsWith('RCPT') ? trickle('250-ok\r\n') : undefined), /no complete reply to (RCPT|DATA) within 300 ms/],
  ['the DATA reply', (c) => (c === 'DATA' ? trickle('354-go\r\n') : undefined), /no complete reply to DATA within 300 ms/],
];

describe('a peer that trickles a reply it never finishes', () => {
  for (const [stage, script, reason] of STAGES) {
    it(`at ${stage}: the send settles, and the next MX gets the message once`, async () => {
      const bad = await peer(script);
      const good = await peer(undefined, bad.port);
      const dns = await twoMx('hostile.test', bad, good);
      const { info, error } = await send({ ...FAST, level: 'may', port: bad.port, dns: createResolver({ servers: [dns.server] }) });
      expect(error).toBeUndefined();
      expect(info!.accepted).toEqual(['u@hostile.test']);
      expect(bad.messages()).toEqual([]);
      expect(good.messages()).toHaveLength(1);
      const first = info!.deliveries[0]!.attempts[0]!;
      expect(first.mx).toBe('mx1.hostile.test');
      expect(first.reason).toMatch(reason);
    });
  }
  it('25 sends to a peer that trickles its EHLO reply all settle, every recipient pending', async () => {
    const bad = await peer((c) => (c.startsWith('EHLO') ? trickle('250-raw-peer\r\n') : undefined));
    const transport = nodemailer.createTransport(
      tlsPolicy({ ...FAST, connectionReuse: { maxConnectionsPerKey: 2 }, relay: `[${bad.host}]:${bad.port}`, level: 'encrypt' }),
    );
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) => transport.sendMail({ from: 's@origin.test', to: `u${i}@hostile.test`, text: 'x' })),
    );
    transport.close();
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const pending = results.flatMap((r) => (r.status === 'rejected' ? (r.reason as TlsPolicyError).pending : []));
    expect(pending.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `u${i}@hostile.test`).sort());
    for (const r of results) expect((r as PromiseRejectedResult).reason.message).toMatch(/timed out: no complete reply to EHLO within 300 ms/);
    expect(bad.messages()).toEqual([]);
  });
});

describe('after the whole message went out, no other MX is tried in the same call', () => {
  const AFTER_DOT: Array<[string, RawReply, RegExp]> = [
    ['drops the connection', 'drop', /took the whole message, then connection closed unexpectedly before answering its end/],
    ['stays silent', 'silence', /took the whole message, then no reply to the end of the message within 400 ms before answering its end/],
    ['trickles a reply it never finishes', trickle('250-ok\r\n'), /no reply to the end of the message within 400 ms/],
  ];
  for (const [what, reply, reason] of AFTER_DOT) {
    it(`a first MX that ${what} after the final dot: pending, the second MX never gets it`, async () => {
      const bad = await peer((c) => (c === '.' ? reply : undefined));
      const good = await peer(undefined, bad.port);
      const dns = await twoMx('hostile.test', bad, good);
      const { info, error } = await send({ ...FAST, level: 'may', port: bad.port, dns: createResolver({ servers: [dns.server] }) }, [
        'a@hostile.test',
        'b@hostile.test',
      ]);
      expect(info).toBeUndefined();
      expect(error!.code).toBe('ECONNECTION');
      expect(error!.temporary).toBe(true);
      expect(error!.pending.sort()).toEqual(['a@hostile.test', 'b@hostile.test']);
      expect(error!.message).toMatch(reason);
      expect(error!.message).toMatch(/the message may already have been delivered, so it is not sent to another MX now; recipients left pending/);
      // each peer holds the message at most once: the first has it whole, the second never saw it
      expect(bad.messages()).toHaveLength(1);
      expect(good.connections).toEqual([]);
      expect(error!.deliveries[0]!.attempts).toHaveLength(1);
    });
  }
  it('a 4xx answer to the end of the message is an answer: the next MX gets it', async () => {
    const bad = await peer((c) => (c === '.' ? '451 4.3.0 try again later' : undefined));
    const good = await peer(undefined, bad.port);
    const dns = await twoMx('hostile.test', bad, good);
    const { info, error } = await send({ ...FAST, level: 'may', port: bad.port, dns: createResolver({ servers: [dns.server] }) });
    expect(error).toBeUndefined();
    expect(info!.accepted).toEqual(['u@hostile.test']);
    expect(good.messages()).toHaveLength(1);
  });
});

describe('replies that come with the connection closing', () => {
  for (const recipients of [['u@hostile.test'], ['a@hostile.test', 'b@hostile.test']]) {
    for (const tls of [true, false]) {
      it(`a 421 to DATA is reported with its text (${recipients.length} recipients, ${tls ? 'TLS' : 'cleartext'})`, async () => {
        const bad = await peer((c) => (c === 'DATA' ? { reply: '421 4.3.2 shutting down', thenClose: true } : undefined), undefined, tls);
        const { error } = await send({ ...FAST, level: 'may', relay: `[${bad.host}]:${bad.port}` }, recipients);
        expect(error!.message).toMatch(/answered 421 4\.3\.2 shutting down/);
        expect(error!.message).not.toMatch(/Connection closed unexpectedly/);
        expect(error!.temporary).toBe(true);
        expect(error!.pending.sort()).toEqual([...recipients].sort());
      });
    }
  }
});

describe('close()', () => {
  it('ends a session stalled before the message was sent, at once, with every recipient pending', async () => {
    const bad = await peer((c) => (c.startsWith('EHLO') ? trickle('250-raw-peer\r\n') : undefined));
    const transport = nodemailer.createTransport(tlsPolicy({ ...FAST, commandTimeout: 60_000, relay: `[${bad.host}]:${bad.port}`, level: 'encrypt' }));
    const sending = transport.sendMail({ from: 's@origin.test', to: 'u@hostile.test', text: 'x' }).then(
      () => undefined,
      (e: TlsPolicyError) => e,
    );
    // wait until the session is under way, then close
    while (bad.connections.length === 0 || bad.connections[0]!.commands.length === 0) await new Promise((r) => setTimeout(r, 10));
    transport.close();
    const error = await sending;
    expect(error?.code).toBe('ECONNECTION');
    expect(error?.temporary).toBe(true);
    expect(error?.pending).toEqual(['u@hostile.test']);
    expect(error?.message).toMatch(/the transport was closed/);
  });
  it('fails sends waiting for a session slot, and sends made after it, without opening connections', async () => {
    const slow = await peer((c) => (c.startsWith('MAIL') ? trickle('250-ok\r\n') : undefined));
    const transport = nodemailer.createTransport(
      tlsPolicy({ ...FAST, commandTimeout: 60_000, connectionReuse: { maxConnectionsPerKey: 1 }, relay: `[${slow.host}]:${slow.port}`, level: 'encrypt' }),
    );
    const sends = Array.from({ length: 5 }, (_, i) =>
      transport.sendMail({ from: 's@origin.test', to: `u${i}@hostile.test`, text: 'x' }).then(
        () => undefined,
        (e: TlsPolicyError) => e,
      ),
    );
    while (slow.connections.length === 0 || !slow.connections[0]!.commands.some((c) => c.startsWith('MAIL'))) await new Promise((r) => setTimeout(r, 10));
    transport.close();
    const errors = await Promise.all(sends);
    expect(errors.every((e) => e?.code === 'ECONNECTION' && e.temporary)).toBe(true);
    expect(errors.flatMap((e) => e!.pending).sort()).toEqual(Array.from({ length: 5 }, (_, i) => `u${i}@hostile.test`).sort());
    expect(slow.connections).toHaveLength(1);
    const after = await transport.sendMail({ from: 's@origin.test', to: 'late@hostile.test', text: 'x' }).then(
      () => undefined,
      (e: TlsPolicyError) => e,
    );
    expect(after?.code).toBe('ECONNECTION');
    expect(after?.pending).toEqual(['late@hostile.test']);
    expect(after?.message).toMatch(/not sent: the transport was closed/);
    expect(slow.connections).toHaveLength(1);
  });
  it('lets a session whose body is on the wire finish (no duplicate on a retry); force ends it', async () => {
    for (const force of [false, true]) {
      let release: (() => void) | undefined;
      const held = new Promise<void>((r) => (release = r));
      const bad = await peer((c) => (c === '.' ? 'silence' : undefined));
      const transport = nodemailer.createTransport(tlsPolicy({ ...FAST, dataTimeout: 60_000, relay: `[${bad.host}]:${bad.port}`, level: 'encrypt' }));
      const sending = transport.sendMail({ from: 's@origin.test', to: 'u@hostile.test', text: 'x' }).then(
        () => undefined,
        (e: TlsPolicyError) => e,
      );
      while (bad.messages().length === 0) await new Promise((r) => setTimeout(r, 10));
      const t = transport.transporter as unknown as { close(o?: { force?: boolean }): void };
      t.close({ force });
      const settledEarly = await Promise.race([sending.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
      expect(settledEarly).toBe(force);
      void held;
      release?.();
      if (force) {
        const error = await sending;
        expect(error?.message).toMatch(/may already have been delivered/);
        expect(error?.pending).toEqual(['u@hostile.test']);
      } else {
        await bad.close(); // the server goes away: the send settles
        const error = await sending;
        expect(error?.pending).toEqual(['u@hostile.test']);
      }
    }
  });
});

describe('a huge MX RRset', () => {
  it(`costs at most ${MAX_MX_NAMES} host lookups, in preference order`, async () => {
    const zone: ZoneRecord[] = Array.from({ length: 500 }, (_, i) => ({
      name: 'many.test',
      type: 'MX' as const,
      exchange: `mx${String(i).padStart(3, '0')}.many.test`,
      preference: i,
    }));
    const dns = await dnsFor(zone);
    let inFlight = 0;
    let maxInFlight = 0;
    const resolver = createResolver({ servers: [dns.server] });
    const counted = <T>(p: Promise<T>) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return p.finally(() => inFlight--);
    };
    const observed = {
      mx: (n: string) => resolver.mx(n),
      addresses: (n: string) => counted(resolver.addresses(n)),
      tlsa: (n: string) => counted(resolver.tlsa(n)),
      cname: (n: string) => resolver.cname(n),
    };
    const { error } = await send({ ...FAST, level: 'dane', dns: observed }, 'u@many.test');
    expect(error?.code).toBe('EDNS');
    expect(error?.message).toMatch(/the other 480 MX hosts were not looked up \(at most 20 are\)/);
    const asked = dns.queries.filter((q) => q.type === 'A').map((q) => q.name);
    expect(asked).toEqual(Array.from({ length: MAX_MX_NAMES }, (_, i) => `mx${String(i).padStart(3, '0')}.many.test`));
    expect(maxInFlight).toBeLessThanOrEqual(10); // 5 hosts at once, addresses and TLSA each
  });
});

/**
 * Nodemailer's own address parsing cleans `to` and `envelope` before a transport sees them, but
 * `send()` is the transport's contract with any caller (a queue worker replaying stored
 * envelopes, another mailer): the envelope is checked there, before any connection.
 */
function sendRaw(options: TlsPolicyOptions, from: string, to: string[]): Promise<{ info?: TlsPolicySentInfo; error?: TlsPolicyError }> {
  const transport = tlsPolicy(options);
  const mail = {
    data: {},
    message: {
      getEnvelope: () => ({ from, to }),
      messageId: () => '<raw@origin.test>',
      build: (callback: (err: Error | null, message: Buffer) => void) => callback(null, Buffer.from('Subject: raw\r\n\r\nhello\r\n')),
    },
  };
  return new Promise((resolve) =>
    transport.send(mail, (error, info) => {
      transport.close();
      resolve(error ? { error: error as TlsPolicyError } : { info: info! });
    }),
  );
}

describe('an envelope address that cannot be sent is refused before any connection, for good', () => {
  const BAD: Array<[string, RegExp]> = [
    [
      'a\r\nRCPT TO:<evil@elsewhere.test>@hostile.test',
      /recipient "a\\x0d\\x0aRCPT TO:<evil@elsewhere\.test>@hostile\.test" cannot be sent in RCPT TO: it holds a line break/,
    ],
    ['b\n@hostile.test', /it holds a line break/],
    ['c\x00d@hostile.test', /it holds a control character/],
    ['<e>@hostile.test', /it holds "<" or ">"/],
  ];
  for (const [address, reason] of BAD) {
    it(`recipient ${JSON.stringify(address)}: rejected, EENVELOPE, permanent; the good recipient is delivered`, async () => {
      const good = await peer();
      const { info, error } = await sendRaw({ ...FAST, level: 'may', relay: `[${good.host}]:${good.port}` }, 's@origin.test', [address, 'ok@hostile.test']);
      expect(error).toBeUndefined();
      expect(info!.accepted).toEqual(['ok@hostile.test']);
      expect(info!.rejected).toEqual([address]);
      const refused = info!.deliveries.find((d) => d.rejected.includes(address))!;
      expect(refused.code).toBe('EENVELOPE');
      expect(refused.temporary).toBe(false);
      expect(refused.reason).toMatch(reason);
      expect(refused.reason).not.toMatch(/[\r\n\x00]/);
      expect(good.connections.flatMap((c) => c.commands).filter((c) => c.startsWith('RCPT'))).toEqual(['RCPT TO:<ok@hostile.test>']);
    });
  }
  it('a sender that cannot be sent: the message is refused for good, nothing is opened', async () => {
    const good = await peer();
    const { info, error } = await sendRaw({ ...FAST, level: 'may', relay: `[${good.host}]:${good.port}` }, 's\r\nRSET@origin.test', ['u@hostile.test']);
    expect(info).toBeUndefined();
    expect(error?.code).toBe('EENVELOPE');
    expect(error?.temporary).toBe(false);
    expect(error?.rejected).toEqual(['u@hostile.test']);
    expect(error?.message).toBe('sender "s\\x0d\\x0aRSET@origin.test" cannot be sent in MAIL FROM: it holds a line break');
    expect(good.connections).toEqual([]);
  });
});

describe('an MX target that is not a valid host name', () => {
  it('is not used (as Postfix skips a malformed MX host name); the next MX gets the message, and a warning names it escaped', async () => {
    const good = await peer();
    const dns = await dnsFor([
      { name: 'hostile.test', type: 'MX', exchange: 'bad\nhost.hostile.test', preference: 10 },
      { name: 'hostile.test', type: 'MX', exchange: 'mx2.hostile.test', preference: 20 },
      { name: 'bad\nhost.hostile.test', type: 'A', address: '127.0.0.1' },
      { name: 'mx2.hostile.test', type: 'A', address: good.host },
    ]);
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      debug: () => undefined,
      error: () => undefined,
      trace: () => undefined,
      fatal: () => undefined,
      warn: (...args: unknown[]) => warnings.push(format(...(args.slice(1) as [string, ...unknown[]]))),
    };
    const { info, error } = await send({ ...FAST, level: 'may', port: good.port, logger, dns: createResolver({ servers: [dns.server] }) });
    expect(error).toBeUndefined();
    expect(info!.deliveries[0]!.attempts.map((a) => a.mx)).toEqual(['mx2.hostile.test']);
    expect(good.messages()).toHaveLength(1);
    expect(dns.queries.filter((q) => q.type === 'A').map((q) => q.name)).toEqual(['mx2.hostile.test']);
    expect(warnings.join('\n')).toMatch(/MX host bad\\010host\.hostile\.test is not a valid host name \(invalid character "\\"\), so it is not used/);
  });
});
