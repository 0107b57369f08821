/**
 * The resolver: every DNS lookup of the library goes through here, and every answer travels
 * with its DNSSEC status ('secure' | 'insecure' | 'failed', lib/types.ts `DnssecStatus`).
 *
 * What it implements, and from where:
 * - A stub resolver (RFC 1034 §5.3.1) asking recursive servers, with RD=1 and EDNS0 (RFC
 *   6891) with a UDP payload size of 1232. AD is clear in queries (RFC 4035 §4.6). Where
 *   'secure' comes from is `dnssec` (ResolverOptions):
 *   - 'validate' (a security-aware stub that validates, RFC 4035 §4.9.1-§4.9.3): DO=1 (RFC
 *     3225) and CD=1 (RFC 4035 §3.2.2, RFC 6840 §5.9), and every answer judged in process
 *     from the trust anchors by lib/dns/validate.ts, over lib/dnssec; no server is trusted.
 *   - 'trust-ad': DO=1, CD=0, and like Postfix (dns_lookup.c, RES_TRUSTAD) it believes the AD
 *     bit (RFC 4035 §3.2.3, RFC 6840 §5.8) of a validating resolver it trusts, and only over
 *     a path it trusts (RFC 4035 §4.6, §4.9.3; RFC 3655 §1.1). Servers the user names are
 *     trusted on loopback only by default (`trustAd: 'loopback'`, what glibc's and OpenBSD's
 *     `trust-ad` handling also chose).
 *   - 'off': DO=0, every answer insecure.
 *   The default is 'trust-ad' where that path is configured (trustAd given, or a named
 *   server it trusts) and no trustAnchors are given, else 'validate'. The trust rules below
 *   ("trusted", "who is asked", SERVFAIL) are those of 'trust-ad'; in 'validate' and 'off'
 *   every server is asked in order and a SERVFAIL moves on to the next.
 * - UDP first, TCP when the reply has TC set (RFC 1035 §4.2, RFC 7766 §5). Random IDs and a
 *   fresh source port per try; replies are checked for ID, question and sender, and
 *   mismatches are ignored rather than trusted or fatal (RFC 5452 §4, §9).
 * - Messages are encoded and decoded by lib/dns/wire.ts, built for hostile input: names
 *   decompress only through backward pointers (RFC 1035 §4.1.4), at most 127 per name, 255
 *   octets and 63-octet labels at most, and a message may cost at most workBudget(length)
 *   labels and pointers; anything past those limits is a malformed reply. Names come out in
 *   RFC 1035 §5.1 presentation form (`\.`, `\\`, `\DDD` escapes, lib/dns/names.ts), so a
 *   label cannot smuggle a dot, a space or a control character into a name.
 * - CNAME chains in the answer section are followed (RFC 1034 §3.6.2, RFC 2181 §10.1.1),
 *   only through records on the chain (RFC 2181 §5.4.1); the RCODE speaks of the last name
 *   (RFC 6604). A secure result needs the AD bit on the single reply that carried the whole
 *   chain, as Postfix's dns_get_answer() requires of every CNAME it follows.
 * - Positive answers are cached for the lowest TTL of the records and CNAMEs used; NXDOMAIN
 *   and NODATA for min(SOA TTL, SOA MINIMUM) from the authority section (RFC 2308 §5), and not
 *   at all without an SOA (RFC 2308 §5). Identical concurrent lookups share one query.
 *
 * Choices made where the sources leave room:
 * - Trust: a server is "trusted" when its AD bit is believed. Servers read from resolv.conf
 *   (the `servers` option not given) are not trusted unless `trustAd` is given (true or
 *   'loopback'): in a container the system's server is Docker's 127.0.0.11, on many hosts
 *   systemd-resolved's 127.0.0.53, loopback forwarders that pass on an AD bit they received
 *   over the network. Servers the user names default to 'loopback'. `checkDnssec()` asks the
 *   trusted servers for a signed name and says in one sentence why DANE cannot rely on them.
 * - Who is asked: when any server is trusted, only the trusted servers are. An untrusted
 *   server's answer is 'insecure' at best, so it could only ever stand in for a trusted
 *   server that failed, turning 'failed' into 'insecure' (a TLSA lookup failure into "no
 *   secure TLSA", a bogus MX into an implicit MX): the downgrade an attacker gets by
 *   blocking the trusted server. A `logger.warn` at construction names each server not asked.
 *   With no trusted server, every server is asked in order and answers are 'insecure'.
 * - A SERVFAIL from a trusted server is final for the lookup: it is what a validating
 *   resolver answers for data that did not validate (RFC 4035 §5.5), so no other server is
 *   asked. A timeout, REFUSED, another error RCODE, a malformed reply, a referral or a
 *   network error from a trusted server moves on to the next trusted server; when all have
 *   failed, the lookup fails with every server's reason. With no trusted server, SERVFAIL
 *   moves on like the others.
 * - Status: 'secure' = AD set by a trusted server; 'insecure' = AD clear or server not trusted;
 *   'failed' = SERVFAIL, REFUSED, any other error RCODE (the 12-bit one of RFC 6891 §6.1.3),
 *   no reply, a malformed reply, a referral from a non-recursive server, a reply still
 *   truncated over TCP. NXDOMAIN and NODATA are answers (with no records).
 *   DNS failures never throw; bad arguments (an empty or invalid name, an unknown type) do.
 * - Retries: `attempts` rounds (default 2) over the servers asked, in their configured order,
 *   each try waiting `timeout` ms (default 2000). A server that answered with an error RCODE
 *   or a malformed reply is not asked again for that lookup; one that timed out or could not
 *   be reached is, in the next round. The failure reason names what each server did.
 * - Failures are not cached: the next lookup asks again (concurrent ones still share a query).
 * - Cache lifetimes are capped at one day for answers and three hours for negative answers
 *   (RFC 2308 §5 suggests one to three hours); the capped value is the reported `ttl`.
 *   A TTL of 0 is not cached, nor one with the top bit set (RFC 2181 §8: it counts as 0).
 *   Cached answers report the TTL remaining, rounded up.
 * - When the answer section ends its CNAME chain without the asked type, the answer is NODATA
 *   for the last name (no further query: the recursive resolver has already chased it).
 * - Messages that cannot be replies to the query (under 12 octets, another ID, QR clear,
 *   another question) are ignored and the try keeps waiting; a reply with the right ID and
 *   question that does not decode is malformed (failed), and so is one past the decoder's
 *   work bound wherever that happens. A record in the additional section that does not
 *   decode is tolerated (that section is not used beyond OPT); one in the question, answer or
 *   authority section makes the reply malformed. Error replies (not NOERROR/NXDOMAIN) are
 *   accepted without a question section. Answer records of a class other than IN are ignored.
 * - Names: lowercased, trailing dot removed, `\.`, `\\` and `\DDD` escapes read, labels
 *   with non-ASCII characters converted to A-labels one by one (so `_25._tcp` and numeric
 *   labels pass untouched), and written back in the presentation form replies are decoded
 *   to; an empty label, a label over 63 octets, a name over 255 octets on the wire or
 *   unescaped spaces/control characters throw.
 * - A server not on loopback that is asked gets a `logger.warn` at construction: with
 *   `trustAd: true` that its AD bit is only as trustworthy as the path to it; with
 *   'loopback' that its answers will never be secure (so DANE cannot apply).
 * - Extended DNS Errors (RFC 8914) in a failed reply are named in the reason; their
 *   EXTRA-TEXT is the server's free text, made safe to print by lib/text.
 * - A and AAAA records carry `family` (4 or 6) besides `address` (RFC 5952 text for IPv6).
 * - `addresses()` asks A and AAAA in parallel and combines them, A records first:
 *   both answered -> the weaker status of the two ('insecure' if either is), rcode NXDOMAIN
 *   only when both say so, the lower TTL; one failed and the other has records -> the other
 *   answer unchanged (the addresses found are as good as they were; a host reachable over
 *   one family stays usable); one failed and the
 *   other has none -> failed, since the failed half may have held the only addresses; both
 *   failed -> failed, both reasons given.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TrustAnchorError, parseTrustAnchors, rootTrustAnchors, type TrustAnchor } from '../dnssec/anchors.js';
import { nameToText } from '../dnssec/names.js';
import type { DnssecStatus } from '../types.js';
import { safeText } from '../text/index.js';
import {
  TYPE,
  buildQuery,
  extendedErrorName,
  isReferral,
  rcodeName,
  readAnswer,
  typeName,
  type Message,
  type AddressRecord,
  type AnyRecord,
  type CnameRecord,
  type MxRecord,
  type RecordType,
  type RecordTypes,
  type TlsaRecord,
  type TxtRecord,
} from './message.js';
import { normalizeName } from './names.js';
import { isLoopback, parseServer, systemServers, DEFAULT_RESOLV_CONF, type ServerAddress } from './servers.js';
import { tcpTry, udpTry, type Query, type TryOutcome } from './transport.js';
import { ChainValidator, type Exchange, type ValidationLimits } from './validate.js';

export type {
  AddressRecord,
  AnyRecord,
  CnameRecord,
  HostRecord,
  MxRecord,
  RawRecord,
  RecordType,
  RecordTypes,
  SoaRecord,
  TlsaRecord,
  TxtRecord,
} from './message.js';
export { parseTlsa } from './message.js';
export { normalizeName } from './names.js';
export { isLoopback, parseResolvConf, parseServer, systemServers } from './servers.js';
export { decodeMessage, encodeQuery, workBudget, MAX_POINTERS_PER_NAME } from './wire.js';
export type { Message as DecodedMessage } from './wire.js';

/** The statuses an answer can have; a failure is the other branch of `DnsResult`. */
export type AnswerStatus = Exclude<DnssecStatus, 'failed'>;

