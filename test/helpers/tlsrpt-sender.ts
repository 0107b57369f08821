/**
 * A test's child process for TLS reporting: one transport in a process of its own sends `count`
 * messages, one session each, to `to`, counting the sessions into a shared store (a Redis server
 * through an ioredis client, or a SQLite file), and prints how many were accepted as JSON. Run
 * with ts-register.mjs and --experimental-transform-types; the argument is a JSON object (Args).
 */
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { createResolver, tlsPolicy, type TlsPolicyOptions } from '../../lib/index.js';

interface Args {
  dns: string;
  port: number;
  caFile: string;
  to: string;
  count: number;
  store: { redis: number } | { file: string };
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const redis = 'redis' in args.store ? new Redis(args.store.redis, '127.0.0.1') : undefined;
const options: TlsPolicyOptions = {
  port: args.port,
  caFile: args.caFile,
  dns: createResolver({ servers: [args.dns], timeout: 1000, attempts: 1 }),
  mtaSts: false,
  connectionReuse: false,
  tlsRpt: { organization: 'Origin Test Mail', contact: 'tlsrpt@origin.test' },
  store: redis ? { redis } : { file: (args.store as { file: string }).file },
};
const mailer = nodemailer.createTransport(tlsPolicy(options));
let accepted = 0;
for (let i = 0; i < args.count; i++) {
  const info = await mailer.sendMail({ from: 's@origin.test', to: args.to, text: 'hello' }).catch(() => undefined);
  accepted += info?.accepted.length ?? 0;
}
mailer.close();
await redis?.quit();
process.stdout.write(JSON.stringify({ accepted }));
