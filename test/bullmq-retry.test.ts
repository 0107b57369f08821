/**
 * examples/bullmq-retry: the mail queue on BullMQ, with a real redis-server started here on a
 * loopback port, real smtp-server peers and the test DNS server. Every recipient must end
 * accepted, rejected or bounced, each with its reason; deferred ones are retried with the
 * message's first queueing time as `queuedAt`. Runs under npm run test:interop; the pure rules
 * (backoff, settle, what a send did) are test/bullmq-rules.test.ts.
 */
import { randomInt } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  enqueueMail,
  startMailWorker,
  type MailJobData,
  type MailWorker,
  type MailWorkerEvents,
  type RecipientResult,
} from '../examples/bullmq-retry/mail-queue.js';
import { createResolver } from '../lib/index.js';
import type { ZoneRecord } from './helpers/dns-server.js';
import { makePki, makeWorld, type World } from './helpers/world.js';
import { startRedis, type RedisProcess } from './helpers/redis.js';

/* ------------------------------------------------------------------------------------------
 * The queue, end to end.
 */

const mx = (domain: string, exchange: string): ZoneRecord => ({ name: domain, type: 'MX', exchange, preference: 10 });
// Read by the peer at each RCPT: a test changes it between attempts.
const laterReplies: Record<string, string> = { 'later@later.test': '451 4.2.0 try again later' };

let redis: RedisProcess;
let connection: Redis;
let queue: Queue<MailJobData>;
let world: World;
let mail: MailWorker;
const attempts = new Map<string, MailWorkerEvents['attempt'][0][]>();
const done = new Map<string, RecipientResult[]>();
const bounces: MailWorkerEvents['bounced'][0][] = [];
const errors: Error[] = [];

/** The results of job `id`, once every recipient is settled. */
function settled(id: string): Promise<RecipientResult[]> {
  const now = done.get(id);
  if (now) return Promise.resolve(now);
  return new Promise((resolve) => {
    const listener = (e: MailWorkerEvents['done'][0]) => {
      if (e.jobId !== id) return;
      mail.off('done', listener);
      resolve(e.results);
    };
    mail.on('done', listener);
  });
}

async function send(to: string[]): Promise<{ id: string; firstAttemptAt: number; results: RecipientResult[] }> {
  const job = await enqueueMail(queue, { from: 'sender@origin.test', to, subject: 'test', text: 'hello' });
  const results = await settled(job.id!);
  return { id: job.id!, firstAttemptAt: job.data.firstAttemptAt, results };
}

const byRecipient = (results: RecipientResult[]) => Object.fromEntries(results.map((r) => [r.recipient, r]));

beforeAll(async () => {
  redis = await startRedis();
  const pki = await makePki();
  world = await makeWorld(
    pki,
    [
      { name: 'mx.later.test', behaviour: 'starttls', rcptReplies: laterReplies },
      { name: 'mx.never.test', behaviour: 'starttls', rcptReplies: { 'never@never.test': '451 4.2.1 mailbox busy, try later' } },
      { name: 'mx.mixed.test', behaviour: 'starttls', rcptReplies: { 'gone@mixed.test': '550 5.1.1 no such user' } },
      { name: 'mx.ok.test', behaviour: 'starttls' },
      { name: 'mx.hsfail.test', behaviour: 'handshake-fail' },
    ],
    [
      mx('later.test', 'mx.later.test'),
      mx('never.test', 'mx.never.test'),
      mx('mixed.test', 'mx.mixed.test'),
      mx('ok.test', 'mx.ok.test'),
      mx('hsfail.test', 'mx.hsfail.test'),
      { name: 'nullmx.test', type: 'MX', exchange: '.', preference: 0 },
    ],
  );
  connection = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null });
  const queueName = `mail-${randomInt(1e9)}`;
  queue = new Queue<MailJobData>(queueName, { connection });
  mail = startMailWorker({
    connection,
    queueName,
    transportOptions: {
      port: world.port,
      caFile: pki.caFile,
      dns: createResolver({ servers: [world.dns.server], timeout: 1000, attempts: 1 }),
      // A cleartext retry after a failed TLS handshake waits until the message is 1 s old.
      minimalBackoff: 1,
    },
    lifetime: 5000,
    backoff: { initial: 40, max: 400 },
  });
  mail.on('attempt', (e) => attempts.set(e.jobId, [...(attempts.get(e.jobId) ?? []), e]));
  mail.on('done', (e) => done.set(e.jobId, e.results));
  mail.on('bounced', (e) => bounces.push(e));
  mail.on('error', (e) => errors.push(e));
}, 60_000);

afterAll(async () => {
  await mail?.close();
  await queue?.close();
  connection?.disconnect();
  await world?.close();
  await redis?.stop();
  expect(errors).toEqual([]);
});

