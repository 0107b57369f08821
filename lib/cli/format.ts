/**
 * The human form of the reports: aligned sections, one fact per row, colour only when asked.
 * Pure functions of a report; the command decides where the text goes and whether to colour.
 *
 * A report holds text the operator does not control: certificate subjects, issuers and names,
 * server replies, DNS names, and reasons that quote them. On a terminal such text could clear
 * the screen, rewrite or forge a line (the Result line), set the window title or reorder what is
 * shown. So before anything is laid out, every string of the report is escaped (lib/text):
 * - certificate fields, which the report reads from the DER as the certificate holds them, with
 *   safeText (controls, separators, bidi characters and backslashes);
 * - everything else with escapeControls: it was made safe where it was gathered (replies, in
 *   lib/smtp) or is the library's own words around such text, so this is a no-op on it and
 *   escapes whatever may have slipped through.
 * The only escape sequences in the text are then the report's own colours. The JSON form keeps
 * the data as it is; formatJson escapes, besides what JSON.stringify escapes, every character
 * a terminal could act on, so it too is safe to print.
 */
import type { AttemptReport, CertificateReport, HostReport, MtaStsReport, MxReport, ProbeReport, TlsaRecordReport } from './report.js';
import type { PolicyCheckReport } from './check-policy.js';
import type { TlsReportsReport } from './tls-reports.js';
import { makeStyle, tone, type Style } from './style.js';
import { escapeControls, hasNoControls, safeText } from '../text/index.js';
import type { ValidationRecord } from '../dns/index.js';

export interface FormatOptions {
  color?: boolean;
}

/** `value` with every string in it passed through `escape` (a deep copy). */
function escapedStrings<T>(value: T, escape: (text: string) => string = escapeControls): T {
  if (typeof value === 'string') return escape(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => escapedStrings(v, escape)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapedStrings(v, escape)])) as T;
  }
  return value;
}

/** The report with every string safe to print (see above). */
function printable(report: ProbeReport): ProbeReport {
  const attempts = report.attempts.map((a) => ({
    ...a,
    session: { ...a.session, chain: a.session.chain.map((c) => escapedStrings(c, safeText)) },
  }));
  return escapedStrings({ ...report, attempts });
}

