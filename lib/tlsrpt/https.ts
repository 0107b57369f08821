/**
 * Delivering a report to an `https:` rua (RFC 8460 section 5.4), I/O only: a POST of the
 * gzipped report as `application/tlsrpt+gzip`, with full PKIX verification of the URL's host,
 * within one deadline; the host's addresses come from the transport's resolver (as the MTA-STS
 * policy host's do). A 2xx answer delivers it; anything else (another status, a redirect, which is
 * not followed, a TLS or connection failure, the deadline) leaves it to be tried again.
 */
import { request } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';

export interface PostOptions {
  /** The URL host's addresses, in the order to try (an IP literal host needs none). */
  addresses: string[];
  /** CA certificates to verify against; undefined: Node's. */
  ca?: string | Buffer | Array<string | Buffer>;
  timeoutMs: number;
}

export type PostResult = { ok: true; status: number } | { ok: false; reason: string };

function postTo(url: URL, address: string, body: Buffer, options: PostOptions, deadline: number): Promise<PostResult & { answered?: boolean }> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const lookup: LookupFunction = (_name, opts, callback) => {
    const family = isIP(address);
    if ((opts as { all?: boolean }).all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const where = `${url.href} (at ${address.includes(':') ? `[${address}]` : address})`;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: PostResult & { answered?: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const req = request({
      host,
      port: url.port || 443,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      lookup,
      agent: false,
      ...(isIP(host) ? {} : { servername: host }),
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      rejectUnauthorized: true,
      headers: { 'content-type': 'application/tlsrpt+gzip', 'content-length': String(body.length), 'user-agent': 'nodemailer-tls-policy (TLSRPT)' },
    });
    const timer = setTimeout(() => finish({ ok: false, reason: `${where}: no answer within ${options.timeoutMs} ms` }), Math.max(0, deadline - Date.now()));
    timer.unref();
    req.on('error', (err) => finish({ ok: false, reason: `${where}: ${err.message}` }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status >= 200 && status < 300) finish({ ok: true, status });
      else
        finish({
          ok: false,
          answered: true,
          reason: `${where}: HTTP status ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`,
        });
    });
    req.end(body);
  });
}

/** POSTs `body` to `url`: each address in turn until one answers at the HTTP level, all within one deadline. */
export async function postReport(url: URL, body: Buffer, options: PostOptions): Promise<PostResult> {
  const deadline = Date.now() + options.timeoutMs;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : options.addresses;
  if (addresses.length === 0) return { ok: false, reason: `${url.href}: ${host} has no address` };
  let last: PostResult | undefined;
  for (const address of addresses) {
    if (Date.now() >= deadline) break;
    const result = await postTo(url, address, body, options, deadline);
    last = result;
    if (result.ok || result.answered) break;
  }
  return last ?? { ok: false, reason: `${url.href}: no answer within ${options.timeoutMs} ms` };
}
