// The bench's DNSSEC zones (row 6), run as a separate process by bench.mjs with Node's
// TypeScript support and test/helpers/ts-register.mjs (the kit's signer imports lib/dnssec's
// sources): a root (RSA/SHA-256, as the real root), test. and bench.test. (ECDSA P-256), signed
// now by test/helpers/signed-dns.ts, served twice over UDP and TCP on 127.0.0.1:
// - `plain`: a recursive server that passes the DNSSEC records through and sets no AD bit
//   (what resolver.dnssec 'validate' works with);
// - `ad`: the same records with the AD bit on every reply (a validating resolver on loopback,
//   what 'trust-ad' believes).
// bench.test. holds one.bench.test MX 10 mx.one.bench.test, its A (the sink's ONE_ADDRESS),
// TLSA 3 1 1 (the sink certificate) at _<port>._tcp.mx.one.bench.test, and `count` names
// h<i>.bench.test with a TLSA each at _25._tcp (for lookups of names not yet in the answer
// cache). Driven over IPC: { cmd: 'start', port, tlsaHex, address, count } -> { ok, result }
// with the servers and the root's DS line; it exits when the bench goes away.
import { T, a, mx, rr } from '../test/helpers/dnssec-signer.ts';
import { signTree, startSignedDns, tlsa } from '../test/helpers/signed-dns.ts';

const servers = [];

process.on('message', async ({ cmd, port, tlsaHex, address, count }) => {
  if (cmd !== 'start') return;
  try {
    const data = Buffer.from(tlsaHex, 'hex');
    const records = [
      rr('one.bench.test.', T.MX, mx(10, 'mx.one.bench.test.')),
      rr('mx.one.bench.test.', T.A, a(address)),
      rr(`_${port}._tcp.mx.one.bench.test.`, T.TLSA, tlsa(3, 1, 1, data)),
      ...Array.from({ length: count }, (_, i) => rr(`_25._tcp.h${i}.bench.test.`, T.TLSA, tlsa(3, 1, 1, data))),
    ];
    const now = Math.floor(Date.now() / 1000);
    const tree = signTree(
      [
        { origin: '.', algorithm: 8 },
        { origin: 'test.', algorithm: 13 },
        { origin: 'bench.test.', algorithm: 13, records },
      ],
      now,
    );
    const plain = await startSignedDns({ zones: tree.zones });
    const ad = await startSignedDns({ zones: tree.zones, ad: true });
    servers.push(plain, ad);
    process.send({ ok: true, result: { plain: plain.server, ad: ad.server, anchor: tree.anchor } });
  } catch (error) {
    process.send({ ok: false, error: error?.stack ?? String(error) });
  }
});

process.on('disconnect', async () => {
  await Promise.all(servers.map((server) => server.close()));
  process.exit(0);
});
