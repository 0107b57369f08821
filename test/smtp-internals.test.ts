/**
 * The private fields of Nodemailer's SMTPConnection that lib/smtp/connection-internals.ts reads.
 * If a Nodemailer update renames or retypes one, this test fails before any delivery goes wrong.
 */
import { describe, expect, it } from 'vitest';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import {
  drainRepliesOnClose,
  ehloLinesOf,
  extensionsOf,
  failConnection,
  isSecure,
  isUpgrading,
  lastReplyOf,
  onCommand,
  onReply,
  plaintextEhloOf,
  takeSocket,
  tlsSocketOf,
  WatchedConnection,
} from '../lib/smtp/connection-internals.js';
import { EventEmitter } from 'node:events';

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
  it('lastServerResponse is where every reply lands (onReply sees it)', () => {
    const c = new WatchedConnection({ host: '127.0.0.1', port: 1 }) as unknown as Record<string, unknown>;
    expect(c.lastServerResponse).toBe(false); // SMTPConnection's constructor assigned it, through the inherited setter
    const seen: string[] = [];
    onReply(c, (reply) => seen.push(reply));
    c._responseActions = [() => undefined];
    (c._responseQueue as string[]).push('250 ok');
    (c._processResponse as () => void).call(c);
    expect(seen).toEqual(['250 ok']);
    expect(lastReplyOf(c)).toBe('250 ok');
    // the instance itself is never reshaped: no own lastServerResponse, data or accessor (an own
    // accessor made every SMTPConnection a dictionary-mode object in V8, with slow field reads)
    expect(Object.getOwnPropertyDescriptor(c, 'lastServerResponse')).toBeUndefined();
  });
  it('onReply takes only a WatchedConnection: on a plain SMTPConnection it would see nothing', () => {
    const c = new SMTPConnection({ host: '127.0.0.1', port: 1 });
    expect(() => onReply(c, () => undefined)).toThrow(TypeError);
  });
  it('_onClose, _processResponse, _responseQueue and _onError exist (drainRepliesOnClose, failConnection)', () => {
    const c = new SMTPConnection({ host: '127.0.0.1', port: 1 }) as unknown as Record<string, unknown>;
    expect(typeof c._onClose).toBe('function');
    expect(typeof c._processResponse).toBe('function');
    expect(Array.isArray(c._responseQueue)).toBe(true);
    expect(typeof c._onError).toBe('function');
    expect(typeof c._onConnect).toBe('function'); // onConnected
    expect(typeof c.name).toBe('string'); // setEhloName
    const replies: string[] = [];
    c._responseActions = [(reply: string) => replies.push(reply)];
    (c._responseQueue as string[]).push('421 4.3.2 closing');
    drainRepliesOnClose(c);
    try {
      (c._onClose as () => void).call(c);
    } catch {
      // the rest of _onClose needs a socket; the queued reply must have been taken first
    }
    expect(replies).toEqual(['421 4.3.2 closing']);
    const errors: Error[] = [];
    const d = new SMTPConnection({ host: '127.0.0.1', port: 1 });
    d.on('error', (e: Error) => errors.push(e));
    failConnection(d, new Error('deadline passed'));
    expect(errors.map((e) => [e.message, (e as { code?: string }).code])).toEqual([['deadline passed', 'ETIMEDOUT']]);
  });
  it('the EHLO extensions and size limit the transaction reads (extensionsOf)', () => {
    const c = new SMTPConnection({ host: '127.0.0.1', port: 1 }) as unknown as Record<string, unknown>;
    expect(extensionsOf(c)).toEqual({ pipelining: false, size: false, smtpUtf8: false, requireTls: false, maxSize: 0 });
    (c._parseEhloExtensions as (s: string) => void).call(c, '250-mx.test\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-SMTPUTF8\r\n250 REQUIRETLS');
    expect(extensionsOf(c)).toEqual({ pipelining: true, size: true, smtpUtf8: true, requireTls: true, maxSize: 35882577 });
  });
  it('takeSocket removes every listener SMTPConnection put on the socket, its timers, and hands over what it had not acted on', () => {
    const c = new SMTPConnection({ host: '127.0.0.1', port: 1 }) as unknown as Record<string, unknown>;
    for (const name of ['_onSocketData', '_onSocketTimeout', '_onSocketClose', '_onSocketEnd', '_onSocketError', '_onConnectionSocketError', '_clearPhase']) {
      expect(typeof c[name], name).toBe('function');
    }
    expect(c._remainder).toBe('');
    expect(c._closing).toBe(false);
    expect(c._destroyed).toBe(false);
    const socket = Object.assign(new EventEmitter(), { destroyed: false, setTimeout: () => socket });
    socket.on('data', c._onSocketData as () => void);
    socket.on('timeout', c._onSocketTimeout as () => void);
    socket.once('close', c._onSocketClose as () => void);
    socket.once('end', c._onSocketEnd as () => void);
    socket.on('error', c._onSocketError as () => void);
    socket.on('error', c._onConnectionSocketError as () => void);
    c._socket = socket;
    c._phaseTimer = setTimeout(() => {
      throw new Error('the phase timer must be cleared');
    }, 50);
    (c._responseQueue as string[]).push('250-a\n250 b');
    c._remainder = '25';
    const taken = takeSocket(c);
    expect(taken?.socket).toBe(socket);
    expect(taken?.leftover).toBe('250-a\r\n250 b\r\n25');
    for (const event of ['data', 'timeout', 'close', 'end', 'error']) expect(socket.listenerCount(event), event).toBe(0);
    expect(c._phaseTimer).toBe(false);
    // SMTPConnection acts on nothing any more: close() and the methods that write bail out
    expect(c._closing).toBe(true);
    expect(c._destroyed).toBe(true);
    expect(takeSocket(c)).toBeUndefined();
  });
});
