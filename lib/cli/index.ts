/**
 * The `nodemailer-tls-policy` command: `probe` (what the transport would do for one
 * destination, up to where MAIL FROM would be sent), `check-policy` (a policy table as the
 * transport reads it) and `tls-reports` (the TLS reports, RFC 8460, not delivered yet). bin/nodemailer-tls-policy.mjs runs `main()` on the built package.
 *
 * Exit status:
 *   probe         0 the transport would deliver at the level asked;
 *                 1 it would defer or bounce, or deliver only through a fallback (a lower level
 *                   from the fallback map or a fallback= attribute, or a cleartext retry on a new
 *                   connection after a TLS failure);
 *                 2 bad arguments (unknown option, missing target, bad policy table, ...);
 *                 3 the probe itself failed (a bug: please report it).
 *   check-policy  0 the table is valid; 1 it is not (every problem is printed with its line);
 *                 2 bad arguments (missing or unreadable FILE, unknown option).
 *   tls-reports   0 the pending TLS reports were listed (none or some); 1 the store could not
 *                 be read; 2 bad arguments (no store, a --store file that is not there).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { createResolver } from '../dns/index.js';
import {
  formatProblem,
  lookupKeys,
  lookupPolicy,
  defaultPolicy,
  checkPolicyObject,
  PolicyTable,
  PolicyError,
  type NextHop,
  type PolicyObjectEntry,
} from '../policy/index.js';
import { TlsPolicyError, TlsPolicyTransport, type TlsPolicyOptions } from '../transport.js';
import type { Policy, ReportedPolicy } from '../types.js';
import { VERSION } from '../version.js';
import { inFlags, parseCheckPolicyArgs, parseProbeArgs, parseTlsReportsArgs, UsageError } from './args.js';
import { policyCheckReport } from './check-policy.js';
import { formatJson, formatPolicyCheck, formatProbe, formatTlsReports } from './format.js';
import { tlsReportsReport } from './tls-reports.js';
import { probeReport } from './report.js';
import { wantsColor } from './style.js';
import type { ProbeArgs } from './types.js';

export { formatJson, formatPolicyCheck, formatProbe, formatTlsReports } from './format.js';
export { tlsReportsReport, type TlsReportsReport } from './tls-reports.js';
export { certificateReport, probeExitStatus, probeReport } from './report.js';
export type { AttemptReport, CertificateReport, HostReport, MxReport, ProbeContext, ProbeReport, ProbeResult, ResultReport, TlsaReport } from './report.js';
export { policyAttributes, policyCheckReport } from './check-policy.js';
export type { PolicyAttributeReport, PolicyCheckReport, PolicyEntryReport } from './check-policy.js';
export { parseCheckPolicyArgs, parseProbeArgs, parseTarget, parseTlsReportsArgs, UsageError } from './args.js';
export { makeStyle, stripAnsi, wantsColor } from './style.js';
export type { CheckPolicyArgs, ProbeArgs, TlsReportsArgs } from './types.js';

/** Where the command writes, and the environment it reads (NO_COLOR). */
export interface CliIo {
  stdout: { write(chunk: string): unknown; isTTY?: boolean };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
  env?: Record<string, string | undefined>;
}

const NAME = 'nodemailer-tls-policy';