/** An answer: records found (NOERROR), or none (NXDOMAIN, or NODATA as NOERROR with no records). */
export interface DnsAnswer<T> {
  status: AnswerStatus;
  rcode: 'NOERROR' | 'NXDOMAIN';
  /** The name asked for, normalised (lowercase, no trailing dot, A-labels, lib/dns/names.ts escapes). */
  name: string;
  records: T[];
  /** Seconds the answer may be used for (remaining, when it came from the cache). */
  ttl: number;
  /** The CNAME chain followed, in order (each target name). */
  cnames: string[];
  /** The final owner name: `name` when no CNAME was followed. */
  canonical: string;
}

/** 'validate' only: how one answer was judged (the probe shows these). */
export interface ValidationRecord {
  /** The name and type asked. */
  name: string;
  type: string;
  status: DnssecStatus;
  /** Why it is insecure or failed. */
  reason?: string;
  /** The chain walked, one line per step: the zones' DS and DNSKEY sets from the anchor down, the signatures that verified each hop, the denial proofs. */
  chain: string[];
}

/** A lookup that produced no usable answer. Always temporary: ask again later. */
export interface DnsFailure {
  status: 'failed';
  name: string;
  /** One sentence: "DNS lookup of MX for example.com failed: SERVFAIL from 127.0.0.1:5353". */
  reason: string;
  temporary: true;
}

