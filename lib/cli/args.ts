/**
 * Command-line arguments -> what each command needs, with node:util's parseArgs (no other
 * dependency). Every probe option maps onto one tlsPolicy() option and is checked here, so
 * that a mistake is reported before anything is looked up or connected to (exit status 2).
 */
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { DIGESTS, type ProbeArgs, type CheckPolicyArgs, type TlsDefaultArgs, type TlsReportsArgs } from './types.js';
import type { DigestAlgorithm, Level } from '../types.js';
import { checkFallbackMap, checkPolicyTable, parseLevel, PolicyError, type PolicyProblem } from '../policy/index.js';
import { parseServer } from '../dns/index.js';
import { domainOf, parseRelay, TlsPolicyError } from '../transport.js';
import { parseTlsDefaults } from '../config.js';

/** A command-line mistake: exit status 2. */
export class UsageError extends Error {
  readonly problems: readonly PolicyProblem[];
  constructor(message: string, problems: readonly PolicyProblem[] = []) {
    super(message);
    this.name = 'UsageError';
    this.problems = problems;
  }
}

const PROBE_OPTIONS = {
  level: { type: 'string' },
  policy: { type: 'string' },
  fallback: { type: 'string' },
  shadow: { type: 'string' },
  match: { type: 'string', multiple: true },
  resolver: { type: 'string', multiple: true },
  'trust-ad': { type: 'string' },
  dnssec: { type: 'string' },
  'trust-anchors': { type: 'string' },
  'dns-timeout': { type: 'string' },
  'ca-file': { type: 'string' },
  'extra-ca-file': { type: 'string' },
  'cert-file': { type: 'string' },
  'key-file': { type: 'string' },
  port: { type: 'string' },
  'insecure-mx-policy': { type: 'string' },
  digest: { type: 'string' },
  'hosts-require-tls': { type: 'string', multiple: true },
  'hosts-avoid-tls': { type: 'string', multiple: true },
  'tempfail-tryclear': { type: 'string' },
  'tls-protocols': { type: 'string' },
  'tls-mandatory-protocols': { type: 'string' },
  'tls-ciphers': { type: 'string' },
  'tls-mandatory-ciphers': { type: 'string' },
  'tls-exclude-ciphers': { type: 'string' },
  'tls-mandatory-exclude-ciphers': { type: 'string' },
  'fingerprint-cert-match': { type: 'string', multiple: true },
  'verify-cert-match': { type: 'string', multiple: true },
  'secure-cert-match': { type: 'string', multiple: true },
  'strict-opportunistic': { type: 'boolean' },
  'max-mx-addresses': { type: 'string' },
  'no-ipv6': { type: 'boolean' },
  'no-mta-sts': { type: 'boolean' },
  'mta-sts-ca-file': { type: 'string' },
  'mta-sts-port': { type: 'string' },
  'mta-sts-timeout': { type: 'string' },
  smtps: { type: 'boolean' },
  ehlo: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const CHECK_OPTIONS = {
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const TLS_REPORTS_OPTIONS = {
  store: { type: 'string' },
  redis: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The global protocol, cipher and match options, by flag: each flag is its option's name in kebab case. */
const TLS_DEFAULT_FLAGS = {
  'tls-protocols': 'tlsProtocols',
  'tls-mandatory-protocols': 'tlsMandatoryProtocols',
  'tls-ciphers': 'tlsCiphers',
  'tls-mandatory-ciphers': 'tlsMandatoryCiphers',
  'tls-exclude-ciphers': 'tlsExcludeCiphers',
  'tls-mandatory-exclude-ciphers': 'tlsMandatoryExcludeCiphers',
  'fingerprint-cert-match': 'fingerprintCertMatch',
  'verify-cert-match': 'verifyCertMatch',
  'secure-cert-match': 'secureCertMatch',
} as const satisfies Record<string, keyof TlsDefaultArgs>;

/** The tlsPolicy() options the probe flags set, by option name: the flag to name in a message about it. */
const FLAG_OF_OPTION: Readonly<Record<string, string>> = {
  level: 'level',
  policy: 'policy',
  fallbackLevels: 'fallback',
  caFile: 'ca-file',
  extraCaFile: 'extra-ca-file',
  certFile: 'cert-file',
  keyFile: 'key-file',
  fingerprintDigest: 'digest',
  daneInsecureMxPolicy: 'insecure-mx-policy',
  hostsRequireTls: 'hosts-require-tls',
  hostsAvoidTls: 'hosts-avoid-tls',
  tlsTempfailTryclear: 'tempfail-tryclear',
  maxMxAddresses: 'max-mx-addresses',
  ...Object.fromEntries(Object.entries(TLS_DEFAULT_FLAGS).map(([flag, option]) => [option, flag])),
};

/** A message about tlsPolicy() options, reworded to name the probe's flags: `option tlsProtocols` -> `--tls-protocols`. */
export function inFlags(message: string): string {
  return message.replace(/\boption (\w+)/g, (text, option: string) => (FLAG_OF_OPTION[option] ? `--${FLAG_OF_OPTION[option]}` : text));
}

/** parseArgs' own messages, shortened to their first sentence. */
function parse<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    const e = err as Error & { code?: string };
    const first = e.message.split(/\.\s/)[0]!.replace(/\.$/, '');
    throw new UsageError(first);
  }
}

function integer(value: string, option: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--${option} must be a whole number, not "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${option} must be from ${min} to ${max}, not ${n}`);
  return n;
}

function oneOf<T extends string>(value: string, option: string, allowed: readonly T[]): T {
  const v = value.trim().toLowerCase();
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${option} must be one of ${allowed.join(', ')}, not "${value}"`);
  return v as T;
}

function level(value: string, option: string): Level {
  try {
    return parseLevel(value, `--${option}`);
  } catch (err) {
    if (err instanceof PolicyError) throw new UsageError(`--${option}: ${err.problems[0]!.message}`);
    throw err;
  }
}

/** Which next hop a target names: a domain (MX lookup) or a host in brackets (no MX lookup). */
export function parseTarget(text: string, port: number): ProbeArgs['target'] {
  const t = text.trim();
  if (t === '') throw new UsageError('the target is empty');
  if (t.startsWith('[')) {
    if (!/^\[[^\]]+\](:\d+)?$/.test(t)) throw new UsageError(`target "${text}" is not [host] or [host]:port`);
    const relay = (() => {
      try {
        return parseRelay(/\]:\d+$/.test(t) ? t : `${t}:${port}`);
      } catch (err) {
        throw new UsageError(`target "${text}": ${(err as Error).message}`);
      }
    })();
    return { kind: 'host', host: relay.host, port: relay.port, text: t };
  }
  if (isIP(t)) throw new UsageError(`target "${text}" is an address: write it in brackets, [${t}] or [${t}]:port (no MX lookup)`);
  const hostPort = /^([^:[\]]+):(\d+)$/.exec(t);
  if (hostPort) {
    // host:port names a fixed next hop (no MX lookup), as the relay option reads it.
    try {
      const relay = parseRelay(t);
      return { kind: 'host', host: relay.host, port: relay.port, text: t, written: 'host:port' };
    } catch (err) {
      throw new UsageError(`target "${text}": ${(err as Error).message}`);
    }
  }
  if (t.includes(':')) throw new UsageError(`target "${text}" is not a domain, [host], [host]:port or host:port`);
  try {
    const domain = domainOf(t.includes('@') ? t : `probe@${t}`);
    if (domain.startsWith('[')) return parseTarget(domain, port);
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/i.test(domain)) throw new Error(`"${domain}" is not a domain name`);
    return { kind: 'domain', domain, text: t };
  } catch (err) {
    throw new UsageError(`target "${text}" is not a domain: ${(err as Error).message}`);
  }
}

/** `probe TARGET [options]` (argv without the command word). */
export function parseProbeArgs(argv: string[]): ProbeArgs | { help: true } {
  const { values: v, positionals } = parse(() => parseArgs({ args: argv, options: PROBE_OPTIONS, allowPositionals: true, strict: true }));
  if (v.help) return { help: true };
  if (positionals.length === 0) throw new UsageError('probe needs a target: a domain, [host], [host]:port or host:port');
  if (positionals.length > 1) throw new UsageError(`probe takes one target, not ${positionals.length}: ${positionals.join(' ')}`);

  const port = v.port !== undefined ? integer(v.port, 'port', 1, 65535) : 25;
  const target = parseTarget(positionals[0]!, port);
  const args: ProbeArgs = {
    target,
    level: v.level !== undefined ? level(v.level, 'level') : 'may',
    port,
    json: v.json === true,
    noColor: v['no-color'] === true,
    timeout: v.timeout !== undefined ? integer(v.timeout, 'timeout', 1, 3_600_000) : 10_000,
  };
  if (v.policy !== undefined) {
    if (v.policy.trim() === '') throw new UsageError('--policy needs a file name');
    const check = checkPolicyTable({ file: v.policy });
    if (!check.table) {
      const n = check.problems.length;
      throw new UsageError(`the policy table ${v.policy} has ${n} ${n === 1 ? 'problem' : 'problems'}`, check.problems);
    }
    args.policyFile = v.policy;
    args.policy = check.table;
  }
  if (v.fallback !== undefined) {
    const { problems } = checkFallbackMap(v.fallback, '--fallback');
    if (problems.length) throw new UsageError(`--fallback "${v.fallback}" is not a fallback map`, problems);
    args.fallbackLevels = v.fallback;
  }
  if (v.shadow !== undefined) args.shadow = level(v.shadow, 'shadow');
  if (v.match !== undefined) {
    // checked with the probed destination's entry (tableWithProbeAttributes), whose level decides what it means
    if (v.match.some((m) => m.trim() === '')) throw new UsageError('--match needs a name, a pattern or a digest');
    args.match = [...v.match];
  }
  if (v.resolver !== undefined) {
    for (const server of v.resolver) {
      try {
        parseServer(server);
      } catch (err) {
        throw new UsageError(`--resolver: ${(err as Error).message}`);
      }
    }
    args.resolvers = [...v.resolver];
  }
  if (v['trust-ad'] !== undefined) {
    const t = oneOf(v['trust-ad'], 'trust-ad', ['loopback', 'yes', 'no'] as const);
    args.trustAd = t === 'loopback' ? 'loopback' : t === 'yes';
  }
  if (v.dnssec !== undefined) args.dnssec = oneOf(v.dnssec, 'dnssec', ['validate', 'trust-ad', 'off'] as const);
  if (v['trust-anchors'] !== undefined) args.trustAnchors = v['trust-anchors'];
  if (v['dns-timeout'] !== undefined) args.dnsTimeout = integer(v['dns-timeout'], 'dns-timeout', 1, 60_000);
  if (v['ca-file'] !== undefined) args.caFile = v['ca-file'];
  if (v['extra-ca-file'] !== undefined) args.extraCaFile = v['extra-ca-file'];
  if (v['cert-file'] !== undefined) args.certFile = v['cert-file'];
  if (v['key-file'] !== undefined) args.keyFile = v['key-file'];
  if ((args.certFile === undefined) !== (args.keyFile === undefined)) throw new UsageError('--cert-file and --key-file go together');
  if (v['insecure-mx-policy'] !== undefined) args.insecureMxPolicy = oneOf(v['insecure-mx-policy'], 'insecure-mx-policy', ['may', 'encrypt', 'dane'] as const);
  if (v.digest !== undefined) args.digest = oneOf<DigestAlgorithm>(v.digest, 'digest', DIGESTS);
  if (v['hosts-require-tls'] !== undefined) args.hostsRequireTls = [...v['hosts-require-tls']];
  if (v['hosts-avoid-tls'] !== undefined) args.hostsAvoidTls = [...v['hosts-avoid-tls']];
  if (v['tempfail-tryclear'] !== undefined) args.tempfailTryclear = oneOf(v['tempfail-tryclear'], 'tempfail-tryclear', ['yes', 'no'] as const) === 'yes';
  if (v['strict-opportunistic']) args.strictOpportunistic = true;
  const tls: TlsDefaultArgs = {};
  for (const [flag, option] of Object.entries(TLS_DEFAULT_FLAGS)) {
    const value = v[flag as keyof typeof TLS_DEFAULT_FLAGS];
    if (value === undefined) continue;
    // checked as tlsPolicy() checks the option (the table attribute's rules), one flag at a time
    try {
      parseTlsDefaults({ [option]: value }, 'may');
    } catch (err) {
      if (err instanceof TlsPolicyError) throw new UsageError(inFlags(err.message));
      throw err;
    }
    Object.assign(tls, { [option]: Array.isArray(value) ? [...value] : value });
  }
  if (Object.keys(tls).length) args.tls = tls;
  if (v['max-mx-addresses'] !== undefined) args.maxMxAddresses = integer(v['max-mx-addresses'], 'max-mx-addresses', 1, 100);
  if (v['no-ipv6']) args.ipv6 = false;
  const stsFlags = ['mta-sts-ca-file', 'mta-sts-port', 'mta-sts-timeout'] as const;
  if (v['no-mta-sts']) {
    const given = stsFlags.filter((f) => v[f] !== undefined);
    if (given.length) throw new UsageError(`--no-mta-sts and --${given[0]} exclude each other`);
    args.mtaSts = false;
  } else if (stsFlags.some((f) => v[f] !== undefined)) {
    args.mtaSts = {
      ...(v['mta-sts-ca-file'] !== undefined ? { caFile: v['mta-sts-ca-file'] } : {}),
      ...(v['mta-sts-port'] !== undefined ? { port: integer(v['mta-sts-port'], 'mta-sts-port', 1, 65535) } : {}),
      ...(v['mta-sts-timeout'] !== undefined ? { fetchTimeout: integer(v['mta-sts-timeout'], 'mta-sts-timeout', 1, 600_000) } : {}),
    };
  }
  if (v.smtps) {
    if (target.kind !== 'host') throw new UsageError('--smtps needs a fixed next hop: [host]:port or host:port (implicit TLS is a relay setting)');
    args.smtps = true;
  }
  if (v.ehlo !== undefined) {
    if (!/^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f.:]+\]$/.test(v.ehlo)) throw new UsageError(`--ehlo "${v.ehlo}" is not a host name or an address literal`);
    args.ehlo = v.ehlo;
  }
  return args;
}

/** `check-policy FILE [options]`. */
export function parseCheckPolicyArgs(argv: string[]): CheckPolicyArgs | { help: true } {
  const { values: v, positionals } = parse(() => parseArgs({ args: argv, options: CHECK_OPTIONS, allowPositionals: true, strict: true }));
  if (v.help) return { help: true };
  if (positionals.length === 0) throw new UsageError('check-policy needs a FILE');
  if (positionals.length > 1) throw new UsageError(`check-policy takes one FILE, not ${positionals.length}: ${positionals.join(' ')}`);
  return { file: positionals[0]!, json: v.json === true, noColor: v['no-color'] === true };
}

/** `tls-reports (--store FILE | --redis URL) [--all] [--json] [--no-color]`. */
export function parseTlsReportsArgs(argv: string[]): TlsReportsArgs | { help: true } {
  const { values: v, positionals } = parse(() => parseArgs({ args: argv, options: TLS_REPORTS_OPTIONS, allowPositionals: true, strict: true }));
  if (v.help) return { help: true };
  if (positionals.length > 0) throw new UsageError(`tls-reports takes no arguments but options, not ${positionals.join(' ')}`);
  if (v.store !== undefined && v.redis !== undefined) throw new UsageError('--store and --redis exclude each other: the counters are in one store');
  let store: TlsReportsArgs['store'];
  if (v.store !== undefined) {
    if (v.store.trim() === '') throw new UsageError('--store needs the SQLite file your transports were given as store: { file }');
    store = { file: v.store };
  } else if (v.redis !== undefined) {
    if (!/^rediss?:\/\/[^\s]+$/.test(v.redis) || !URL.canParse(v.redis)) throw new UsageError(`--redis "${v.redis}" is not a redis:// or rediss:// URL`);
    store = { redis: v.redis };
  } else {
    throw new UsageError(
      'tls-reports needs the store your transports count into: --store FILE (a SQLite file) or --redis URL (a memory store lives and dies with its process)',
    );
  }
  return { store, all: v.all === true, json: v.json === true, noColor: v['no-color'] === true };
}
