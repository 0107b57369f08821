/**
 * decide(): one row per rule, level x facts x options. Every expected decision is written out
 * whole (toEqual), reasons included, so that a changed branch, a lost field or a reworded
 * cause fails a row.
 *
 * Sources of the expectations:
 * - Postfix smtp_proto.c / TLS_README: at `may`, no STARTTLS or a 4xx/5xx reply to STARTTLS
 *   -> cleartext on the same connection; a failed handshake or a session lost inside TLS -> a
 *   new cleartext connection, once the message is minimal_backoff_time old. At a mandatory
 *   level every one of those fails that MX.
 * - Exim 4.96 tls_tempfail_tryclear: true -> cleartext at once after a 4xx, a handshake
 *   failure or a lost TLS session; false -> temporary failure of that MX; a 5xx to STARTTLS
 *   continues in cleartext either way.
 * - The strict variant: cleartext only when STARTTLS was not offered.
 * - A reply inside TLS is the server's answer: that MX fails, no cleartext, no TLS stage.
 * - The tlsfallback proposal: an authenticated level goes on at its fallback level, recording
 *   downgradedFrom and the reason.
 * - SMTP AUTH never crosses cleartext unless allowCleartextAuth.
 * - Every reason names `where` and the exact cause.
 */
import { describe, expect, it } from 'vitest';
import { decide, type Decision, type DecideInput, type OpportunisticRules } from '../lib/decide/index.js';
import type { FallbackLevel, Level, Stage, Verdict } from '../lib/types.js';

const W = 'mx1.example.net[192.0.2.1]:25';
const BACKOFF = 300;

const R454 = '454 4.7.0 TLS not available due to local problem';
const R554 = '554 5.7.3 STARTTLS not permitted';
const HANDSHAKE_MSG = 'TLS handshake failed: wrong version number';
const SESSION_MSG = 'connection lost inside TLS: socket hang up';
const CONNECT_MSG = 'connection failed: connect ECONNREFUSED 192.0.2.1:25';
const G421 = '421 4.7.0 mx1.example.net Too many connections, try again later';
const G554 = '554 5.7.1 mx1.example.net No SMTP service here';
const T421 = '421 4.3.2 Service shutting down';
const T554 = '554 5.3.0 Service not available';

const OK_TRUSTED: Verdict = { ok: true, trust: 'Trusted' };

type Facts = DecideInput['facts'];

/** The facts of the brief, each as the smtp module reports it. */
const F = {
  noStarttls: { starttlsOffered: false, tls: false },
  refused4xx: { starttlsOffered: true, tls: false, starttlsReply: R454 },
  refused5xx: { starttlsOffered: true, tls: false, starttlsReply: R554 },
  refusedNoReply: { starttlsOffered: true, tls: false },
  handshake: { starttlsOffered: true, tls: false, failure: { kind: 'handshake', message: HANDSHAKE_MSG } },
  // The session was up (tls: true, with a verdict) when it was lost: the failure still decides.
  session: { starttlsOffered: true, tls: true, failure: { kind: 'tls-session', message: SESSION_MSG } },
  tlsReply421: {
    starttlsOffered: true,
    tls: true,
    failure: { kind: 'tls-reply', message: `the server answered ${T421}`, reply: T421, replyCode: 421 },
  },
  tlsReply554: {
    starttlsOffered: true,
    tls: true,
    failure: { kind: 'tls-reply', message: `the server answered ${T554}`, reply: T554, replyCode: 554 },
  },
  connect: { starttlsOffered: false, tls: false, failure: { kind: 'connect', message: CONNECT_MSG } },
  greeting421: { starttlsOffered: false, tls: false, failure: { kind: 'reply', message: `the server answered ${G421}`, reply: G421, replyCode: 421 } },
  greeting554: { starttlsOffered: false, tls: false, failure: { kind: 'reply', message: `the server answered ${G554}`, reply: G554, replyCode: 554 } },
  tls: { starttlsOffered: true, tls: true },
} satisfies Record<string, Facts>;
type FactName = keyof typeof F;

/** The exact causes, as decide words them. */
const CAUSE = {
  noStarttls: `${W} offered no STARTTLS`,
  refused4xx: `${W} refused STARTTLS: ${R454}`,
  refused5xx: `${W} refused STARTTLS: ${R554}`,
  refusedNoReply: `${W} refused STARTTLS: no reply`,
  handshake: `${W} ${HANDSHAKE_MSG}`,
  session: `${W} ${SESSION_MSG}`,
} as const;

const NO_TRYCLEAR = '; tlsTempfailTryclear is false, so no cleartext';
const STRICT = '; cleartext is allowed only when STARTTLS is not offered (strict opportunistic TLS)';
const NO_AUTH_CLEARTEXT = ', and SMTP AUTH is never sent over cleartext (set allowCleartextAuth to allow it)';
const NO_RETRY_AUTH = '; no cleartext retry because SMTP AUTH is configured';
const tooYoung = (age: number) => `; no cleartext retry before the message is ${BACKOFF} s old (it is ${age} s old)`;
const mandatory = (level: Level) => `; TLS is mandatory at level ${level}`;
const FALLBACK_ENCRYPT = ' (its fallback level encrypt needs TLS too)';