export type DnsResult<T> = DnsAnswer<T> | DnsFailure;

export interface DnsLogger {
  warn?: (message: string) => void;
}

/**
 * How answers become DNSSEC-secure: 'validate' (the chain of trust checked in process, from
 * the trust anchors), 'trust-ad' (the AD bit of a trusted validating resolver believed) or
 * 'off' (every answer insecure).
 */
export type DnssecMode = 'validate' | 'trust-ad' | 'off';

const DNSSEC_MODES: readonly DnssecMode[] = ['validate', 'trust-ad', 'off'];

export interface ResolverOptions {
  /** `'127.0.0.1'`, `'127.0.0.1:5353'`, `'[::1]:53'`. Default: the nameservers of `resolvConf`. */
  servers?: string[];
  /**
   * 'validate': queries carry DO=1 and CD=1 and every answer is validated in process from
   * `trustAnchors` (any recursive server that passes DNSSEC records through will do);
   * 'trust-ad': the AD bit of the servers `trustAd` trusts is believed (a validating resolver
   * on loopback); 'off': no DNSSEC (DO=0), every answer insecure. Default: 'trust-ad' when
   * `trustAd` is given or a server it trusts is configured (a named server on loopback), and
   * no `trustAnchors`; else 'validate'.
   */
  dnssec?: DnssecMode;
  /**
   * 'validate' only: a file of trust anchors, DS or DNSKEY records in the formats Unbound and
   * BIND read (lib/dnssec/anchors.ts). Default: the IANA root KSKs built in (KSK-2017, tag
   * 20326; KSK-2024, tag 38696).
   */
  trustAnchors?: string;
  /** 'validate' only: the work caps of one lookup (KeyTrap). Default lib/dnssec's and lib/dns/validate.ts's. */
  validationLimits?: Partial<ValidationLimits>;
  /**
   * Whose AD bit to believe: servers on loopback ('loopback'), every server (true), none
   * (false). Default: 'loopback' for the `servers` given; false for servers read from
   * `resolvConf`, which are only trusted when trustAd is given (true or 'loopback').
   */
  trustAd?: boolean | 'loopback';
  /** The resolv.conf(5) to read servers from when `servers` is not given. Default /etc/resolv.conf. */
  resolvConf?: string;
  /** Milliseconds to wait for each try. Default 2000. */
  timeout?: number;
  /** Rounds over the servers. Default 2. */
  attempts?: number;
  /** Cache answers for their TTL. Default true. */
  cache?: boolean;
  logger?: DnsLogger;
}

export interface ResolverStats {
  /** DNS messages sent (each UDP try, each TCP retry). */
  queriesSent: number;
  /** Lookups answered from the cache. */
  cacheHits: number;
  /** Lookups that went to the network. */
  cacheMisses: number;
  /** Lookups that joined an identical lookup already under way. */
  inflightJoins: number;
  /** Replies truncated over UDP and asked again over TCP. */
  tcpRetries: number;
}

export interface AddressOptions {
  ipv4?: boolean;
  ipv6?: boolean;
}

/** What `checkDnssec()` found: the trusted servers validate, or why DANE cannot rely on them. */
export type DnssecCheck =
  /** `servers`: the trusted servers that answered with the AD bit. */
  | { ok: true; servers: string[] }
  /** `reason`: one sentence. */
  | { ok: false; reason: string };

/** What other modules need of a resolver; tests may pass any object of this shape. */
export interface DnsResolver {
  /** How answers become secure (see ResolverOptions.dnssec). */
  readonly dnssec?: DnssecMode;
  /** The servers whose AD bit is believed (`address:port`), in order; empty when none is (always, unless dnssec is 'trust-ad'). */
  readonly trustedServers?: readonly string[];
  /** Whether the trusted servers validate DNSSEC: see `Resolver.checkDnssec`. */
  checkDnssec?(name?: string): Promise<DnssecCheck>;
  query<K extends RecordType>(name: string, type: K): Promise<DnsResult<RecordTypes[K]>>;
  mx(name: string): Promise<DnsResult<MxRecord>>;
  a(name: string): Promise<DnsResult<AddressRecord>>;
  aaaa(name: string): Promise<DnsResult<AddressRecord>>;
  addresses(name: string, options?: AddressOptions): Promise<DnsResult<AddressRecord>>;
  tlsa(name: string): Promise<DnsResult<TlsaRecord>>;
  cname(name: string): Promise<DnsResult<CnameRecord>>;
  txt(name: string): Promise<DnsResult<TxtRecord>>;
}

