/**
 * The errors a caller can meet, in one place (as Nodemailer's lib/errors.js keeps its codes).
 * Every failure carries a `code` and whether it is `temporary` (try again later) or permanent.
 */
import type { Delivery } from './deliver/index.js';

/** The codes, and what each means. */
export const ERROR_CODES = {
  ETLS: 'a TLS-policy failure: TLS could not be had, or the server could not be authenticated as the level asks',
  EDNS: 'a DNS lookup failed (temporary), or the domain does not exist (permanent)',
  EDNSSEC: 'DANE is configured but no trusted resolver validates DNSSEC (from verify())',
  ENULLMX: 'the domain accepts no mail (a null MX, RFC 7505)',
  ECONNECTION: 'a server could not be reached or the transaction failed; also every send after close()',
  EENVELOPE: 'an address cannot be sent, or the servers refused every recipient',
  EMESSAGE: 'a server refused the message at DATA, or declared a SIZE below it',
  EAUTH: 'the relay refused SMTP AUTH',
  ECONFIG: 'an option is wrong: the message says which and what to write instead',
  EPOLICY: 'the policy table has problems: every one is listed with its line',
  EPOLICYLOOKUP: 'the policyLookup function failed, took too long, or answered with an invalid entry (temporary)',
  EREQUIRETLS:
    'a message sent with requireTls found no MX host that RFC 8689 lets it cross: none authenticated by DANE or an MTA-STS policy in enforce mode and advertising REQUIRETLS (5.7.30, permanent)',
  ESTORE: 'the store (option store) failed while TLS reports were read or written (temporary)',
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

/** What `sendMail` rejects with when no recipient was accepted. */
export class TlsPolicyError extends Error {
  /** One of ERROR_CODES (EINTERNAL for an unexpected error). */
  code: string;
  temporary: boolean;
  deliveries: Delivery[];
  rejected: string[];
  pending: string[];
  constructor(message: string, code: string, temporary: boolean, deliveries: Delivery[] = []) {
    super(message);
    this.name = 'TlsPolicyError';
    this.code = code;
    this.temporary = temporary;
    this.deliveries = deliveries;
    this.rejected = deliveries.flatMap((d) => d.rejected);
    this.pending = deliveries.flatMap((d) => d.pending);
  }
}
