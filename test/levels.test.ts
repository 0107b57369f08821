/**
 * Level x peer behaviour, against real smtp-server peers, real certificates from a test CA and
 * a real DNS server. Every row checks, from the server's side, what crossed which channel: at
 * a level the channel does not satisfy, the peer must have seen no MAIL, RCPT, AUTH or DATA.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Level } from '../lib/index.js';
import { makePki, makeWorld, type HostSpec, type Pki, type World } from './helpers/world.js';
import type { ZoneRecord } from './helpers/dns-server.js';

let pki: Pki;
let world: World;

const KEYS = ['ok', 'nostarttls', 't454', 't554', 'hsfail', 'drop', 'r421', 'wrongname', 'expired', 'selfsigned'] as const;
type Key = (typeof KEYS)[number];

beforeAll(async () => {
  pki = await makePki();
  const hosts: HostSpec[] = [
    { name: 'mx.ok.test', behaviour: 'starttls' },
    { name: 'mx.nostarttls.test', behaviour: 'no-starttls' },
    { name: 'mx.t454.test', behaviour: 'starttls-454' },
    { name: 'mx.t554.test', behaviour: 'starttls-554' },
    { name: 'mx.hsfail.test', behaviour: 'handshake-fail' },
    { name: 'mx.drop.test', behaviour: 'drop-after-tls' },
    { name: 'mx.r421.test', behaviour: 'reply-421-after-tls' },
    { name: 'mx.wrongname.test', behaviour: 'starttls', cert: await pki.leaf(['mx.other.invalid']) },
    { name: 'mx.expired.test', behaviour: 'starttls', cert: await pki.leaf(['mx.expired.test'], { expired: true }) },
    { name: 'mx.selfsigned.test', behaviour: 'starttls', cert: await pki.leaf(['mx.selfsigned.test'], { self: true }) },
  ];
  const records: ZoneRecord[] = KEYS.map((k) => ({ name: `${k}.test`, type: 'MX', exchange: `mx.${k}.test`, preference: 10 }));
  world = await makeWorld(pki, hosts, records);
});
afterAll(async () => {
  await world?.close();
});

type Outcome =
  /** Delivered; `secure` says whether the peer saw MAIL inside TLS; `trust` as audited. */
  | { delivered: true; secure: boolean; trust: string; level?: Level }
  /** Not delivered; `temporary` and `code` of the error; `reason` a pattern of its message. */
  | { delivered: false; temporary: boolean; code: string; reason: RegExp };

const old = Date.now() - 3600_000;

const rows: Array<[Key, Level, Record<string, unknown>, Outcome]> = [
  // none: never STARTTLS
  ['ok', 'none', {}, { delivered: true, secure: false, trust: 'Cleartext' }],
  // may
  ['ok', 'may', {}, { delivered: true, secure: true, trust: 'Trusted' }],
  ['nostarttls', 'may', {}, { delivered: true, secure: false, trust: 'Cleartext' }],
  ['t454', 'may', {}, { delivered: true, secure: false, trust: 'Cleartext' }],
  ['t554', 'may', {}, { delivered: true, secure: false, trust: 'Cleartext' }],
  [
    'hsfail',
    'may',
    {},
    {
      delivered: false,
      temporary: true,
      code: 'ETLS',
      reason: /mx\.hsfail\.test\[[\d.]+\]:\d+ TLS handshake failed.*no cleartext retry before the message is 300 s old \(it is 0 s old\)/,
    },
  ],
  ['hsfail', 'may', { queuedAt: old }, { delivered: true, secure: false, trust: 'Cleartext' }],
  ['drop', 'may', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /connection lost inside TLS/ }],
  ['drop', 'may', { queuedAt: old }, { delivered: true, secure: false, trust: 'Cleartext' }],
  [
    'r421',
    'may',
    { queuedAt: old },
    { delivered: false, temporary: true, code: 'ECONNECTION', reason: /answered 421 4\.3\.2 Service shutting down inside TLS/ },
  ],
  ['wrongname', 'may', {}, { delivered: true, secure: true, trust: 'Trusted' }],
  ['selfsigned', 'may', {}, { delivered: true, secure: true, trust: 'Untrusted' }],
  // encrypt
  ['ok', 'encrypt', {}, { delivered: true, secure: true, trust: 'Trusted' }],
  ['selfsigned', 'encrypt', {}, { delivered: true, secure: true, trust: 'Untrusted' }],
  [
    'nostarttls',
    'encrypt',
    {},
    { delivered: false, temporary: true, code: 'ETLS', reason: /mx\.nostarttls\.test\[[\d.]+\]:\d+ offered no STARTTLS; TLS is mandatory at level encrypt/ },
  ],
  ['t454', 'encrypt', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /refused STARTTLS: 454 4\.7\.0/ }],
  // a 5xx to STARTTLS crossed in cleartext: deferred unless tlsFailuresPermanent says bounce
  ['t554', 'encrypt', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /refused STARTTLS: 554 5\.7\.0/ }],
  ['t554', 'encrypt', { tlsFailuresPermanent: true }, { delivered: false, temporary: false, code: 'ETLS', reason: /refused STARTTLS: 554 5\.7\.0/ }],
  ['t454', 'encrypt', { tlsFailuresPermanent: true }, { delivered: false, temporary: false, code: 'ETLS', reason: /refused STARTTLS: 454 4\.7\.0/ }],
  ['hsfail', 'encrypt', { queuedAt: old }, { delivered: false, temporary: true, code: 'ETLS', reason: /TLS handshake failed/ }],
  ['drop', 'encrypt', { queuedAt: old }, { delivered: false, temporary: true, code: 'ETLS', reason: /connection lost inside TLS/ }],
  // verify (names: the MX host name)
  ['ok', 'verify', {}, { delivered: true, secure: true, trust: 'Verified' }],
  ['wrongname', 'verify', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /mx\.wrongname\.test.*mx\.other\.invalid/ }],
  ['expired', 'verify', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /expired/i }],
  ['selfsigned', 'verify', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /self-signed/i }],
  ['nostarttls', 'verify', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /offered no STARTTLS; TLS is mandatory at level verify/ }],
  // secure (names: nexthop, dot-nexthop)
  ['ok', 'secure', {}, { delivered: true, secure: true, trust: 'Verified' }],
  ['wrongname', 'secure', {}, { delivered: false, temporary: true, code: 'ETLS', reason: /mx\.other\.invalid/ }],
  // tlsFailuresPermanent: a TLS-policy failure bounces
  ['nostarttls', 'encrypt', { tlsFailuresPermanent: true }, { delivered: false, temporary: false, code: 'ETLS', reason: /offered no STARTTLS/ }],
];

