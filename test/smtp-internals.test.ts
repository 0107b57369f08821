/**
 * The private fields of Nodemailer's SMTPConnection that lib/smtp/connection-internals.ts reads.
 * If a Nodemailer update renames or retypes one, this test fails before any delivery goes wrong.
 */
import { describe, expect, it } from 'vitest';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { ehloLinesOf, isSecure, isUpgrading, lastReplyOf, onCommand, plaintextEhloOf, tlsSocketOf } from '../lib/smtp/connection-internals.js';

describe('SMTPConnection private fields', () => {
  it('exist with the types connection-internals expects', () => {
    const c = new SMTPConnection({ host: '127.0.0.1', port: 1 }) as unknown as Record<string, unknown>;
    expect(c._socket).toBe(false);
    expect(c.secure).toBe(false);
    expect(c.lastServerResponse).toBe(false);
    expect(c._plaintextEhlo).toBe(false);
    expect(typeof c._sendCommand).toBe('function');
    expect(typeof c._parseEhloExtensions).toBe('function');
    expect(typeof c._upgradeConnection).toBe('function');
    expect(isSecure(c)).toBe(false);
    expect(isUpgrading(c)).toBe(false);
    expect(tlsSocketOf(c)).toBeUndefined();
    expect(lastReplyOf(c)).toBeUndefined();
    expect(plaintextEhloOf(c)).toBeUndefined();
    // _parseEhloExtensions fills _ehloLines with the extension lines, without the greeting line
    (c._parseEhloExtensions as (s: string) => void).call(c, '250-mx.test at your service\r\n250-STARTTLS\r\n250 PIPELINING');
    expect(ehloLinesOf(c)).toEqual(['STARTTLS', 'PIPELINING']);
  });
  it('_sendCommand is the one way commands go out (onCommand sees them)', () => {
    const c = new SMTPConnection({ host: '127.0.0.1', port: 1 }) as unknown as Record<string, unknown>;
    const written: string[] = [];
    c._socket = { write: (s: string) => written.push(s), destroyed: false, writable: true } as never;
    const seen: string[] = [];
    onCommand(c, (command) => seen.push(command));
    (c._sendCommand as (s: string) => void).call(c, 'STARTTLS');
    expect(seen).toEqual(['STARTTLS']);
    expect(written.join('')).toContain('STARTTLS');
  });
});
