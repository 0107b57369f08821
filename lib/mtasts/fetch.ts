/**
 * Fetching an MTA-STS policy (RFC 8461 section 3.3), I/O only: no policy rule lives here.
 *
 * `https://mta-sts.<domain>/.well-known/mta-sts.txt`, with full PKIX validation of the name
 * `mta-sts.<domain>` (section 3.3: "the certificate ... MUST be valid for the policy host"), no
 * redirect followed and no HTTP cache (section 3.3), status 200 and `text/plain` only, a body
 * limit (64 KiB; section 3.3 lets senders bound it) and one deadline over the whole fetch (the
 * RFC suggests 60 s; the default here is shorter, since delivery waits on it).
 * The host's addresses come from the transport's resolver, so tests and private deployments
 * reach it through the same DNS as the MX hosts.
 */
import { request } from 'node:https';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';

/** Section 3.3 lets senders bound the policy size; 64 KiB, as mox and Postfix's resolver use. */
export const MAX_POLICY_BYTES = 64 * 1024;
export const DEFAULT_FETCH_TIMEOUT_MS = 20_000;

export interface FetchOptions {
  /** The policy host's addresses, in the order to try. */
  addresses: string[];
  /** CA certificates to verify against; undefined: Node's built-in root store. */
  ca?: string | Buffer | Array<string | Buffer>;
  port: number;
  timeoutMs: number;
}

export type FetchResult =
  | { ok: true; body: string; status: number; contentType: string; bytes: number; ms: number; address: string }
  | {
      ok: false;
      /** One sentence: what failed, at which address. */
      reason: string;
      /** RFC 8460 section 4.3: a certificate the policy host could not be authenticated with, or any other failure. */
      resultType: 'sts-webpki-invalid' | 'sts-policy-fetch-error';
      status?: number;
      contentType?: string;
      ms: number;
    };

/** OpenSSL's verification failures: the policy host's certificate did not pass PKIX (RFC 8460's sts-webpki-invalid). */
const PKIX_CODES = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH|UNABLE_TO_VERIFY)/;

function fetchFrom(host: string, address: string, options: FetchOptions, deadline: number): Promise<FetchResult> {
  const started = Date.now();
  const ms = () => Date.now() - started;
  const lookup: LookupFunction = (_name, opts, callback) => {
    const family = isIP(address);
    if ((opts as { all?: boolean }).all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: FetchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const fail = (reason: string, extra: { resultType?: 'sts-webpki-invalid'; status?: number; contentType?: string } = {}) =>
      finish({ ok: false, reason, resultType: extra.resultType ?? 'sts-policy-fetch-error', ms: ms(), ...extra });
    const where = `https://${host}/.well-known/mta-sts.txt at ${address.includes(':') ? `[${address}]` : address}:${options.port}`;
    const req = request({
      host,
      port: options.port,
      path: '/.well-known/mta-sts.txt',
      method: 'GET',
      lookup,
      agent: false,
      servername: host,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      rejectUnauthorized: true,
      // Section 3.3: HTTP caching MUST NOT be used.
      headers: { 'cache-control': 'no-cache', accept: 'text/plain', 'user-agent': 'nodemailer-tls-policy (MTA-STS)' },
    });
    const timer = setTimeout(() => fail(`${where}: no complete answer within ${options.timeoutMs} ms`), Math.max(0, deadline - Date.now()));
    timer.unref();
    req.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      if (PKIX_CODES.test(code)) fail(`${where}: the certificate of ${host} did not verify: ${err.message}`, { resultType: 'sts-webpki-invalid' });
      else fail(`${where}: ${err.message}`);
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const contentType = String(res.headers['content-type'] ?? '');
      // Section 3.3: a 3xx is not followed; only 200 carries a policy.
      if (status !== 200) {
        fail(`${where}: HTTP status ${status}${status >= 300 && status < 400 ? ' (redirects are not followed, RFC 8461 section 3.3)' : ''}`, {
          status,
          contentType,
        });
        return;
      }
      // Section 3.3: the policy is served as "text/plain" (parameters such as charset allowed).
      if (contentType.split(';')[0]?.trim().toLowerCase() !== 'text/plain') {
        fail(`${where}: content type "${contentType}" is not text/plain`, { status, contentType });
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > MAX_POLICY_BYTES) {
        fail(`${where}: the policy is ${declared} bytes, more than ${MAX_POLICY_BYTES}`, { status, contentType });
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_POLICY_BYTES) {
          fail(`${where}: the policy is more than ${MAX_POLICY_BYTES} bytes`, { status, contentType });
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = new TextDecoder('utf-8', { fatal: true });
        try {
          finish({ ok: true, body: text.decode(body), status, contentType, bytes, ms: ms(), address });
        } catch {
          fail(`${where}: the policy is not UTF-8 text`, { status, contentType });
        }
      });
      res.on('error', (err) => fail(`${where}: ${err.message}`, { status, contentType }));
    });
    req.end();
  });
}

/**
 * Fetches the policy of `domain` from `mta-sts.<domain>`: each address in turn until one answers
 * at the HTTP level (a certificate failure or an HTTP answer is final: another address of the same
 * host would be the same operator's same mistake), all within one deadline.
 */
export async function fetchStsPolicy(domain: string, options: FetchOptions): Promise<FetchResult & { host: string }> {
  const host = `mta-sts.${domain}`;
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  if (options.addresses.length === 0) return { ok: false, host, reason: `${host} has no address`, resultType: 'sts-policy-fetch-error', ms: 0 };
  let last: FetchResult | undefined;
  for (const address of options.addresses) {
    if (Date.now() >= deadline) break;
    last = await fetchFrom(host, address, options, deadline);
    if (last.ok || last.resultType === 'sts-webpki-invalid' || last.status !== undefined) break;
  }
  const result = last ?? {
    ok: false as const,
    reason: `no answer from ${host} within ${options.timeoutMs} ms`,
    resultType: 'sts-policy-fetch-error' as const,
    ms: 0,
  };
  return { ...result, host, ms: Date.now() - started };
}
