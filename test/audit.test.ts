import { describe, expect, test } from 'vitest';
import {
  AuditLineError,
  DEFAULT_AUDIT_TEMPLATE,
  parseAuditLine,
  parseTemplate,
  renderTemplate,
  reportedPolicyFields,
  TemplateError,
  type TemplateFields,
} from '../lib/audit/index.js';
import { escapeControls, hasNoControls, replyLine, safeText } from '../lib/text/index.js';
import { thrown } from './helpers/thrown.js';

const fields: TemplateFields = {
  relay: 'mx1.example.net[192.0.2.1]:25',
  auth: 'Verified',
  level: 'secure',
  policy: '',
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_256_GCM_SHA384',
  fallback_reason: '',
  port: 25,
  zero: 0,
  missing: undefined,
};

describe('renderTemplate', () => {
  test.each([
    { why: 'plain text', template: 'no expansions here', want: 'no expansions here' },
    { why: 'empty template', template: '', want: '' },
    { why: '$name', template: 'relay=$relay end', want: 'relay=mx1.example.net[192.0.2.1]:25 end' },
    { why: '$name stops at a non-name character', template: '$level-$protocol.', want: 'secure-TLSv1.3.' },
    { why: '$name takes letters, digits and _', template: '$fallback_reason|$port_x|$port|', want: '||25|' },
    { why: 'a name may be all digits, as in Postfix', template: '$5 ${25}', want: ' ' },
    { why: '${name}', template: 'x${level}y', want: 'xsecurey' },
    { why: '$(name), as Postfix accepts', template: 'x$(level)y', want: 'xsecurey' },
    { why: 'a number', template: 'port=${port} zero=${zero}', want: 'port=25 zero=0' },
    { why: 'unknown and undefined names expand to nothing', template: '[${nosuch}][$nosuch][${missing}]', want: '[][][]' },
    { why: '${name?value} with a non-empty field', template: '${auth?auth=yes}', want: 'auth=yes' },
    { why: '${name?value} with an empty field', template: '${policy?policy=yes}', want: '' },
    { why: '${name?value} with an unknown field', template: '${nosuch?yes}', want: '' },
    { why: '${name?value} with the number 0 (non-empty)', template: '${zero?set}', want: 'set' },
    { why: '${name:value} with an empty field', template: '${policy:no policy}', want: 'no policy' },
    { why: '${name:value} with an unknown field', template: '${nosuch:default}', want: 'default' },
    { why: '${name:value} with a non-empty field', template: '${auth:none}', want: '' },
    { why: 'empty value', template: '<${auth?}${policy:}>', want: '<>' },
    { why: 'nested expansion in a value', template: '${auth?, auth=${auth}}', want: ', auth=Verified' },
    { why: 'nested $name in a value', template: '${level?level=$level!}', want: 'level=secure!' },
    { why: 'nested conditional in a value', template: '${auth?[${policy?p=${policy}}${policy:no policy}]}', want: '[no policy]' },
    { why: 'deep nesting', template: '${auth?${level?${protocol?${cipher?<${cipher}>}}}}', want: '<TLS_AES_256_GCM_SHA384>' },
    { why: 'an unused value is not expanded', template: '${policy?${auth}}', want: '' },
    { why: 'balanced braces in a value stay literal', template: '${auth?{x}}', want: '{x}' },
    { why: 'colons and question marks in a value', template: '${auth?a:b?c}', want: 'a:b?c' },
    { why: '$$ is a literal $', template: 'cost: $$5 and $$$level', want: 'cost: $5 and $secure' },
    { why: '$$ before a brace is not an expansion', template: '$${level}', want: '${level}' },
    { why: '$$ in a value', template: '${auth?$$${auth}}', want: '$Verified' },
    { why: 'braces outside expansions are literal', template: '{relay} }', want: '{relay} }' },
  ])('$why: $template', ({ template, want }) => {
    expect(renderTemplate(template, fields)).toBe(want);
    expect(renderTemplate(parseTemplate(template), fields)).toBe(want);
  });
});