/** RFC 8460 section 4.3's result type of a failed attempt, by what the peer does. */
const RESULT_TYPE: Record<Key, string | undefined> = {
  ok: undefined,
  nostarttls: 'starttls-not-supported',
  t454: 'starttls-not-supported',
  t554: 'starttls-not-supported',
  hsfail: 'validation-failure',
  drop: 'validation-failure',
  r421: undefined, // a reply, not a TLS failure
  wrongname: 'certificate-host-mismatch',
  expired: 'certificate-expired',
  selfsigned: 'certificate-not-trusted',
};

describe('levels against peer behaviours (one MX)', () => {
  for (const [key, level, extra, want] of rows) {
    const { queuedAt, ...options } = extra as { queuedAt?: number };
    it(`${level} + ${key}${Object.keys(extra).length ? ` ${JSON.stringify(extra)}` : ''}`, async () => {
      const peer = world.peers.get(`mx.${key}.test`)!;
      const before = peer.events.length;
      const { info, error } = await world.send({ level, ...options }, { to: `user@${key}.test`, ...(queuedAt ? { queuedAt } : {}) });
      const seen = peer.events.slice(before).filter((e) => e.command !== 'CONNECT');
      if (want.delivered) {
        expect(error).toBeUndefined();
        expect(info!.accepted).toEqual([`user@${key}.test`]);
        const last = info!.deliveries[0]!.attempts.at(-1)!;
        expect(last.trust).toBe(want.trust);
        expect(last.audit.auth).toBe(want.trust);
        // what the server saw: MAIL, RCPT, DATA, each on the expected channel
        expect(seen.map((e) => [e.command, e.secure])).toEqual([
          ['MAIL', want.secure],
          ['RCPT', want.secure],
          ['DATA', want.secure],
        ]);
      } else {
        expect(info).toBeUndefined();
        expect(error).toBeDefined();
        expect(error!.code).toBe(want.code);
        expect(error!.temporary).toBe(want.temporary);
        expect(error!.message).toMatch(want.reason);
        expect(error!.message).toContain(`${key}.test`);
        // the security invariant: nothing of the mail crossed
        expect(seen).toEqual([]);
        // RFC 8460's result type reaches the attempt and its audit record
        const first = error!.deliveries[0]!.attempts[0]!;
        expect(first.resultType).toBe(RESULT_TYPE[key]);
        expect(first.audit.result_type).toBe(RESULT_TYPE[key] ?? '');
        if (want.temporary) expect(error!.pending).toEqual([`user@${key}.test`]);
        else expect(error!.rejected).toEqual([`user@${key}.test`]);
      }
    });
  }
});
