/**
 * A report as what goes over the wire (RFC 8460 section 5), without I/O: the gzipped JSON
 * (section 5.2), its file name (section 5.1), and the message of section 5.3 for a `mailto:`
 * address, built with Nodemailer's own MIME builder (MimeNode) and, when the caller gives
 * Nodemailer DKIM options, signed by Nodemailer's DKIM signer as its sendMail would sign it.
 */
import { gzipSync } from 'node:zlib';
import DKIM from 'nodemailer/lib/dkim';
import MimeNode from 'nodemailer/lib/mime-node';
import type { TlsRptReport } from './report.js';

/** Section 5.2: the JSON, gzipped (`application/tlsrpt+gzip`). */
export function gzipReport(report: TlsRptReport): Buffer {
  return gzipSync(Buffer.from(JSON.stringify(report), 'utf8'));
}

/**
 * Section 5.1's file name: `submitter!policy-domain!begin-timestamp!end-timestamp.json.gz`, the
 * timestamps in seconds since the epoch.
 */
export function reportFileName(report: TlsRptReport, domain: string, submitter: string): string {
  const range = report['date-range'];
  const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);
  return `${submitter}!${domain}!${seconds(range['start-datetime'])}!${seconds(range['end-datetime'])}.json.gz`;
}

/** What the report message is built from. */
export interface ReportMessageInput {
  report: TlsRptReport;
  /** The recipient domain the report is about (TLS-Report-Domain). */
  domain: string;
  /** The submitter's domain (TLS-Report-Submitter). */
  submitter: string;
  from: string;
  to: string;
  /** Nodemailer's DKIM options (`sendMail({ dkim })`'s), to sign the message with. */
  dkim?: DKIM.Options;
}

/** The header fields a report message has; signed by DKIM, with section 5.3's two (mox signs the same). */
const SIGNED_FIELDS = 'From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:TLS-Report-Domain:TLS-Report-Submitter:TLS-Required';

/**
 * Section 5.3's message: `multipart/report; report-type="tlsrpt"` with a short text part and the
 * gzipped report as an `application/tlsrpt+gzip` attachment; the `TLS-Report-Domain` and
 * `TLS-Report-Submitter` header fields; the subject `Report Domain: <domain> Submitter: <submitter>
 * Report-ID: <<report-id>>`; and `TLS-Required: No` (RFC 8689 section 4.2, which section 5.3
 * asks of reports: a report about a broken TLS policy must not be held up by that policy).
 */
export function reportMessage(input: ReportMessageInput): MimeNode {
  const { report, domain, submitter } = input;
  const id = report['report-id'];
  const range = report['date-range'];
  // Header names as RFC 8460 and RFC 8689 write them (Nodemailer would write Tls-Report-Domain; names are case-insensitive, readers are not all).
  const root = new MimeNode('multipart/report; report-type="tlsrpt"', { normalizeHeaderKey: (key) => key.replace(/^Tls-/, 'TLS-') });
  root.setHeader({
    From: input.from,
    To: input.to,
    Subject: `Report Domain: ${domain} Submitter: ${submitter} Report-ID: <${id}>`,
    'TLS-Report-Domain': domain,
    'TLS-Report-Submitter': submitter,
    'TLS-Required': 'No',
    Date: new Date().toUTCString().replace(/GMT$/, '+0000'),
  });
  root.setEnvelope({ from: input.from, to: [input.to] });
  root
    .createChild('text/plain; charset=utf-8')
    .setContent(
      [
        `This is an aggregate TLS report (RFC 8460) from ${report['organization-name']} (${submitter}) about ${domain}.`,
        '',
        `Report-ID: ${id}`,
        `Period: ${range['start-datetime']} to ${range['end-datetime']}`,
        `Contact: ${report['contact-info']}`,
        '',
        'The report is attached, gzipped JSON (application/tlsrpt+gzip).',
        '',
      ].join('\r\n'),
    );
  const name = reportFileName(report, domain, submitter);
  root.createChild('application/tlsrpt+gzip', { filename: name }).setHeader('Content-Disposition', 'attachment').setContent(gzipReport(report));
  if (input.dkim) {
    const headerFieldNames = input.dkim.headerFieldNames ? `${input.dkim.headerFieldNames}:TLS-Report-Domain:TLS-Report-Submitter` : SIGNED_FIELDS;
    const signer = new DKIM({ ...input.dkim, headerFieldNames });
    root.processFunc((stream) => signer.sign(stream));
  }
  return root;
}