/** Options of one row; rules are merged over the defaults (Postfix: no tryclear, age 0). */
interface Options {
  rules?: Partial<OpportunisticRules>;
  hasAuth?: boolean;
  allowCleartextAuth?: boolean;
  fallback?: FallbackLevel;
  cleartextRetry?: boolean;
  verdict?: Verdict;
}

function input(level: Level, facts: Facts, o: Options = {}): DecideInput {
  const verdict = o.verdict ?? (facts.tls ? OK_TRUSTED : undefined);
  return {
    where: W,
    level,
    rules: { minimalBackoff: BACKOFF, messageAge: 0, ...o.rules },
    hasAuth: o.hasAuth ?? false,
    facts,
    ...(o.allowCleartextAuth !== undefined ? { allowCleartextAuth: o.allowCleartextAuth } : {}),
    ...(o.fallback ? { fallback: o.fallback } : {}),
    ...(o.cleartextRetry !== undefined ? { cleartextRetry: o.cleartextRetry } : {}),
    ...(verdict ? { verdict } : {}),
  };
}

/** Named option sets, so that a row can say "the same under each of these". */
const OPT = {
  postfix: {},
  tryclearTrue: { rules: { tempfailTryclear: true } },
  tryclearFalse: { rules: { tempfailTryclear: false } },
  strict: { rules: { strict: true } },
  ageBelow: { rules: { messageAge: BACKOFF - 0.1 } },
  ageAt: { rules: { messageAge: BACKOFF } },
  ageAbove: { rules: { messageAge: BACKOFF + 1 } },
  ageAboveTryclearTrue: { rules: { messageAge: 86_400, tempfailTryclear: true } },
  ageAboveTryclearFalse: { rules: { messageAge: 86_400, tempfailTryclear: false } },
  strictTryclearTrue: { rules: { strict: true, tempfailTryclear: true } },
  strictAgeAbove: { rules: { strict: true, messageAge: 86_400 } },
  auth: { hasAuth: true },
  authAgeAbove: { hasAuth: true, rules: { messageAge: 86_400 } },
  authAllowed: { hasAuth: true, allowCleartextAuth: true },
  authNotAllowed: { hasAuth: true, allowCleartextAuth: false },
} satisfies Record<string, Options>;
type OptName = keyof typeof OPT;

interface Row {
  level: Level;
  facts: FactName;
  opts: OptName;
  extra?: Options;
  expected: Decision;
}

function label(r: Row): string {
  const extra = r.extra ? ` ${JSON.stringify(r.extra)}` : '';
  return `${r.level} | ${r.facts} | ${r.opts}${extra} -> ${r.expected.action}`;
}

function check(r: Row): void {
  const o: Options = { ...OPT[r.opts], ...r.extra, rules: { ...(OPT[r.opts] as Options).rules, ...r.extra?.rules } };
  expect(decide(input(r.level, F[r.facts], o))).toEqual(r.expected);
}

function each(rows: Row[]) {
  it.each(rows.map((r) => [label(r), r] as const))('%s', (_name, r) => check(r));
}

// ---------------------------------------------------------------------------------------------
// Expected decisions, spelled out.

const clear = (level: Level, reason: string | undefined, stage: Stage | undefined): Decision => ({
  action: 'send',
  level,
  trust: 'Cleartext',
  ...(reason !== undefined ? { reason } : {}),
  ...(stage !== undefined ? { stage } : {}),
});
const next = (reason: string, temporary: boolean, stage?: Stage): Decision => ({
  action: 'next',
  reason,
  temporary,
  ...(stage ? { stage } : {}),
});