describe('DEFAULT_AUDIT_TEMPLATE', () => {
  test('is the proposal example with fallback_reason', () => {
    expect(DEFAULT_AUDIT_TEMPLATE).toBe(
      'tlsaudit: relay=${relay}${auth?, auth=${auth}}${level?, level=${level}}${policy?, policy=${policy}}' +
        '${protocol?, protocol=${protocol}}${cipher?, cipher=${cipher}}${fallback_reason?, fallback_reason=${fallback_reason}}',
    );
  });

  test.each([
    {
      why: 'authenticated delivery',
      fields,
      want: 'tlsaudit: relay=mx1.example.net[192.0.2.1]:25, auth=Verified, level=secure, protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384',
    },
    {
      why: 'after a fallback',
      fields: { ...fields, auth: 'Untrusted', level: 'encrypt', policy: 'dane', fallback_reason: 'no usable TLSA records' },
      want:
        'tlsaudit: relay=mx1.example.net[192.0.2.1]:25, auth=Untrusted, level=encrypt, policy=dane, protocol=TLSv1.3, ' +
        'cipher=TLS_AES_256_GCM_SHA384, fallback_reason=no usable TLSA records',
    },
    {
      why: 'cleartext',
      fields: { relay: 'mx.example.org[198.51.100.7]:25', auth: 'Cleartext', level: 'may' },
      want: 'tlsaudit: relay=mx.example.org[198.51.100.7]:25, auth=Cleartext, level=may',
    },
    { why: 'no fields', fields: {}, want: 'tlsaudit: relay=' },
  ])('$why', ({ fields: f, want }) => {
    expect(renderTemplate(DEFAULT_AUDIT_TEMPLATE, f)).toBe(want);
  });
});

describe('parseTemplate errors', () => {
  test.each([
    { template: 'tlsaudit: ${relay', offset: 10, message: 'unclosed "${"' },
    { template: '${auth?, auth=${auth}', offset: 0, message: 'unclosed "${"' },
    { template: 'x $(relay', offset: 2, message: 'unclosed "$("' },
    { template: '${}', offset: 2, message: 'empty name in "${}"' },
    { template: '${ relay}', offset: 2, message: 'bad name: " relay" (a name is letters, digits and "_")' },
    { template: '${re-lay}', offset: 4, message: 'bad name: "re-lay" (a name is letters, digits and "_", then "?" or ":" and a value)' },
    { template: '${?x}', offset: 2, message: 'bad name: "?x" (a name is letters, digits and "_")' },
    { template: '${auth?${}}', offset: 9, message: 'empty name in "${}"' },
    { template: '${auth?${bad name}}', offset: 12, message: 'bad name: "bad name" (a name is letters, digits and "_", then "?" or ":" and a value)' },
    { template: 'cost: $.50', offset: 6, message: '"$" is followed by ".", not a name (write "$$" for a literal "$")' },
    { template: 'cost: $-', offset: 6, message: '"$" is followed by "-", not a name (write "$$" for a literal "$")' },
    { template: 'trailing $', offset: 9, message: 'a "$" ends the text (write "$$" for a literal "$")' },
    { template: '${auth?x$}', offset: 8, message: 'a "$" ends the text (write "$$" for a literal "$")' },
  ])('$template', ({ template, offset, message }) => {
    const error = thrown(() => parseTemplate(template));
    expect(error).toBeInstanceOf(TemplateError);
    expect(error).toMatchObject({
      code: 'ETEMPLATE',
      offset,
      template,
      message: `audit template error at offset ${offset}: ${message}: ${JSON.stringify(template)}`,
    });
    expect(() => renderTemplate(template, fields)).toThrow(TemplateError);
  });
});

