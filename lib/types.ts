/**
 * The shared vocabulary of nodemailer-tls-policy, as plain data types.
 *
 * One name per idea (see ARCHITECTURE.md): destination, level, policy, plan, facts, trust,
 * verdict, stage, decision, attempt, delivery. Every module speaks in these types; none of
 * them carries behaviour.
 */

/**
 * Where one delivery goes: a recipient domain (MX lookup), or a fixed next hop (the configured
 * relay, or a recipient's address literal), with no MX lookup.
 */
export type Destination =
  | { kind: 'domain'; domain: string }
  | {
      kind: 'relay';
      host: string;
      port: number;
      implicitTls: boolean;
      /**
       * How the relay was written, when written as a string without brackets: `host` or
       * `host:port`. The policy table is then searched with Postfix's keys for that form first
       * (see lookupKeys()); unset means `[host]:port`.
       */
      written?: 'host' | 'host:port';
      /** The configured relay: the only next hop SMTP AUTH credentials are sent to. */
      authenticate?: boolean;
    };

/** See Policy.reported. */
export interface ReportedPolicy {
  type: 'sts' | 'no-policy-found';
  domain?: string;
  ttl?: number;
  strings?: string[];
  mxHostPatterns?: string[];
  failure?: 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid' | 'validation-failure';
}

/** Postfix's TLS security levels (smtp_tls_security_level), weakest first. */
export const LEVELS = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure'] as const;
export type Level = (typeof LEVELS)[number];

/** Levels that authenticate the server; only these may name a fallback level. */
export const AUTHENTICATED_LEVELS = ['dane', 'dane-only', 'fingerprint', 'verify', 'secure'] as const;
export type AuthenticatedLevel = (typeof AUTHENTICATED_LEVELS)[number];

/** What an authenticated level may fall back to (the tlsfallback proposal). */
export type FallbackLevel = 'encrypt' | 'may';

/** How Postfix logs the peer: Cleartext, Anonymous, Untrusted, Trusted, Verified. */
export type Trust = 'Cleartext' | 'Anonymous' | 'Untrusted' | 'Trusted' | 'Verified';

/** Where a TLS failure happened: the stages of Postfix's fallback proposal, `tlsa` for a DANE
 * policy that failed before any connection (TLSA lookup failed, or dane-only without TLSA), and
 * `policy` for an MTA-STS policy whose mx patterns do not cover the host (never connected). */
export type Stage = 'tlsa' | 'policy' | 'no-starttls' | 'starttls-refused' | 'handshake' | 'session' | 'verification';

/**
 * RFC 8460 section 4.3's result types: the machine word for why a TLS session under a policy
 * failed (what TLS-RPT reports count, and what a caller can switch on).
 */
export const RESULT_TYPES = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
] as const;
export type ResultType = (typeof RESULT_TYPES)[number];

/** The DNSSEC status every DNS answer travels with. */
export type DnssecStatus = 'secure' | 'insecure' | 'failed';

/** Digest algorithms for fingerprints and audit digests (smtp_tls_fingerprint_digest). */
export type DigestAlgorithm = 'sha256' | 'sha1' | 'sha512' | 'sha384' | 'sha224' | 'md5';

/**
 * A policy as found for a destination: the level asked for, with Postfix's attributes.
 * Produced by the policy module from the table, the default level and Exim's aliases.
 */
export interface Policy {
  level: Level;
  /**
   * `match` tokens as written: for verify/secure, host name patterns and the keywords
   * `hostname`, `nexthop`, `dot-nexthop` (a leading '.' means any subdomain); for
   * fingerprint, certificate or public-key digests (hex, with or without colons).
   */
  match?: string[];
  /** TLS protocols, Postfix syntax tokens: `TLSv1.2`, `!TLSv1`, `>=TLSv1.2`, `<=TLSv1.3`. */
  protocols?: string[];
  /** OpenSSL cipher list, or Postfix's grade names `high`, `medium`, `low`, `export`, `null`. */
  ciphers?: string;
  /** Cipher names or patterns to exclude, as Postfix's `exclude`. */
  exclude?: string[];
  /** SNI: `hostname`, `nexthop`, or a literal name. */
  servername?: string;
  /** A CA file (PEM) to verify the server against, in place of the default CAs. */
  caFile?: string;
  /** Client certificate chain file (PEM) to present, with its key. */
  certFile?: string;
  keyFile?: string;
  /** Per-destination fallback: a level, or 'none' to forbid any configured fallback. */
  fallback?: FallbackLevel | 'none';
  /** A stricter level evaluated and reported, never enforced (report-only). */
  shadow?: Level;
  /**
   * TLS is required even where the level or a fallback would allow cleartext: set by
   * hostsRequireTls on a level that already uses TLS, so that a `dane` host without usable TLSA
   * gets `encrypt` instead of `may`, and a fallback to `may` becomes `encrypt`.
   */
  requireTls?: boolean;
  /** Exim's tls_tempfail_tryclear for this destination, when it was set. */
  tempfailTryclear?: boolean;
  /**
   * The policy as an outside policy source (an MTA-STS resolver) describes it for TLS reporting,
   * Postfix 3.10's policy_type, policy_domain, policy_ttl, policy_string, mx_host_pattern and
   * policy_failure attributes (RFC 8460 section 4.4's policy-type, policy-domain, policy-string,
   * mx-host, failure). With type `sts`, MX hosts must match an mx_host_pattern (RFC 8461 section 4.1).
   */
  reported?: ReportedPolicy;
  /** Where this policy came from, for messages: e.g. `policy.txt:12`, `default`, `hostsRequireTls`. */
  source: string;
}

