/**
 * Terminal styling: ANSI colours when asked, plain text otherwise, and the rule that decides
 * (colour only on a TTY, never with NO_COLOR set to anything but the empty string, never with
 * --no-color; https://no-color.org).
 */

export interface Style {
  readonly color: boolean;
  bold(s: string): string;
  dim(s: string): string;
  good(s: string): string;
  warn(s: string): string;
  bad(s: string): string;
  info(s: string): string;
}

const wrap = (on: boolean, open: number, close: number) => (s: string) => (on && s !== '' ? `\u001b[${open}m${s}\u001b[${close}m` : s);

export function makeStyle(color: boolean): Style {
  return {
    color,
    bold: wrap(color, 1, 22),
    dim: wrap(color, 2, 22),
    good: wrap(color, 32, 39),
    warn: wrap(color, 33, 39),
    bad: wrap(color, 31, 39),
    info: wrap(color, 36, 39),
  };
}

/** Whether to colour output written to `stream`. */
export function wantsColor(stream: { isTTY?: boolean }, env: Record<string, string | undefined>, noColorFlag: boolean): boolean {
  if (noColorFlag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true;
}

/** Removes ANSI colour sequences (for width computations and tests). */
export function stripAnsi(s: string): string {
  return s.replace(/\u001b\[[0-9;]*m/g, '');
}

/** The colour for a word the reports use: a DNSSEC status, a trust, a usability, a validity. */
export function tone(style: Style, word: string): string {
  switch (word) {
    case 'secure':
    case 'Verified':
    case 'usable':
    case 'valid':
    case 'pass':
      return style.good(word);
    case 'insecure':
    case 'Trusted':
    case 'Anonymous':
    case 'Cleartext':
    case 'ignored':
    case 'none':
      return style.warn(word);
    case 'failed':
    case 'Untrusted':
    case 'unusable':
    case 'expired':
    case 'not yet valid':
      return style.bad(word);
    default:
      return word;
  }
}