const DEFAULT_TIMEOUT = 2000;
const DEFAULT_ATTEMPTS = 2;
const MAX_POSITIVE_TTL = 86_400;
const MAX_NEGATIVE_TTL = 10_800;
const MAX_CACHE_ENTRIES = 10_000;
const MAX_VALIDATION_RECORDS = 64;
/** Types that cannot be asked with a plain query: none, OPT, TKEY, TSIG, IXFR, AXFR. */
const FORBIDDEN_TYPES = new Set([0, 41, 249, 250, 251, 252]);

interface CacheEntry {
  answer: DnsAnswer<AnyRecord>;
  expires: number;
}

type ServerResult =
  | { kind: 'answer'; answer: DnsAnswer<AnyRecord>; cacheable: boolean; message: Message }
  /** `servfail`: the server answered SERVFAIL (what a validating resolver says of bogus data). */
  | { kind: 'error'; why: string; final: boolean; servfail?: boolean }
  | Extract<TryOutcome, { kind: 'timeout' }>;

export class Resolver implements DnsResolver {
  /** The servers configured, in order, as `address:port`. */
  readonly servers: readonly string[];
  /** The servers whose AD bit is believed, in order; empty when none is. */
  readonly trustedServers: readonly string[];
  /** The servers lookups go to: the trusted ones when there are any, else all of them. */
  readonly askedServers: readonly string[];
  /** The `trustAd` in effect (the default depends on where the servers came from). */
  readonly trustAd: boolean | 'loopback';
  /** The DNSSEC mode in effect (the default depends on `trustAd` and the servers: see ResolverOptions). */
  readonly dnssec: DnssecMode;
  /** 'validate' only: the trust anchors' zones and key tags, e.g. `. DS 20326/8`. */
  readonly trustAnchors: readonly string[];
  private readonly validator?: ChainValidator;
  private readonly judged: ValidationRecord[] = [];
  private readonly serverList: ServerAddress[];
  private readonly trustedList: ServerAddress[];
  private readonly askedList: ServerAddress[];
  /** Why no server is trusted, when none is (for checkDnssec). */
  private readonly untrustedWhy: string;
  private readonly timeout: number;
  private readonly attempts: number;
  private readonly caching: boolean;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<DnsResult<AnyRecord>>>();
  private readonly counters: ResolverStats = { queriesSent: 0, cacheHits: 0, cacheMisses: 0, inflightJoins: 0, tcpRetries: 0 };