// =============================================================================================
describe('decide: may (Postfix defaults, Exim tls_tempfail_tryclear, the strict variant)', () => {
  describe('STARTTLS not offered -> cleartext, whatever the options', () => {
    each(
      (['postfix', 'tryclearTrue', 'tryclearFalse', 'strict', 'ageAbove', 'authAllowed'] as OptName[]).map((opts) => ({
        level: 'may',
        facts: 'noStarttls',
        opts,
        expected: clear('may', CAUSE.noStarttls, 'no-starttls'),
      })),
    );
  });

  describe('5xx to STARTTLS -> cleartext on the same connection (tryclear true, false or unset)', () => {
    each(
      (['postfix', 'tryclearTrue', 'tryclearFalse', 'ageAbove'] as OptName[]).map((opts) => ({
        level: 'may',
        facts: 'refused5xx',
        opts,
        expected: clear('may', CAUSE.refused5xx, 'starttls-refused'),
      })),
    );
  });

  describe('4xx to STARTTLS -> cleartext by default and with tryclear true; tryclear false -> temporary failure', () => {
    each([
      { level: 'may', facts: 'refused4xx', opts: 'postfix', expected: clear('may', CAUSE.refused4xx, 'starttls-refused') },
      { level: 'may', facts: 'refused4xx', opts: 'tryclearTrue', expected: clear('may', CAUSE.refused4xx, 'starttls-refused') },
      { level: 'may', facts: 'refused4xx', opts: 'ageAbove', expected: clear('may', CAUSE.refused4xx, 'starttls-refused') },
      { level: 'may', facts: 'refused4xx', opts: 'tryclearFalse', expected: next(CAUSE.refused4xx + NO_TRYCLEAR, true, 'starttls-refused') },
      { level: 'may', facts: 'refused4xx', opts: 'ageAboveTryclearFalse', expected: next(CAUSE.refused4xx + NO_TRYCLEAR, true, 'starttls-refused') },
      // A refusal with no reply code is not a 5xx: treated as temporary.
      { level: 'may', facts: 'refusedNoReply', opts: 'postfix', expected: clear('may', CAUSE.refusedNoReply, 'starttls-refused') },
      { level: 'may', facts: 'refusedNoReply', opts: 'tryclearFalse', expected: next(CAUSE.refusedNoReply + NO_TRYCLEAR, true, 'starttls-refused') },
    ]);
  });

  for (const facts of ['handshake', 'session'] as const) {
    const stage = facts === 'handshake' ? 'handshake' : 'session';
    const cause = CAUSE[facts];
    describe(`${facts} failure -> cleartext-now (tryclear true), failure (false), cleartext-later after minimalBackoff (unset)`, () => {
      each([
        // Exim tls_tempfail_tryclear=true: cleartext at once on a new connection, no age gate.
        { level: 'may', facts, opts: 'tryclearTrue', expected: { action: 'cleartext-now', reason: cause, stage } },
        { level: 'may', facts, opts: 'ageAboveTryclearTrue', expected: { action: 'cleartext-now', reason: cause, stage } },
        // Exim tls_tempfail_tryclear=false: this MX fails temporarily, never cleartext.
        { level: 'may', facts, opts: 'tryclearFalse', expected: next(cause + NO_TRYCLEAR, true, stage) },
        { level: 'may', facts, opts: 'ageAboveTryclearFalse', expected: next(cause + NO_TRYCLEAR, true, stage) },
        // Postfix: cleartext on a new connection, after the other MX, once the message is old enough.
        { level: 'may', facts, opts: 'postfix', expected: next(cause + tooYoung(0), true, stage) },
        { level: 'may', facts, opts: 'ageBelow', expected: next(cause + tooYoung(299), true, stage) },
        { level: 'may', facts, opts: 'ageAt', expected: { action: 'cleartext-later', reason: cause, stage } },
        { level: 'may', facts, opts: 'ageAbove', expected: { action: 'cleartext-later', reason: cause, stage } },
      ]);
    });
  }

  describe('strict: cleartext only when STARTTLS was not offered', () => {
    each([
      { level: 'may', facts: 'noStarttls', opts: 'strict', expected: clear('may', CAUSE.noStarttls, 'no-starttls') },
      { level: 'may', facts: 'refused4xx', opts: 'strict', expected: next(CAUSE.refused4xx + STRICT, true, 'starttls-refused') },
      { level: 'may', facts: 'refused4xx', opts: 'strictTryclearTrue', expected: next(CAUSE.refused4xx + STRICT, true, 'starttls-refused') },
      // Even a 5xx is a temporary failure under strict: another MX (or a later try) may offer TLS.
      { level: 'may', facts: 'refused5xx', opts: 'strict', expected: next(CAUSE.refused5xx + STRICT, true, 'starttls-refused') },
      { level: 'may', facts: 'refused5xx', opts: 'strictTryclearTrue', expected: next(CAUSE.refused5xx + STRICT, true, 'starttls-refused') },
      { level: 'may', facts: 'handshake', opts: 'strict', expected: next(CAUSE.handshake + STRICT, true, 'handshake') },
      { level: 'may', facts: 'handshake', opts: 'strictTryclearTrue', expected: next(CAUSE.handshake + STRICT, true, 'handshake') },
      { level: 'may', facts: 'handshake', opts: 'strictAgeAbove', expected: next(CAUSE.handshake + STRICT, true, 'handshake') },
      { level: 'may', facts: 'session', opts: 'strict', expected: next(CAUSE.session + STRICT, true, 'session') },
      { level: 'may', facts: 'session', opts: 'strictAgeAbove', expected: next(CAUSE.session + STRICT, true, 'session') },
    ]);
  });

  describe('TLS established -> send at may with the verdict trust', () => {
    each([
      { level: 'may', facts: 'tls', opts: 'postfix', expected: { action: 'send', level: 'may', trust: 'Trusted' } },
      {
        level: 'may',
        facts: 'tls',
        opts: 'strict',
        extra: { verdict: { ok: true, trust: 'Untrusted' } },
        expected: { action: 'send', level: 'may', trust: 'Untrusted' },
      },
      {
        level: 'may',
        facts: 'tls',
        opts: 'auth',
        extra: { verdict: { ok: true, trust: 'Anonymous' } },
        expected: { action: 'send', level: 'may', trust: 'Anonymous' },
      },
    ]);
  });
});

// =============================================================================================
/**
 * `dane` reaches decide only with usable TLSA records (the plan turns a dane host without them
 * into may or encrypt first), so decide treats it as mandatory, as dane-only.
 */
