/**
 * audit: the template language of smtp_tls_audit_template, from Postfix's tlsfallback
 * proposal, which uses Postfix's $name macro syntax (mac_parse/mac_expand):
 *
 *   $name            the field's value (a name is letters, digits and '_')
 *   ${name}          the same; $(name) is accepted too, as Postfix does
 *   ${name?value}    value when the field is non-empty, else nothing
 *   ${name:value}    value when the field is empty (or unknown), else nothing
 *   $$               a literal '$'
 *
 * A value is itself a template: it may hold expansions (nested braces) and '$$'; it is
 * expanded only when it is used. Unknown names expand to nothing. Braces inside a value
 * must balance: like Postfix, the closing '}' is found by counting '{' and '}'.
 * A bare '$' not followed by a name, '$', '{' or '(' is an error, as in Postfix.
 *
 * Pure functions: parseTemplate validates and parses (throwing an Error with code
 * 'ETEMPLATE'), renderTemplate expands, parseAuditLine reads a line of the default template
 * back into its fields.
 *
 * Field values are data, and some of it comes from the peer (a STARTTLS refusal inside
 * fallback_reason, a reply, certificate names inside reasons). So, on top of the template:
 * - a value never carries a control, line or paragraph separator or bidi character: any left
 *   in it is escaped (lib/text escapeControls; a no-op on text already made safe where it was
 *   gathered), so an expansion can never end the line, rewrite it on a terminal or reorder it;
 * - with `quoteValues` (what the transport's audit lines use), a value that holds the line's own
 *   separators (`,`, `=`, `"`), a backslash, or white space at either end is written as a
 *   double-quoted string (lib/text quoteValue), so a value can never read as another field.
 *   The template's own text is the operator's and is never touched.
 */
import { escapeControls, hasNoControls, quoteValue, safeText, unquoteValue } from '../text/index.js';
import type { AuditRecord, ReportedPolicy } from '../types.js';

/** The field values a template is expanded with; numbers are printed in decimal. */
export type TemplateFields = Readonly<Record<string, string | number | undefined>>;

/** A parsed template: literal text and field references. */
export type TemplateNode =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'field'; readonly name: string }
  | { readonly kind: 'if-set'; readonly name: string; readonly value: readonly TemplateNode[] }
  | { readonly kind: 'if-empty'; readonly name: string; readonly value: readonly TemplateNode[] };

/** The proposal's example template, with the fallback reason added. */
export const DEFAULT_AUDIT_TEMPLATE =
  'tlsaudit: relay=${relay}${auth?, auth=${auth}}${level?, level=${level}}${policy?, policy=${policy}}' +
  '${protocol?, protocol=${protocol}}${cipher?, cipher=${cipher}}${fallback_reason?, fallback_reason=${fallback_reason}}';

/** The audit fields of a policy's own description (AuditRecord policy_domain ... policy_failure), all empty without one. */
export function reportedPolicyFields(
  reported: ReportedPolicy | undefined,
): Pick<AuditRecord, 'policy_domain' | 'policy_ttl' | 'policy_string' | 'mx_host_pattern' | 'policy_failure'> {
  return {
    policy_domain: reported?.domain ?? '',
    policy_ttl: reported?.ttl ?? '',
    policy_string: reported?.strings?.join(', ') ?? '',
    mx_host_pattern: reported?.mxHostPatterns?.join(', ') ?? '',
    policy_failure: reported?.failure ?? '',
  };
}

/** A template error; `code` is 'ETEMPLATE', `offset` where in the template it was found. */
export class TemplateError extends Error {
  readonly code = 'ETEMPLATE';
  constructor(
    message: string,
    readonly template: string,
    readonly offset: number,
  ) {
    super(`audit template error at offset ${offset}: ${message}: ${JSON.stringify(template)}`);
    this.name = 'TemplateError';
  }
}

const NAME_CHAR = /[A-Za-z0-9_]/;
const NAME = /^[A-Za-z0-9_]+$/;

/**
 * Parses text from `start` to `end` of `source` (offsets are kept relative to the whole
 * template for error messages).
 */