export const USAGE = `Usage:
  ${NAME} probe <domain | [host] | [host]:port> [options]
  ${NAME} check-policy FILE [--json] [--no-color]
  ${NAME} tls-reports (--store FILE | --redis URL) [--all] [--json] [--no-color]
  ${NAME} --help | --version

probe runs one destination through the transport's own delivery path: MX lookup, DNSSEC
status, addresses, TLSA, the plan per MX, the SMTP session, STARTTLS, the certificate
verdict and the decision. It stops where MAIL FROM would be sent, and sends no mail.
A domain is looked up in DNS (MX); [host], [host]:port or host:port is a fixed next hop (no MX
lookup).

Probe options (each is the tlsPolicy() option in brackets):
  --level LEVEL             default level: none, may, encrypt, dane, dane-only,
                            fingerprint, verify, secure (level; default may)
  --policy FILE             policy table, Postfix tls_policy syntax (policy)
  --fallback MAP            fallback levels, e.g. "dane=encrypt, verify=may" (fallbackLevels)
  --shadow LEVEL            shadow level for the probed destination, added to its
                            policy entry (the table's shadow= attribute)
  --match PATTERN[:...]     what the probed destination's certificate must match, in
                            place of its policy entry's match (the table's match=
                            attribute; Postfix's match arguments of posttls-finger):
                            names at verify and secure, digests (|-separated) at
                            fingerprint; repeatable; refused at levels that match nothing
  --resolver ADDR[:PORT]    DNS server, repeatable (resolver.servers; default: resolv.conf)
  --trust-ad WHOSE          loopback, yes or no: whose AD bit to believe (resolver.trustAd;
                            default loopback for --resolver servers, no for resolv.conf's)
  --dnssec MODE             validate, trust-ad or off (resolver.dnssec; default validate,
                            trust-ad with --trust-ad or a --resolver on loopback); with
                            validate the report shows the chain of trust walked per name
  --trust-anchors FILE      DS or DNSKEY records, Unbound's or BIND's format, to validate
                            from (resolver.trustAnchors; default the root KSKs built in)
  --dns-timeout MS          wait for each DNS try (resolver.timeout; default 2000)
  --ca-file FILE            PEM CA bundle for verify and secure (caFile)
  --extra-ca-file FILE      PEM CAs trusted beside Node's own (extraCaFile)
  --cert-file FILE          client certificate chain, PEM (certFile); with --key-file
  --key-file FILE           its private key, PEM (keyFile)
  --port PORT               SMTP port for MX hosts and for [host] (port; default 25)
  --insecure-mx-policy P    dane, may or encrypt (daneInsecureMxPolicy; default dane)
  --digest ALG              sha256, sha1, sha512, sha384, sha224, md5 (fingerprintDigest)
  --hosts-require-tls PAT   Exim host pattern, repeatable (hostsRequireTls)
  --hosts-avoid-tls PAT     Exim host pattern, repeatable (hostsAvoidTls)
  --tempfail-tryclear B     yes or no (tlsTempfailTryclear; default unset)
  --strict-opportunistic    (strictOpportunistic)
  --tls-protocols P         TLS versions at may, Postfix syntax, e.g. ">=TLSv1.2" (tlsProtocols)
  --tls-mandatory-protocols P
                            TLS versions at encrypt and above (tlsMandatoryProtocols)
  --tls-ciphers GRADE       high, medium, low, export or null at may (tlsCiphers)
  --tls-mandatory-ciphers GRADE
                            the grade at encrypt and above (tlsMandatoryCiphers)
  --tls-exclude-ciphers L   ciphers excluded at every level, e.g. "RC4 aNULL"
                            (tlsExcludeCiphers)
  --tls-mandatory-exclude-ciphers L
                            excluded too at encrypt and above (tlsMandatoryExcludeCiphers)
  --fingerprint-cert-match D
                            certificate or public-key digest for fingerprint, repeatable
                            (fingerprintCertMatch; needed by --level fingerprint)
  --verify-cert-match M     names for verify, repeatable, e.g. nexthop (verifyCertMatch;
                            default hostname)
  --secure-cert-match M     names for secure, repeatable (secureCertMatch; default
                            nexthop, dot-nexthop)
                            (each of these nine applies where the policy entry has no
                            protocols, ciphers, exclude or match of its own)
  --max-mx-addresses N      (maxMxAddresses; default 5)
  --no-ipv6                 IPv4 addresses only (ipv6: false)
  --smtps                   implicit TLS (SMTPS) on a [host]:port or host:port next hop,
                            whatever its port (relay: { secure: true }; port 465 implies it)
  --no-mta-sts              do not look up MTA-STS (mtaSts: false)
  --mta-sts-ca-file FILE    PEM CAs for the MTA-STS policy host (mtaSts.caFile; default
                            --ca-file, else Node's CAs)
  --mta-sts-port PORT       the policy host's HTTPS port (mtaSts.port; default 443)
  --mta-sts-timeout MS      the whole policy fetch (mtaSts.fetchTimeout; default 20000)
  --ehlo NAME               EHLO name (name; default this host's name)
  --timeout MS              SMTP connect, greeting and reply timeout
                            (connectionTimeout, greetingTimeout, socketTimeout; default 10000)
  --json                    print the report as one JSON document
  --no-color                no colour (colour is used only when stdout is a terminal
                            and NO_COLOR is not set)
  -h, --help                this text

Exit status of probe: 0 the transport would deliver at the level asked; 1 it would defer or
bounce, or deliver only through a fallback (a lower level, or a cleartext retry after a TLS
failure); 2 bad arguments; 3 the probe itself failed.
Exit status of check-policy: 0 valid; 1 not valid (every problem with its line); 2 bad
arguments (no FILE, or FILE cannot be read).

tls-reports lists the TLS reports (RFC 8460) not delivered yet: each recipient domain and UTC
day that has ended with a failed session (any, with --all) and no report sent, and each report
whose delivery failed and is tried again, with the reason. It reads the store the transports
count into (option store) and sends nothing; transport.tlsReports.send() delivers them.
  --store FILE              the SQLite file of store: { file }
  --redis URL               the Redis of store: { redis } (redis://host:port/db)
  --all                     days without a failure too (as tlsRpt.sendAll reports them)
  --json                    print them as one JSON document
  --no-color                no colour
Exit status of tls-reports: 0 listed (none or some); 1 the store could not be read; 2 bad
arguments.
`;

function defaultIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

function usageError(io: CliIo, error: UsageError, json: boolean): number {
  if (error.problems.length) {
    io.stderr.write(`${NAME}: ${error.message}:\n`);
    for (const p of error.problems) io.stderr.write(`  ${formatProblem(p)}\n`);
  } else {
    io.stderr.write(`${NAME}: ${error.message}\n`);
  }
  io.stderr.write(`Try '${NAME} --help'.\n`);
  if (json) io.stdout.write(formatJson({ error: { message: error.message, problems: error.problems, exitStatus: 2 } }));
  return 2;
}

/** The object form of a checked policy, to re-check it with one more attribute. */
function objectEntry(policy: Policy): Exclude<PolicyObjectEntry, string> {
  return {
    level: policy.level,
    ...(policy.match ? { match: [...policy.match] } : {}),
    ...(policy.protocols ? { protocols: [...policy.protocols] } : {}),
    ...(policy.ciphers ? { ciphers: policy.ciphers } : {}),
    ...(policy.exclude ? { exclude: [...policy.exclude] } : {}),
    ...(policy.servername ? { servername: policy.servername } : {}),
    ...(policy.caFile ? { caFile: policy.caFile } : {}),
    ...(policy.certFile ? { certFile: policy.certFile } : {}),
    ...(policy.keyFile ? { keyFile: policy.keyFile } : {}),
    ...(policy.fallback ? { fallback: policy.fallback } : {}),
    ...(policy.shadow ? { shadow: policy.shadow } : {}),
    ...(policy.tempfailTryclear !== undefined ? { tempfailTryclear: policy.tempfailTryclear } : {}),
    ...(policy.reported ? reportedEntry(policy.reported) : {}),
  };
}

/** A policy source's attributes (Policy.reported) in the object form, so that --shadow and --match keep them. */
function reportedEntry(r: ReportedPolicy): Omit<Exclude<PolicyObjectEntry, string>, 'level'> {
  return {
    policyType: r.type,
    ...(r.domain ? { policyDomain: r.domain } : {}),
    ...(r.ttl !== undefined ? { policyTtl: String(r.ttl) } : {}),
    ...(r.strings ? { policyString: [...r.strings] } : {}),
    ...(r.mxHostPatterns ? { mxHostPattern: [...r.mxHostPatterns] } : {}),
    ...(r.failure ? { policyFailure: r.failure } : {}),
  };
}

/**
 * --shadow and --match: the policy table with the probed destination's entry (from the table, or
 * the default level) given a shadow level and/or match (replacing the entry's own), checked by
 * the policy module as a table entry would be: a match where the level matches nothing (may,
 * encrypt, dane, dane-only, without a fingerprint, verify or secure shadow) is refused.
 */
export function tableWithProbeAttributes(
  table: PolicyTable | undefined,
  target: ProbeArgs['target'],
  level: ProbeArgs['level'],
  given: { shadow?: ProbeArgs['level']; match?: string[] },
): PolicyTable {
  const nexthop: NextHop =
    target.kind === 'domain'
      ? { kind: 'domain', domain: target.domain }
      : { kind: 'host', host: target.host, port: target.port, ...(target.written ? { written: target.written } : {}) };
  // the first key a lookup tries, so the changed entry is the one the probe finds
  const key = lookupKeys(nexthop)[0]!;
  const current = lookupPolicy(table, nexthop, defaultPolicy(level, '--level'));
  const flags = [...(given.shadow ? ['--shadow'] : []), ...(given.match ? ['--match'] : [])].join(' and ');
  const written = [...(given.shadow ? [`--shadow ${given.shadow}`] : []), ...(given.match ? given.match.map((m) => `--match ${m}`) : [])].join(' ');
  const check = checkPolicyObject({
    [key]: { ...objectEntry(current), ...(given.shadow ? { shadow: given.shadow } : {}), ...(given.match ? { match: given.match } : {}) },
  });
  if (!check.table) {
    throw new UsageError(
      `${written} does not fit the policy of ${target.text} (level ${current.level}, ${current.source === 'default' ? 'the default level' : `from ${current.source}`})`,
      check.problems.map((p) => ({ ...p, file: flags, line: 0 })),
    );
  }
  const [normalized, checked] = check.table.entries()[0]!;
  const entries = new Map(table ? table.entries() : []);
  entries.set(normalized, Object.freeze({ ...checked, source: `${current.source === 'default' ? 'the default level' : current.source} + ${flags}` }));
  return new PolicyTable(table?.source ?? flags, entries);
}

