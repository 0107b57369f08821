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
 * 'ETEMPLATE'), renderTemplate expands.
 */

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
  throw new TemplateError(
    `bad name: "${source.slice(start, end)}" (a name is letters, digits and "_", then "?" or ":" and a value)`,
    source,
    j,
  );
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

function render(nodes: readonly TemplateNode[], fields: TemplateFields): string {
  let out = '';
  for (const node of nodes) {
    switch (node.kind) {
      case 'text':
        out += node.text;
        break;
      case 'field':
        out += fieldValue(fields, node.name);
        break;
      case 'if-set':
        if (fieldValue(fields, node.name) !== '') out += render(node.value, fields);
        break;
      case 'if-empty':
        if (fieldValue(fields, node.name) === '') out += render(node.value, fields);
        break;
    }
  }
  return out;
}

/** Expands a template (text, or parsed by parseTemplate) with the given fields. */
export function renderTemplate(template: string | readonly TemplateNode[], fields: TemplateFields): string {
  return render(typeof template === 'string' ? parseTemplate(template) : template, fields);
}