describe('parseTemplate', () => {
  test('gives the parsed form', () => {
    expect(parseTemplate('a $b ${c?d${e}} ${f:g}$$')).toEqual([
      { kind: 'text', text: 'a ' },
      { kind: 'field', name: 'b' },
      { kind: 'text', text: ' ' },
      {
        kind: 'if-set',
        name: 'c',
        value: [
          { kind: 'text', text: 'd' },
          { kind: 'field', name: 'e' },
        ],
      },
      { kind: 'text', text: ' ' },
      { kind: 'if-empty', name: 'f', value: [{ kind: 'text', text: 'g' }] },
      { kind: 'text', text: '$' },
    ]);
  });
});

/** Values a peer can put into a field (a STARTTLS refusal, certificate names inside a reason). */
const HOSTILE: Array<[string, string]> = [
  ['a forged field', ', auth=Verified'],
  [
    'a forged field, level and a forged line after a CR',
    '454 4.7.0 busy, auth=Verified, level=secure\rtlsaudit: relay=mx.bank.example[192.0.2.1]:25, auth=Verified',
  ],
  ['a forged line after an LF', 'busy\ntlsaudit: relay=mx.bank.example[192.0.2.1]:25, auth=Verified'],
  ['CRLF', 'a\r\nb'],
  ['ESC, CSI and OSC', '\x1b[2J\x1b[3J\x1b[H\x1b]0;title\x07'],
  ['C1 CSI and NEL', '\x9b2J\x85next'],
  ['bidi overrides and isolates', '\u202eVerified\u202c \u2067x\u2069 \u200f'],
  ['line and paragraph separators, BOM', 'a\u2028b\u2029c\ufeff'],
  ['NUL, TAB, DEL', 'a\x00b\tc\x7f'],
  ['quotes', 'say "hi", "auth=Verified"'],
  ['a lone quote', '"'],
  ['a quote that would close early', '",auth=Verified, level="secure'],
  ['backslashes', 'back\\slash \\" \\'],
  ['a literal escape, not a line feed', '\\x0a'],
  ['white space at either end', ' padded '],
  ['an equals sign', 'a=b'],
  ['the prefix itself', 'tlsaudit: relay=x'],
  ['dollar signs, not expanded', '$relay ${auth} $$'],
];

/** The default template's fields. */
const FIELDS = ['relay', 'auth', 'level', 'policy', 'protocol', 'cipher', 'fallback_reason'] as const;

describe('renderTemplate escapes controls in values; with quoteValues no value reads as a field', () => {
  test.each(HOSTILE)('%s: never more than one line, never a control', (_why, value) => {
    for (const options of [{}, { quoteValues: true }]) {
      const line = renderTemplate(DEFAULT_AUDIT_TEMPLATE, { ...fields, fallback_reason: value }, options);
      expect(hasNoControls(line)).toBe(true);
      expect(line).not.toMatch(/[\r\n\x1b\x07\u2028\u202e]/);
    }
  });

  test('an unquoted value can read as a field; a quoted one cannot', () => {
    const value = 'busy, auth=Verified';
    const plain = renderTemplate(DEFAULT_AUDIT_TEMPLATE, { relay: 'mx[192.0.2.1]:25', auth: 'Cleartext', fallback_reason: value });
    expect(plain).toBe('tlsaudit: relay=mx[192.0.2.1]:25, auth=Cleartext, fallback_reason=busy, auth=Verified');
    expect(() => parseAuditLine(plain)).toThrow(/the field "auth" appears twice/);
    const quoted = renderTemplate(DEFAULT_AUDIT_TEMPLATE, { relay: 'mx[192.0.2.1]:25', auth: 'Cleartext', fallback_reason: value }, { quoteValues: true });
    expect(quoted).toBe('tlsaudit: relay=mx[192.0.2.1]:25, auth=Cleartext, fallback_reason="busy, auth=Verified"');
    expect(parseAuditLine(quoted)).toEqual({ relay: 'mx[192.0.2.1]:25', auth: 'Cleartext', fallback_reason: value });
  });

  test('quoteValues leaves plain values and the template text as they are', () => {
    expect(renderTemplate(DEFAULT_AUDIT_TEMPLATE, fields, { quoteValues: true })).toBe(renderTemplate(DEFAULT_AUDIT_TEMPLATE, fields));
    expect(renderTemplate('a=$x, b="${y}"', { x: '1', y: 'p q' }, { quoteValues: true })).toBe('a=1, b="p q"');
    // conditionals test the value itself: an empty value stays empty, quoted or not
    expect(renderTemplate('${policy?p=${policy}}${policy:none}', { policy: '' }, { quoteValues: true })).toBe('none');
  });
});

