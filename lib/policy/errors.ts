/**
 * PolicyError: every configuration problem the policy module finds, with where it was found.
 *
 * Parsers collect problems instead of stopping at the first one, so a user who fixes a
 * policy file sees every mistake at once; the error's message lists the first few.
 */

/** One problem: the file (or option name, or '<object>'), the line (or entry/item index, 0 when none), one sentence. */
export interface PolicyProblem {
  file: string;
  line: number;
  message: string;
}

/** How many problems a PolicyError's message spells out before "and N more". */
const LISTED = 3;

/** `file:line: message`, or `file: message` when there is no line. */
export function formatProblem(p: PolicyProblem): string {
  return p.line > 0 ? `${p.file}:${p.line}: ${p.message}` : `${p.file}: ${p.message}`;
}

export class PolicyError extends Error {
  readonly code = 'EPOLICY' as const;
  /** A wrong table stays wrong until it is edited: never worth retrying (as every ECONFIG). */
  readonly temporary = false as const;
  /** Where the first problem is. */
  readonly file: string;
  readonly line: number;
  /** Every problem found, in input order. */
  readonly problems: readonly PolicyProblem[];

  constructor(problems: readonly PolicyProblem[]) {
    if (problems.length === 0) throw new TypeError('PolicyError needs at least one problem');
    const first = problems[0]!;
    let message = problems.slice(0, LISTED).map(formatProblem).join('; ');
    if (problems.length > LISTED) message += `; and ${problems.length - LISTED} more`;
    super(message);
    this.name = 'PolicyError';
    this.file = first.file;
    this.line = first.line;
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
  }
}

/** Throws a PolicyError when there is anything to report. */
export function throwIfProblems(problems: readonly PolicyProblem[]): void {
  if (problems.length > 0) throw new PolicyError(problems);
}