/**
 * A value as JSON (2-space indent) that is safe to print: JSON.stringify escapes C0 controls,
 * `"` and `\`; DEL, C1 controls, the line and paragraph separators, bidi characters and the
 * byte order mark (what lib/text escapes) are written as `\uXXXX` escapes too. JSON.parse gives
 * back exactly the same data.
 */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(/[\u007f-\uffff]/g, (c) => (hasNoControls(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}\n`;
}

/** Width of the label column. */
const LABEL = 12;
const INDENT = '  ';
const CONTINUE = ' '.repeat(INDENT.length + LABEL + 1);

function rows(style: Style, label: string, value: string | string[]): string[] {
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0) return [];
  return values.map((v, i) => (i === 0 ? `${INDENT}${style.dim(label.padEnd(LABEL))} ${v}` : `${CONTINUE}${v}`));
}

/** Long hex (a full certificate in a TLSA record) shortened for the terminal; the JSON keeps it whole. */
function shortRecord(record: string): string {
  const m = /^(\d+ \d+ \d+) ([0-9a-f]+)$/.exec(record);
  if (!m || m[2]!.length <= 64) return record;
  return `${m[1]} ${m[2]!.slice(0, 32)}...(${m[2]!.length / 2} bytes)`;
}

function mxSection(style: Style, mx: MxReport): string[] {
  const out = [`${style.bold('MX')} ${mx.domain}`];
  if (mx.dnssec === 'failed') {
    out.push(...rows(style, 'answer', `${tone(style, 'failed')}: ${mx.reason ?? ''}`));
    return out;
  }
  const rcode = mx.rcode === 'NXDOMAIN' ? `, ${style.bad('NXDOMAIN')} (the domain does not exist)` : '';
  out.push(...rows(style, 'answer', `${tone(style, mx.dnssec)}${rcode}`));
  if (mx.implicit) out.push(...rows(style, 'implicit', `no MX records: ${mx.domain} itself is the MX host (RFC 5321 section 5.1)`));
  for (const r of mx.records) {
    const note = r.exchange === '.' ? `  ${style.bad('null MX: accepts no mail (RFC 7505)')}` : '';
    out.push(...rows(style, `pref ${r.preference}`, `${r.exchange}${note}`));
  }
  return out;
}

/** 'validate': per name, the verdict and the chain of trust walked (what `delv` and `drill -S` show). */
function dnssecSection(style: Style, records: ValidationRecord[]): string[] {
  const out = [style.bold('DNSSEC')];
  for (const record of records) {
    const verdict = `${tone(style, record.status)}${record.reason ? `: ${record.reason}` : ''}`;
    out.push(...rows(style, record.type, [`${record.name}  ${verdict}`, ...record.chain.map((line) => style.dim(`  ${line}`))]));
  }
  return out;
}

function mtaStsSection(style: Style, sts: MtaStsReport): string[] {
  const out = [`${style.bold('MTA-STS')} ${sts.domain}`];
  out.push(...rows(style, 'TXT', sts.record ? `${sts.record.text}  ${style.dim(`(id ${sts.record.id})`)}` : style.dim('no valid v=STSv1 record')));
  const f = sts.fetch;
  if (f) {
    const answer = f.ok
      ? style.good(`${f.status} ${f.contentType}, ${f.bytes} bytes`)
      : style.bad(`failed${f.status !== undefined ? ` (${f.status}${f.contentType ? ` ${f.contentType}` : ''})` : ''}: ${f.reason ?? ''}`);
    out.push(...rows(style, 'fetch', `${f.url}  ${answer}  ${style.dim(`${f.ms} ms`)}`));
  }
  if (sts.failure) out.push(...rows(style, 'failure', `${style.bad(sts.failure.resultType)}: ${sts.failure.reason}`));
  const p = sts.policy;
  if (p) {
    const mode = p.mode === 'enforce' ? style.good('enforce') : style.warn('testing');
    out.push(...rows(style, 'policy', `mode ${mode}; mx ${p.mx.join(', ')}; max_age ${p.maxAge}  ${style.dim(`(id ${p.id})`)}`));
    out.push(...rows(style, 'cache', `${sts.cache === 'fetched' ? 'fetched now and cached' : 'from the cache'} until ${p.expires}`));
    for (const a of sts.admits)
      out.push(...rows(style, 'MX host', `${a.host}  ${a.admitted ? style.good('admitted') : style.bad('not admitted: matches no mx pattern')}`));
  } else out.push(...rows(style, 'policy', style.dim('none applies')));
  for (const note of sts.notes) out.push(...rows(style, 'note', style.dim(note)));
  return out;
}

function tlsaRecordLine(style: Style, r: TlsaRecordReport): string {
  return `${shortRecord(r.record)}  ${tone(style, r.usability)}${r.reason ? `: ${r.reason}` : ''}`;
}

function hostSection(style: Style, host: HostReport): string[] {
  const out = [`${style.bold('Host')} ${host.name}`];
  if (host.dnssec === 'failed') out.push(...rows(style, 'addresses', `${tone(style, 'failed')}: ${host.reason ?? ''}`));
  else {
    const list = host.addresses.length ? host.addresses.join(', ') : style.bad(host.reason ?? 'none');
    out.push(...rows(style, 'addresses', `${list}  (${host.literal ? 'address literal, no DNS' : tone(style, host.dnssec)})`));
  }
  if (host.cnames.length) out.push(...rows(style, 'CNAME', host.cnames.join(' -> ')));
  const t = host.tlsa;
  if (!t)
    out.push(...rows(style, 'TLSA', style.dim(`not looked up${host.tlsaSkipped && host.tlsaSkipped !== 'not looked up' ? `: ${host.tlsaSkipped}` : ''}`)));
  else if (t.status === 'failed') out.push(...rows(style, 'TLSA', `${tone(style, 'failed')}: ${t.reason}`));
  else if (t.status === 'none') out.push(...rows(style, 'TLSA', `no secure TLSA: ${t.why}`));
  else out.push(...rows(style, 'TLSA', [`${t.name}  (${tone(style, 'secure')})`, ...t.records.map((r) => tlsaRecordLine(style, r))]));
  return out;
}

/** `2026-01-02T03:04:05.000Z` -> `2026-01-02 03:04:05 UTC`. */
function humanDate(iso: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

function certificateLines(style: Style, c: CertificateReport): string[] {
  const head = `#${c.depth} ${c.depth === 0 ? 'leaf' : 'CA'}${c.selfSigned ? ', self-signed' : ''}`;
  if (c.error) return [`${head}: ${style.bad(c.error)}`, `   ${c.digest.padEnd(7)} ${c.certDigest}`];
  const sub = (label: string, value: string) => `   ${style.dim(label.padEnd(7))} ${value}`;
  return [
    head,
    sub('subject', c.subject || style.dim('(empty)')),
    sub('issuer', c.issuer || style.dim('(empty)')),
    sub('dates', `${humanDate(c.notBefore)} to ${humanDate(c.notAfter)}  (${tone(style, c.validity)})`),
    sub('names', c.names.length ? c.names.join(', ') : style.dim('(none)')),
    sub(c.digest, c.certDigest),
    sub('spki', c.spkiDigest),
    sub('TLSA', c.tlsa),
  ];
}

function starttlsText(style: Style, a: AttemptReport): string {
  const s = a.session;
  if (a.plan.implicitTls) return 'not used: TLS from the first byte (SMTPS)';
  if (!s.starttlsOffered) return a.mode === 'cleartext-retry' ? 'not sent (cleartext retry)' : style.warn('not offered');
  if (!s.starttlsSent)
    return `offered, not sent${a.plan.level === 'none' || a.mode === 'cleartext-retry' ? ` (${a.mode === 'cleartext-retry' ? 'cleartext retry' : 'level none'})` : ''}`;
  if (s.starttlsReply) return `offered, ${style.warn('refused')}: ${s.starttlsReply}`;
  if (s.protocol) return 'offered, accepted';
  return 'offered, sent';
}

function verdictText(style: Style, a: AttemptReport): string {
  const v = a.verdict;
  if (!a.connected) return style.dim('none (not connected)');
  if (a.session.failure && !a.session.protocol) return `${style.bad('failure')}: ${a.session.failure.message}`;
  if (!v.trust) return style.dim('none');
  const word = tone(style, v.trust);
  if (v.ok === false) return `${word}: ${v.reason ?? 'the level was not met'}`;
  return `${word}${v.matched ? `, matched ${shortRecord(v.matched)}` : ''}`;
}

function dataText(style: Style, a: AttemptReport): string {
  const d = a.decision;
  if (a.wouldSendData) {
    const from = d.downgradedFrom ? ` instead of ${d.downgradedFrom}` : '';
    const text = `would be sent at level ${d.level}${from} (${d.trust})`;
    return d.downgradedFrom || a.mode === 'cleartext-retry' ? style.warn(text) : style.good(text);
  }
  const what =
    d.action === 'cleartext-later'
      ? 'not on this connection: cleartext retry after the other MX hosts'
      : d.action === 'cleartext-now'
        ? 'not on this connection: cleartext retry now'
        : 'would not be sent';
  return `${style.bad(what)}${d.reason ? `: ${d.reason}` : ''}`;
}

function attemptSection(style: Style, a: AttemptReport, index: number): string[] {
  const mode = a.mode === 'cleartext-retry' ? `  ${style.warn('(cleartext retry)')}` : '';
  const out = [`${style.bold(`Attempt ${index + 1}`)} ${a.where}${mode}`];
  const p = a.plan;
  const planParts = [`level ${p.level}`];
  if (p.sni) planParts.push(`SNI ${p.sni}`);
  if (p.names.length) planParts.push(`match ${p.names.join(', ')}`);
  if (p.fingerprints.length) planParts.push(`fingerprints ${p.fingerprints.join(', ')}`);
  if (p.protocols?.length) planParts.push(`protocols ${p.protocols.join(':')}`);
  if (p.ciphers) planParts.push(`ciphers ${p.ciphers}`);
  if (p.fallback) planParts.push(`fallback ${p.fallback}`);
  if (p.shadow) planParts.push(`shadow ${p.shadow}`);
  out.push(...rows(style, 'plan', planParts.join('; ')));
  if (p.dane) out.push(...rows(style, 'DANE', p.dane));
  if (a.audit.sts_mode) out.push(...rows(style, 'MTA-STS', `${a.audit.sts_mode}${a.audit.sts_result ? `: ${a.audit.sts_result}` : ''}`));
  if (!a.connected) {
    out.push(...rows(style, 'connection', style.bad('not made')));
  } else {
    out.push(...rows(style, 'STARTTLS', starttlsText(style, a)));
    const s = a.session;
    if (s.protocol) {
      const chain = p.daneEnforced
        ? style.dim('no CA check: DANE judges the chain')
        : s.authorized
          ? style.good('CA chain verified')
          : `CA chain not verified${s.authorizationError ? ` (${s.authorizationError})` : ''}`;
      out.push(...rows(style, 'TLS', `${s.protocol}, ${s.cipher}; ${chain}`));
    }
    if (s.failure) out.push(...rows(style, 'failure', `${style.bad(s.failure.kind)}: ${s.failure.message}`));
    if (s.chain.length)
      out.push(
        ...rows(
          style,
          'certificates',
          s.chain.flatMap((c) => certificateLines(style, c)),
        ),
      );
    else if (s.protocol) out.push(...rows(style, 'certificates', style.warn('none sent (anonymous)')));
  }
  out.push(...rows(style, 'verdict', verdictText(style, a)));
  if (a.shadowResult !== undefined && p.shadow) {
    const r = a.shadowResult;
    out.push(...rows(style, 'shadow', `${p.shadow}: ${r === 'pass' ? tone(style, 'pass') : style.warn(r)}`));
  }
  out.push(...rows(style, 'DATA', dataText(style, a)));
  if (a.auditLine) out.push(...rows(style, 'audit', style.dim(a.auditLine)));
  return out;
}

/** The probe report as text for a terminal; ends with the result line. */
export function formatProbe(input: ProbeReport, options: FormatOptions = {}): string {
  const report = printable(input);
  const style = makeStyle(options.color === true);
  const lines: string[] = [];
  lines.push(
    `${style.bold(`probe ${report.target}`)}  ${style.dim(`(${report.tool.name} ${report.tool.version}; nothing is sent after EHLO and STARTTLS, no MAIL FROM)`)}`,
  );
  lines.push('');
  lines.push(style.bold('Policy'));
  const pol = report.policy;
  lines.push(...rows(style, 'level', `${pol.level}  ${style.dim(`(${pol.source === 'default' ? 'the default level' : `from ${pol.source}`})`)}`));
  if (pol.fallback) lines.push(...rows(style, 'fallback', pol.fallback));
  if (pol.shadow) lines.push(...rows(style, 'shadow', pol.shadow));
  const c = report.config;
  if (c.policyFile) lines.push(...rows(style, 'table', c.policyFile));
  if (c.resolver) {
    const trust =
      c.resolver.dnssec === 'validate'
        ? 'DNSSEC validated here, from the trust anchors'
        : c.resolver.dnssec === 'off'
          ? 'DNSSEC off: every answer insecure'
          : c.resolver.trustAd === 'loopback'
            ? 'AD bit believed from loopback servers only'
            : c.resolver.trustAd
              ? 'AD bit believed from every server'
              : 'AD bit never believed';
    lines.push(...rows(style, 'resolver', `${c.resolver.servers.join(', ')}  ${style.dim(`(${trust})`)}`));
  }
  if (c.port !== undefined) lines.push(...rows(style, 'port', String(c.port)));
  for (const w of report.warnings) lines.push(...rows(style, 'warning', style.warn(w)));
  if (report.mx) lines.push('', ...mxSection(style, report.mx));
  else if (report.destination.kind === 'relay') {
    const d = report.destination;
    lines.push('', `${style.bold('Next hop')} [${d.host}]:${d.port}  ${style.dim(`(no MX lookup${d.implicitTls ? '; implicit TLS' : ''})`)}`);
  }
  if (report.mtaSts) lines.push('', ...mtaStsSection(style, report.mtaSts));
  for (const host of report.hosts) lines.push('', ...hostSection(style, host));
  if (report.dnssec?.length) lines.push('', ...dnssecSection(style, report.dnssec));
  report.attempts.forEach((a, i) => lines.push('', ...attemptSection(style, a, i)));
  const r = report.result;
  const summary = r.action === 'deliver' ? style.good(r.summary) : r.action === 'fallback' ? style.warn(r.summary) : style.bad(r.summary);
  lines.push('', `${style.bold('Result')}  ${summary}  ${style.dim(`(exit ${r.exitStatus})`)}`);
  return `${lines.join('\n')}\n`;
}

/** check-policy's text: every problem with its line, or the entries as the transport reads them. */
export function formatPolicyCheck(input: PolicyCheckReport, options: FormatOptions = {}): string {
  // the table is the operator's, but a control in it must not act on the terminal either
  const report = escapedStrings(input);
  const style = makeStyle(options.color === true);
  const lines: string[] = [];
  if (!report.valid) {
    for (const p of report.problems) lines.push(`${style.bold(p.line > 0 ? `${p.file}:${p.line}:` : `${p.file}:`)} ${style.bad(p.message)}`);
    lines.push(`${report.file}: ${style.bad(`${report.problems.length} ${report.problems.length === 1 ? 'problem' : 'problems'}`)}, the table is not valid`);
    return `${lines.join('\n')}\n`;
  }
  const n = report.entries.length;
  lines.push(`${report.file}: ${style.good('valid')}, ${n} ${n === 1 ? 'entry' : 'entries'}`);
  if (n > 0) {
    const keyWidth = Math.max(3, ...report.entries.map((e) => e.key.length));
    const levelWidth = Math.max(5, ...report.entries.map((e) => e.level.length));
    lines.push(style.dim(`${'line'.padStart(5)}  ${'key'.padEnd(keyWidth)}  ${'level'.padEnd(levelWidth)}  attributes`));
    for (const e of report.entries) {
      const attrs = e.attributes.map((a) => (a.default ? style.dim(`${a.name}=${a.value} (default)`) : `${a.name}=${a.value}`)).join(' ');
      lines.push(`${String(e.line).padStart(5)}  ${e.key.padEnd(keyWidth)}  ${e.level.padEnd(levelWidth)}  ${attrs}`.trimEnd());
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The pending TLS reports, one line each, with each address's last failure below a report being retried. */
export function formatTlsReports(input: TlsReportsReport, options: FormatOptions = {}): string {
  // reasons quote collectors' and servers' answers: escaped before they are printed
  const report = escapedStrings(input);
  const style = makeStyle(options.color === true);
  const n = report.pending.length;
  if (n === 0) return `No TLS report is pending in the ${report.store}.\n`;
  const lines = [`${n} TLS ${n === 1 ? 'report is' : 'reports are'} pending in the ${report.store}:`];
  const width = Math.max(...report.pending.map((p) => p.domain.length));
  for (const p of report.pending) {
    const sessions = p.successful + p.failed;
    const counts = `${sessions} ${sessions === 1 ? 'session' : 'sessions'}: ${p.successful} successful, ${p.failed > 0 ? style.bad(`${p.failed} failed`) : '0 failed'}`;
    const tries = p.attempts > 0 ? `; ${p.attempts} ${p.attempts === 1 ? 'attempt' : 'attempts'} since ${p.firstAttempt ?? '?'}` : '';
    const status = p.status === 'retrying' ? style.warn('retrying') : style.info('due     ');
    lines.push(`${INDENT}${p.day}  ${p.domain.padEnd(width)}  ${status}  ${counts}${tries}`);
    for (const [where, why] of Object.entries(p.errors)) lines.push(`${INDENT}${INDENT}${style.dim(why.startsWith(where) ? why : `${where}: ${why}`)}`);
  }
  return `${lines.join('\n')}\n`;
}
