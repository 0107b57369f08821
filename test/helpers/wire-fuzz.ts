/**
 * The DNS wire decoder's fuzz kit, shared by test/dns-wire.test.ts (replies of zones signed in
 * the test, npm test) and test/dns-wire-interop.test.ts (replies of a real Unbound and NSD, npm
 * run test:interop): a seeded mutator, the checks on every decoded message, one UDP exchange,
 * and the two runs both files make over their seeds.
 */
import { createSocket } from 'node:dgram';
import dns2 from 'dns2';
import { expect } from 'vitest';
import { checkReply } from '../../lib/dns/message.js';
import { decodeMessage, workBudget, type Message } from '../../lib/dns/wire.js';

const { Packet } = dns2;

/** mulberry32: a small seeded generator, so a failure can be replayed. */
export function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function mutate(seed: Buffer, random: () => number): Buffer {
  let b = Buffer.from(seed);
  const int = (n: number) => Math.floor(random() * n);
  const steps = 1 + int(4);
  for (let s = 0; s < steps; s++) {
    const at = b.length > 0 ? int(b.length) : 0;
    switch (int(9)) {
      case 0: // flip a bit
        if (b.length > 0) b[at] = b[at]! ^ (1 << int(8));
        break;
      case 1: // any octet
        if (b.length > 0) b[at] = int(256);
        break;
      case 2: // a pointer, backwards, forwards, into the header or to itself
        if (b.length > 1) {
          const choice = int(4);
          const target = choice === 0 ? int(Math.max(1, at)) : choice === 1 ? at + int(64) : choice === 2 ? int(12) : at;
          b[at] = 0xc0 | ((target >> 8) & 0x3f);
          if (at + 1 < b.length) b[at + 1] = target & 0xff;
        }
        break;
      case 3: // truncate
        b = b.subarray(0, int(b.length + 1));
        break;
      case 4: // insert octets
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), b.subarray(at)]);
        break;
      case 5: // a section count
        if (b.length >= 12) b.writeUInt16BE(int(4) === 0 ? int(0x10000) : int(8), 4 + 2 * int(4));
        break;
      case 6: // a 16-bit field (an RDLENGTH, a type) nudged
        if (at + 1 < b.length) b.writeUInt16BE((b.readUInt16BE(at) + int(9) - 4) & 0xffff, at);
        break;
      case 7: // a label length: reserved types, over-long, zero
        if (b.length > 0) b[at] = [0x40, 0x80, 0x3f, 0, 1, 63][int(6)]!;
        break;
      case 8: // a slice repeated
        if (b.length > 0) {
          const from = int(b.length);
          b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + int(32)), b.subarray(at)]);
        }
        break;
    }
  }
  return b;
}

/** The presentation form of lib/dns/names.ts: no bare dot inside a label, no space or control. */
const LABEL = /^(?:[!-\-/-[\]-~]|\\[.\\]|\\[0-9]{3})+$/;
/** What is wrong with a decoded name, or '' (plain code: this runs millions of times). */
export function nameProblem(name: string): string {
  if (name === '') return '';
  // Split on dots not escaped (a dot after a backslash is part of a label).
  const labels = name.match(/(?:\\[0-9]{3}|\\.|[^.\\])+/g) ?? [];
  if (labels.join('.') !== name) return `${JSON.stringify(name)} does not split into labels`;
  let wire = 1;
  for (const label of labels) {
    if (!LABEL.test(label)) return `${JSON.stringify(name)} has a label with an unescaped character`;
    if (label !== label.toLowerCase()) return `${JSON.stringify(name)} is not lowercase`;
    const octets = label.replace(/\\[0-9]{3}|\\./g, 'x').length;
    if (octets > 63) return `${JSON.stringify(name)} has a label over 63 octets`;
    wire += octets + 1;
  }
  return wire > 255 ? `${JSON.stringify(name)} is over 255 octets` : '';
}