const MANDATORY_LEVELS = ['encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure'] as const;
const AUTHENTICATED = ['dane', 'dane-only', 'fingerprint', 'verify', 'secure'] as const;
/** Every option that loosens `may`: none of them loosens a mandatory level. */
const ALL_OPTS: OptName[] = ['postfix', 'tryclearTrue', 'tryclearFalse', 'strict', 'ageAbove', 'ageAboveTryclearTrue', 'auth', 'authAllowed'];

describe('decide: mandatory levels (encrypt, dane, dane-only, fingerprint, verify, secure) without fallback', () => {
  for (const level of MANDATORY_LEVELS) {
    describe(level, () => {
      each(
        ALL_OPTS.flatMap((opts): Row[] => [
          { level, facts: 'noStarttls', opts, expected: next(CAUSE.noStarttls + mandatory(level), true, 'no-starttls') },
          { level, facts: 'refused4xx', opts, expected: next(CAUSE.refused4xx + mandatory(level), true, 'starttls-refused') },
          // A 5xx to STARTTLS travels in cleartext (forgeable): temporary, as Exim; never a bounce by itself.
          { level, facts: 'refused5xx', opts, expected: next(CAUSE.refused5xx + mandatory(level), true, 'starttls-refused') },
          { level, facts: 'refusedNoReply', opts, expected: next(CAUSE.refusedNoReply + mandatory(level), true, 'starttls-refused') },
          { level, facts: 'handshake', opts, expected: next(CAUSE.handshake + mandatory(level), true, 'handshake') },
          { level, facts: 'session', opts, expected: next(CAUSE.session + mandatory(level), true, 'session') },
        ]),
      );
    });
  }
});

describe('decide: authenticated levels with fallback encrypt still need TLS', () => {
  for (const level of AUTHENTICATED) {
    describe(level, () => {
      each(
        (['postfix', 'tryclearTrue', 'ageAbove', 'authAllowed'] as OptName[]).flatMap((opts): Row[] => [
          {
            level,
            facts: 'noStarttls',
            opts,
            extra: { fallback: 'encrypt' },
            expected: next(CAUSE.noStarttls + mandatory(level) + FALLBACK_ENCRYPT, true, 'no-starttls'),
          },
          {
            level,
            facts: 'refused4xx',
            opts,
            extra: { fallback: 'encrypt' },
            expected: next(CAUSE.refused4xx + mandatory(level) + FALLBACK_ENCRYPT, true, 'starttls-refused'),
          },
          {
            level,
            facts: 'refused5xx',
            opts,
            extra: { fallback: 'encrypt' },
            expected: next(CAUSE.refused5xx + mandatory(level) + FALLBACK_ENCRYPT, true, 'starttls-refused'),
          },
          {
            level,
            facts: 'handshake',
            opts,
            extra: { fallback: 'encrypt' },
            expected: next(CAUSE.handshake + mandatory(level) + FALLBACK_ENCRYPT, true, 'handshake'),
          },
          {
            level,
            facts: 'session',
            opts,
            extra: { fallback: 'encrypt' },
            expected: next(CAUSE.session + mandatory(level) + FALLBACK_ENCRYPT, true, 'session'),
          },
        ]),
      );
    });
  }
});

describe('decide: authenticated levels with fallback may behave as may, recording downgradedFrom', () => {
  for (const level of AUTHENTICATED) {
    const down = (reason: string, stage: 'no-starttls' | 'starttls-refused'): Decision => ({
      action: 'send',
      level: 'may',
      trust: 'Cleartext',
      downgradedFrom: level,
      reason,
      stage,
    });
    describe(level, () => {
      each(
        (
          [
            { level, facts: 'noStarttls', opts: 'postfix', expected: down(CAUSE.noStarttls, 'no-starttls') },
            { level, facts: 'noStarttls', opts: 'strict', expected: down(CAUSE.noStarttls, 'no-starttls') },
            { level, facts: 'refused5xx', opts: 'postfix', expected: down(CAUSE.refused5xx, 'starttls-refused') },
            { level, facts: 'refused5xx', opts: 'tryclearFalse', expected: down(CAUSE.refused5xx, 'starttls-refused') },
            { level, facts: 'refused5xx', opts: 'strict', expected: next(CAUSE.refused5xx + STRICT, true, 'starttls-refused') },
            { level, facts: 'refused4xx', opts: 'postfix', expected: down(CAUSE.refused4xx, 'starttls-refused') },
            { level, facts: 'refused4xx', opts: 'tryclearTrue', expected: down(CAUSE.refused4xx, 'starttls-refused') },
            { level, facts: 'refused4xx', opts: 'tryclearFalse', expected: next(CAUSE.refused4xx + NO_TRYCLEAR, true, 'starttls-refused') },
            { level, facts: 'refused4xx', opts: 'strict', expected: next(CAUSE.refused4xx + STRICT, true, 'starttls-refused') },
            { level, facts: 'handshake', opts: 'tryclearTrue', expected: { action: 'cleartext-now', reason: CAUSE.handshake, stage: 'handshake' } },
            { level, facts: 'handshake', opts: 'tryclearFalse', expected: next(CAUSE.handshake + NO_TRYCLEAR, true, 'handshake') },
            { level, facts: 'handshake', opts: 'postfix', expected: next(CAUSE.handshake + tooYoung(0), true, 'handshake') },
            { level, facts: 'handshake', opts: 'ageAt', expected: { action: 'cleartext-later', reason: CAUSE.handshake, stage: 'handshake' } },
            { level, facts: 'handshake', opts: 'strictAgeAbove', expected: next(CAUSE.handshake + STRICT, true, 'handshake') },
            { level, facts: 'session', opts: 'tryclearTrue', expected: { action: 'cleartext-now', reason: CAUSE.session, stage: 'session' } },
            { level, facts: 'session', opts: 'ageAbove', expected: { action: 'cleartext-later', reason: CAUSE.session, stage: 'session' } },
            { level, facts: 'session', opts: 'ageBelow', expected: next(CAUSE.session + tooYoung(299), true, 'session') },
            // AUTH configured: no cleartext, no cleartext retry.
            { level, facts: 'noStarttls', opts: 'auth', expected: next(CAUSE.noStarttls + NO_AUTH_CLEARTEXT, true, 'no-starttls') },
            { level, facts: 'refused5xx', opts: 'auth', expected: next(CAUSE.refused5xx + NO_AUTH_CLEARTEXT, true, 'starttls-refused') },
            {
              level,
              facts: 'handshake',
              opts: 'ageAboveTryclearTrue',
              extra: { hasAuth: true },
              expected: next(CAUSE.handshake + NO_RETRY_AUTH, true, 'handshake'),
            },
            { level, facts: 'noStarttls', opts: 'authAllowed', expected: down(CAUSE.noStarttls, 'no-starttls') },
          ] satisfies Row[]
        ).map((r): Row => ({ ...r, extra: { fallback: 'may', ...(r as Row).extra } })),
      );
    });
  }
});

