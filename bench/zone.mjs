// The bench's DNS zone, made of rules rather than a table, for the test kit's DNS server
// (test/helpers/dns-server.ts, run by bench/sink.mjs with the AD bit on every answer: the
// transport's resolver trusts AD from loopback by default, so every answer is DNSSEC-"secure"
// and DANE applies).
//
// The zone (TTL 300 s for everything, negative answers included, so nothing expires in a run):
//   one.bench.test            MX 10 mx.one.bench.test       mx.one.bench.test  A 127.0.0.2
//   d<i>.bench.test           MX 10 mx<i % 5>.bench.test    mx<k>.bench.test   A 127.0.0.<10 + k>
//   big<j>.bench.test         MX 10 mx<j % 5>.bench.test
//   new<n>.slow.bench.test    MX 10 mx.new<n>.slow.bench.test -> A 127.0.0.3
//   _<port>._tcp.<any MX host above>  TLSA 3 1 1 <the sink certificate's SPKI SHA-256>
// AAAA of a host: NODATA; anything else: NXDOMAIN; both with an SOA, so they are cached.
// Every name under slow.bench.test is answered after a delay (a new, far destination).
export const TTL = 300;
export const MX_COUNT = 5;
export const ZONE = 'bench.test';
export const ONE_ADDRESS = '127.0.0.2';
export const SLOW_ADDRESS = '127.0.0.3';
export const mxAddress = (k) => `127.0.0.${10 + k}`;
export const MX_ADDRESSES = Array.from({ length: MX_COUNT }, (_, k) => mxAddress(k));

const zone = ZONE.replace('.', '\\.');

/** The address of an MX host name of the zone, or undefined. */
function hostAddress(name) {
  if (name === `mx.one.${ZONE}`) return ONE_ADDRESS;
  let m = new RegExp(`^mx(\\d+)\\.${zone}$`).exec(name);
  if (m && Number(m[1]) < MX_COUNT) return mxAddress(Number(m[1]));
  m = new RegExp(`^mx\\.new\\d+\\.slow\\.${zone}$`).exec(name);
  if (m) return SLOW_ADDRESS;
  return undefined;
}

/** The MX host of a mail domain of the zone, or undefined. */
function mxOf(name) {
  if (name === `one.${ZONE}`) return `mx.one.${ZONE}`;
  let m = new RegExp(`^(?:d|big)(\\d+)\\.${zone}$`).exec(name);
  if (m) return `mx${Number(m[1]) % MX_COUNT}.${ZONE}`;
  m = new RegExp(`^new\\d+\\.slow\\.${zone}$`).exec(name);
  if (m) return `mx.${name}`;
  return undefined;
}

/** Whether a name is answered late. */
export const isSlow = (name) => name.endsWith(`.slow.${ZONE}`);

/**
 * The zone as the DNS server's `zone` function: a name's records, undefined for no such name.
 * @param {string} tlsaHex the SHA-256 of the sink certificate's SubjectPublicKeyInfo
 */
export function benchZone(tlsaHex) {
  return (name) => {
    const mx = mxOf(name);
    if (mx) return [{ type: 'MX', exchange: mx, preference: 10 }];
    const address = hostAddress(name);
    if (address) return [{ type: 'A', address }];
    const tlsa = /^_\d+\._tcp\.(.+)$/.exec(name);
    if (tlsa && hostAddress(tlsa[1])) return [{ type: 'TLSA', usage: 3, selector: 1, matchingType: 1, data: tlsaHex }];
    return undefined;
  };
}