/** Problems with one decoded message: work over the bound, unsafe names, empty reasons. */
export function problems(input: Buffer, message: Message): string[] {
  const found: string[] = [];
  if (message.work > workBudget(input.length)) found.push(`work ${message.work} over the bound for ${input.toString('hex')}`);
  for (const name of names(message)) {
    const problem = nameProblem(name);
    if (problem) found.push(`${problem} in ${input.toString('hex')}`);
  }
  for (const error of message.errors) if (error.reason.length < 10) found.push(`reason ${JSON.stringify(error.reason)}`);
  return found;
}

export function names(message: Message): string[] {
  const out = message.questions.map((q) => q.name);
  for (const record of [...message.answers, ...message.authorities, ...message.additionals]) {
    out.push(record.name);
    const data = record.data as Record<string, unknown> | undefined;
    for (const key of ['exchange', 'target', 'host', 'primary', 'admin']) {
      if (data && typeof data[key] === 'string') out.push(data[key] as string);
    }
  }
  return out;
}

/** One query over UDP to `server` (`address:port`), the reply's octets. */
export function exchange(server: string, query: Buffer): Promise<Buffer> {
  const [address, port] = [server.slice(0, server.lastIndexOf(':')), Number(server.slice(server.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no reply from ${server}`));
    }, 3000);
    socket.on('message', (message) => {
      clearTimeout(timer);
      socket.close();
      resolve(message);
    });
    socket.send(query, port, address);
  });
}

/**
 * Real replies (`seeds`) decode without errors and their names agree with dns2's; together they
 * include `types` (DNSSEC records among them, kept raw).
 */
export function expectCleanSeeds(seeds: Buffer[], types: number[]): void {
  for (const seed of seeds) {
    const message = decodeMessage(seed);
    expect(message.errors, seed.toString('hex')).toEqual([]);
    const theirs = Packet.parse(seed);
    expect(message.questions.map((q) => q.name)).toEqual(theirs.questions.map((q) => q.name.toLowerCase()));
    expect(message.answers.map((r) => `${r.name} ${r.type}`)).toEqual(theirs.answers.map((r) => `${r.name.toLowerCase()} ${r.type}`));
  }
  const seen = new Set(seeds.flatMap((seed) => [...decodeMessage(seed).answers, ...decodeMessage(seed).authorities].map((r) => r.type)));
  expect([...seen]).toEqual(expect.arrayContaining(types));
}

/** `count` replies mutated from `seeds`: decoding returns, its work stays within the bound, every name is safe; both paths run. */
export function expectMutationsSafe(seeds: Buffer[], count: number): void {
  const random = generator(0x5eed);
  let clean = 0;
  let broken = 0;
  const found: string[] = [];
  for (let i = 0; i < count && found.length < 5; i++) {
    const input = mutate(seeds[i % seeds.length]!, random);
    let message: Message;
    try {
      message = decodeMessage(input);
      // The reply checks on top of it must not throw either.
      checkReply(input, input.length >= 2 ? input.readUInt16BE(0) : 0, 'example.test', 1);
    } catch (error) {
      found.push(`threw for ${input.toString('hex')}: ${(error as Error).stack}`);
      continue;
    }
    found.push(...problems(input, message));
    if (message.errors.length === 0) clean++;
    else broken++;
  }
  expect(found).toEqual([]);
  // Both paths were exercised.
  expect(clean).toBeGreaterThan(1000);
  expect(broken).toBeGreaterThan(1000);
}

/**
 * What both fuzz tests (dns-wire, dns-wire-interop) ask of the example.test zone they sign and
 * serve: its MX, addresses, TLSA, a CNAME, TXT, a name that is not there, a type a name lacks,
 * the DNSKEY and the SOA (name, type code).
 */
export const EXAMPLE_TEST_QUESTIONS: readonly (readonly [string, number])[] = [
  ['example.test', 15],
  ['mx1.example.test', 1],
  ['mx1.example.test', 28],
  ['_25._tcp.mx1.example.test', 52],
  ['www.example.test', 1],
  ['txt.example.test', 16],
  ['nothere.example.test', 1],
  ['mx1.example.test', 15],
  ['example.test', 48],
  ['example.test', 6],
];
