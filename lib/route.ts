/**
 * route: a message's envelope -> the destinations it goes to. Pure. One destination per
 * recipient domain, as an A-label (lib/names), a recipient's `[address]` literal is a next hop of
 * its own; with a relay, every recipient goes to the relay. Addresses that cannot be sent (a line
 * break, a control, `<`, `>`, no or an invalid domain) are refused here, for good, before any
 * connection.
 */
import type { Delivery, Destination } from './deliver/index.js';
import { TlsPolicyError } from './errors.js';
import { toDnsName } from './names/index.js';
import { safeText } from './text/index.js';

/**
 * Why an envelope address cannot be put in a MAIL FROM or RCPT TO command, or undefined: a line
 * break would end the command (and could inject another), other controls and `<`, `>` cannot
 * appear in a path (RFC 5321 section 4.1.2). Checked before any connection, so such an address
 * is refused at once for good, never retried at every MX.
 */
export function envelopeProblem(address: string): string | undefined {
  if (/[\r\n]/.test(address)) return 'it holds a line break';
  if (/[\x00-\x1f\x7f]/.test(address)) return 'it holds a control character';
  if (/[<>]/.test(address)) return 'it holds "<" or ">"';
  return undefined;
}

/** `user@Bücher.example` -> `bücher.example` as an A-label; `user@[192.0.2.1]` -> the literal. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) throw new TlsPolicyError(`recipient ${safeText(address)} has no domain`, 'EENVELOPE', false);
  const domain = address.slice(at + 1).trim();
  if (domain.startsWith('[') && domain.endsWith(']')) return domain.toLowerCase();
  // The same normaliser as policy keys, so a table entry and a recipient always agree.
  const ascii = toDnsName(domain);
  if (!ascii.ok) throw new TlsPolicyError(`recipient ${safeText(address)} has an invalid domain: ${ascii.reason}`, 'EENVELOPE', false);
  return ascii.value;
}

/** A recipient whose address cannot be delivered to at all (no or an invalid domain): bounced. */
export function refusedDelivery(recipient: string, err: Error): Delivery {
  return {
    destination: safeText(recipient.slice(recipient.lastIndexOf('@') + 1)),
    level: 'none',
    policySource: 'none',
    status: 'bounced',
    accepted: [],
    rejected: [recipient],
    pending: [],
    attempts: [],
    reason: err.message,
    code: 'EENVELOPE',
    temporary: false,
  };
}

/** `smtp.example.com:587`, `[192.0.2.1]:25`, `[::1]:2525`, or an object -> a relay destination. */
export function parseRelay(relay: string | { host: string; port?: number; secure?: boolean }): Extract<Destination, { kind: 'relay' }> {
  let host: string;
  let port: number | undefined;
  let secure: boolean | undefined;
  let written: 'host' | 'host:port' | undefined;
  if (typeof relay === 'string') {
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(relay.trim());
    const m = bracketed ?? /^([^:[\]]+)(?::(\d+))?$/.exec(relay.trim());
    if (!m) throw new TlsPolicyError(`relay "${relay}" is not host, host:port or [host]:port`, 'ECONFIG', false);
    host = m[1] as string;
    port = m[2] ? Number(m[2]) : undefined;
    // Remembered for the policy lookup: Postfix keys an unbracketed relayhost as written.
    if (!bracketed) written = port === undefined ? 'host' : 'host:port';
  } else {
    host = relay.host.replace(/^\[|\]$/g, '');
    port = relay.port;
    secure = relay.secure;
  }
  if (host.toLowerCase().startsWith('ipv6:')) host = host.slice(5);
  const finalPort = port ?? (secure ? 465 : 25);
  if (!Number.isInteger(finalPort) || finalPort < 1 || finalPort > 65535) {
    throw new TlsPolicyError(`relay port ${finalPort} is not a port number`, 'ECONFIG', false);
  }
  let name = host.toLowerCase();
  if (!host.includes(':')) {
    const ascii = toDnsName(host);
    if (!ascii.ok) throw new TlsPolicyError(`relay host "${host}" is not a valid name: ${ascii.reason}`, 'ECONFIG', false);
    name = ascii.value;
  }
  return { kind: 'relay', host: name, port: finalPort, implicitTls: secure ?? finalPort === 465, ...(written ? { written } : {}) };
}

export function messageAge(queuedAt: unknown, now: number): number {
  if (queuedAt === undefined || queuedAt === null) return 0; // a message with no age is new
  const t = queuedAt instanceof Date ? queuedAt.getTime() : typeof queuedAt === 'number' ? queuedAt : Date.parse(String(queuedAt));
  if (!Number.isFinite(t)) throw new TlsPolicyError(`queuedAt ${String(queuedAt)} is not a date`, 'ECONFIG', false);
  return Math.max(0, (now - t) / 1000);
}

/** The recipients grouped by destination, and a refused delivery for each address that cannot be sent. */
export function route(
  recipients: readonly string[],
  relay: Extract<Destination, { kind: 'relay' }> | undefined,
  port: number,
): { groups: Array<{ destination: Destination; recipients: string[] }>; refused: Delivery[] } {
  const groups = new Map<string, { destination: Destination; recipients: string[] }>();
  const refused: Delivery[] = [];
  for (const recipient of recipients) {
    let key: string;
    try {
      const problem = envelopeProblem(recipient);
      if (problem) throw new TlsPolicyError(`recipient "${safeText(recipient)}" cannot be sent in RCPT TO: ${problem}`, 'EENVELOPE', false);
      key = relay ? 'relay' : domainOf(recipient);
    } catch (err) {
      refused.push(refusedDelivery(recipient, err as Error));
      continue;
    }
    let group = groups.get(key);
    if (!group) {
      const destination: Destination =
        relay ??
        (key.startsWith('[') ? { kind: 'relay', host: key.slice(1, -1).replace(/^ipv6:/i, ''), port, implicitTls: false } : { kind: 'domain', domain: key });
      group = { destination, recipients: [] };
      groups.set(key, group);
    }
    group.recipients.push(recipient);
  }
  return { groups: [...groups.values()], refused };
}