describe('parseAuditLine reads an audit line back into its record, field by field', () => {
  // Each hostile value in every field in turn, raw and as the session gathers it (safeText).
  const rows = HOSTILE.flatMap(([why, value]) =>
    FIELDS.flatMap((field) => [
      { why: `${why} in ${field}`, field, value },
      { why: `${why} in ${field}, gathered safe`, field, value: safeText(value) },
    ]),
  );
  test.each(rows)('$why', ({ field, value }) => {
    const record: TemplateFields = { ...fields, policy: 'dane', fallback_reason: 'no usable TLSA records', [field]: value };
    const line = renderTemplate(DEFAULT_AUDIT_TEMPLATE, record, { quoteValues: true });
    expect(line.split(/\r\n|[\r\n\u2028\u2029\x85]/)).toHaveLength(1);
    const parsed = parseAuditLine(line);
    for (const name of FIELDS) {
      // the record's value, control-escaped (a no-op on a value gathered safe)
      const want = escapeControls(String(record[name] ?? ''));
      expect(parsed[name] ?? '', name).toBe(want);
    }
    expect(Object.keys(parsed).sort()).toEqual(FIELDS.filter((n) => String(record[n] ?? '') !== '').sort());
    if (value === safeText(value)) expect(parsed[field]).toBe(value);
  });

  test('a reply gathered with replyLine round-trips exactly', () => {
    const reply = replyLine('454-4.7.0 busy, auth=Verified\r\n454 level=secure\rtlsaudit: x="y"')!;
    const line = renderTemplate(
      DEFAULT_AUDIT_TEMPLATE,
      { relay: 'mx[192.0.2.1]:25', auth: 'Cleartext', level: 'may', fallback_reason: reply },
      { quoteValues: true },
    );
    expect(parseAuditLine(line)).toEqual({ relay: 'mx[192.0.2.1]:25', auth: 'Cleartext', level: 'may', fallback_reason: reply });
  });

  test.each([
    { line: 'relay=x', offset: 0, message: 'it does not start with "tlsaudit: "' },
    { line: 'tlsaudit: ', offset: 10, message: 'a field name (letters, digits and "_") was expected' },
    { line: 'tlsaudit: relay', offset: 15, message: '"=" was expected after the field name "relay"' },
    { line: 'tlsaudit: relay=x, auth=a, auth=b', offset: 27, message: 'the field "auth" appears twice' },
    { line: 'tlsaudit: relay="x, auth=y', offset: 16, message: 'the quoted value of "relay" is not closed' },
    { line: 'tlsaudit: relay="x\\"', offset: 16, message: 'the quoted value of "relay" is not closed' },
    { line: 'tlsaudit: relay=a=b', offset: 17, message: 'the value of "relay" holds a bare "=" (it must be quoted)' },
    { line: 'tlsaudit: relay=a"b', offset: 17, message: 'the value of "relay" holds a bare """ (it must be quoted)' },
    { line: 'tlsaudit: relay=a\\b', offset: 17, message: 'the value of "relay" holds a bare "\\" (it must be quoted)' },
    { line: 'tlsaudit: relay=a , auth=b', offset: 16, message: 'the value of "relay" starts or ends with white space (it must be quoted)' },
    { line: 'tlsaudit: relay=a,auth=b', offset: 17, message: '", " was expected after the value of "relay"' },
    { line: 'tlsaudit: relay="a"b', offset: 19, message: '", " was expected after the value of "relay"' },
    { line: 'tlsaudit: relay=a\rtlsaudit: auth=Verified', offset: 17, message: 'it holds the character \\x0d, which no audit line holds' },
    { line: 'tlsaudit: relay=\u202ea', offset: 16, message: 'it holds the character \\u{202e}, which no audit line holds' },
  ])('$line: $message', ({ line, offset, message }) => {
    const error = thrown(() => parseAuditLine(line));
    expect(error).toBeInstanceOf(AuditLineError);
    expect(error).toMatchObject({ code: 'EAUDITLINE', offset, line, message: `audit line error at offset ${offset}: ${message}, in: ${safeText(line)}` });
    expect(hasNoControls((error as Error).message)).toBe(true);
  });

  test('reads the lines of the default template', () => {
    expect(parseAuditLine('tlsaudit: relay=')).toEqual({ relay: '' });
    expect(
      parseAuditLine(
        'tlsaudit: relay=mx1.example.net[192.0.2.1]:25, auth=Untrusted, level=encrypt, policy=dane, protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, fallback_reason=no usable TLSA records',
      ),
    ).toEqual({
      relay: 'mx1.example.net[192.0.2.1]:25',
      auth: 'Untrusted',
      level: 'encrypt',
      policy: 'dane',
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      fallback_reason: 'no usable TLSA records',
    });
    expect(parseAuditLine('tlsaudit: relay=x, fallback_reason="a \\"b\\" \\\\ c"')).toEqual({ relay: 'x', fallback_reason: 'a "b" \\ c' });
  });
});

