/**
 * A test's child process: one transport in a process of its own sends one message and prints
 * what happened as JSON, so that a test can show two processes sharing one MTA-STS cache (a
 * Redis store, or a SQLite file across a restart). Run with ts-register.mjs and
 * --experimental-transform-types; the argument is a JSON object (see Args).
 */
import { Keyv } from 'keyv';
import KeyvRedis from '@keyv/redis';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyOptions } from '../../lib/index.js';

interface Args {
  dns: string;
  port: number;
  stsPort: number;
  caFile: string;
  to: string;
  store: { redis: number } | { file: string } | 'memory';
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const keyv =
  typeof args.store === 'object' && 'redis' in args.store
    ? new Keyv(new KeyvRedis(`redis://127.0.0.1:${args.store.redis}`), { namespace: 'ntp-test' })
    : undefined;
const options: TlsPolicyOptions = {
  port: args.port,
  caFile: args.caFile,
  dns: createResolver({ servers: [args.dns], timeout: 1000, attempts: 1 }),
  mtaSts: { port: args.stsPort },
  connectionReuse: false,
  ...(keyv ? { store: keyv } : typeof args.store === 'object' && 'file' in args.store ? { store: { file: args.store.file } } : {}),
};
const transport = nodemailer.createTransport(tlsPolicy(options));
let out: unknown;
try {
  const info = await transport.sendMail({ from: 's@origin.test', to: args.to, text: 'hello' });
  out = { accepted: info.accepted, deliveries: info.deliveries };
} catch (error) {
  const e = error as { code?: string; message: string; deliveries?: unknown };
  out = { code: e.code, message: e.message, deliveries: e.deliveries };
}
transport.close();
await keyv?.disconnect();
process.stdout.write(JSON.stringify(out));