async function probeCommand(argv: string[], io: CliIo): Promise<number> {
  const env = io.env ?? {};
  let args: ProbeArgs;
  let transport: TlsPolicyTransport;
  const warnings: string[] = [];
  let servers: string[];
  let trustAd: boolean | 'loopback';
  let dns: ReturnType<typeof createResolver>;
  const json = argv.includes('--json');
  try {
    const parsed = parseProbeArgs(argv);
    if ('help' in parsed) {
      io.stdout.write(USAGE);
      return 0;
    }
    args = parsed;
    const policy =
      args.shadow || args.match
        ? tableWithProbeAttributes(args.policy, args.target, args.level, {
            ...(args.shadow ? { shadow: args.shadow } : {}),
            ...(args.match ? { match: args.match } : {}),
          })
        : args.policy;
    dns = createResolver({
      ...(args.resolvers ? { servers: args.resolvers } : {}),
      ...(args.trustAd !== undefined ? { trustAd: args.trustAd } : {}),
      ...(args.dnssec !== undefined ? { dnssec: args.dnssec } : {}),
      ...(args.trustAnchors !== undefined ? { trustAnchors: args.trustAnchors } : {}),
      ...(args.dnsTimeout !== undefined ? { timeout: args.dnsTimeout } : {}),
      // An address literal is reached without any DNS (no MX, address or TLSA lookup): what the
      // resolver has to say about its servers would be a warning about nothing this probe does.
      ...(args.target.kind === 'host' && isIP(args.target.host) ? {} : { logger: { warn: (message: string) => warnings.push(message) } }),
    });
    servers = [...dns.servers];
    trustAd = dns.trustAd;
    const options: TlsPolicyOptions = {
      level: args.level,
      port: args.port,
      dns,
      ...(policy ? { policy } : {}),
      ...(args.fallbackLevels ? { fallbackLevels: args.fallbackLevels } : {}),
      ...(args.caFile ? { caFile: args.caFile } : {}),
      ...(args.extraCaFile ? { extraCaFile: args.extraCaFile } : {}),
      ...(args.certFile ? { certFile: args.certFile, keyFile: args.keyFile! } : {}),
      ...(args.digest ? { fingerprintDigest: args.digest } : {}),
      ...(args.insecureMxPolicy ? { daneInsecureMxPolicy: args.insecureMxPolicy } : {}),
      ...(args.hostsRequireTls ? { hostsRequireTls: args.hostsRequireTls } : {}),
      ...(args.hostsAvoidTls ? { hostsAvoidTls: args.hostsAvoidTls } : {}),
      ...(args.tempfailTryclear !== undefined ? { tlsTempfailTryclear: args.tempfailTryclear } : {}),
      ...(args.strictOpportunistic ? { strictOpportunistic: true } : {}),
      ...args.tls,
      ...(args.maxMxAddresses !== undefined ? { maxMxAddresses: args.maxMxAddresses } : {}),
      ...(args.ipv6 === false ? { ipv6: false } : {}),
      ...(args.mtaSts !== undefined ? { mtaSts: args.mtaSts } : {}),
      ...(args.ehlo ? { name: args.ehlo } : {}),
      connectionTimeout: args.timeout,
      greetingTimeout: args.timeout,
      socketTimeout: args.timeout,
      // a probe connects afresh and leaves no session open behind it
      connectionReuse: false,
    };
    try {
      transport = new TlsPolicyTransport(options);
    } catch (err) {
      if (err instanceof PolicyError) throw new UsageError('the options are not valid', err.problems);
      if (err instanceof TlsPolicyError && err.code === 'ECONFIG') throw new UsageError(inFlags(err.message));
      throw err;
    }
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err, json);
    if (err instanceof TypeError) return usageError(io, new UsageError(err.message), json);
    throw err;
  }
  let result: Awaited<ReturnType<TlsPolicyTransport['probe']>>;
  try {
    const { target } = args;
    const probed = target.kind === 'domain' ? target.domain : target.written ? `${target.host}:${target.port}` : `[${target.host}]:${target.port}`;
    result = await transport.probe(probed, {
      ...(args.smtps ? { implicitTls: true } : {}),
    });
  } finally {
    transport.close();
  }
  const report = probeReport(result, {
    target: args.target.text,
    defaultLevel: args.level,
    // the port the probe connected to: the next hop's own, or the MX port
    port: args.target.kind === 'host' ? args.target.port : args.port,
    ...(args.policyFile ? { policyFile: args.policyFile } : {}),
    ...(args.fallbackLevels ? { fallbackLevels: args.fallbackLevels } : {}),
    digest: args.digest ?? 'sha256',
    insecureMxPolicy: args.insecureMxPolicy ?? 'dane',
    resolver: { servers, trustAd, dnssec: dns.dnssec, ...(dns.dnssec === 'validate' ? { validations: dns.validations } : {}) },
    warnings,
  });
  if (args.json) io.stdout.write(formatJson(report));
  else io.stdout.write(formatProbe(report, { color: wantsColor(io.stdout, env, args.noColor) }));
  return report.result.exitStatus;
}

