/**
 * outcome: one row per rule of how attempts add up to a delivery (recipient settlement, the
 * "message may be sent more than once" stop, smtp_mx_session_limit, the code that wins, status).
 */
import { describe, expect, it } from 'vitest';
import { conclude, finalFailure, newOutcome, recordFailure, sessionLimitReached, settleTransaction } from '../lib/deliver/outcome.js';
import type { RecipientResult, TransactionResult } from '../lib/smtp/session.js';

const R = 'mx1.example.net[192.0.2.1]:25';
const ok = (r: string): RecipientResult => ({ recipient: r, status: 'accepted', reply: '250 2.0.0 queued' });
const soft = (r: string): RecipientResult => ({ recipient: r, status: 'deferred', reply: '451 4.2.0 later' });
const hard = (r: string): RecipientResult => ({ recipient: r, status: 'rejected', reply: '550 5.1.1 no such user' });

describe('settleTransaction', () => {
  const rows: Array<{ name: string; recipients: string[]; t: TransactionResult; done: boolean; failed?: RegExp; want: Record<string, unknown> }> = [
    {
      name: 'all accepted: done',
      recipients: ['a', 'b'],
      t: { ok: true, recipients: [ok('a'), ok('b')], reply: '250 2.0.0 queued' },
      done: true,
      want: { accepted: ['a', 'b'], remaining: [], response: '250 2.0.0 queued' },
    },
    {
      name: 'one deferred at RCPT: kept for the next MX',
      recipients: ['a', 'b'],
      t: { ok: true, recipients: [ok('a'), soft('b')], reply: '250 ok' },
      done: false,
      want: { accepted: ['a'], remaining: ['b'], last: { code: 'EENVELOPE', temporary: true } },
    },
    {
      name: 'one refused for good: settled as rejected',
      recipients: ['a', 'b'],
      t: { ok: true, recipients: [ok('a'), hard('b')], reply: '250 ok' },
      done: true,
      want: { accepted: ['a'], rejected: ['b'], remaining: [] },
    },
    {
      name: 'every recipient refused for good: EENVELOPE, permanent',
      recipients: ['a'],
      t: { ok: false, recipients: [hard('a')] },
      done: true,
      want: { rejected: ['a'], refused: { code: 'EENVELOPE' } },
    },
    {
      name: 'MAIL FROM answered 451: the next MX',
      recipients: ['a'],
      t: { ok: false, recipients: [soft('a')], failure: { message: 'Mail command failed', reply: '451 4.3.0 later', temporary: true, command: 'MAIL FROM' } },
      done: false,
      failed: /answered 451 4\.3\.0 later/,
      want: { transactionFailures: 1, last: { code: 'ECONNECTION', temporary: true }, remaining: ['a'] },
    },
    {
      name: 'DATA refused for good: EMESSAGE',
      recipients: ['a'],
      t: { ok: false, recipients: [hard('a')], failure: { message: 'Message failed', reply: '554 5.6.0 bad message', temporary: false, command: 'DATA' } },
      done: true,
      want: { refused: { code: 'EMESSAGE' } },
    },
    {
      name: 'above the SIZE the server declared: not offered, EMESSAGE, permanent',
      recipients: ['a'],
      t: {
        ok: false,
        recipients: [hard('a')],
        failure: {
          message: 'message size 30 exceeds the size limit 20 that the server declared (EHLO SIZE)',
          replyCode: 552,
          temporary: false,
          command: 'MAIL FROM',
          code: 'EMESSAGE',
        },
      },
      done: true,
      want: {
        rejected: ['a'],
        refused: { code: 'EMESSAGE', reason: expect.stringMatching(/the message was not offered to .*: message size 30 exceeds the size limit 20/) },
      },
    },
    {
      name: 'the body went out and nothing answered its end: stop, may be delivered',
      recipients: ['a', 'b'],
      t: { ok: false, bodySent: true, recipients: [soft('a'), soft('b')], failure: { message: 'Connection closed unexpectedly', temporary: true } },
      done: false,
      failed: /took the whole message, then connection closed unexpectedly before answering its end: the message may already have been delivered/,
      want: { transactionFailures: 1, remaining: ['a', 'b'] },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const o = newOutcome(row.recipients);
      const settled = settleTransaction(o, row.t, R, 'example.net');
      expect(settled.done).toBe(row.done);
      if (row.failed) expect(settled.done ? undefined : settled.failed).toMatch(row.failed);
      else if (!settled.done) expect(settled.failed).toBeUndefined();
      for (const [field, want] of Object.entries(row.want)) expect(o[field as keyof typeof o], field).toMatchObject(want as object);
      if (row.failed && /may already/.test(String(row.failed))) expect(o.mayBeDelivered).toBe(settled.done ? undefined : settled.failed);
      else expect(o.mayBeDelivered).toBeUndefined();
    });
  }
  it('a probe (no recipients) is done at once', () => {
    expect(settleTransaction(newOutcome([]), { ok: true, recipients: [] }, R, 'example.net')).toEqual({ done: true });
  });
});

