/**
 * check-policy: a policy table checked exactly as the transport checks it (lib/policy), and
 * reported either as every problem with its line, or as the entries the transport would use:
 * the normalized key, the level, each attribute in the table's own syntax (with the defaults
 * the transport applies, marked), and the line it came from.
 */
import type { Policy, Level } from '../types.js';
import { checkPolicyFiles, checkPolicyText, DEFAULT_CERT_MATCH, type PolicyProblem } from '../policy/index.js';
import { VERSION } from '../version.js';

export interface PolicyAttributeReport {
  /** The attribute's name as the table spells it. */
  name: string;
  /** Its value in the table's syntax. */
  value: string;
  /** Set when the attribute is not in the table and the transport applies it by default. */
  default?: true;
}

export interface PolicyEntryReport {
  /** The key as the transport stores it: lower case, A-labels, no trailing dot, canonical IP. */
  key: string;
  level: Level;
  /** The line the entry starts on. */
  line: number;
  /** `file:line`. */
  source: string;
  attributes: PolicyAttributeReport[];
}

export interface PolicyCheckReport {
  tool: { name: 'nodemailer-tls-policy'; version: string; command: 'check-policy' };
  file: string;
  valid: boolean;
  /** Every problem, in line order. */
  problems: PolicyProblem[];
  /** The entries, in table order (empty when the table is not valid). */
  entries: PolicyEntryReport[];
}

/** A Policy's attributes in the table's syntax, with the defaults the transport applies. */
export function policyAttributes(policy: Policy): PolicyAttributeReport[] {
  const out: PolicyAttributeReport[] = [];
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined) out.push({ name, value });
  };
  const matchLevel =
    policy.level === 'verify' || policy.level === 'secure'
      ? policy.level
      : policy.shadow === 'verify' || policy.shadow === 'secure'
        ? policy.shadow
        : undefined;
  const fingerprints = policy.level === 'fingerprint' || (policy.shadow === 'fingerprint' && !matchLevel);
  if (policy.match) add('match', policy.match.join(fingerprints ? '|' : ':'));
  else if (matchLevel) out.push({ name: 'match', value: DEFAULT_CERT_MATCH[matchLevel].join(':'), default: true });
  if (policy.protocols) add('protocols', policy.protocols.join(':'));
  add('ciphers', policy.ciphers);
  if (policy.exclude) add('exclude', policy.exclude.join(':'));
  add('servername', policy.servername);
  add('cafile', policy.caFile);
  add('cert_file', policy.certFile);
  add('key_file', policy.keyFile);
  add('fallback', policy.fallback);
  add('shadow', policy.shadow);
  if (policy.tempfailTryclear !== undefined) add('tempfail_tryclear', policy.tempfailTryclear ? 'yes' : 'no');
  return out;
}

/** Checks table text (read by the caller) and reports on it. `file` names it in messages. */
export function policyCheckReport(text: string, file: string): PolicyCheckReport {
  const checked = checkPolicyText(text, file);
  // The files the entries name are read too: a missing cafile= is a problem now, not at send time.
  const problems = checked.table ? checkPolicyFiles(checked.table) : checked.problems;
  const table = problems.length === 0 ? checked.table : undefined;
  const entries: PolicyEntryReport[] = table
    ? table.entries().map(([key, policy]) => ({
        key,
        level: policy.level,
        line: Number(/:(\d+)$/.exec(policy.source)?.[1] ?? 0),
        source: policy.source,
        attributes: policyAttributes(policy),
      }))
    : [];
  return {
    tool: { name: 'nodemailer-tls-policy', version: VERSION, command: 'check-policy' },
    file,
    valid: problems.length === 0,
    problems: problems.map((p) => ({ ...p })),
    entries,
  };
}