  constructor(options: ResolverOptions = {}) {
    const fromSystem = options.servers === undefined;
    const resolvConf = options.resolvConf ?? DEFAULT_RESOLV_CONF;
    const specs = options.servers ?? systemServers(resolvConf);
    if (!Array.isArray(specs) || specs.length === 0) throw new TypeError('DNS servers must be a non-empty array');
    this.serverList = specs.map(parseServer);
    this.servers = this.serverList.map((server) => server.label);
    const given = options.trustAd;
    if (given !== undefined && given !== true && given !== false && given !== 'loopback') {
      throw new TypeError(`trustAd must be true, false or 'loopback', got ${JSON.stringify(given)}`);
    }
    // The system's servers are whatever resolv.conf names: in a container Docker's 127.0.0.11
    // or systemd-resolved's 127.0.0.53, loopback forwarders that relay an upstream's AD bit
    // across the network (RFC 4035 §4.9.3 asks for a secure path to the validator). So their
    // AD bit is believed only when the user says so, as glibc wants `options trust-ad`.
    this.trustAd = given ?? (fromSystem ? false : 'loopback');
    const believed = this.serverList.filter((server) => believesAd(server.address, this.trustAd));
    const mode = options.dnssec;
    if (mode !== undefined && !DNSSEC_MODES.includes(mode)) {
      throw new TypeError(`resolver.dnssec must be 'validate', 'trust-ad' or 'off', got ${JSON.stringify(mode)}`);
    }
    if (options.trustAnchors !== undefined && mode !== undefined && mode !== 'validate') {
      throw new TypeError(`resolver.trustAnchors is read only with dnssec: 'validate', not with dnssec: '${mode}'`);
    }
    // The default: a configured AD path (trustAd given, or a server it trusts, a validating
    // resolver on loopback) keeps it, as before; otherwise (the system's servers, remote
    // servers, Docker's 127.0.0.11 from resolv.conf) answers are validated here, since no AD
    // bit from such a server may be believed (RFC 4035 §4.9.3, RFC 6840 §5.9).
    this.dnssec = mode ?? (options.trustAnchors === undefined && (given !== undefined || believed.length > 0) ? 'trust-ad' : 'validate');
    this.trustedList = this.dnssec === 'trust-ad' ? believed : [];
    this.trustedServers = this.trustedList.map((server) => server.label);
    // With a trusted server configured, an untrusted one could only ever answer in place of
    // a trusted one that failed: the answer would be 'insecure' where the trusted server's
    // was 'failed', a downgrade an attacker could force by blocking the trusted server.
    this.askedList = this.trustedList.length > 0 ? this.trustedList : this.serverList;
    this.askedServers = this.askedList.map((server) => server.label);
    this.untrustedWhy =
      this.dnssec === 'off'
        ? "resolver.dnssec is 'off'"
        : given === undefined && fromSystem
          ? `servers from ${resolvConf} are not trusted unless trustAd is set`
          : this.trustAd === false
            ? 'trustAd is false'
            : `none of ${this.servers.join(', ')} is on loopback (trustAd: 'loopback')`;
    let anchors: TrustAnchor[] = [];
    if (this.dnssec === 'validate') {
      anchors = options.trustAnchors === undefined ? rootTrustAnchors() : readTrustAnchors(options.trustAnchors);
      this.validator = new ChainValidator({
        anchors,
        fetch: (name, type) => this.exchange(name, type),
        ...(options.validationLimits ? { limits: options.validationLimits } : {}),
        cache: options.cache ?? true,
      });
    }
    this.trustAnchors = anchors.flatMap((anchor) => [
      ...anchor.ds.map((ds) => `${anchorZone(anchor)} DS ${ds.keyTag}/${ds.algorithm}`),
      ...anchor.keys.map((key) => `${anchorZone(anchor)} DNSKEY ${key.keyTag}/${key.algorithm}`),
    ]);
    this.timeout = positiveInteger(options.timeout ?? DEFAULT_TIMEOUT, 'timeout');
    this.attempts = positiveInteger(options.attempts ?? DEFAULT_ATTEMPTS, 'attempts');
    this.caching = options.cache ?? true;
    const warn = this.dnssec === 'trust-ad' ? options.logger?.warn : undefined;
    if (warn) {
      for (const server of this.serverList) {
        if (this.trustedList.length > 0 && !this.trustedList.includes(server)) {
          warn(
            `DNS server ${server.label} will not be asked: it is not on loopback, so its AD bit is not believed ` +
              "(trustAd: 'loopback'), and an answer from it " +
              'could only replace a failure at a trusted server, turning a failed DNSSEC lookup into an insecure one',
          );
          continue;
        }
        if (isLoopback(server.address)) continue;
        if (this.trustAd === true) {
          warn(
            `DNS server ${server.label} is not on loopback but its AD bit is trusted (trustAd: true): ` +
              'the AD bit is only as trustworthy as the path to the resolver',
          );
        } else if (this.trustAd === 'loopback') {
          warn(
            `DNS server ${server.label} is not on loopback, so its AD bit is not believed and its answers ` +
              'are never secure (DANE needs a validating resolver on loopback, or trustAd: true)',
          );
        }
      }
    }
  }

  /**
   * 'validate' only: how the last answers (up to 64) that went to the network were judged, in
   * the order they were; answers from the cache are not judged again. A copy.
   */
  get validations(): ValidationRecord[] {
    return this.judged.map((record) => ({ ...record, chain: [...record.chain] }));
  }

  /** Counters since creation (or the last `clear()`); a copy. */
  get stats(): ResolverStats {
    return { ...this.counters };
  }

  /** Empty the cache and reset the counters. Lookups under way are not affected. */
  clear(): void {
    this.cache.clear();
    this.validator?.clear();
    this.judged.length = 0;
    for (const key of Object.keys(this.counters) as (keyof ResolverStats)[]) this.counters[key] = 0;
  }

  query<K extends RecordType>(name: string, type: K): Promise<DnsResult<RecordTypes[K]>>;
  query(name: string, type: number): Promise<DnsResult<AnyRecord>>;
  query(name: string, type: RecordType | number): Promise<DnsResult<AnyRecord>> {
    let code: number;
    if (typeof type === 'number') {
      if (!Number.isInteger(type) || type < 1 || type > 0xffff || FORBIDDEN_TYPES.has(type)) {
        throw new TypeError(`DNS type ${type} cannot be queried`);
      }
      code = type;
    } else if (typeof type === 'string' && Object.hasOwn(TYPE, type) && (type as string) !== 'OPT') {
      code = TYPE[type as keyof typeof TYPE];
    } else {
      throw new TypeError(`unknown DNS type ${JSON.stringify(type)}`);
    }
    return this.lookup(normalizeName(name), code);
  }

  mx(name: string): Promise<DnsResult<MxRecord>> {
    return this.query(name, 'MX');
  }

  a(name: string): Promise<DnsResult<AddressRecord>> {
    return this.query(name, 'A');
  }

  aaaa(name: string): Promise<DnsResult<AddressRecord>> {
    return this.query(name, 'AAAA');
  }

  tlsa(name: string): Promise<DnsResult<TlsaRecord>> {
    return this.query(name, 'TLSA');
  }

  cname(name: string): Promise<DnsResult<CnameRecord>> {
    return this.query(name, 'CNAME');
  }

  txt(name: string): Promise<DnsResult<TxtRecord>> {
    return this.query(name, 'TXT');
  }

