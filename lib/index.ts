/**
 * nodemailer-tls-policy: a Nodemailer transport that delivers to each recipient domain's MX
 * hosts (or a relay) with Postfix's TLS security levels, DANE, fallback levels and TLS audit.
 */
export * from './types.js';
export { tlsPolicy, TlsPolicyTransport, TlsPolicyError, domainOf, parseRelay } from './transport.js';
export type { TlsPolicyOptions, TlsPolicySentInfo } from './transport.js';
export type { Attempt, Delivery, Destination } from './deliver/index.js';
export { VERSION } from './version.js';