/** An attempt's audit record: Postfix's audit template fields, plus where and what happened. */
export interface AuditRecord {
  /** The remote server as Postfix logs it: `mx1.example.net[192.0.2.1]:25`. */
  relay: string;
  destination: string;
  mx: string;
  address: string;
  port: number;
  /** The effective level after any fallback. */
  level: Level;
  /** The level asked for before fallback; empty when no fallback took place. */
  policy: string;
  auth: Trust | '';
  protocol: string;
  cipher: string;
  cert_digest: string;
  spki_digest: string;
  /** Why the level was lowered or cleartext used; empty when it was not. */
  fallback_reason: string;
  /** The shadow level, whether it would have passed, and why not. */
  shadow: string;
  shadow_result: string;
  /** The last SMTP reply that mattered (e.g. `250 2.0.0 Ok: queued`, `454 4.7.0 TLS not available`). */
  reply: string;
  /** The TLSA record or fingerprint or name that authenticated the peer, if any. */
  matched: string;
  /** DANE: the TLSA records enforced (`_25._tcp.mx.example.net: 3 1 1 ...`), or why DANE did not apply. */
  dane: string;
  /** RFC 8460's result type when TLS under the policy failed (also when a fallback then sent the mail); empty otherwise. */
  result_type: ResultType | '';
  /** What governed the host, RFC 8460 section 4.4's policy-type: `tlsa` (DANE records enforced), `sts` (an MTA-STS policy), `no-policy-found`. */
  policy_type: 'tlsa' | 'sts' | 'no-policy-found';
  /** The recipient domain's MTA-STS policy mode (`enforce`, `testing`) when one applied to the host; empty otherwise. */
  sts_mode: string;
  /** That policy's id (from its `_mta-sts` TXT record). */
  sts_id: string;
  /** Whether the host met the MTA-STS policy: `pass`, or `fail: why` (in testing mode: would have met it); empty without one. */
  sts_result: string;
  /**
   * The MTA-STS policy's own description (Policy.reported: from the library's MTA-STS lookup,
   * or Postfix 3.10's attributes from a policy source; RFC 8460 section 4.4's policy-domain,
   * policy-string, mx-host, failure), as Postfix 3.10 hands it to TLSRPT; each empty when the
   * policy has none. The several policy_string and mx_host_pattern values are joined with `, `.
   */
  policy_domain: string;
  /** Seconds; empty when not given. */
  policy_ttl: number | '';
  policy_string: string;
  mx_host_pattern: string;
  policy_failure: NonNullable<ReportedPolicy['failure']> | '';
  [key: string]: string | number;
}

/** What the TLS layer of one session showed: gathered by the smtp module, judged by verify. */
export interface PeerTls {
  /** e.g. `TLSv1.3`. */
  protocol: string;
  /** e.g. `TLS_AES_256_GCM_SHA384`. */
  cipher: string;
  /** The certificates the server sent, DER, leaf first and in the order sent (only the leaf where nothing judges the rest: HostPlan.peerChain); empty when it sent none. */
  chain: Buffer[];
  /** Whether OpenSSL verified the chain against the CA set the handshake used. */
  authorized: boolean;
  /** OpenSSL's reason when it did not, e.g. `CERT_HAS_EXPIRED`. */
  authorizationError?: string;
  /** The handshake resumed a kept TLS session: `chain` and `authorized` are those it was verified with then. */
  resumed?: boolean;
}

/** Trust plus, on failure, the reason in one sentence. */
export interface Verdict {
  /** Whether the level's requirements are met. */
  ok: boolean;
  trust: Trust;
  /** One sentence, naming the host: "mx1.example.net certificate ... matched no name in ...". */
  reason?: string;
  /** What authenticated the peer: the name, fingerprint or TLSA record that matched. */
  matched?: string;
  /** On failure, RFC 8460's result type for it. */
  resultType?: ResultType;
}