function parseRange(source: string, start: number, end: number): TemplateNode[] {
  const nodes: TemplateNode[] = [];
  let text = '';
  const flush = () => {
    if (text !== '') nodes.push({ kind: 'text', text });
    text = '';
  };
  let i = start;
  while (i < end) {
    const c = source[i]!;
    if (c !== '$') {
      text += c;
      i++;
      continue;
    }
    if (i + 1 < end && source[i + 1] === '$') {
      text += '$';
      i += 2;
      continue;
    }
    const open = i + 1 < end ? source[i + 1] : undefined;
    if (open === '{' || open === '(') {
      const close = open === '{' ? '}' : ')';
      let depth = 1;
      let j = i + 2;
      for (; j < end; j++) {
        if (source[j] === open) depth++;
        else if (source[j] === close && --depth === 0) break;
      }
      if (j >= end) throw new TemplateError(`unclosed "$${open}"`, source, i);
      flush();
      nodes.push(parseExpression(source, i + 2, j));
      i = j + 1;
      continue;
    }
    let j = i + 1;
    while (j < end && NAME_CHAR.test(source[j]!)) j++;
    if (j === i + 1) {
      throw new TemplateError(
        open === undefined ? 'a "$" ends the text (write "$$" for a literal "$")' : `"$" is followed by "${open}", not a name (write "$$" for a literal "$")`,
        source,
        i,
      );
    }
    flush();
    nodes.push({ kind: 'field', name: source.slice(i + 1, j) });
    i = j;
  }
  flush();
  return nodes;
}

/** Parses the inside of ${...}: `name`, `name?value` or `name:value`. */
function parseExpression(source: string, start: number, end: number): TemplateNode {
  let j = start;
  while (j < end && NAME_CHAR.test(source[j]!)) j++;
  const name = source.slice(start, j);
  if (!NAME.test(name)) {
    const bad = j < end ? source[j] : undefined;
    throw new TemplateError(
      bad === undefined ? 'empty name in "${}"' : `bad name: "${source.slice(start, end)}" (a name is letters, digits and "_")`,
      source,
      start,
    );
  }
  if (j === end) return { kind: 'field', name };
  const op = source[j];
  if (op === '?') return { kind: 'if-set', name, value: parseRange(source, j + 1, end) };
  if (op === ':') return { kind: 'if-empty', name, value: parseRange(source, j + 1, end) };
  throw new TemplateError(`bad name: "${source.slice(start, end)}" (a name is letters, digits and "_", then "?" or ":" and a value)`, source, j);
}

/**
 * Parses and validates a template. Throws a TemplateError (code 'ETEMPLATE') on an unclosed
 * "${" or "$(", an empty or bad name, or a lone "$".
 */
export function parseTemplate(template: string): TemplateNode[] {
  return parseRange(template, 0, template.length);
}

function fieldValue(fields: TemplateFields, name: string): string {
  const value = Object.hasOwn(fields, name) ? fields[name] : undefined;
  return value === undefined || value === null ? '' : String(value);
}

export interface RenderOptions {
  /**
   * Quote values that hold `,`, `=`, `"`, `\` or white space at either end (lib/text
   * quoteValue), for `name=value, name=value` lines such as the audit line. Default false.
   */
  quoteValues?: boolean;
}

function render(nodes: readonly TemplateNode[], fields: TemplateFields, write: (value: string) => string): string {
  let out = '';
  for (const node of nodes) {
    switch (node.kind) {
      case 'text':
        out += node.text;
        break;
      case 'field':
        out += write(fieldValue(fields, node.name));
        break;
      // ${name?...} and ${name:...} test the value itself, before it is escaped or quoted
      case 'if-set':
        if (fieldValue(fields, node.name) !== '') out += render(node.value, fields, write);
        break;
      case 'if-empty':
        if (fieldValue(fields, node.name) === '') out += render(node.value, fields, write);
        break;
    }
  }
  return out;
}

/**
 * Expands a template (text, or parsed by parseTemplate) with the given fields. Controls,
 * separators and bidi characters in a value are always escaped; with `quoteValues` a value that
 * could read as more than one field is quoted (see above).
 */
