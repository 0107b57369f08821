/**
 * policyLookup: a policy kept outside the process (a database; Postfix's socketmap). Asked for each
 * key in Postfix's order after the table's own entry for that key; its answers checked as table
 * lines are; a failed, slow or invalid answer defers the delivery and never becomes the default
 * level. The lookup order and checks as a table of cases, then against a real peer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { tlsPolicy, type PolicyLookup, type TlsPolicyError, type TlsPolicyOptions } from '../lib/index.js';
import { createPolicyTable, defaultPolicy, lookupPolicyAsync, PolicyLookupError } from '../lib/policy/index.js';
import { loopbackBlock, startPeer, type Peer } from './helpers/smtp-peer.js';

const dflt = defaultPolicy('may');
const table = createPolicyTable('example.com secure\n.example.com encrypt\n');

function recording(answers: Record<string, ReturnType<PolicyLookup>>) {
  const asked: string[] = [];
  const lookup: PolicyLookup = (key) => {
    asked.push(key);
    return answers[key];
  };
  return { asked, lookup };
}

describe('lookupPolicyAsync', () => {
  it('asks for each key in Postfix order, after the table entry for that key; the first answer wins', async () => {
    const { asked, lookup } = recording({ '.b.example.com': 'verify match=.example.com' });
    const p = await lookupPolicyAsync(table, lookup, { kind: 'domain', domain: 'a.b.example.com' }, dflt);
    expect(asked).toEqual(['a.b.example.com', '.b.example.com']);
    expect(p).toMatchObject({ level: 'verify', match: ['.example.com'], source: 'policyLookup .b.example.com' });
  });
  it("the table's entry for a key is found before the function is asked for it", async () => {
    const { asked, lookup } = recording({ 'example.com': 'none' });
    const p = await lookupPolicyAsync(table, lookup, { kind: 'domain', domain: 'example.com' }, dflt);
    expect(asked).toEqual([]);
    expect(p).toMatchObject({ level: 'secure', source: '<text>:1' });
  });
  it('a function entry for a nearer key wins over a table entry for a farther one', async () => {
    const { asked, lookup } = recording({
      'mx.example.com': Promise.resolve({ level: 'fingerprint', match: 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01' }),
    });
    const p = await lookupPolicyAsync(table, lookup, { kind: 'domain', domain: 'mx.example.com' }, dflt);
    expect(asked).toEqual(['mx.example.com']);
    expect(p).toMatchObject({ level: 'fingerprint', source: 'policyLookup mx.example.com' });
  });
  it('no answer anywhere (undefined or null): the default', async () => {
    const { asked, lookup } = recording({ 'other.net': null });
    expect(await lookupPolicyAsync(undefined, lookup, { kind: 'domain', domain: 'other.net' }, dflt)).toBe(dflt);
    expect(asked).toEqual(['other.net', '.net']);
  });
  it('a relay written host:port is asked as host:port, then [host]:port, then [host]', async () => {
    const { asked, lookup } = recording({});
    await lookupPolicyAsync(undefined, lookup, { kind: 'relay', host: 'smtp.example.org', port: 587, written: 'host:port' }, dflt);
    expect(asked).toEqual(['smtp.example.org:587', '[smtp.example.org]:587', '[smtp.example.org]']);
  });

  const slow: PolicyLookup = () => new Promise((resolve) => setTimeout(() => resolve('none'), 1000).unref());
  it.each<[string, PolicyLookup, string]>([
    ['a rejection', () => Promise.reject(new Error('connection refused')), 'policy lookup of x.test failed: connection refused'],
    [
      'a throw',
      () => {
        throw new TypeError('db is undefined');
      },
      'policy lookup of x.test failed: db is undefined',
    ],
    ['no answer in time', slow, 'policy lookup of x.test failed: no answer within 20 ms'],
    ['an unknown level', () => 'mandatory', 'policy lookup of x.test failed: invalid entry: unknown level "mandatory" for x.test'],
    ['a bad attribute', () => 'verify match=bad..name', 'policy lookup of x.test failed: invalid entry: invalid match "bad..name": empty label'],
    ['an empty answer', () => ' ', 'policy lookup of x.test failed: the answer is empty (return undefined for no entry)'],
    ['a number', () => 7 as never, 'policy lookup of x.test failed: the answer must be a string, an object, or undefined, not number'],
    ['a missing cafile', () => 'verify cafile=/nonexistent/ca.pem', 'policy lookup of x.test failed: invalid entry: '],
  ])('%s is a PolicyLookupError that names the key and the reason', async (_, lookup, message) => {
    const err = await lookupPolicyAsync(undefined, lookup, { kind: 'domain', domain: 'x.test' }, dflt, 20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyLookupError);
    expect((err as Error).message.startsWith(message)).toBe(true);
  });
});

describe('tlsPolicy({ policyLookup }) against a peer without STARTTLS', () => {
  let peer: Peer;
  const ip = loopbackBlock();
  beforeAll(async () => {
    peer = await startPeer({ host: ip(2), port: 0, behaviour: 'no-starttls' });
  });
  afterAll(async () => {
    await peer?.close();
  });
  const relay = () => `[${peer.host}]:${peer.port}`;

  async function send(options: TlsPolicyOptions) {
    const transport = nodemailer.createTransport(tlsPolicy({ relay: relay(), level: 'may', connectionReuse: false, ...options }));
    const before = peer.events.length;
    try {
      return { info: await transport.sendMail({ from: 's@origin.test', to: 'u@x.test', text: 'x' }), error: undefined, events: peer.events.slice(before) };
    } catch (error) {
      return { info: undefined, error: error as TlsPolicyError, events: peer.events.slice(before) };
    } finally {
      transport.close();
    }
  }

  it("the function's encrypt applies: no STARTTLS, so no MAIL FROM", async () => {
    const { error, events } = await send({ policyLookup: async (key) => (key === relay() ? 'encrypt' : undefined) });
    expect(error?.message).toMatch(/delivery at level encrypt failed/);
    expect(error?.deliveries[0]?.policySource).toBe(`policyLookup ${relay()}`);
    expect(events.filter((e) => e.command === 'MAIL')).toEqual([]);
  });
  it('no entry: the default level may, delivered in cleartext as may allows', async () => {
    const { info, error } = await send({ policyLookup: async () => undefined });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]).toMatchObject({ level: 'may', policySource: 'default' });
  });
  it('a failed lookup defers, temporary, with the recipients pending, and nothing is even connected', async () => {
    const { error, events } = await send({ policyLookup: () => Promise.reject(new Error('database down')) });
    expect(error?.code).toBe('EPOLICYLOOKUP');
    expect(error?.temporary).toBe(true);
    expect(error?.pending).toEqual(['u@x.test']);
    expect(error?.message).toBe(`${peer.host}: policy lookup of ${relay()} failed: database down`);
    expect(events).toEqual([]);
  });
  it('policyLookup that is not a function: an error at creation', () => {
    expect(() => tlsPolicy({ policyLookup: 'socketmap:inet:127.0.0.1:8461' as never })).toThrow(
      'option policyLookup must be a function (key) => entry, not string',
    );
  });
});
