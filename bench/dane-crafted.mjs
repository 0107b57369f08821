// nodemailer-tls-policy bench: what a hostile DANE domain costs the sending process.
//
//   npm run build && node bench/dane-crafted.mjs [--dist <dist/esm directory>]
//
// A report, run by hand, not a test. It makes a 100-certificate chain (99 CAs and a leaf for
// mx1.example.net, one shell run of openssl) and TLSA RRsets that match nothing, then times
// daneVerify() (the event loop is blocked for exactly that long) on:
//   1. the crafted case: 1,000 "2 1 1" records (one 47 KB TCP DNS reply) and the
//      100-certificate chain; target: under 50 ms;
//   2. 100 "2 1 1" records (the record limit) and the same chain;
//   3. 100 "2 1 1" records and the chain without the leaf's issuer, so that no path forms and
//      the failure reason looks at every other certificate;
//   4. 100 "2 1 0" records (bare keys, each tried against the top of the chain) and a
//      two-certificate chain.
// Each row prints the median and worst wall time, the verdict's reason, and the work done as
// counted from outside the library (node:crypto wrapped: X.509 parses, SubjectPublicKeyInfo
// exports, public keys parsed, digests, signature verifications), so that the same script
// measures an older build too (--dist): before and after, same counters.
import crypto from 'node:crypto';
import module from 'node:module';
import os from 'node:os';
import { pathToFileURL } from 'node:url';

const TARGET_MS = 50;
const TIME_BUDGET_MS = 20_000;

// Count node:crypto work before the library is loaded (its named imports see the wrappers).
const counts = { parses: 0, spkiExports: 0, keyParses: 0, digests: 0, signatures: 0 };
const OriginalX509 = crypto.X509Certificate;
const originalVerify = OriginalX509.prototype.verify;
OriginalX509.prototype.verify = function verify(key) {
  counts.signatures++;
  return originalVerify.call(this, key);
};
crypto.X509Certificate = class X509Certificate extends OriginalX509 {
  constructor(data) {
    super(data);
    counts.parses++;
  }
};
const originalCreateHash = crypto.createHash;
crypto.createHash = function createHash(...args) {
  counts.digests++;
  return originalCreateHash.apply(this, args);
};
const originalCreatePublicKey = crypto.createPublicKey;
crypto.createPublicKey = function createPublicKey(...args) {
  counts.keyParses++;
  return originalCreatePublicKey.apply(this, args);
};
const keyProto = Object.getPrototypeOf(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
const originalExport = keyProto.export;
keyProto.export = function exportKey(options) {
  if (options?.type === 'spki') counts.spkiExports++;
  return originalExport.call(this, options);
};
module.syncBuiltinESMExports();

const distArg = process.argv.indexOf('--dist');
const dist = distArg > 0 ? pathToFileURL(`${process.argv[distArg + 1]}/`) : new URL('../dist/esm/', import.meta.url);
const { daneVerify, SessionCerts } = await import(new URL('dane/index.js', dist).href);

// The chain comes from the test kit (test/helpers/pki.ts, loaded through Node 22's type stripping).
const { longChain } = await import('../test/helpers/pki.ts');

/** 99 CAs ("CA 0" self-signed, "CA i" signed by "CA i-1") and a leaf signed by "CA 98"; DER, as sent: leaf first. */
function chainAsSent(cas) {
  const { leaf, cas: issued } = longChain(cas);
  return [leaf.der, ...issued.map((c) => c.der).reverse()];
}

const noise = (n) => Array.from({ length: n }, () => ({ usage: 2, selector: 1, matchingType: 1, data: crypto.randomBytes(32) }));
const keys = (n) =>
  Array.from({ length: n }, () => ({
    usage: 2,
    selector: 1,
    matchingType: 0,
    data: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }),
  }));

function measure(name, records, chain, target) {
  const times = [];
  let verdict;
  let work;
  const started = performance.now();
  while (times.length < 3 || (times.length < 20 && performance.now() - started < TIME_BUDGET_MS / 4)) {
    for (const k of Object.keys(counts)) counts[k] = 0;
    const req = {
      records,
      chain,
      tlsaName: '_25._tcp.mx1.example.net',
      host: 'mx1.example.net',
      names: ['mx1.example.net'],
      now: new Date(),
      trust: 'Verified',
      ...(SessionCerts ? { certs: new SessionCerts() } : {}),
    };
    const t0 = performance.now();
    verdict = daneVerify(req);
    times.push(performance.now() - t0);
    work = { ...counts };
    if (performance.now() - started > TIME_BUDGET_MS) break;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const worst = times[times.length - 1];
  const status = target === undefined ? '' : median < target ? `  PASS (target < ${target} ms)` : `  MISS (target < ${target} ms)`;
  console.log(`\n${name}`);
  console.log(`  wall time: median ${median.toFixed(2)} ms, worst ${worst.toFixed(2)} ms over ${times.length} runs${status}`);
  console.log(
    `  work: ${Object.entries(work)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  console.log(`  verdict: ${verdict.ok ? 'ok' : 'fail'}: ${(verdict.reason ?? verdict.matched ?? '').slice(0, 200)}`);
  return { name, median, worst, runs: times.length, work, ok: verdict.ok, target };
}

console.log(`dane-crafted: node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, library ${new URL('.', dist).pathname}`);
const chain = chainAsSent(99);
const orphan = [chain[0], ...chain.slice(2)];
const rows = [
  measure('1. crafted: 1,000 "2 1 1" records matching nothing, 100-certificate chain', noise(1000), chain, TARGET_MS),
  measure('2. 100 "2 1 1" records matching nothing, 100-certificate chain', noise(100), chain),
  measure('3. 100 "2 1 1" records, 99 certificates, no path above the leaf', noise(100), orphan),
  measure('4. 100 "2 1 0" keys that signed nothing, 2-certificate chain', keys(100), chain.slice(0, 2)),
];
const crafted = rows[0];
console.log(`\ncrafted case: ${crafted.median.toFixed(2)} ms median (${crafted.median < TARGET_MS ? 'PASS' : 'MISS'}, target < ${TARGET_MS} ms)`);
