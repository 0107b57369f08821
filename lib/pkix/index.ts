/**
 * pkix: certificate names, fingerprints and the PKIX verdict. It judges what the TLS layer of
 * a session showed (PeerTls) against a security level, as Postfix's SMTP client does, for the
 * levels none, may, encrypt, fingerprint, verify and secure. DANE (dane, dane-only) is judged
 * by its own module; verifyPeer refuses those levels. Everything here is a pure function of its arguments.
 *
 * What it implements, and the choices made:
 *  - Fingerprints (tls_fprint.c): a digest of the whole DER certificate, or of its DER
 *    SubjectPublicKeyInfo, printed as uppercase hex bytes joined by ':'. At the fingerprint
 *    level either digest of the leaf may match any configured fingerprint (Postfix maps each
 *    fingerprint to DANE-EE "3 0 255" and "3 1 255" records), with no chain, name or date
 *    check. Configured fingerprints are read as Postfix's hex decoder reads them: hex pairs
 *    with or without ':' between them, any case.
 *  - Names (tls_client.c add_namechecks): `hostname`, `nexthop` and `dot-nexthop` expand to
 *    the MX host, the next-hop domain and any name below it; a leading '.' means any name
 *    strictly below; IDNs become A-labels. Certificate names are checked as OpenSSL's
 *    X509_check_host() checks them with X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, the only flag
 *    Postfix sets: DNS subjectAltNames, or the subject CN when there is no DNS
 *    subjectAltName; whole-label wildcards only, one label; a leading-dot reference is
 *    compared with the tail of each certificate name, so it also matches wildcard names
 *    below it (see names.ts).
 *  - Trust (tls_client.c verify_x509, tls_misc.c): Cleartext without TLS, Anonymous without
 *    a certificate, Trusted when OpenSSL verified the chain (a host name mismatch alone does
 *    not undo that), Untrusted otherwise, and Verified when the level's authentication
 *    succeeded. The chain check is the handshake's (`PeerTls.authorized`): it already covers
 *    the dates of every certificate in the path, so no date is checked here.
 *  - Choices where Postfix is silent: a failed fingerprint check reports Trusted or
 *    Untrusted from the handshake's chain check, like the other levels; at verify and secure
 *    an untrusted chain fails before names are looked at; `matched` is the certificate name
 *    that matched (what Postfix logs as "matched peername") or the configured fingerprint.
 *  - Certificate names are untrusted text: they are matched raw, and a name outside host
 *    name syntax (a control, a line break, a bidi character, white space, ',', '=', '\\',
 *    ...) never matches (nameMatches); wherever one is shown (a reason, `matched`) it goes
 *    through lib/text's safeText(), once, here.
 *  - Work: the leaf is parsed once and each of its digests computed once per session
 *    (SessionCerts, certs.ts), shared by the level's verdict, a shadow level's and the
 *    audit's cert_digest/spki_digest (auditDigests) when the caller passes the same one.
 */
import { safeText } from '../text/index.js';
import type { DigestAlgorithm, Level, PeerTls, Trust, Verdict } from '../types.js';
import { SessionCerts } from './certs.js';
import { chainVerified, describeAuthorizationError } from './errors.js';
import { canonicalIp, certIpAddresses, nameMatches } from './names.js';

export { SessionCert, SessionCerts } from './certs.js';
export type { CertCounters, CertPart } from './certs.js';
export { auditDigests, certDigest, formatDigest, normalizeFingerprint, spkiDer, spkiDigest } from './digest.js';
export { chainVerified, describeAuthorizationError } from './errors.js';
export { canonicalIp, certIpAddresses, certNames, expandMatch, nameMatches, parseSubjectAltName, subjectCommonNames } from './names.js';
export type { AltName, MatchContext } from './names.js';

/** The levels this module judges; the DANE levels have their own module. */
export type VerifyLevel = Exclude<Level, 'dane' | 'dane-only'>;

/** What verifyPeer needs to judge one session. */
export interface VerifyRequest {
  level: VerifyLevel;
  /** The server's name, for messages. */
  host: string;
  /** Reference names, already expanded by expandMatch (verify, secure). */
  names: readonly string[];
  /** Configured fingerprints, normalized by normalizeFingerprint (fingerprint). */
  fingerprints: readonly string[];
  /** The fingerprint digest algorithm (smtp_tls_fingerprint_digest). */
  digest: DigestAlgorithm;
  /** The session's TLS facts; null for a cleartext session. */
  peer: PeerTls | null;
  /**
   * The session's certificates, parsed and hashed at most once (SessionCerts): pass the one
   * the session also gives daneVerify and auditDigests. Without it, a new one is made.
   */
  certs?: SessionCerts;
}

/** Judges a TLS session that presented a certificate, at one level. */
type Judge = (req: VerifyRequest, peer: PeerTls, leaf: Buffer, trust: Trust, certs: SessionCerts) => Verdict;