  /** A and AAAA in parallel, combined as described at the top of this file. */
  addresses(name: string, options: AddressOptions = {}): Promise<DnsResult<AddressRecord>> {
    const ipv4 = options.ipv4 ?? true;
    const ipv6 = options.ipv6 ?? true;
    if (!ipv4 && !ipv6) throw new TypeError('addresses() needs ipv4 or ipv6');
    const qname = normalizeName(name);
    if (!ipv6) return this.a(qname);
    if (!ipv4) return this.aaaa(qname);
    return Promise.all([this.a(qname), this.aaaa(qname)]).then(([v4, v6]) => combineAddresses(qname, v4, v6));
  }

  private lookup(qname: string, qtype: number): Promise<DnsResult<AnyRecord>> {
    const key = `${qtype}/${qname}`;
    if (this.caching) {
      const entry = this.cache.get(key);
      if (entry) {
        const remaining = entry.expires - Date.now();
        if (remaining > 0) {
          this.counters.cacheHits++;
          return Promise.resolve(copyResult(entry.answer, Math.ceil(remaining / 1000)));
        }
        this.cache.delete(key);
      }
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.counters.inflightJoins++;
      return pending.then((result) => copyResult(result));
    }
    this.counters.cacheMisses++;
    const promise = this.resolve(qname, qtype).finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return promise.then((result) => copyResult(result));
  }

  private async resolve(qname: string, qtype: number): Promise<DnsResult<AnyRecord>> {
    const outcome = await this.exchange(qname, qtype);
    if ('failed' in outcome) return { status: 'failed', name: qname, reason: outcome.failed, temporary: true };
    let result: DnsResult<AnyRecord> = outcome.answer;
    if (this.validator) {
      const verdict = await this.validator.validate(
        { name: qname, type: qtype, cnames: outcome.answer.cnames, positive: outcome.answer.records.length > 0 },
        outcome,
      );
      if (this.judged.length >= MAX_VALIDATION_RECORDS) this.judged.shift();
      this.judged.push({
        name: qname,
        type: typeName(qtype),
        status: verdict.status,
        ...(verdict.status === 'secure' ? {} : { reason: verdict.reason }),
        chain: verdict.trace,
      });
      if (verdict.status === 'failed') {
        // Bogus is never read as insecure (RFC 4035 §5.5): the lookup fails, as a validating
        // resolver's SERVFAIL makes it fail in 'trust-ad'.
        const reason = `DNS lookup of ${typeName(qtype)} for ${qname} failed DNSSEC validation: ${verdict.reason}`;
        return { status: 'failed', name: qname, reason, temporary: true };
      }
      result = { ...outcome.answer, status: verdict.status, ttl: Math.min(outcome.answer.ttl, Math.floor(verdict.ttl)) };
    }
    if (this.caching) this.store(`${qtype}/${qname}`, result, outcome.cacheable);
    return result;
  }

  /**
   * One question to the servers asked, in order, over the rounds (see the top of this file):
   * the first usable reply, or why there was none. Neither cached nor validated: the
   * validator asks its DS and DNSKEY queries through here too.
   */
  private async exchange(qname: string, qtype: number): Promise<(Exchange & { answer: DnsAnswer<AnyRecord>; cacheable: boolean }) | { failed: string }> {
    const what = `DNS lookup of ${typeName(qtype)} for ${qname || '.'}`;
    const details = new Map<string, string>();
    const tries = new Map<string, number>();
    const ignored = new Map<string, number>();
    const done = new Set<string>();
    const failed = () => ({ failed: `${what} failed: ${[...details.values()].join('; ')}` });
    for (let round = 0; round < this.attempts; round++) {
      for (const server of this.askedList) {
        if (done.has(server.label)) continue;
        let outcome: ServerResult;
        try {
          outcome = await this.ask(server, qname, qtype);
        } catch (error) {
          // Nothing in ask() is expected to throw; never let a DNS problem escape as one.
          outcome = { kind: 'error', why: `${(error as Error).message} (${server.label})`, final: true };
        }
        if (outcome.kind === 'answer') {
          return {
            answer: outcome.answer,
            cacheable: outcome.cacheable,
            message: outcome.message,
            rcode: outcome.answer.rcode === 'NXDOMAIN' ? 3 : 0,
            server: server.label,
          };
        }
        if (outcome.kind === 'error' && outcome.servfail && this.trusts(server)) {
          // A validating resolver answers SERVFAIL for data that did not validate (RFC 4035
          // §5.5): asking another server could only turn that verdict into something weaker.
          details.set(server.label, outcome.why);
          return failed();
        }
        if (outcome.kind === 'timeout') {
          const count = (tries.get(server.label) ?? 0) + 1;
          const spurious = (ignored.get(server.label) ?? 0) + outcome.ignored;
          tries.set(server.label, count);
          ignored.set(server.label, spurious);
          details.set(
            server.label,
            `no reply from ${server.label} after ${count} ${count === 1 ? 'try' : 'tries'} of ${this.timeout} ms` +
              (spurious > 0 ? ` (ignored ${spurious} ${spurious === 1 ? 'message' : 'messages'} that did not answer the query)` : ''),
          );
        } else {
          details.set(server.label, outcome.why);
          if (outcome.final) done.add(server.label);
        }
      }
      if (done.size === this.askedList.length) break;
    }
    return failed();
  }