function checkPolicyCommand(argv: string[], io: CliIo): number {
  const json = argv.includes('--json');
  let file: string;
  let text: string;
  let noColor: boolean;
  try {
    const parsed = parseCheckPolicyArgs(argv);
    if ('help' in parsed) {
      io.stdout.write(USAGE);
      return 0;
    }
    file = parsed.file;
    noColor = parsed.noColor;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new UsageError(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : (e.code ?? e.message)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err, json);
    throw err;
  }
  const report = policyCheckReport(text, file);
  if (json) io.stdout.write(formatJson(report));
  else io.stdout.write(formatPolicyCheck(report, { color: wantsColor(io.stdout, io.env ?? {}, noColor) }));
  return report.valid ? 0 : 1;
}

async function tlsReportsCommand(argv: string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  let args;
  try {
    const parsed = parseTlsReportsArgs(argv);
    if ('help' in parsed) {
      io.stdout.write(USAGE);
      return 0;
    }
    args = parsed;
    // a SQLite file is made when it is opened: a name that is not there would be an empty store that reports nothing
    const file = 'file' in args.store ? args.store.file : undefined;
    if (file !== undefined && !existsSync(file))
      throw new UsageError(`--store ${file}: no such file (the SQLite file your transports were given as store: { file })`);
    if (file !== undefined && !statSync(file).isFile()) throw new UsageError(`--store ${file}: not a file`);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err, json);
    throw err;
  }
  let report;
  try {
    report = await tlsReportsReport(args);
  } catch (err) {
    if (!(err instanceof TlsPolicyError)) throw err;
    io.stderr.write(`${NAME}: ${err.message}\n`);
    if (json) io.stdout.write(formatJson({ error: { message: err.message, code: err.code, exitStatus: err.code === 'ECONFIG' ? 2 : 1 } }));
    return err.code === 'ECONFIG' ? 2 : 1;
  }
  if (json) io.stdout.write(formatJson(report));
  else io.stdout.write(formatTlsReports(report, { color: wantsColor(io.stdout, io.env ?? {}, args.noColor) }));
  return 0;
}

/**
 * Runs the command line `argv` (without node and the script), writing to `io`; resolves with
 * the exit status. Never throws: an unexpected error is printed and gives exit status 3.
 */
export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'probe':
        return await probeCommand(rest, io);
      case 'check-policy':
        return checkPolicyCommand(rest, io);
      case 'tls-reports':
        return await tlsReportsCommand(rest, io);
      case '-h':
      case '--help':
      case 'help':
        io.stdout.write(USAGE);
        return 0;
      case '-V':
      case '--version':
        io.stdout.write(`${NAME} ${VERSION}\n`);
        return 0;
      case undefined:
        return usageError(io, new UsageError('no command: probe, check-policy or tls-reports'), false);
      default:
        return usageError(
          io,
          new UsageError(
            command.startsWith('-')
              ? `unknown option '${command}' (a command comes first: probe, check-policy or tls-reports)`
              : `unknown command '${command}' (expected probe, check-policy or tls-reports)`,
          ),
          false,
        );
    }
  } catch (err) {
    io.stderr.write(`${NAME}: the ${command} command failed: ${(err as Error).stack ?? String(err)}\n`);
    return 3;
  }
}