// =============================================================================================
describe('decide: failures that are not TLS failures (connect, greeting, a reply inside TLS)', () => {
  const LEVELS_ALL: Level[] = ['none', 'may', 'dane', 'encrypt', 'dane-only', 'fingerprint', 'verify', 'secure'];
  const rows: Row[] = [];
  for (const level of LEVELS_ALL) {
    const optSets: Array<[OptName, Options | undefined]> = [
      ['postfix', undefined],
      ['tryclearTrue', undefined],
      ['tryclearFalse', undefined],
      ['strict', undefined],
      ['ageAboveTryclearTrue', undefined],
      ['ageAbove', undefined],
      ['authAllowed', undefined],
      ...((AUTHENTICATED as readonly Level[]).includes(level)
        ? ([
            ['ageAbove', { fallback: 'may' }],
            ['postfix', { fallback: 'encrypt' }],
          ] as Array<[OptName, Options]>)
        : []),
    ];
    for (const [opts, extra] of optSets) {
      const base = { level, opts, ...(extra ? { extra } : {}) };
      rows.push(
        { ...base, facts: 'connect', expected: next(`${W} ${CONNECT_MSG}`, true) },
        { ...base, facts: 'greeting421', expected: next(`${W} answered ${G421}`, true) },
        { ...base, facts: 'greeting554', expected: next(`${W} answered ${G554}`, false) },
      );
      if (level !== 'none') {
        // 421 to the EHLO after STARTTLS: the server's answer, not a TLS stage; no cleartext retry.
        rows.push(
          { ...base, facts: 'tlsReply421', expected: next(`${W} answered ${T421} inside TLS`, true) },
          { ...base, facts: 'tlsReply554', expected: next(`${W} answered ${T554} inside TLS`, false) },
        );
      }
    }
  }
  each(rows);
});

// =============================================================================================
describe('decide: TLS established, verdict ok -> send at the level with the verdict trust', () => {
  const rows: Row[] = [];
  for (const level of MANDATORY_LEVELS) {
    for (const [opts, extra] of [
      ['postfix', undefined],
      ['auth', undefined],
      ['strict', { fallback: 'may' }],
      ['tryclearFalse', { fallback: 'encrypt' }],
    ] as Array<[OptName, Options | undefined]>) {
      for (const verdict of [
        { ok: true, trust: 'Verified' },
        { ok: true, trust: 'Trusted' },
      ] as Verdict[]) {
        rows.push({ level, facts: 'tls', opts, extra: { ...extra, verdict }, expected: { action: 'send', level, trust: verdict.trust } });
      }
    }
  }
  rows.push({
    level: 'encrypt',
    facts: 'tls',
    opts: 'postfix',
    extra: { verdict: { ok: true, trust: 'Anonymous' } },
    expected: { action: 'send', level: 'encrypt', trust: 'Anonymous' },
  });
  each(rows);
});

