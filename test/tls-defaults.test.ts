/**
 * The global protocol and cipher options (Postfix's smtp_tls_protocols, smtp_tls_mandatory_protocols,
 * smtp_tls_ciphers, smtp_tls_mandatory_ciphers, smtp_tls_exclude_ciphers,
 * smtp_tls_mandatory_exclude_ciphers) and match options (smtp_tls_fingerprint_cert_match,
 * smtp_tls_verify_cert_match, smtp_tls_secure_cert_match): which applies at which level, what an
 * entry's own attribute does to them (policy_create(), set_cipher_grade()), the errors for bad
 * values, and the effect on a real handshake with a peer that speaks no newer than TLS 1.2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { tlsPolicy, type TlsPolicyError, type TlsPolicyOptions } from '../lib/index.js';
import { certMatchFor, withTlsDefaults, type TlsDefaults } from '../lib/policy/defaults.js';
import type { Level, Policy } from '../lib/types.js';
import { makePki, tlsaData, type Issued, type Pki } from './helpers/pki.js';
import { loopbackBlock, startPeer, type Peer } from './helpers/smtp-peer.js';
import { thrown } from './helpers/thrown.js';

const defaults: TlsDefaults = {
  protocols: ['>=TLSv1'],
  mandatoryProtocols: ['>=TLSv1.2'],
  ciphers: 'medium',
  mandatoryCiphers: 'high',
  exclude: ['RC4'],
  mandatoryExclude: ['3DES'],
};
const opportunistic = { protocols: ['>=TLSv1'], ciphers: 'medium', exclude: ['RC4'] };
const mandatory = { protocols: ['>=TLSv1.2'], ciphers: 'high', exclude: ['RC4', '3DES'] };

describe('withTlsDefaults: which global setting applies (pure)', () => {
  it.each<[Level, object]>([
    ['may', opportunistic],
    ['encrypt', mandatory],
    ['dane', mandatory],
    ['dane-only', mandatory],
    ['fingerprint', mandatory],
    ['verify', mandatory],
    ['secure', mandatory],
  ])('level %s gets %j', (level, expected) => {
    expect(withTlsDefaults({ level, source: 't' }, defaults)).toEqual({ level, source: 't', ...expected });
  });

  it.each<[string, Policy, TlsDefaults | undefined, Policy]>([
    ['none uses no TLS: untouched', { level: 'none', source: 't' }, defaults, { level: 'none', source: 't' }],
    ['no global settings: untouched', { level: 'encrypt', source: 't' }, undefined, { level: 'encrypt', source: 't' }],
    [
      "an entry's protocols and ciphers win over the globals",
      { level: 'encrypt', source: 't', protocols: ['TLSv1.3'], ciphers: 'medium' },
      defaults,
      { level: 'encrypt', source: 't', protocols: ['TLSv1.3'], ciphers: 'medium', exclude: ['RC4', '3DES'] },
    ],
    [
      "an entry's exclude replaces both global exclusion lists (set_cipher_grade())",
      { level: 'verify', source: 't', exclude: ['CAMELLIA'] },
      defaults,
      { level: 'verify', source: 't', exclude: ['CAMELLIA'], protocols: ['>=TLSv1.2'], ciphers: 'high' },
    ],
    [
      'only a mandatory setting given: may keeps Node defaults',
      { level: 'may', source: 't' },
      { mandatoryProtocols: ['TLSv1.3'], mandatoryExclude: ['RC4'] },
      { level: 'may', source: 't' },
    ],
    [
      'only the global exclusion at may',
      { level: 'may', source: 't' },
      { exclude: ['RC4'], mandatoryExclude: ['3DES'] },
      { level: 'may', source: 't', exclude: ['RC4'] },
    ],
  ])('%s', (_, policy, given, expected) => {
    expect(withTlsDefaults(policy, given)).toEqual(expected);
  });

  it('returns the same policy object when nothing is filled in', () => {
    const p: Policy = { level: 'encrypt', source: 't', protocols: ['TLSv1.3'], ciphers: 'high', exclude: ['RC4'] };
    expect(withTlsDefaults(p, defaults)).toBe(p);
  });
});

describe('certMatchFor: the match a level uses (pure)', () => {
  const global = { fingerprint: ['AB:CD'], verify: ['mx.example.net'], secure: ['.example.net'] };
  it.each<[Level, string[] | undefined, typeof global | undefined, readonly string[]]>([
    ['verify', undefined, undefined, ['hostname']],
    ['secure', undefined, undefined, ['nexthop', 'dot-nexthop']],
    ['fingerprint', undefined, undefined, []],
    ['verify', undefined, global, ['mx.example.net']],
    ['secure', undefined, global, ['.example.net']],
    ['fingerprint', undefined, global, ['AB:CD']],
    ['verify', [], global, ['mx.example.net']],
    ['verify', ['nexthop'], global, ['nexthop']],
    ['fingerprint', ['EF:01'], global, ['EF:01']],
    ['encrypt', undefined, global, []],
    ['dane', ['nexthop'], global, ['nexthop']],
  ])('%s, entry %j, global %j -> %j', (level, match, certMatch, expected) => {
    expect(certMatchFor(level, match, certMatch)).toEqual(expected);
  });
});

describe('the options are checked as the table attributes are', () => {
  const message = (options: TlsPolicyOptions) => (thrown(() => tlsPolicy(options)) as TlsPolicyError).message;
  it.each<[TlsPolicyOptions, string]>([
    [
      { tlsProtocols: 'TLSv9' },
      'option tlsProtocols: unknown protocol "TLSv9" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, with an optional "!", or ">=" / "<=" and a version)',
    ],
    [{ tlsMandatoryCiphers: 'strong' }, 'option tlsMandatoryCiphers: unknown cipher grade "strong" (expected one of high, medium, low, export, null)'],
    [{ tlsExcludeCiphers: ['!RC4'] }, 'option tlsExcludeCiphers: invalid cipher exclusion "!RC4" (no leading "!", "+", "-" or "@")'],
    [{ tlsCiphers: 7 as never }, 'option tlsCiphers must be a string'],
    [{ tlsMandatoryProtocols: [1] as never }, 'option tlsMandatoryProtocols must be a string or an array of strings'],
    [{ fingerprintCertMatch: 'zz' }, 'option fingerprintCertMatch: malformed fingerprint "zz" (expected hex digit pairs, optionally separated by colons)'],
    [{ fingerprintCertMatch: '' }, 'option fingerprintCertMatch has an empty value'],
    [{ fingerprintCertMatch: [] }, 'option fingerprintCertMatch: level "fingerprint" needs at least one digest'],
    [
      { verifyCertMatch: 'bad..name' },
      'option verifyCertMatch: invalid match "bad..name": empty label (expected hostname, nexthop, dot-nexthop, a domain or .domain)',
    ],
    [
      { level: 'FINGERPRINT' as never },
      "level fingerprint needs option fingerprintCertMatch: the digest of the server's certificate or public key (smtp_tls_fingerprint_cert_match)",
    ],
  ])('%j', (options, expected) => {
    expect(message(options)).toBe(expected);
    expect((thrown(() => tlsPolicy(options)) as TlsPolicyError).code).toBe('ECONFIG');
  });
  it('good values are accepted in either form', () => {
    expect(() =>
      tlsPolicy({ tlsProtocols: '!SSLv2, !SSLv3', tlsMandatoryProtocols: ['>=TLSv1.2'], tlsCiphers: 'medium', tlsExcludeCiphers: 'RC4 aNULL' }),
    ).not.toThrow();
  });
});

describe('against a peer that speaks TLS 1.2 at most', () => {
  let pki: Pki;
  let peer: Peer;
  let cert: Issued;
  const ip = loopbackBlock();
  beforeAll(async () => {
    pki = await makePki();
    cert = await pki.leaf(['old.test']);
    peer = await startPeer({ host: ip(2), port: 0, behaviour: 'starttls', cert: cert.chainPem, key: cert.keyPem, maxVersion: 'TLSv1.2' });
  });
  afterAll(async () => {
    await peer?.close();
    pki?.close();
  });

  async function send(options: TlsPolicyOptions) {
    const transport = nodemailer.createTransport(tlsPolicy({ relay: `[${peer.host}]:${peer.port}`, connectionReuse: false, ...options }));
    const mailsBefore = peer.events.filter((e) => e.command === 'MAIL').length;
    try {
      const info = await transport.sendMail({ from: 's@origin.test', to: 'u@old.test', text: 'x' });
      return { info, error: undefined, mails: peer.events.filter((e) => e.command === 'MAIL').slice(mailsBefore) };
    } catch (error) {
      return { info: undefined, error: error as TlsPolicyError, mails: peer.events.filter((e) => e.command === 'MAIL').slice(mailsBefore) };
    } finally {
      transport.close();
    }
  }

  it('encrypt with tlsMandatoryProtocols >=TLSv1.3: the handshake fails and no MAIL FROM is sent', async () => {
    const { error, mails } = await send({ level: 'encrypt', tlsMandatoryProtocols: '>=TLSv1.3' });
    expect(error?.code).toBe('ETLS');
    expect(error?.message).toMatch(/level encrypt/);
    expect(mails).toEqual([]);
  });
  it('encrypt with only tlsProtocols >=TLSv1.3 (the opportunistic setting): TLS 1.2, delivered inside TLS', async () => {
    const { info, error, mails } = await send({ level: 'encrypt', tlsProtocols: '>=TLSv1.3' });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.attempts[0]?.audit.protocol).toBe('TLSv1.2');
    expect(mails.map((m) => m.secure)).toEqual([true]);
  });
  it("an entry's protocols attribute wins over tlsMandatoryProtocols", async () => {
    const { info, error } = await send({
      level: 'may',
      tlsMandatoryProtocols: '>=TLSv1.3',
      policy: { [`[${peer.host}]:${peer.port}`]: { level: 'encrypt', protocols: '>=TLSv1.2' } },
    });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.attempts[0]?.audit).toMatchObject({ level: 'encrypt', protocol: 'TLSv1.2' });
  });
  it('may with tlsMandatoryProtocols >=TLSv1.3: the mandatory setting does not apply; TLS 1.2', async () => {
    const { info, error } = await send({ level: 'may', tlsMandatoryProtocols: '>=TLSv1.3' });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.attempts[0]?.audit.protocol).toBe('TLSv1.2');
  });

  it("level fingerprint with fingerprintCertMatch: the pinned certificate's digest delivers, no table needed", async () => {
    const digest = tlsaData(cert.der, 0, 1).match(/../g)!.join(':');
    const { info, error, mails } = await send({ level: 'fingerprint', fingerprintCertMatch: digest });
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.attempts[0]?.audit).toMatchObject({ level: 'fingerprint', auth: 'Verified' });
    expect(mails.map((m) => m.secure)).toEqual([true]);
  });
  it('level fingerprint with another digest: refused before MAIL FROM', async () => {
    const { error, mails } = await send({ level: 'fingerprint', fingerprintCertMatch: 'AB:'.repeat(31) + 'AB' });
    expect(error?.code).toBe('ETLS');
    expect(error?.message).toMatch(/level fingerprint/);
    expect(mails).toEqual([]);
  });
  it('verifyCertMatch names the certificate a relay given by address must carry; the default (hostname) would not match', async () => {
    const byDefault = await send({ level: 'verify', caFile: pki.caFile });
    expect(byDefault.error?.code).toBe('ETLS');
    expect(byDefault.mails).toEqual([]);
    const named = await send({ level: 'verify', caFile: pki.caFile, verifyCertMatch: 'old.test' });
    expect(named.error).toBeUndefined();
    expect(named.info?.deliveries[0]?.attempts[0]?.audit).toMatchObject({ level: 'verify', auth: 'Verified' });
  });
  it("an entry's match wins over verifyCertMatch", async () => {
    const { error, mails } = await send({
      level: 'verify',
      caFile: pki.caFile,
      verifyCertMatch: 'old.test',
      policy: { [`[${peer.host}]:${peer.port}`]: { level: 'verify', match: 'other.test' } },
    });
    expect(error?.code).toBe('ETLS');
    expect(mails).toEqual([]);
  });
});

describe('against a peer that speaks TLS 1.1 at most: protocols below TLS 1.2 lower the security level at may and encrypt only', () => {
  let pki: Pki;
  let peer: Peer;
  const ip = loopbackBlock();
  beforeAll(async () => {
    pki = await makePki();
    const cert = await pki.leaf(['older.test']);
    // The peer itself needs security level 0 to speak TLS 1.1 under OpenSSL 3.
    peer = await startPeer({
      host: ip(2),
      port: 0,
      behaviour: 'starttls',
      cert: cert.chainPem,
      key: cert.keyPem,
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
  });
  afterAll(async () => {
    await peer?.close();
    pki?.close();
  });

  async function send(options: TlsPolicyOptions, queuedAt?: number) {
    const transport = nodemailer.createTransport(tlsPolicy({ relay: `[${peer.host}]:${peer.port}`, connectionReuse: false, ...options }));
    const mailsBefore = peer.events.filter((e) => e.command === 'MAIL').length;
    const mails = () => peer.events.filter((e) => e.command === 'MAIL').slice(mailsBefore);
    try {
      const info = await transport.sendMail({ from: 's@origin.test', to: 'u@older.test', text: 'x', ...(queuedAt ? { queuedAt } : {}) } as never);
      return { info, error: undefined, mails: mails() };
    } catch (error) {
      return { info: undefined, error: error as TlsPolicyError, mails: mails() };
    } finally {
      transport.close();
    }
  }

  it('may without a protocols setting, as before: a fresh message is deferred (no shared version), an older one goes in cleartext', async () => {
    const fresh = await send({ level: 'may' });
    expect(fresh.error).toMatchObject({ code: 'ETLS', temporary: true });
    expect(fresh.error?.message).toMatch(/TLS handshake failed: .*protocol version.*; no cleartext retry before the message is 300 s old/);
    expect(fresh.mails).toEqual([]);
    const old = await send({ level: 'may' }, Date.now() - 3_600_000);
    expect(old.error).toBeUndefined();
    expect(old.info?.deliveries[0]?.attempts.map((a) => a.audit.auth)).toEqual(['', 'Cleartext']);
    expect(old.mails.map((m) => m.secure)).toEqual([false]);
  });
  it.each<[string, TlsPolicyOptions]>([
    ['may, tlsProtocols >=TLSv1', { level: 'may', tlsProtocols: '>=TLSv1' }],
    ["may, Postfix's legacy !SSLv2:!SSLv3", { level: 'may', tlsProtocols: '!SSLv2:!SSLv3' }],
    ['encrypt, tlsMandatoryProtocols >=TLSv1.1', { level: 'encrypt', tlsMandatoryProtocols: '>=TLSv1.1' }],
    ['an encrypt entry with protocols=>=TLSv1 and a cipher grade', { level: 'may', policy: 'PEER encrypt protocols=>=TLSv1 ciphers=high exclude=3DES' }],
  ])('%s: delivered inside TLS 1.1', async (_, options) => {
    const given = typeof options.policy === 'string' ? { ...options, policy: options.policy.replace('PEER', `[${peer.host}]:${peer.port}`) } : options;
    const { info, error, mails } = await send(given);
    expect(error).toBeUndefined();
    expect(info?.deliveries[0]?.attempts.map((a) => [a.audit.protocol, a.audit.auth])).toEqual([['TLSv1.1', 'Untrusted']]);
    expect(mails.map((m) => m.secure)).toEqual([true]);
  });
  it('encrypt without a protocols setting: the handshake fails and no MAIL FROM is sent', async () => {
    const { error, mails } = await send({ level: 'encrypt' });
    expect(error).toMatchObject({ code: 'ETLS', temporary: true });
    expect(mails).toEqual([]);
  });
  it('encrypt with >=TLSv1.2: no version below TLS 1.2 is offered, the security level stays, the handshake fails', async () => {
    const { error, mails } = await send({ level: 'encrypt', tlsMandatoryProtocols: '>=TLSv1.2' });
    expect(error).toMatchObject({ code: 'ETLS', temporary: true });
    expect(mails).toEqual([]);
  });
});

describe('protocols below TLS 1.2 at a level that authenticates are refused when the transport is made', () => {
  it.each<[string, TlsPolicyOptions, string, string]>([
    [
      'a verify entry',
      { policy: 'example.com verify protocols=>=TLSv1' },
      'EPOLICY',
      '<text>:1: protocols ">=TLSv1" for example.com allows TLSv1 and TLSv1.1, which OpenSSL 3 negotiates only at security level 0, and level "verify" never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destination level encrypt',
    ],
    [
      "a secure entry with Postfix's legacy syntax",
      { policy: { 'example.com': { level: 'secure', protocols: '!SSLv2:!SSLv3' } } },
      'EPOLICY',
      '<object>:1: protocols "!SSLv2:!SSLv3" for example.com allows TLSv1 and TLSv1.1, which OpenSSL 3 negotiates only at security level 0, and level "secure" never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destination level encrypt',
    ],
    [
      'tlsMandatoryProtocols under an authenticated level option',
      { level: 'dane', tlsMandatoryProtocols: '>=TLSv1.1' },
      'ECONFIG',
      'option tlsMandatoryProtocols ">=TLSv1.1" allows TLSv1.1, which OpenSSL 3 negotiates only at security level 0, and it applies to level "dane" (the level option), which never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destinations that need the old versions entries at encrypt with protocols=>=TLSv1',
    ],
    [
      'tlsMandatoryProtocols and a fingerprint entry without protocols of its own',
      { level: 'encrypt', tlsMandatoryProtocols: ['!SSLv2', '!SSLv3'], policy: `[mx.example.com] fingerprint match=${'AB:'.repeat(31)}AB` },
      'ECONFIG',
      'option tlsMandatoryProtocols "!SSLv2, !SSLv3" allows TLSv1 and TLSv1.1, which OpenSSL 3 negotiates only at security level 0, and it applies to level "fingerprint" (the entry for [mx.example.com], <text>:1), which never lowers it (only may and encrypt do): write >=TLSv1.2, or give the destinations that need the old versions entries at encrypt with protocols=>=TLSv1',
    ],
  ])('%s', (_, options, code, message) => {
    const error = thrown(() => tlsPolicy(options)) as TlsPolicyError;
    expect(error.message).toBe(message);
    expect(error.code).toBe(code);
    expect(error.temporary).toBe(false);
  });
  it.each<[string, TlsPolicyOptions]>([
    ['tlsProtocols applies at may only', { level: 'verify', tlsProtocols: '>=TLSv1' }],
    ['tlsMandatoryProtocols where only may and encrypt use it', { level: 'encrypt', tlsMandatoryProtocols: '>=TLSv1', policy: 'example.com may' }],
    [
      'tlsMandatoryProtocols beside a verify entry with protocols of its own',
      { level: 'may', tlsMandatoryProtocols: '>=TLSv1', policy: 'example.com verify protocols=>=TLSv1.2' },
    ],
    ['a verify entry with protocols from TLS 1.2', { policy: 'example.com verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1' }],
  ])('accepted: %s', (_, options) => {
    expect(() => tlsPolicy(options)).not.toThrow();
  });
});