describe('recordFailure, sessionLimitReached, finalFailure: which code wins', () => {
  it('a TLS stage is ETLS; a connection failure ECONNECTION; a given code (EAUTH) wins; cleartext-later notes the retry', () => {
    const o = newOutcome(['a']);
    recordFailure(o, { action: 'next', temporary: true, stage: 'no-starttls', reason: `${R} offered no STARTTLS` });
    expect(o.last).toEqual({ reason: `${R} offered no STARTTLS`, temporary: true, code: 'ETLS' });
    recordFailure(o, { action: 'next', temporary: false, reason: `${R} answered 554 no` });
    expect(o.last).toEqual({ reason: `${R} answered 554 no`, temporary: false, code: 'ECONNECTION' });
    recordFailure(o, { action: 'next', temporary: true, reason: 'refused AUTH' }, 'EAUTH');
    expect(o.last?.code).toBe('EAUTH');
    recordFailure(o, { action: 'cleartext-later', stage: 'handshake', reason: 'handshake failed' });
    expect(o.failures.at(-1)).toBe('handshake failed (cleartext retry once the other MX hosts were tried with TLS)');
    expect(o.transactionFailures).toBe(0); // failures before a transaction do not count toward the session limit
  });
  it.each([
    [0, 5, false],
    [2, 1, false],
    [2, 2, true],
    [1, 3, true],
  ])('smtp_mx_session_limit %i after %i failed transactions: %s', (limit, failed, reached) => {
    const o = newOutcome(['a']);
    o.transactionFailures = failed;
    expect(sessionLimitReached(o, limit)).toBe(reached);
  });
  it.each([
    [{ code: 'ETLS', temporary: true }, true, 'ETLS'],
    [{ code: 'EENVELOPE', temporary: true }, true, 'ETLS'], // a TLS failure was seen: the destination failed on TLS
    [{ code: 'ECONNECTION', temporary: true }, true, 'ECONNECTION'], // the last MX did not even connect
    [{ code: 'EENVELOPE', temporary: true }, false, 'EENVELOPE'],
    [{ code: 'EAUTH', temporary: true }, true, 'ETLS'],
  ] as const)('last %j, TLS failure seen %s: %s wins', (last, tlsFailureSeen, code) => {
    const o = newOutcome(['a']);
    o.failures.push('first', 'second');
    o.last = { reason: 'second', ...last };
    expect(finalFailure(o, { nexthop: 'example.net', level: 'encrypt', tlsFailureSeen })).toEqual({
      reason: 'example.net: delivery at level encrypt failed: first; second',
      code,
      temporary: true,
    });
  });
  it('nothing tried: ECONNECTION, temporary', () => {
    expect(finalFailure(newOutcome(['a']), { nexthop: 'n', level: 'may', tlsFailureSeen: false })).toEqual({
      reason: 'n: delivery at level may failed: ',
      code: 'ECONNECTION',
      temporary: true,
    });
  });
});

describe('conclude: recipients and status', () => {
  const fail = (code: string, temporary: boolean) => ({ reason: 'why', code, temporary });
  const rows: Array<[string, string[], Partial<ReturnType<typeof newOutcome>>, ReturnType<typeof fail> | undefined, boolean, Record<string, unknown>]> = [
    [
      'all accepted',
      ['a', 'b'],
      { accepted: ['a', 'b'], remaining: [] },
      undefined,
      false,
      { status: 'delivered', accepted: ['a', 'b'], pending: [], rejected: [] },
    ],
    [
      'some accepted, the rest deferred',
      ['a', 'b'],
      { accepted: ['a'], remaining: ['b'] },
      fail('EENVELOPE', true),
      false,
      { status: 'partial', pending: ['b'], temporary: true },
    ],
    [
      'none accepted, temporary failure',
      ['a', 'b'],
      { remaining: ['a', 'b'] },
      fail('ETLS', true),
      false,
      { status: 'deferred', pending: ['a', 'b'], code: 'ETLS', temporary: true },
    ],
    [
      'a TLS failure under tlsFailuresPermanent: bounced',
      ['a'],
      { remaining: ['a'] },
      fail('ETLS', true),
      true,
      { status: 'bounced', rejected: ['a'], pending: [], temporary: false },
    ],
    ['tlsFailuresPermanent does not touch other codes', ['a'], { remaining: ['a'] }, fail('ECONNECTION', true), true, { status: 'deferred', pending: ['a'] }],
    ['a permanent failure: bounced', ['a'], { remaining: ['a'] }, fail('ECONNECTION', false), false, { status: 'bounced', rejected: ['a'] }],
    [
      'every recipient refused by the server',
      ['a'],
      { rejected: ['a'], remaining: [], refused: { reason: 'refused', code: 'EENVELOPE' } },
      undefined,
      false,
      { status: 'bounced', code: 'EENVELOPE', temporary: false, reason: 'refused' },
    ],
  ];
  it.each(rows)('%s', (_name, recipients, state, failure, permanentTls, want) => {
    const o = Object.assign(newOutcome(recipients), state);
    expect(conclude(o, failure, permanentTls)).toMatchObject(want);
  });
  it('a probe: delivered without a failure, deferred or bounced with one', () => {
    expect(conclude(newOutcome([])).status).toBe('delivered');
    expect(conclude(newOutcome([]), fail('ETLS', true)).status).toBe('deferred');
    expect(conclude(newOutcome([]), fail('EDNS', false)).status).toBe('bounced');
  });
});