describe('a mail queue on BullMQ', () => {
  it('a recipient deferred (451) at first is accepted by a retry, and every attempt carried the first queueing time as queuedAt', async () => {
    // The first attempt ends with later@ pending; the server then accepts it.
    const first = new Promise<void>((resolve) => {
      const listener = (e: MailWorkerEvents['attempt'][0]) => {
        if (!e.outcome.pending.includes('later@later.test')) return;
        delete laterReplies['later@later.test'];
        mail.off('attempt', listener);
        resolve();
      };
      mail.on('attempt', listener);
    });
    const { id, firstAttemptAt, results } = await send(['now@later.test', 'later@later.test']);
    await first;
    expect(byRecipient(results)).toEqual({
      'now@later.test': { recipient: 'now@later.test', status: 'accepted', attempt: 1 },
      'later@later.test': { recipient: 'later@later.test', status: 'accepted', attempt: 2 },
    });
    const made = attempts.get(id)!;
    expect(made.map((a) => a.attempt)).toEqual([1, 2]);
    // The first send resolved (now@ accepted) with later@ in info.pending, the retry sent later@ alone.
    expect(made[0]!.outcome).toMatchObject({ accepted: ['now@later.test'], pending: ['later@later.test'] });
    expect(made[0]!.outcome.reasons['later@later.test']).toContain('451 4.2.0 try again later');
    expect(made[1]!.outcome).toMatchObject({ accepted: ['later@later.test'], pending: [] });
    for (const a of made) expect(a.queuedAt.getTime()).toBe(firstAttemptAt);
    // From the server's side: later@ was offered twice, now@ once (no duplicate for an accepted recipient).
    const rcpts = world.peers
      .get('mx.later.test')!
      .events.filter((e) => e.command === 'RCPT')
      .map((e) => e.value);
    expect(rcpts.filter((r) => r === 'now@later.test')).toHaveLength(1);
    expect(rcpts.filter((r) => r === 'later@later.test')).toHaveLength(2);
  });

  it("queuedAt reaches the library: a failed TLS handshake is retried in cleartext only once the message's age passes minimalBackoff", async () => {
    const { id, results } = await send(['u@hsfail.test']);
    expect(results).toEqual([{ recipient: 'u@hsfail.test', status: 'accepted', attempt: expect.any(Number) }]);
    const made = attempts.get(id)!;
    // Attempts while the message was younger than 1 s were deferred with the library's reason.
    expect(made.length).toBeGreaterThan(1);
    expect(made[0]!.outcome.pending).toEqual(['u@hsfail.test']);
    expect(made[0]!.outcome.reasons['u@hsfail.test']).toMatch(/no cleartext retry before the message is 1 s old/);
    // Only an attempt whose queuedAt made the message old enough sent it, in cleartext.
    const messages = world.peers.get('mx.hsfail.test')!.messages;
    expect(messages).toHaveLength(1);
    expect(messages[0]!.secure).toBe(false);
  });

  it('a recipient deferred for ever is bounced once the lifetime has passed, with the last reason, visible as a bounced event', async () => {
    const { id, results } = await send(['never@never.test']);
    expect(results).toHaveLength(1);
    const [result] = results;
    expect(result).toMatchObject({ recipient: 'never@never.test', status: 'bounced' });
    expect(result!.reason).toMatch(/^still deferred after \d+ attempts over \d+ s, past the queue lifetime of 5 s: /);
    expect(result!.reason).toContain('451 4.2.1 mailbox busy, try later');
    expect(result!.attempt).toBeGreaterThan(1);
    expect(attempts.get(id)!.length).toBe(result!.attempt);
    // Every attempt was a send rejected as temporary: error.pending, retried.
    for (const a of attempts.get(id)!) expect(a.outcome).toMatchObject({ accepted: [], rejected: [], failed: [], pending: ['never@never.test'] });
    expect(bounces.filter((b) => b.jobId === id)).toEqual([{ jobId: id, results }]);
    // The job itself completed with the same results, for a caller in another process.
    const job = await queue.getJob(id);
    expect(await job!.getState()).toBe('completed');
    expect(job!.returnvalue).toEqual(results);
  });

  it('a recipient refused with 550 is rejected at once with its reason and not retried; the others are delivered', async () => {
    const { id, results } = await send(['ok@mixed.test', 'gone@mixed.test', 'b@ok.test']);
    const r = byRecipient(results);
    expect(r['ok@mixed.test']).toEqual({ recipient: 'ok@mixed.test', status: 'accepted', attempt: 1 });
    expect(r['b@ok.test']).toEqual({ recipient: 'b@ok.test', status: 'accepted', attempt: 1 });
    expect(r['gone@mixed.test']).toMatchObject({ recipient: 'gone@mixed.test', status: 'rejected', attempt: 1 });
    const server = world.peers.get('mx.mixed.test')!;
    expect(r['gone@mixed.test']!.reason).toBe(`mixed.test: refused gone@mixed.test: mx.mixed.test[${server.host}]:${server.port}: 550 5.1.1 no such user`);
    expect(attempts.get(id)).toHaveLength(1);
    const rcpts = world.peers.get('mx.mixed.test')!.events.filter((e) => e.command === 'RCPT' && e.value === 'gone@mixed.test');
    expect(rcpts).toHaveLength(1);
    expect(bounces.filter((b) => b.jobId === id)).toEqual([]);
  });

  it('a permanent failure (a null MX: error.temporary === false) bounces at once, not retried', async () => {
    const { id, results } = await send(['u@nullmx.test']);
    expect(results).toEqual([{ recipient: 'u@nullmx.test', status: 'bounced', reason: expect.stringContaining('nullmx.test'), attempt: 1 }]);
    expect(attempts.get(id)).toHaveLength(1);
    expect(bounces.filter((b) => b.jobId === id)).toEqual([{ jobId: id, results }]);
  });
});
