/**
 * dane: TLSA records and DANE certificate matching for SMTP, as Postfix does it with
 * OpenSSL's DANE verification. Pure functions: no I/O, the time is passed in.
 *
 * What it implements:
 *  - RFC 6698 sections 2.1-2.2: the record fields and their presentation form
 *    (formatTlsa, parseTlsaText; RFC 7218 acronyms are accepted when parsing).
 *  - RFC 7672 section 3.1: usable records. DANE-TA(2) and DANE-EE(3) only; PKIX-TA(0)
 *    and PKIX-EE(1) are unusable for SMTP (3.1.3) and Postfix drops every other usage and
 *    the private-use matching type 255 (tls_dane.c parse_tlsa_rr). What is left must pass
 *    OpenSSL's SSL_dane_tlsa_add() (ssl/ssl_lib.c dane_tlsa_add): selector 0 or 1;
 *    matching type 0, 1 (SHA2-256) or 2 (SHA2-512); a digest of exactly 32 / 64 bytes;
 *    Full(0) data that is exactly one DER certificate (selector 0) or SubjectPublicKeyInfo
 *    (selector 1), whatever the usage, so a malformed "3 0 0" is unusable too.
 *  - RFC 7671 section 9, digest algorithm agility, exactly as OpenSSL applies it
 *    (crypto/x509/x509_vfy.c dane_match_cert, with the records sorted by dane_tlsa_add):
 *    for each (usage, selector) pair, only digest records of the best matching type
 *    present are used; Full(0) records of that pair are always used as well, even next
 *    to digests. The order is OpenSSL's default (dane_mds[] ordinals: Full 0,
 *    SHA2-256 1, SHA2-512 2). Postfix re-derives the digest ordinals from
 *    tls_dane_digests, first listed most preferred (tls_dane.c tls_dane_digest_init);
 *    its documented default "sha512 sha256" gives the same order. So "3 1 1" next to
 *    "3 1 2" is ignored, but "3 1 1" next to "3 0 2" or "2 1 2" is not.
 *  - RFC 7672 section 3.1.1 / RFC 7671 section 5.1, DANE-EE(3): the leaf certificate
 *    (selector 0) or its SubjectPublicKeyInfo (selector 1) matches; no name, date or chain
 *    check (Postfix sets DANE_FLAG_NO_DANE_EE_NAMECHECKS). DANE-EE records are tried
 *    before DANE-TA records, SPKI before Cert, stronger digests first (OpenSSL's order).
 *  - RFC 7672 section 3.1.2 / RFC 7671 sections 5.2-5.2.3, DANE-TA(2), as OpenSSL's
 *    build_chain() does without PKIX: from the leaf upwards, each issuer is taken from
 *    the Cert(0) Full(0) certificates of the DANE-TA records (first) and the certificates
 *    the server sent (in any order; the first one that issued the certificate and is
 *    valid now, else the one that expires last); the first certificate above the leaf
 *    that a DANE-TA record matches is the trust anchor. A DANE-TA record never matches
 *    the leaf itself (OpenSSL tests DANE-TA records at depth 1 and up only; Postfix's
 *    tls_dane.c says so too). The chain stops at a self-signed certificate. If no
 *    record matched, the public key of a "2 1 0" record that signed the top of the chain
 *    (possibly the leaf itself) is the trust anchor (check_dane_pkeys). So a digest
 *    record needs its anchor among the certificates sent; "2 0 0" and "2 1 0" do not.
 *    Then, in OpenSSL's order (verify_chain): every certificate above the leaf up to the
 *    anchor is a CA, and none limits its extended key usage to something other than TLS
 *    server authentication (check_extensions); a leaf name matches one of the reference
 *    identifiers (check_id, verify's nameMatches: Postfix's X509_CHECK_FLAG_NO_PARTIAL_
 *    WILDCARDS rules); then from the top down, each signature verifies with its issuer's
 *    key and each certificate is valid at `now` (internal_verify). The anchor's own dates
 *    are checked only when it is self-signed, or when it is the top certificate under a
 *    bare "2 1 0" key: OpenSSL skips a trust anchor that is not self-issued.
 *  - RFC 7672 section 3.2.2: the reference identifiers are the TLSA base domain, the MX
 *    host name and any configured match names (daneNames).
 *
 * Choices where Postfix and OpenSSL leave room:
 *  - The first failed check is the one reported, in OpenSSL's order; one sentence names
 *    the host and the TLSA name, data abbreviated to 8 hex digits. When a DANE-TA record
 *    matched a certificate the server sent that the leaf does not chain to, the reason
 *    says where the chain broke (e.g. the leaf was not signed by that certificate).
 *  - Chain building uses node:crypto's X509Certificate.checkIssued (names, key
 *    identifiers, key usage), so an issuer whose key usage forbids signing certificates
 *    breaks the chain rather than failing later with OpenSSL's KEYUSAGE_NO_CERTSIGN.
 *    Not checked (node:crypto does not expose them): path length and name constraints,
 *    the leaf's key usage bits, unknown critical extensions.
 *  - No certificate at all gives trust Anonymous (as verify does); every other failure
 *    Untrusted. An empty reference name list fails the name check (OpenSSL would pass it,
 *    but SSL_dane_enable always sets the base domain, so that never happens in Postfix).
 *  - Success reports `matched` as the whole record (formatTlsa); Postfix logs the data
 *    shortened (tls_dane.c tls_dane_log).
 *  - Certificate text in reasons is escaped once, where the reason is made: certificate
 *    names (subjectAltName DNS names, subject CNs) through lib/text's safeText(); subjects
 *    and issuers as Node prints them, which is OpenSSL's RFC 2253 form with C0 controls and
 *    the separators inside values already backslash-escaped, with lib/text's
 *    escapeControls() for what OpenSSL leaves raw (C1 controls, bidi formatting, line and
 *    paragraph separators). Names are matched raw; a name outside host name syntax
 *    (letters, digits, '-', '.', '_', '*') never matches (verify's nameMatches). A "none
 *    of the records matched" reason lists the first 10 records and counts the rest.
 *
 * Limits, so that a hostile TLSA RRset or certificate chain costs bounded work. Exceeding a
 * limit is a failure whose reason names it, never a truncation that could turn a failure
 * into a success:
 *  - MAX_CHAIN_LENGTH = 12 certificates from the leaf up to and including the trust
 *    anchor. Postfix's smtp_tls_scert_verifydepth defaults to 9 (postconf.proto: "the
 *    OpenSSL default"), and Postfix gives OpenSSL that plus one as the verify depth
 *    (tls_client.c: SSL_CTX_set_verify_depth(client_ctx, props->verifydepth + 1)), 10.
 *    OpenSSL's build_chain() (crypto/x509/x509_vfy.c) keeps adding issuers while the chain
 *    holds at most depth + 1 certificates, so it reaches depth + 2 = 12, testing each new
 *    issuer against the DANE-TA records (check_dane_issuer); a chain that reaches 12
 *    certificates without a match fails with CERT_CHAIN_TOO_LONG, and bare "2 1 0" keys
 *    are then not tried (check_dane_pkeys runs only when num <= max_depth). The same here:
 *    "certificate chain failed at depth 11, ...: certificate chain too long". Real chains
 *    have one to three CA certificates.
 *  - MAX_TLSA_RECORDS = 100 records of usage DANE-TA(2) or DANE-EE(3), counted before any
 *    record data is parsed; more fail ("too many TLSA records ..."). Neither OpenSSL
 *    (ssl/ssl_lib.c dane_tlsa_add) nor Postfix (tls_dane.c) limits the count; only the DNS
 *    message does (Postfix dns_lookup.c MAX_DNS_REPLY_SIZE 65536: up to about 1,390
 *    "3 1 1" records of 47 bytes each). The number is this library's choice: a server needs
 *    a "current" and a "next" record per key or trust anchor it uses (RFC 7671 sections
 *    8.1 and 8.4), a handful per TLSA name, and 100 leaves room for dozens of keys behind
 *    one name. Matching itself no longer grows with the count (records are looked up by
 *    the bytes they match), but Full(0) records cost a parse each and every "2 1 0" key a
 *    signature verification against the top of the chain, so the count is bounded too.
 *  - Work per session: each certificate (sent, or from a "2 0 0" record) is parsed once,
 *    its SubjectPublicKeyInfo exported once, each digest computed at most once per
 *    certificate and algorithm, each signature (a certificate by an issuer or a bare key,
 *    self-signatures included) verified at most once (verify's SessionCerts, which the
 *    caller makes once per session and passes to daneVerify, verifyPeer and auditDigests).
 *    Issuer search is OpenSSL's linear scan of the unused certificates for each link, at
 *    most 11 links.
 */
export { abbreviateHex, abbreviateTlsa, classifyTlsa, formatTlsa, MATCHING, parseTlsaText, SELECTOR, USAGE } from './tlsa.js';
export type { TlsaClassification, TlsaParsers, TlsaRecord, UnusableTlsa } from './tlsa.js';
export { daneVerify, MAX_CHAIN_LENGTH, MAX_TLSA_RECORDS } from './match.js';
export type { DaneRequest } from './match.js';
export { SessionCerts } from '../pkix/index.js';
export type { CertCounters } from '../pkix/index.js';
export { daneNames } from './names.js';
export type { DaneNamesInput } from './names.js';