const acceptAny: Judge = (_req, _peer, _leaf, trust) => ({ ok: true, trust });

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

const judgeFingerprint: Judge = (req, _peer, leaf, trust, certs) => {
  const entry = certs.cert(leaf);
  const cert = entry.fingerprint('cert', req.digest);
  const spki = entry.fingerprint('spki', req.digest);
  const bare = (s: string) => s.replace(/:/g, '').toUpperCase();
  const seen = new Set([bare(cert), bare(spki)]);
  const matched = req.fingerprints.find((fp) => seen.has(bare(fp)));
  if (matched !== undefined) return { ok: true, trust: 'Verified', matched };
  const n = req.fingerprints.length;
  const what = `${req.host} certificate fingerprint ${cert} (public key ${spki})`;
  const reason =
    n === 0
      ? `${what} cannot match: no fingerprints are configured`
      : `${what} matched none of the ${n} configured ${plural(n, 'fingerprint', 'fingerprints')}`;
  return { ok: false, trust, reason, resultType: 'validation-failure' };
};

const judgeNames: Judge = (req, peer, leaf, trust, certs) => {
  if (trust !== 'Trusted') {
    const code = peer.authorizationError;
    const words = describeAuthorizationError(code);
    return {
      ok: false,
      trust,
      reason: `${req.host} certificate is not trusted: ${words}${code ? ` (${code})` : ''}`,
      resultType: code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID' ? 'certificate-expired' : 'certificate-not-trusted',
    };
  }
  // Names are matched raw (a name with a control character never matches, nameMatches) and
  // shown through safeText, so that no certificate can put a control into a reason.
  const offered = certs.cert(leaf).names();
  for (const pattern of req.names) {
    // A reference that is an IP address (a next hop `[192.0.2.1]`) matches iPAddress names only.
    const ip = canonicalIp(pattern);
    if (ip !== undefined) {
      if (certIpAddresses(leaf).includes(ip)) return { ok: true, trust: 'Verified', matched: ip };
      continue;
    }
    const name = offered.find((n) => nameMatches(n, pattern));
    if (name !== undefined) return { ok: true, trust: 'Verified', matched: safeText(name) };
  }
  const wanted = req.names.join(', ');
  let reason: string;
  if (req.names.length === 0) reason = `${req.host} certificate cannot be matched: no names are configured to match`;
  else if (offered.length === 0) reason = `${req.host} certificate has no DNS names and no common name, so it matched none of ${wanted}`;
  else reason = `${req.host} certificate names ${offered.map(safeText).join(', ')} matched none of ${wanted}`;
  return { ok: false, trust, reason, resultType: 'certificate-host-mismatch' };
};

/**
 * One judge a level; the DANE module will bring its own (it needs TLSA records). Levels
 * that do not authenticate accept any certificate.
 */
const JUDGES: Readonly<Record<VerifyLevel, Judge>> = {
  none: acceptAny,
  may: acceptAny,
  encrypt: acceptAny,
  fingerprint: judgeFingerprint,
  verify: judgeNames,
  secure: judgeNames,
};

/**
 * Judges a session at a level, as Postfix does:
 *  - cleartext (peer null): Cleartext, acceptable only at none and may;
 *  - no certificate (anonymous cipher): Anonymous, acceptable at none, may and encrypt;
 *  - may, encrypt: Trusted when the chain verified, else Untrusted, always acceptable;
 *  - fingerprint: Verified when the leaf's certificate or public-key digest is configured;
 *  - verify, secure: Verified when the chain verified and a certificate name matches one of
 *    the reference names; failing that, Trusted (chain verified) or Untrusted.
 * A failed verdict carries a one-sentence reason naming the host.
 */
export function verifyPeer(req: VerifyRequest): Verdict {
  const judge = Object.hasOwn(JUDGES, req.level) ? JUDGES[req.level] : undefined;
  if (!judge) {
    throw new TypeError(`verifyPeer: level "${String(req.level)}" is not judged here (DANE levels have their own module)`);
  }
  const { peer } = req;
  if (peer === null) {
    if (req.level === 'none' || req.level === 'may') return { ok: true, trust: 'Cleartext' };
    return {
      ok: false,
      trust: 'Cleartext',
      reason: `${req.host} session is not encrypted (cleartext), and level ${req.level} requires TLS`,
      resultType: 'starttls-not-supported',
    };
  }
  const leaf = peer.chain[0];
  if (!leaf) {
    if (judge === acceptAny) return { ok: true, trust: 'Anonymous' };
    return {
      ok: false,
      trust: 'Anonymous',
      reason: `${req.host} presented no certificate (anonymous cipher ${peer.cipher || 'unknown'}), and level ${req.level} requires one`,
      resultType: 'validation-failure',
    };
  }
  return judge(req, peer, leaf, chainVerified(peer) ? 'Trusted' : 'Untrusted', req.certs ?? new SessionCerts());
}
