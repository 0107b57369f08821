/**
 * nodemailer-tls-policy: a Nodemailer transport that delivers to each recipient domain's MX
 * hosts (or a relay) with Postfix's TLS security levels, fallback levels and TLS audit records.
 */
export * from './types.js';
export { tlsPolicy, TlsPolicyTransport, TlsPolicyError, ERROR_CODES, domainOf, parseRelay } from './transport.js';
export type { TlsPolicyOptions, TlsPolicySentInfo, ErrorCode } from './transport.js';
export type { MtaStsOptions, TlsRptOptions } from './config.js';
export type { StoreOption, RedisClient } from './store/index.js';
export type { TlsReports, ReportDelivery, PendingReport, TlsRptReport, TlsRptPolicyResult, TlsRptFailureDetail } from './tlsrpt/index.js';
export type { Attempt, Delivery, Destination, DeliverEvent } from './deliver/index.js';
export type { Plan } from './plan/index.js';
export type { TlsaLookup, InsecureMxPolicy } from './plan/dane.js';
export type { SessionFacts } from './smtp/session.js';
export { createPolicyTable, checkPolicyTable, lookupPolicy, PolicyError, PolicyTable } from './policy/index.js';
export type { PolicyInput, PolicyObjectEntry, PolicyProblem, FallbackMapInput, NextHop, PolicyLookup } from './policy/index.js';
export { createResolver, Resolver } from './dns/index.js';
export type { ResolverOptions, DnsResult, DnsAnswer, DnsFailure, DnssecCheck, DnssecMode, ValidationRecord } from './dns/index.js';
export { renderTemplate, parseTemplate, parseAuditLine, DEFAULT_AUDIT_TEMPLATE, TemplateError, AuditLineError } from './audit/index.js';
export type { RenderOptions, TemplateFields } from './audit/index.js';
export { VERSION } from './version.js';
