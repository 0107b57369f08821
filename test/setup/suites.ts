/**
 * Which test files run under which command. `npm test` needs Node and npm only (and the openssl
 * command, which Debian's nodejs and npm packages bring through ca-certificates); the files
 * listed here run under `npm run test:interop`, because their point is agreement with real
 * system programs: unbound, nsd and the ldns tools (test/helpers/dnssec.ts), or redis-server
 * (test/helpers/redis.ts). Each test file runs under exactly one of the two commands, and .ci/run
 * runs both.
 */
export const INTEROP_TESTS = [
  // Real unbound, nsd and ldns-signzone against the library's validator and signer.
  'test/dnssec-interop.test.ts',
  'test/dnssec-unbound-interop.test.ts',
  // The AD path through a real validating unbound in front of nsd, and unbound's and nsd's wire.
  'test/dnssec.test.ts',
  'test/dns-config-unbound.test.ts',
  'test/dns-wire-interop.test.ts',
  // State shared by processes through a real redis-server.
  'test/bullmq-retry.test.ts',
  'test/cli-tls-reports-redis.test.ts',
  'test/mtasts-store-redis.test.ts',
  'test/tlsrpt-deliver-redis.test.ts',
  'test/tlsrpt-store-redis.test.ts',
];