describe("reportedPolicyFields: a policy source's attributes as audit fields", () => {
  test('every attribute, the repeatable ones joined with ", "', () => {
    expect(
      reportedPolicyFields({
        type: 'sts',
        domain: 'example.net',
        ttl: 604800,
        strings: ['version: STSv1', 'mode: enforce'],
        mxHostPatterns: ['mx1.example.net', '*.example.net'],
        failure: 'sts-webpki-invalid',
      }),
    ).toEqual({
      policy_domain: 'example.net',
      policy_ttl: 604800,
      policy_string: 'version: STSv1, mode: enforce',
      mx_host_pattern: 'mx1.example.net, *.example.net',
      policy_failure: 'sts-webpki-invalid',
    });
  });
  test('no attributes: every field empty', () => {
    expect(reportedPolicyFields(undefined)).toEqual({
      policy_domain: '',
      policy_ttl: '',
      policy_string: '',
      mx_host_pattern: '',
      policy_failure: '',
    });
    expect(reportedPolicyFields({ type: 'no-policy-found' })).toEqual({
      policy_domain: '',
      policy_ttl: '',
      policy_string: '',
      mx_host_pattern: '',
      policy_failure: '',
    });
  });
  test('in an audit line, a value with ", " is quoted and reads back whole', () => {
    const fields = reportedPolicyFields({ type: 'sts', strings: ['version: STSv1', 'mode: enforce'], mxHostPatterns: ['mx1.example.net', '*.example.net'] });
    const line = renderTemplate('tlsaudit: policy_domain=${policy_domain}, policy_string=${policy_string}, mx_host_pattern=${mx_host_pattern}', fields, {
      quoteValues: true,
    });
    expect(line).toBe('tlsaudit: policy_domain=, policy_string="version: STSv1, mode: enforce", mx_host_pattern="mx1.example.net, *.example.net"');
    expect(parseAuditLine(line)).toEqual({
      policy_domain: '',
      policy_string: 'version: STSv1, mode: enforce',
      mx_host_pattern: 'mx1.example.net, *.example.net',
    });
  });
});
