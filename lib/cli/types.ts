/**
 * What the commands take, once their arguments are parsed and checked.
 */
import type { DigestAlgorithm, Level } from '../types.js';
import type { PolicyTable } from '../policy/index.js';
import type { MtaStsOptions, TlsPolicyOptions } from '../config.js';

/** The global protocol, cipher and match options, as the probe's --tls-* and --*-cert-match flags give them. */
export type TlsDefaultArgs = Pick<
  TlsPolicyOptions,
  | 'tlsProtocols'
  | 'tlsMandatoryProtocols'
  | 'tlsCiphers'
  | 'tlsMandatoryCiphers'
  | 'tlsExcludeCiphers'
  | 'tlsMandatoryExcludeCiphers'
  | 'fingerprintCertMatch'
  | 'verifyCertMatch'
  | 'secureCertMatch'
>;

/** smtp_tls_fingerprint_digest's choices (lib/types.ts DigestAlgorithm), for --digest. */
export const DIGESTS: readonly DigestAlgorithm[] = ['sha256', 'sha1', 'sha512', 'sha384', 'sha224', 'md5'];

export interface ProbeArgs {
  /** The next hop: a domain (MX lookup), or a host in brackets with its port (no MX lookup). */
  target: { kind: 'domain'; domain: string; text: string } | { kind: 'host'; host: string; port: number; text: string; written?: 'host:port' };
  level: Level;
  port: number;
  json: boolean;
  noColor: boolean;
  /** SMTP connect, greeting and reply timeout, ms. */
  timeout: number;
  policyFile?: string;
  policy?: PolicyTable;
  fallbackLevels?: string;
  shadow?: Level;
  /** --match: the probed destination's match= values, in place of its entry's. */
  match?: string[];
  resolvers?: string[];
  trustAd?: boolean | 'loopback';
  /** --dnssec: resolver.dnssec. */
  dnssec?: 'validate' | 'trust-ad' | 'off';
  /** --trust-anchors FILE: resolver.trustAnchors. */
  trustAnchors?: string;
  dnsTimeout?: number;
  caFile?: string;
  extraCaFile?: string;
  certFile?: string;
  keyFile?: string;
  insecureMxPolicy?: 'may' | 'encrypt' | 'dane';
  digest?: DigestAlgorithm;
  hostsRequireTls?: string[];
  hostsAvoidTls?: string[];
  tempfailTryclear?: boolean;
  strictOpportunistic?: boolean;
  /** --tls-protocols, --tls-ciphers, --verify-cert-match and the rest: tlsPolicy() options of the same names. */
  tls?: TlsDefaultArgs;
  maxMxAddresses?: number;
  ipv6?: boolean;
  /** --no-mta-sts (false), or the --mta-sts-* settings. */
  mtaSts?: false | MtaStsOptions;
  ehlo?: string;
  /** Implicit TLS (SMTPS) on the next hop's port, whatever the port. */
  smtps?: boolean;
}

export interface CheckPolicyArgs {
  file: string;
  json: boolean;
  noColor: boolean;
}

export interface TlsReportsArgs {
  /** The store the transports count into: a SQLite file, or a Redis URL. */
  store: { file: string } | { redis: string };
  /** List days without a failure too (as tlsRpt.sendAll reports them). */
  all: boolean;
  json: boolean;
  noColor: boolean;
}