describe('decide: TLS established, verdict failed', () => {
  const VREASON = 'mx1.example.net certificate names mx.other.invalid matched none of mx1.example.net';
  const failed: Verdict = { ok: false, trust: 'Trusted', reason: VREASON };
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  /**
   * The decision's reason must name `where` (the verdict's own sentence names only the host,
   * not the address and port) and carry the verdict's cause.
   */
  const namesWhereAndCause = expect.stringMatching(new RegExp(`^(?=.*${esc(W)})(?=.*${esc(VREASON)})`));

  for (const level of AUTHENTICATED) {
    describe(level, () => {
      it.each(['postfix', 'tryclearTrue', 'ageAbove', 'authAllowed'] as OptName[])('no fallback (%s) -> next, stage verification', (opts) => {
        const o = { ...OPT[opts], verdict: failed };
        expect(decide(input(level, F.tls, o))).toEqual({ action: 'next', temporary: true, stage: 'verification', reason: namesWhereAndCause });
      });
      it.each(['encrypt', 'may'] as FallbackLevel[])('fallback %s -> send at the fallback level over TLS, downgradedFrom and reason', (fallback) => {
        expect(decide(input(level, F.tls, { fallback, verdict: failed }))).toEqual({
          action: 'send',
          level: fallback,
          trust: 'Trusted',
          downgradedFrom: level,
          reason: namesWhereAndCause,
          stage: 'verification',
        });
      });
      it('fallback may with AUTH configured: still TLS, so the mail (and AUTH) goes', () => {
        expect(decide(input(level, F.tls, { fallback: 'may', hasAuth: true, verdict: { ...failed, trust: 'Untrusted' } }))).toEqual({
          action: 'send',
          level: 'may',
          trust: 'Untrusted',
          downgradedFrom: level,
          reason: namesWhereAndCause,
          stage: 'verification',
        });
      });
    });
  }

  it('a failed verdict without a reason: "<where> failed verification"', () => {
    expect(decide(input('verify', F.tls, { verdict: { ok: false, trust: 'Untrusted' } }))).toEqual({
      action: 'next',
      temporary: true,
      stage: 'verification',
      reason: `${W} failed verification`,
    });
    expect(decide(input('secure', F.tls, { fallback: 'encrypt', verdict: { ok: false, trust: 'Untrusted' } }))).toEqual({
      action: 'send',
      level: 'encrypt',
      trust: 'Untrusted',
      downgradedFrom: 'secure',
      reason: `${W} failed verification`,
      stage: 'verification',
    });
  });

  it('TLS established but no verdict: a programming error, thrown', () => {
    expect(() => decide({ where: W, level: 'verify', rules: { minimalBackoff: BACKOFF, messageAge: 0 }, hasAuth: false, facts: F.tls })).toThrow(
      'decide: TLS was established but no verdict was given',
    );
  });
});

// =============================================================================================
describe('decide: SMTP AUTH never crosses cleartext unless allowCleartextAuth', () => {
  each([
    // Cleartext on the same connection becomes a failure of this MX, saying why.
    { level: 'may', facts: 'noStarttls', opts: 'auth', expected: next(CAUSE.noStarttls + NO_AUTH_CLEARTEXT, true, 'no-starttls') },
    { level: 'may', facts: 'noStarttls', opts: 'authNotAllowed', expected: next(CAUSE.noStarttls + NO_AUTH_CLEARTEXT, true, 'no-starttls') },
    { level: 'may', facts: 'refused5xx', opts: 'auth', expected: next(CAUSE.refused5xx + NO_AUTH_CLEARTEXT, true, 'starttls-refused') },
    { level: 'may', facts: 'refused4xx', opts: 'auth', expected: next(CAUSE.refused4xx + NO_AUTH_CLEARTEXT, true, 'starttls-refused') },
    {
      level: 'may',
      facts: 'refused4xx',
      opts: 'auth',
      extra: { rules: { tempfailTryclear: true } },
      expected: next(CAUSE.refused4xx + NO_AUTH_CLEARTEXT, true, 'starttls-refused'),
    },
    // No cleartext retry is planned, whatever tryclear and the message age say.
    { level: 'may', facts: 'handshake', opts: 'auth', expected: next(CAUSE.handshake + NO_RETRY_AUTH, true, 'handshake') },
    { level: 'may', facts: 'handshake', opts: 'authAgeAbove', expected: next(CAUSE.handshake + NO_RETRY_AUTH, true, 'handshake') },
    {
      level: 'may',
      facts: 'handshake',
      opts: 'auth',
      extra: { rules: { tempfailTryclear: true } },
      expected: next(CAUSE.handshake + NO_RETRY_AUTH, true, 'handshake'),
    },
    { level: 'may', facts: 'session', opts: 'authAgeAbove', expected: next(CAUSE.session + NO_RETRY_AUTH, true, 'session') },
    {
      level: 'may',
      facts: 'session',
      opts: 'auth',
      extra: { rules: { tempfailTryclear: true } },
      expected: next(CAUSE.session + NO_RETRY_AUTH, true, 'session'),
    },
    // With allowCleartextAuth, cleartext (and a cleartext retry) are as without AUTH.
    { level: 'may', facts: 'noStarttls', opts: 'authAllowed', expected: clear('may', CAUSE.noStarttls, 'no-starttls') },
    { level: 'may', facts: 'refused4xx', opts: 'authAllowed', expected: clear('may', CAUSE.refused4xx, 'starttls-refused') },
    {
      level: 'may',
      facts: 'handshake',
      opts: 'authAllowed',
      extra: { rules: { tempfailTryclear: true } },
      expected: { action: 'cleartext-now', reason: CAUSE.handshake, stage: 'handshake' },
    },
    {
      level: 'may',
      facts: 'session',
      opts: 'authAllowed',
      extra: { rules: { messageAge: 86_400 } },
      expected: { action: 'cleartext-later', reason: CAUSE.session, stage: 'session' },
    },
    { level: 'may', facts: 'handshake', opts: 'authAllowed', expected: next(CAUSE.handshake + tooYoung(0), true, 'handshake') },
    // TLS established: AUTH is sent inside TLS.
    { level: 'may', facts: 'tls', opts: 'auth', expected: { action: 'send', level: 'may', trust: 'Trusted' } },
    {
      level: 'verify',
      facts: 'tls',
      opts: 'auth',
      extra: { verdict: { ok: true, trust: 'Verified' } },
      expected: { action: 'send', level: 'verify', trust: 'Verified' },
    },
    // Level none and the cleartext retry.
    { level: 'none', facts: 'noStarttls', opts: 'auth', expected: next(`${W} is cleartext${NO_AUTH_CLEARTEXT}`, true, 'no-starttls') },
    { level: 'none', facts: 'refusedNoReply', opts: 'auth', expected: next(`${W} is cleartext${NO_AUTH_CLEARTEXT}`, true, 'no-starttls') },
    { level: 'none', facts: 'noStarttls', opts: 'authAllowed', expected: clear('none', undefined, undefined) },
    {
      level: 'may',
      facts: 'noStarttls',
      opts: 'auth',
      extra: { cleartextRetry: true },
      expected: next(`cleartext retry of ${W} after a TLS failure${NO_AUTH_CLEARTEXT}`, true, 'handshake'),
    },
    {
      level: 'may',
      facts: 'noStarttls',
      opts: 'authAllowed',
      extra: { cleartextRetry: true },
      expected: clear('may', `cleartext retry of ${W} after a TLS failure`, 'handshake'),
    },
  ]);
});

