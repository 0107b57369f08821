import { describe, expect, test } from 'vitest';
import { DEFAULT_AUDIT_TEMPLATE, parseTemplate, renderTemplate, TemplateError, type TemplateFields } from '../lib/audit/index.js';

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
    let error: unknown;
    try {
      parseTemplate(template);
    } catch (e) {
      error = e;
    }
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
      { kind: 'if-set', name: 'c', value: [{ kind: 'text', text: 'd' }, { kind: 'field', name: 'e' }] },
      { kind: 'text', text: ' ' },
      { kind: 'if-empty', name: 'f', value: [{ kind: 'text', text: 'g' }] },
      { kind: 'text', text: '$' },
    ]);
  });
});
