/**
 * examples/bullmq-retry's pure rules, in tables: the backoff between retries, how a recipient
 * settles, and what a send did. The queue itself on a real redis-server is
 * test/bullmq-retry.test.ts (npm run test:interop).
 */
import { describe, expect, it } from 'vitest';
import { backoffDelay, outcomeOfError, outcomeOfInfo, settle, type MailJobData, type SendOutcome } from '../examples/bullmq-retry/mail-queue.js';
import { TlsPolicyError } from '../lib/index.js';

describe('rules', () => {
  const backoff = { initial: 100, max: 1000 };
  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1000], // capped at max (maximal_backoff_time)
    [30, 1000],
  ])('retry %i waits %i ms', (attempt, delay) => {
    expect(backoffDelay(attempt, backoff)).toBe(delay);
  });

  const data = (over: Partial<MailJobData> = {}): MailJobData => ({
    message: { from: 's@o.test', to: ['a@x.test', 'b@x.test', 'c@x.test'], subject: 's', text: 't' },
    remaining: ['a@x.test', 'b@x.test', 'c@x.test'],
    firstAttemptAt: 1_000_000,
    attempts: 0,
    results: [],
    ...over,
  });
  const outcome = (over: Partial<SendOutcome>): SendOutcome => ({ accepted: [], rejected: [], pending: [], failed: [], reasons: {}, ...over });
  const rules = { lifetime: 10_000, backoff };

  it.each([
    {
      rule: 'accepted and rejected recipients are settled; pending ones are retried after the backoff',
      data: data(),
      outcome: outcome({ accepted: ['a@x.test'], rejected: ['b@x.test'], pending: ['c@x.test'], reasons: { 'b@x.test': '550 no', 'c@x.test': '451 later' } }),
      now: 1_000_500,
      remaining: ['c@x.test'],
      retryAt: 1_000_600,
      results: [
        { recipient: 'a@x.test', status: 'accepted', attempt: 1 },
        { recipient: 'b@x.test', status: 'rejected', reason: '550 no', attempt: 1 },
      ],
    },
    {
      rule: 'the backoff doubles with the attempts already made',
      data: data({ attempts: 2, remaining: ['c@x.test'] }),
      outcome: outcome({ pending: ['c@x.test'], reasons: { 'c@x.test': '451 later' } }),
      now: 1_001_000,
      remaining: ['c@x.test'],
      retryAt: 1_001_400,
      results: [],
    },
    {
      rule: 'a retry is never scheduled past the lifetime: the last attempt comes at the deadline',
      data: data({ attempts: 3, remaining: ['c@x.test'] }),
      outcome: outcome({ pending: ['c@x.test'], reasons: { 'c@x.test': '451 later' } }),
      now: 1_009_900,
      remaining: ['c@x.test'],
      retryAt: 1_010_000,
      results: [],
    },
    {
      rule: 'still deferred once the lifetime has passed: bounced with the last reason (maximal_queue_lifetime)',
      data: data({ attempts: 4, remaining: ['c@x.test'] }),
      outcome: outcome({ pending: ['c@x.test'], reasons: { 'c@x.test': '451 later' } }),
      now: 1_010_000,
      remaining: [],
      retryAt: undefined,
      results: [
        { recipient: 'c@x.test', status: 'bounced', reason: expect.stringMatching(/^still deferred after 5 attempts over 10 s.*: 451 later$/), attempt: 5 },
      ],
    },
    {
      rule: 'a permanent failure of the whole send bounces at once, within the lifetime',
      data: data(),
      outcome: outcome({ failed: ['a@x.test', 'b@x.test', 'c@x.test'], reasons: { 'a@x.test': 'null MX', 'b@x.test': 'null MX', 'c@x.test': 'null MX' } }),
      now: 1_000_001,
      remaining: [],
      retryAt: undefined,
      results: ['a@x.test', 'b@x.test', 'c@x.test'].map((recipient) => ({ recipient, status: 'bounced', reason: 'null MX', attempt: 1 })),
    },
    {
      rule: 'results of earlier attempts are kept',
      data: data({ attempts: 1, remaining: ['c@x.test'], results: [{ recipient: 'a@x.test', status: 'accepted', attempt: 1 }] }),
      outcome: outcome({ accepted: ['c@x.test'] }),
      now: 1_000_200,
      remaining: [],
      retryAt: undefined,
      results: [
        { recipient: 'a@x.test', status: 'accepted', attempt: 1 },
        { recipient: 'c@x.test', status: 'accepted', attempt: 2 },
      ],
    },
  ])('$rule', (row) => {
    const next = settle(row.data, row.outcome, row.now, rules);
    expect(next.data.remaining).toEqual(row.remaining);
    expect(next.retryAt).toBe(row.retryAt);
    expect(next.data.results).toEqual(row.results);
    expect(next.data.attempts).toBe(row.data.attempts + 1);
    expect(next.data.firstAttemptAt).toBe(row.data.firstAttemptAt);
    expect(next.bounced).toEqual(row.results.filter((r) => r.status === 'bounced'));
  });

  const recipients = ['a@x.test', 'b@x.test'];
  it.each([
    {
      rule: 'a temporary TlsPolicyError: its rejected recipients are rejected, the others pending',
      error: Object.assign(new TlsPolicyError('x.test: 550 / 451', 'EENVELOPE', true), { rejected: ['a@x.test'], pending: ['b@x.test'] }),
      want: { rejected: ['a@x.test'], pending: ['b@x.test'], failed: [] },
    },
    {
      rule: 'a permanent TlsPolicyError (temporary === false): every recipient fails for good',
      error: new TlsPolicyError('x.test: the domain accepts no mail', 'ENULLMX', false),
      want: { rejected: [], pending: [], failed: recipients },
    },
    {
      rule: 'an error with no `temporary` (not the library): every recipient stays pending',
      error: new Error('socket hang up'),
      want: { rejected: [], pending: recipients, failed: [] },
    },
  ])('$rule', ({ error, want }) => {
    const got = outcomeOfError(error, recipients);
    expect(got).toMatchObject({ accepted: [], ...want });
    expect(Object.keys(got.reasons).sort()).toEqual(recipients);
    for (const r of recipients) expect(got.reasons[r]).toBe(error.message);
  });

  it('a resolved send: the reasons of recipients not accepted come from their delivery', () => {
    const got = outcomeOfInfo({
      accepted: ['a@x.test'],
      rejected: [],
      pending: ['b@x.test'],
      deliveries: [
        {
          destination: 'x.test',
          level: 'may',
          policySource: 'none',
          status: 'partial',
          accepted: ['a@x.test'],
          rejected: [],
          pending: ['b@x.test'],
          attempts: [],
          reason: 'x.test: 451',
        },
      ],
    });
    expect(got).toEqual({ accepted: ['a@x.test'], rejected: [], pending: ['b@x.test'], failed: [], reasons: { 'b@x.test': 'x.test: 451' } });
  });
});
