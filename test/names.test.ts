/**
 * One normaliser for every domain name the library compares (lib/names): a recipient's domain,
 * a policy key, a relay host and a `match` name always agree, and a name delivery goes ahead
 * with always walks its parent policy keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { domainOf, parseRelay } from '../lib/transport.js';
import { defaultPolicy, lookupKeys, lookupPolicy, createPolicyTable, normalizeKey } from '../lib/policy/index.js';
import { expandMatch } from '../lib/pkix/index.js';
import { toAsciiDomain, toDnsName } from '../lib/names/index.js';
import { makePki, makeWorld, type Pki, type World } from './helpers/world.js';

function recipientDomain(domain: string): string | undefined {
  try {
    return domainOf(`u@${domain}`);
  } catch {
    return undefined;
  }
}

function keyOf(domain: string): string | undefined {
  const k = normalizeKey(domain);
  return k.ok ? k.value : undefined;
}

function matchName(domain: string): string | undefined {
  try {
    return expandMatch([domain], { hostname: 'h.example', nexthop: 'n.example' })[0];
  } catch {
    return undefined;
  }
}

describe('the same name is the same string everywhere', () => {
  it.each([
    ['ẞtrasse.de', 'sstrasse.de'],
    ['ßtrasse.de', 'xn--trasse-9sa.de'],
    ['Bücher.Example', 'xn--bcher-kva.example'],
    ['BÜCHER.example.', 'xn--bcher-kva.example'],
    ['bücher。example', 'xn--bcher-kva.example'],
    ['bücher．example', 'xn--bcher-kva.example'],
    ['bücher｡example', 'xn--bcher-kva.example'],
    ['MX.Example.COM', 'mx.example.com'],
    ['ǅ.example', 'xn--d-toa.example'], // title-case digraph U+01C5: folded to U+01C6 by the mapping
    ['Ⅻ.example', 'xii.example'],
    ['ﬁ.example', 'fi.example'],
  ])('%s -> %s as a recipient, a key, a relay and a match name', (input, ascii) => {
    expect(recipientDomain(input)).toBe(ascii);
    expect(keyOf(input)).toBe(ascii);
    expect(keyOf(`.${input}`)).toBe(`.${ascii}`);
    expect(parseRelay(`${input}:25`).host).toBe(ascii);
    expect(matchName(input)).toBe(ascii);
    expect(lookupKeys({ kind: 'domain', domain: input })[0]).toBe(ascii);
  });

  it('over the Basic Multilingual Plane: a key that is valid always equals the recipient domain and the match name', () => {
    let compared = 0;
    const disagreements: string[] = [];
    for (let code = 0x80; code <= 0xffff; code++) {
      if (code >= 0xd800 && code <= 0xdfff) continue;
      const name = `a${String.fromCharCode(code)}b.example`;
      const key = keyOf(name);
      const recipient = recipientDomain(name);
      const match = matchName(name);
      if (key === undefined) {
        // A key may be stricter (Postfix's valid_hostname), never looser.
        continue;
      }
      compared++;
      if (recipient !== key || match !== key) disagreements.push(`U+${code.toString(16).padStart(4, '0')}: key ${key}, recipient ${recipient}, match ${match}`);
    }
    expect(disagreements).toEqual([]);
    expect(compared).toBeGreaterThan(1000);
  });

  it('a name that is not a DNS name is refused with the reason', () => {
    expect(toAsciiDomain('a..b')).toEqual({ ok: false, reason: 'empty label' });
    expect(toAsciiDomain(`${'a'.repeat(64)}.example`)).toEqual({ ok: false, reason: 'label longer than 63 characters' });
    expect(toDnsName('a b.example')).toEqual({ ok: false, reason: 'a label holds a space or a control character' });
    expect(toDnsName(`${'a.'.repeat(127)}ab`)).toEqual({ ok: false, reason: 'name longer than 253 characters' });
    expect(() => domainOf('u@a\nb.example')).toThrow('recipient u@a\\x0ab.example has an invalid domain: a label holds a space or a control character');
  });
});

describe('parent policy keys apply to every name delivery uses', () => {
  const table = createPolicyTable('.example.com secure\n');
  const base = defaultPolicy('may', 'level option');
  it.each(['mail-.example.com', 'a+b.example.com', '-x.example.com', 'a_b.example.com', 'x.y.example.com', 'MAIL-.Example.COM'])(
    '%s gets .example.com secure',
    (name) => {
      expect(lookupKeys({ kind: 'domain', domain: name })).toContain('.example.com');
      expect(lookupPolicy(table, { kind: 'domain', domain: name }, base).level).toBe('secure');
    },
  );
  it('example.com itself does not (a leading dot means subdomains only)', () => {
    expect(lookupPolicy(table, { kind: 'domain', domain: 'example.com' }, base).level).toBe('may');
  });
});

describe('end to end: a parent entry covers a recipient domain the table could not hold as a key', () => {
  let pki: Pki;
  let world: World;
  beforeAll(async () => {
    pki = await makePki();
    // The MX presents a certificate for its own name from the test CA, but not for the domain:
    // at `secure` it fails, at the default `may` it would get the mail.
    world = await makeWorld(
      pki,
      [{ name: 'mx.sub.test', behaviour: 'starttls' }],
      [{ name: 'mail-.sub.test', type: 'MX', exchange: 'mx.sub.test', preference: 10 }],
    );
  });
  afterAll(() => world?.close());
  it('`.sub.test secure` applies to mail-.sub.test: deferred, nothing sent', async () => {
    const { info, error } = await world.send({ policy: '.sub.test secure\n' }, { to: 'u@mail-.sub.test' });
    expect(info).toBeUndefined();
    expect(error?.code).toBe('ETLS');
    expect(error?.deliveries[0]?.level).toBe('secure');
    expect(world.mailEvents()).toEqual([]);
  });
});