// =============================================================================================
describe('decide: level none and the cleartext retry', () => {
  each([
    ...(['postfix', 'tryclearTrue', 'tryclearFalse', 'strict', 'ageAbove', 'authAllowed'] as OptName[]).flatMap((opts): Row[] => [
      // Level none never sends STARTTLS; the session's STARTTLS offer does not matter.
      { level: 'none', facts: 'noStarttls', opts, expected: { action: 'send', level: 'none', trust: 'Cleartext' } },
      { level: 'none', facts: 'refusedNoReply', opts, expected: { action: 'send', level: 'none', trust: 'Cleartext' } },
    ]),
    // The cleartext retry after a handshake or session failure: send in cleartext, saying why.
    ...(['postfix', 'tryclearTrue', 'tryclearFalse', 'strict', 'ageAbove'] as OptName[]).map((opts): Row => ({
      level: 'may',
      facts: 'noStarttls',
      opts,
      extra: { cleartextRetry: true },
      expected: clear('may', `cleartext retry of ${W} after a TLS failure`, 'handshake'),
    })),
    {
      level: 'may',
      facts: 'refusedNoReply',
      opts: 'postfix',
      extra: { cleartextRetry: true },
      expected: clear('may', `cleartext retry of ${W} after a TLS failure`, 'handshake'),
    },
    // A fallback-may level's retry travels at may and records the level asked for.
    ...AUTHENTICATED.map((level): Row => ({
      level,
      facts: 'refusedNoReply',
      opts: 'ageAbove',
      extra: { cleartextRetry: true, fallback: 'may' },
      expected: {
        action: 'send',
        level: 'may',
        trust: 'Cleartext',
        downgradedFrom: level,
        reason: `cleartext retry of ${W} after a TLS failure`,
        stage: 'handshake',
      },
    })),
    // The retry's own connection can fail: that MX fails, as any connection failure.
    { level: 'may', facts: 'connect', opts: 'ageAbove', extra: { cleartextRetry: true }, expected: next(`${W} ${CONNECT_MSG}`, true) },
    { level: 'may', facts: 'greeting554', opts: 'ageAbove', extra: { cleartextRetry: true }, expected: next(`${W} answered ${G554}`, false) },
  ]);
});