export function renderTemplate(template: string | readonly TemplateNode[], fields: TemplateFields, options: RenderOptions = {}): string {
  return render(typeof template === 'string' ? parsedTemplate(template) : template, fields, options.quoteValues ? quoteValue : escapeControls);
}

/** Templates parsed once: every delivery renders the same few (the audit line, the Received header). */
const parsedTemplates = new Map<string, readonly TemplateNode[]>();
const MAX_PARSED_TEMPLATES = 64;

function parsedTemplate(template: string): readonly TemplateNode[] {
  let nodes = parsedTemplates.get(template);
  if (nodes === undefined) {
    nodes = parseTemplate(template); // a template that does not parse throws here, every time
    if (parsedTemplates.size >= MAX_PARSED_TEMPLATES) parsedTemplates.clear();
    parsedTemplates.set(template, nodes);
  }
  return nodes;
}

/** An audit line that parseAuditLine cannot read; `offset` is where in the line it stopped. */
export class AuditLineError extends Error {
  readonly code = 'EAUDITLINE';
  constructor(
    message: string,
    readonly line: string,
    readonly offset: number,
  ) {
    super(`audit line error at offset ${offset}: ${message}, in: ${safeText(line)}`);
    this.name = 'AuditLineError';
  }
}

/** What starts every line of the default template. */
const AUDIT_PREFIX = 'tlsaudit: ';

/**
 * Reads a line written with DEFAULT_AUDIT_TEMPLATE and `quoteValues` back into its fields:
 * `tlsaudit: ` then `name=value` pairs separated by `, `, a value either bare (no `,`, `=`,
 * `"` or `\`) or double-quoted with `\"` and `\\` inside. A field the template left out
 * (its value was empty) is absent from the result. Throws an AuditLineError (code
 * 'EAUDITLINE') for anything else, including a field named twice: no line this library writes
 * has one, so such a line is not one of its audit lines.
 */
export function parseAuditLine(line: string): Record<string, string> {
  if (!line.startsWith(AUDIT_PREFIX)) throw new AuditLineError(`it does not start with "${AUDIT_PREFIX}"`, line, 0);
  if (!hasNoControls(line)) {
    // renderTemplate escapes every control, separator and bidi character in a value
    let at = 0;
    while (hasNoControls(line[at]!)) at++;
    throw new AuditLineError(`it holds the character ${safeText(line[at]!)}, which no audit line holds`, line, at);
  }
  const fields: Record<string, string> = {};
  let i = AUDIT_PREFIX.length;
  for (;;) {
    const name = /^[A-Za-z0-9_]+/.exec(line.slice(i))?.[0];
    if (!name) throw new AuditLineError('a field name (letters, digits and "_") was expected', line, i);
    if (line[i + name.length] !== '=') throw new AuditLineError(`"=" was expected after the field name "${name}"`, line, i + name.length);
    if (Object.hasOwn(fields, name)) throw new AuditLineError(`the field "${name}" appears twice`, line, i);
    i += name.length + 1;
    let end: number;
    if (line[i] === '"') {
      end = i + 1;
      while (end < line.length && line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      if (end >= line.length) throw new AuditLineError(`the quoted value of "${name}" is not closed`, line, i);
      end += 1;
    } else {
      end = line.indexOf(',', i);
      if (end < 0) end = line.length;
      const bad = /[="\\]/.exec(line.slice(i, end));
      if (bad) throw new AuditLineError(`the value of "${name}" holds a bare "${bad[0]}" (it must be quoted)`, line, i + bad.index);
      if (/^\s|\s$/.test(line.slice(i, end))) throw new AuditLineError(`the value of "${name}" starts or ends with white space (it must be quoted)`, line, i);
    }
    fields[name] = unquoteValue(line.slice(i, end));
    i = end;
    if (i === line.length) return fields;
    if (!line.startsWith(', ', i)) throw new AuditLineError(`", " was expected after the value of "${name}"`, line, i);
    i += 2;
  }
}
