/**
 * SMTP replies as data (RFC 5321 section 4.2): the three-digit code at the start of a reply.
 * Pure and free of Nodemailer, so the pure modules (decide) can read replies too.
 */

/** The reply code of a reply (`454 4.7.0 ...` -> 454), or undefined when it has none. */
export function replyCode(reply: string | undefined): number | undefined {
  const match = reply ? /^([2-5]\d\d)/.exec(reply) : null;
  return match ? Number(match[1]) : undefined;
}
