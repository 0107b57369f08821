/**
 * OpenSSL's certificate verification errors, as Node reports them in
 * `TLSSocket.authorizationError` (the X509_V_ERR_ name without its prefix), in words.
 * The words are OpenSSL 3's X509_verify_cert_error_string() texts.
 */

const WORDS: Readonly<Record<string, string>> = {
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_CRL: 'unable to get certificate CRL',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: "unable to decrypt certificate's signature",
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: "unable to decrypt CRL's signature",
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: 'unable to decode issuer public key',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CRL_SIGNATURE_FAILURE: 'CRL signature failure',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CRL_NOT_YET_VALID: 'CRL is not yet valid',
  CRL_HAS_EXPIRED: 'CRL has expired',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: "format error in certificate's notBefore field",
  ERROR_IN_CERT_NOT_AFTER_FIELD: "format error in certificate's notAfter field",
  ERROR_IN_CRL_LAST_UPDATE_FIELD: "format error in CRL's lastUpdate field",
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: "format error in CRL's nextUpdate field",
  OUT_OF_MEM: 'out of memory',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  CERT_CHAIN_TOO_LONG: 'certificate chain too long',
  CERT_REVOKED: 'certificate revoked',
  INVALID_CA: 'invalid CA certificate',
  PATH_LENGTH_EXCEEDED: 'path length constraint exceeded',
  INVALID_PURPOSE: 'unsupported certificate purpose',
  CERT_UNTRUSTED: 'certificate not trusted',
  CERT_REJECTED: 'certificate rejected',
  HOSTNAME_MISMATCH: 'hostname mismatch',
  ERR_TLS_CERT_ALTNAME_INVALID: 'host name does not match the certificate',
};

/**
 * Errors that say the chain itself was verified and only a host name check failed: OpenSSL's
 * own (when a host was set on the handshake) and Node's checkServerIdentity() (which Node
 * runs only after a successful chain verification). Postfix counts such a peer as trusted.
 */
const NAME_ONLY_ERRORS: ReadonlySet<string> = new Set(['HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** OpenSSL's verification error in words; unknown codes are spelled out from their name. */
export function describeAuthorizationError(code: string | undefined): string {
  if (!code) return 'no reason was given';
  return WORDS[code] ?? code.toLowerCase().replace(/_/g, ' ');
}

/** Whether the handshake verified the certificate chain (a name mismatch alone does not count against it). */
export function chainVerified(peer: { authorized: boolean; authorizationError?: string }): boolean {
  return peer.authorized || (peer.authorizationError !== undefined && NAME_ONLY_ERRORS.has(peer.authorizationError));
}
