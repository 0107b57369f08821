import { fork } from 'node:child_process';
import nodemailer from 'nodemailer';
import { tlsPolicy } from '../dist/esm/index.js';
import { makeLeaf } from '../test/helpers/pki.ts';
const MODE = process.argv[2] ?? 'both';
const N = Number(process.argv[3] ?? 300);
const cert = await makeLeaf('self', { names: ['mx.bench.test'] });
const child = fork(new URL('./sink.mjs', import.meta.url).pathname, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
let id = 0; const waiting = new Map();
child.on('message', (m) => { waiting.get(m.id)?.(m); waiting.delete(m.id); });
const req = (cmd, args = {}) => new Promise((r) => { const i = ++id; waiting.set(i, r); child.send({ id: i, cmd, ...args }); });
const started = (await req('start', { hosts: ['127.0.77.2'], cert: cert.chainPem, key: cert.keyPem, tlsaHex: '00', slowDelay: 0 })).result;
const TEXT = 'x'.repeat(10000);
async function run(transport, n) {
  const c0 = process.cpuUsage(); const t0 = Date.now();
  for (let i = 0; i < n; i++) await transport.sendMail({ from: 'a@b.test', to: 'u@bench.test', subject: 's', text: TEXT });
  const c = process.cpuUsage(c0);
  return { ms: Date.now() - t0, cpuPerMsg: (c.user + c.system) / 1000 / n };
}
const ours = (tickets) => nodemailer.createTransport(tlsPolicy({ relay: `[127.0.77.2]:${started.port}`, level: 'encrypt', connectionReuse: false, tlsSessionCache: tickets, mtaSts: false }));
const nm = () => nodemailer.createTransport({ host: '127.0.77.2', port: started.port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
const res = {};
for (let round = 0; round < 3; round++) {
  for (const [name, make] of [['ours', () => ours(false)], ['nodemailer', nm], ['ours+resume', () => ours(true)]]) {
    const t = make(); await run(t, 30); const r = await run(t, N); t.close();
    (res[name] ??= []).push(r.cpuPerMsg.toFixed(3));
  }
}
console.log(res);
await req('close'); process.exit(0);