  /**
   * Whether the trusted servers validate DNSSEC: each is asked for the SOA of `name` (default
   * the root, which is signed), bypassing the cache, with the usual timeout and attempts.
   * Not ok, with one sentence saying why, when no server is trusted, when a trusted server
   * answered without the AD bit (it does not validate, or `name` is not signed), or when no
   * trusted server answered at all. Ok when every trusted server that answered set AD.
   */
  async checkDnssec(name = '.'): Promise<DnssecCheck> {
    const qname = name === '.' ? '' : normalizeName(name);
    const shown = qname === '' ? '.' : qname;
    const what = `the SOA query for ${shown}`;
    if (this.validator) {
      // 'validate': the SOA of `name` validated here, bypassing the cache.
      const outcome = await this.exchange(qname, TYPE.SOA);
      if ('failed' in outcome) return { ok: false, reason: outcome.failed };
      const verdict = await this.validator.validate(
        { name: qname, type: TYPE.SOA, cnames: outcome.answer.cnames, positive: outcome.answer.records.length > 0 },
        outcome,
      );
      if (verdict.status === 'secure') return { ok: true, servers: [outcome.server] };
      if (verdict.status === 'insecure') {
        return { ok: false, reason: `The answer of ${outcome.server} to ${what} validated as insecure from the trust anchors: ${verdict.reason}` };
      }
      return { ok: false, reason: `DNSSEC validation of ${what} (answered by ${outcome.server}) failed: ${verdict.reason}` };
    }
    if (this.dnssec === 'off') return { ok: false, reason: "resolver.dnssec is 'off', so no answer can be DNSSEC-secure" };
    if (this.trustedList.length === 0) {
      return { ok: false, reason: `No DNS server's AD bit is believed, so no answer can be DNSSEC-secure: ${this.untrustedWhy}` };
    }
    const results = await Promise.all(this.trustedList.map((server) => this.askRepeatedly(server, qname, TYPE.SOA)));
    const unsigned = results.find((result) => result.kind === 'answer' && result.answer.status !== 'secure');
    if (unsigned) {
      return {
        ok: false,
        reason:
          `DNS server ${unsigned.server.label} answered ${what} without the AD bit, so it does not validate DNSSEC` +
          (qname === '' ? '' : ` (or ${shown} is not signed)`),
      };
    }
    const validating = results.filter((result) => result.kind === 'answer').map((result) => result.server.label);
    if (validating.length === 0) {
      const reasons = results.map((result) => (result.kind === 'answer' ? '' : result.why));
      return { ok: false, reason: `No trusted DNS server answered ${what}: ${reasons.join('; ')}` };
    }
    return { ok: true, servers: validating };
  }

  /** One server, up to `attempts` tries while it times out or the network fails. */
  private async askRepeatedly(
    server: ServerAddress,
    qname: string,
    qtype: number,
  ): Promise<{ kind: 'answer'; answer: DnsAnswer<AnyRecord>; server: ServerAddress } | { kind: 'failed'; why: string; server: ServerAddress }> {
    let why = '';
    for (let round = 0; round < this.attempts; round++) {
      let outcome: ServerResult;
      try {
        outcome = await this.ask(server, qname, qtype);
      } catch (error) {
        outcome = { kind: 'error', why: `${(error as Error).message} (${server.label})`, final: true };
      }
      if (outcome.kind === 'answer') return { kind: 'answer', answer: outcome.answer, server };
      if (outcome.kind === 'timeout') {
        why = `no reply from ${server.label} after ${round + 1} ${round === 0 ? 'try' : 'tries'} of ${this.timeout} ms`;
        continue;
      }
      why = outcome.why;
      if (outcome.final) break;
    }
    return { kind: 'failed', why, server };
  }

  /** One try against one server: UDP, then TCP if truncated; the reply classified. */
  private async ask(server: ServerAddress, qname: string, qtype: number): Promise<ServerResult> {
    let outcome = await udpTry(server, this.newQuery(qname, qtype), this.timeout);
    if (outcome.kind === 'reply' && outcome.flags.tc) {
      this.counters.tcpRetries++;
      outcome = await tcpTry(server, this.newQuery(qname, qtype), this.timeout);
      if (outcome.kind === 'timeout') {
        return { kind: 'error', why: `no reply over TCP from ${server.label} within ${this.timeout} ms after a truncated UDP reply`, final: false };
      }
      if (outcome.kind === 'reply' && outcome.flags.tc) {
        return { kind: 'error', why: `reply from ${server.label} truncated even over TCP`, final: true };
      }
    }
    if (outcome.kind !== 'reply') return outcome;
    const { message, flags, rcode } = outcome;
    if (rcode !== 0 && rcode !== 3) {
      return { kind: 'error', why: `${rcodeName(rcode)} from ${server.label}${extendedError(message)}`, final: true, servfail: rcode === 2 };
    }
    if (rcode === 0 && isReferral(message)) {
      return { kind: 'error', why: `referral from ${server.label} (not a recursive resolver)`, final: true };
    }
    let read;
    try {
      read = readAnswer(message, qname, qtype);
    } catch (error) {
      return { kind: 'error', why: `malformed reply from ${server.label} (${(error as Error).message})`, final: true };
    }
    const negative = rcode === 3 || read.records.length === 0;
    const cap = negative ? MAX_NEGATIVE_TTL : MAX_POSITIVE_TTL;
    const answer: DnsAnswer<AnyRecord> = {
      status: flags.ad && this.trusts(server) ? 'secure' : 'insecure',
      rcode: rcode === 3 ? 'NXDOMAIN' : 'NOERROR',
      name: qname,
      records: rcode === 3 ? [] : read.records.map((record) => Object.freeze(record)),
      ttl: Math.min(read.ttl, cap),
      cnames: read.cnames,
      canonical: read.canonical,
    };
    return { kind: 'answer', answer, cacheable: read.cacheable, message };
  }

