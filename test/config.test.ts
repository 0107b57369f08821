/**
 * A wrong option is an error, never silently ignored (`levle: 'secure'` once delivered at may,
 * Untrusted; keeping Nodemailer's `host` silently bypassed the smarthost): every unknown name is
 * refused with the nearest known one, and Nodemailer's own SMTP options say what to write instead.
 */
import { describe, expect, it } from 'vitest';
import { tlsPolicy, TlsPolicyError, type TlsPolicyOptions } from '../lib/index.js';

function thrown(options: Record<string, unknown>): TlsPolicyError | undefined {
  try {
    tlsPolicy(options as TlsPolicyOptions).close();
    return undefined;
  } catch (error) {
    return error as TlsPolicyError;
  }
}

describe('option names', () => {
  it.each([
    [{ levle: 'secure' }, 'unknown option "levle" (did you mean level?)'],
    [{ caFiles: '/x' }, 'unknown option "caFiles" (did you mean caFile?)'],
    [{ hostRequireTls: ['*'] }, 'unknown option "hostRequireTls" (did you mean hostsRequireTls?)'],
    [{ zzzzzz: 1 }, 'unknown option "zzzzzz"'],
    [
      { host: 'smtp.example.com' },
      "option host is Nodemailer's SMTP transport option, not this transport's: to send through a smarthost, write relay: 'host:port'",
    ],
    [{ secure: true }, 'write relay: { host, port: 465, secure: true }'],
    [{ requireTLS: true }, "write level: 'encrypt'"],
    [{ ignoreTLS: true }, "write level: 'none'"],
    [{ tls: { rejectUnauthorized: false } }, 'write caFile, certFile and keyFile'],
    [{ pool: true }, 'write connectionReuse'],
  ] as const)('%j is refused (ECONFIG, permanent) with what to write', (options, message) => {
    const error = thrown(options);
    expect(error).toBeInstanceOf(TlsPolicyError);
    expect(error?.code).toBe('ECONFIG');
    expect(error?.temporary).toBe(false);
    expect(error?.message).toContain(message);
  });
  it('every problem at once', () => {
    expect(thrown({ host: 'smtp.example.com', port: 587, levle: 'secure' })?.message).toMatch(
      /^option host is Nodemailer's .*; unknown option "levle" \(did you mean level\?\)$/,
    );
  });
  it('allowPlaintextAuth, the former name of allowCleartextAuth, is still accepted', () => {
    expect(thrown({ relay: 'smtp.example.com:587', auth: { user: 'u', pass: 'p' }, allowPlaintextAuth: true })).toBeUndefined();
  });
  it('the options of the README build a transport', () => {
    expect(
      thrown({
        level: 'may',
        relay: 'smtp.example.com:587',
        auth: { user: 'u', pass: 'p' },
        connectionReuse: { maxConnectionsPerKey: 2 },
        commandTimeout: 1000,
      }),
    ).toBeUndefined();
  });
});

describe('the resolver option: a wrong value is ECONFIG, naming it', () => {
  it.each([
    [{ dnssec: 'maybe' }, /^resolver\.dnssec must be 'validate', 'trust-ad' or 'off', got "maybe"$/],
    [{ trustAd: 'sometimes' }, /^option resolver: trustAd must be true, false or 'loopback', got "sometimes"$/],
    [{ servers: [] }, /^option resolver: DNS servers must be a non-empty array$/],
    [{ dnssec: 'validate', trustAnchors: '/nonexistent/anchors' }, /^resolver\.trustAnchors: cannot read \/nonexistent\/anchors \(ENOENT\)$/],
  ])('%j', (resolver, message) => {
    let error: unknown;
    try {
      tlsPolicy({ resolver } as unknown as TlsPolicyOptions).close();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TlsPolicyError);
    expect(error).toMatchObject({ code: 'ECONFIG', temporary: false });
    expect((error as Error).message).toMatch(message);
  });
});