// =============================================================================================
describe('decide: invariants over every level x facts x options', () => {
  const LEVELS_ALL: Level[] = ['none', 'may', 'dane', 'encrypt', 'dane-only', 'fingerprint', 'verify', 'secure'];
  const verdicts: Verdict[] = [
    { ok: true, trust: 'Verified' },
    { ok: false, trust: 'Untrusted', reason: 'mx1.example.net certificate is not trusted: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)' },
    { ok: false, trust: 'Trusted' },
  ];
  interface Case {
    level: Level;
    facts: FactName;
    o: Options;
  }
  const cases: Case[] = [];
  for (const level of LEVELS_ALL) {
    for (const facts of Object.keys(F) as FactName[]) {
      if (level === 'none' && (F[facts] as Facts).tls) continue; // level none never starts TLS
      for (const opts of Object.keys(OPT) as OptName[]) {
        for (const fallback of [undefined, 'encrypt', 'may'] as const) {
          if (fallback && !(AUTHENTICATED as readonly Level[]).includes(level)) continue;
          for (const verdict of (F[facts] as Facts).tls ? verdicts : [undefined]) {
            const o: Options = { ...OPT[opts], ...(fallback ? { fallback } : {}), ...(verdict ? { verdict } : {}) };
            cases.push({ level, facts, o });
          }
        }
      }
    }
  }
  const show = (c: Case, d: Decision) => `${c.level} ${c.facts} ${JSON.stringify(c.o)} -> ${JSON.stringify(d)}`;
  /** No offending case; on failure, the count and the first three, not hundreds of lines. */
  const expectNone = (bad: string[]) => expect({ count: bad.length, first: bad.slice(0, 3) }).toEqual({ count: 0, first: [] });

  it('every reason names where', () => {
    const bad = cases.flatMap((c) => {
      const d = decide(input(c.level, F[c.facts], c.o));
      return 'reason' in d && d.reason !== undefined && !d.reason.includes(W) ? [show(c, d)] : [];
    });
    expectNone(bad);
  });

  it('AUTH without allowCleartextAuth: never a cleartext send, never a cleartext retry', () => {
    const bad = cases.flatMap((c) => {
      if (!c.o.hasAuth || c.o.allowCleartextAuth) return [];
      const d = decide(input(c.level, F[c.facts], c.o));
      const cleartext = (d.action === 'send' && d.trust === 'Cleartext') || d.action === 'cleartext-now' || d.action === 'cleartext-later';
      return cleartext ? [show(c, d)] : [];
    });
    expectNone(bad);
  });

  it('mandatory levels without fallback may: never cleartext, never a cleartext retry', () => {
    const bad = cases.flatMap((c) => {
      if (!(MANDATORY_LEVELS as readonly Level[]).includes(c.level) || c.o.fallback === 'may') return [];
      const d = decide(input(c.level, F[c.facts], c.o));
      const cleartext = (d.action === 'send' && d.trust === 'Cleartext') || d.action === 'cleartext-now' || d.action === 'cleartext-later';
      return cleartext ? [show(c, d)] : [];
    });
    expectNone(bad);
  });

  it('a cleartext send below the level asked for records downgradedFrom and a reason', () => {
    const bad = cases.flatMap((c) => {
      const d = decide(input(c.level, F[c.facts], c.o));
      if (d.action !== 'send' || d.trust !== 'Cleartext' || !(MANDATORY_LEVELS as readonly Level[]).includes(c.level)) return [];
      return d.downgradedFrom === c.level && d.level === 'may' && d.reason ? [] : [show(c, d)];
    });
    expectNone(bad);
  });

  it('the strict variant: cleartext only when STARTTLS was not offered', () => {
    const bad = cases.flatMap((c) => {
      if (!c.o.rules?.strict || c.level === 'none') return [];
      const d = decide(input(c.level, F[c.facts], c.o));
      const cleartext = (d.action === 'send' && d.trust === 'Cleartext') || d.action === 'cleartext-now' || d.action === 'cleartext-later';
      return cleartext && c.facts !== 'noStarttls' ? [show(c, d)] : [];
    });
    expectNone(bad);
  });

  it('a reply inside TLS, a greeting reply or a connect failure is never a TLS stage and never cleartext', () => {
    const bad = cases.flatMap((c) => {
      if (!['tlsReply421', 'tlsReply554', 'greeting421', 'greeting554', 'connect'].includes(c.facts)) return [];
      const d = decide(input(c.level, F[c.facts], c.o));
      return d.action === 'next' && d.stage === undefined ? [] : [show(c, d)];
    });
    expectNone(bad);
  });
});

describe('decide: REQUIRETLS (RFC 8689 section 4.2.1)', () => {
  const TLS = { starttlsOffered: true, tls: true };
  const VERIFIED: Verdict = { ok: true, trust: 'Verified' };
  it('a Verified session that advertises REQUIRETLS: send', () => {
    expect(decide({ ...input('secure', TLS, { verdict: VERIFIED }), requireTls: { offered: true } })).toMatchObject({ action: 'send', trust: 'Verified' });
  });
  it('a Verified session that does not: the next MX, for good, marked', () => {
    expect(decide({ ...input('secure', TLS, { verdict: VERIFIED }), requireTls: { offered: false } })).toEqual({
      action: 'next',
      temporary: false,
      requireTls: true,
      reason: `${W} did not advertise REQUIRETLS after STARTTLS, and the message requires it (RFC 8689 section 4.2.1)`,
    });
  });
  it('a session authenticated only as Trusted: the next MX', () => {
    expect(decide({ ...input('dane', TLS, { verdict: OK_TRUSTED }), requireTls: { offered: true } })).toMatchObject({
      action: 'next',
      requireTls: true,
      temporary: false,
    });
  });
  it('a verification failure stays what it is (temporary, a TLS stage), not a REQUIRETLS refusal', () => {
    const d = decide({
      ...input('secure', TLS, { verdict: { ok: false, trust: 'Untrusted', reason: 'x', resultType: 'certificate-not-trusted' } }),
      requireTls: { offered: true },
    });
    expect(d).toMatchObject({ action: 'next', stage: 'verification' });
    expect('requireTls' in d).toBe(false);
  });
});