  private newQuery(name: string, type: number): Query {
    const id = randomInt(0x10000);
    this.counters.queriesSent++;
    // RFC 4035 §3.2.1: DO asks for the DNSSEC records; §3.2.2, §4.9.2: CD when validating here,
    // so the recursive server hands over data that failed its own validation too (RFC 6840 §5.9).
    const flags = { dnssecOk: this.dnssec !== 'off', checkingDisabled: this.dnssec === 'validate' };
    return { id, name, type, buffer: buildQuery(id, name, type, flags) };
  }

  /** Whether the AD bit of this server's replies is believed: only in 'trust-ad'. */
  private trusts(server: ServerAddress): boolean {
    return this.dnssec === 'trust-ad' && believesAd(server.address, this.trustAd);
  }

  private store(key: string, answer: DnsAnswer<AnyRecord>, cacheable: boolean): void {
    if (!cacheable || answer.ttl <= 0) return;
    if (this.cache.size >= MAX_CACHE_ENTRIES) {
      const now = Date.now();
      for (const [k, entry] of this.cache) if (entry.expires <= now) this.cache.delete(k);
      while (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(key, { answer, expires: Date.now() + answer.ttl * 1000 });
  }
}

/** Whether the AD bit of a reply from `address` is believed under the `trustAd` setting. */
export function believesAd(address: string, trustAd: boolean | 'loopback'): boolean {
  return trustAd === 'loopback' ? isLoopback(address) : trustAd;
}

/** Anchors from a file: a TypeError naming the file and why when it cannot be used. */
function readTrustAnchors(path: string): TrustAnchor[] {
  if (typeof path !== 'string' || path === '') throw new TypeError(`resolver.trustAnchors must be a file path, got ${JSON.stringify(path)}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TypeError(`resolver.trustAnchors: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let anchors: TrustAnchor[];
  try {
    anchors = parseTrustAnchors(text, path);
  } catch (error) {
    if (error instanceof TrustAnchorError) throw new TypeError(`resolver.trustAnchors: ${error.message}`);
    throw error;
  }
  if (anchors.length === 0) throw new TypeError(`resolver.trustAnchors: ${path} holds no DS or DNSKEY record`);
  return anchors;
}

function anchorZone(anchor: TrustAnchor): string {
  return nameToText(anchor.zone);
}

export function createResolver(options?: ResolverOptions): Resolver {
  return new Resolver(options);
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

function copyResult<T>(result: DnsResult<T>, ttl?: number): DnsResult<T> {
  if (result.status === 'failed') return { ...result };
  return { ...result, records: [...result.records], cnames: [...result.cnames], ttl: ttl ?? result.ttl };
}

/**
 * RFC 8914 Extended DNS Errors in the reply's OPT record, as " (DNSSEC_BOGUS: text)". The
 * EXTRA-TEXT is the server's free text, so it is made safe to print (lib/text).
 */
function extendedError(message: Message): string {
  const parts = (message.edns?.extendedErrors ?? []).map((ede) => {
    const label = extendedErrorName(ede.infoCode);
    return ede.extraText ? `${label}: ${safeText(ede.extraText)}` : label;
  });
  return parts.length > 0 ? ` (${parts.join('; ')})` : '';
}

function combineAddresses(name: string, v4: DnsResult<AddressRecord>, v6: DnsResult<AddressRecord>): DnsResult<AddressRecord> {
  if (v4.status === 'failed' && v6.status === 'failed') {
    return { status: 'failed', name, reason: `${v4.reason}; ${v6.reason}`, temporary: true };
  }
  if (v4.status === 'failed') return v6.status !== 'failed' && v6.records.length > 0 ? v6 : v4;
  if (v6.status === 'failed') return v4.records.length > 0 ? v4 : v6;
  return {
    status: v4.status === 'secure' && v6.status === 'secure' ? 'secure' : 'insecure',
    rcode: v4.rcode === 'NXDOMAIN' && v6.rcode === 'NXDOMAIN' ? 'NXDOMAIN' : 'NOERROR',
    name,
    records: [...v4.records, ...v6.records],
    ttl: Math.min(v4.ttl, v6.ttl),
    cnames: v4.cnames.length > 0 ? v4.cnames : v6.cnames,
    canonical: v4.cnames.length > 0 ? v4.canonical : v6.canonical,
  };
}
