/**
 * mtasts: SMTP MTA Strict Transport Security (RFC 8461) for a recipient domain: discovery, fetch
 * and the policy cache. Which host a policy governs, and how, is planHost's (lib/plan/host.ts);
 * this module only answers "which policy applies to this domain now, and why".
 *
 * - Discovery (section 3.1): the `_mta-sts.<domain>` TXT record, exactly one `v=STSv1` record with
 *   an `id`; the policy from `https://mta-sts.<domain>/.well-known/mta-sts.txt` (./fetch.ts) in the
 *   grammar of section 3.2 (./policy.ts).
 * - Cache (section 5.1): a policy is kept for its `max_age`, keyed by the recipient domain (never
 *   by MX host: one domain's broken policy must not touch another sharing its MX hosts). A cached
 *   policy is applied when the TXT lookup fails, when no valid TXT record is found, and when a
 *   fetch fails: "if no 'live' policy can be discovered via DNS or fetched via HTTPS, but a valid
 *   (non-expired) previously cached policy exists, the sender MUST apply that cached policy". A
 *   new `id` fetches the policy again; a failed fetch keeps the still valid cached policy, and the
 *   same id is not fetched again for FETCH_RETRY_MS. `mode: none` removes the cached policy
 *   (section 8.3, how a domain withdraws MTA-STS).
 * - Refresh (section 10.2): each delivery reads the TXT record (from the DNS cache within its TTL);
 *   an unchanged id extends the cached policy's lifetime without a fetch, written once a day (or
 *   after half of a shorter max_age), so a policy in use never expires while the domain still
 *   announces it.
 * - Identical concurrent lookups in one process share one lookup and one fetch; senders sharing
 *   one store fetch a new id once between them (a claim in the store; the others wait for the
 *   result there).
 */
import { randomUUID } from 'node:crypto';
import type { DnsResult, AddressRecord, TxtRecord } from '../dns/index.js';
import type { KeyValueStore } from '../store/index.js';
import { DEFAULT_FETCH_TIMEOUT_MS, fetchStsPolicy, type FetchResult } from './fetch.js';
import { parseStsPolicy, parseStsRecord, type StsMode } from './policy.js';

export { parseStsPolicy, parseStsRecord, mxMatches, MAX_AGE_LIMIT, type StsPolicy, type StsRecord, type StsMode } from './policy.js';
export { fetchStsPolicy, MAX_POLICY_BYTES, DEFAULT_FETCH_TIMEOUT_MS, type FetchResult } from './fetch.js';

/** A failed fetch of one id is not tried again before this (a few minutes). */
export const FETCH_RETRY_MS = 5 * 60_000;
/** How long racing claims of one fetch get to land in a shared store before the claim is read back. */
const CLAIM_SETTLE_MS = 100;
/** An unchanged id extends the cached policy at most this often. */
const EXTEND_EVERY_MS = 86_400_000;

/** A policy as cached (JSON in the store). */
export interface CachedStsPolicy {
  domain: string;
  id: string;
  mode: Exclude<StsMode, 'none'>;
  mx: string[];
  maxAge: number;
  lines: string[];
  /** When the policy body was fetched (ms since the epoch). */
  fetchedAt: number;
  /** When the TXT record last announced this id (the cache lifetime counts from here). */
  confirmedAt: number;
  /** confirmedAt + max_age. */
  expiresAt: number;
}

/** The policy that governs a domain's MX hosts now, with where it came from. */
export interface AppliedStsPolicy extends CachedStsPolicy {
  /** `fetched` now, or from the `cache` (a live lookup agreed, or failed and the cache stands in). */
  from: 'fetched' | 'cache';
}

/** RFC 8460 section 4.3's result types for a policy that could not be had. */
export type StsFailureType = 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

/** What a lookup found: the policy in force (enforce or testing), or none, and why, step by step. */
export interface StsLookup {
  domain: string;
  policy?: AppliedStsPolicy;
  /** What happened, one sentence a step: the TXT record, the fetch, the cache. */
  notes: string[];
  /** The TXT record read, when there was one. */
  record?: { id: string; text: string };
  /** The fetch made during this lookup, if any. */
  fetch?: FetchResult & { host: string };
  /** A failure to get a live policy (RFC 8460): the domain announced one that could not be used. */
  failure?: { resultType: StsFailureType; reason: string };
}

export interface StsDns {
  txt(name: string): Promise<DnsResult<TxtRecord>>;
  addresses(name: string): Promise<DnsResult<AddressRecord>>;
}

export interface StsSettings {
  store: KeyValueStore;
  /** Whether other senders may share the store (a store the caller gave): fetches are then claimed. */
  shared: boolean;
  /** CA certificates for the policy host; undefined: Node's root store. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** The policy host's HTTPS port: 443 (others are for tests and private deployments). */
  port: number;
  /** The whole fetch's deadline, ms. */
  fetchTimeout: number;
  now?: () => number;
}

export const STS_DEFAULTS = { port: 443, fetchTimeout: DEFAULT_FETCH_TIMEOUT_MS };

const policyKey = (domain: string) => `mta-sts:policy:${domain}`;
const failedKey = (domain: string, id: string) => `mta-sts:fetch-failed:${domain}:${id}`;
const fetchingKey = (domain: string, id: string) => `mta-sts:fetching:${domain}:${id}`;

function asCached(value: unknown, domain: string, now: number): CachedStsPolicy | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const c = value as CachedStsPolicy;
  if (c.domain !== domain || typeof c.id !== 'string' || !Array.isArray(c.mx) || typeof c.expiresAt !== 'number') return undefined;
  if (c.mode !== 'enforce' && c.mode !== 'testing') return undefined;
  return c.expiresAt > now ? c : undefined; // section 5.1: only a non-expired policy applies
}

const day = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** Looks up MTA-STS policies through one store; one per transport. */
export class MtaSts {
  private readonly inflight = new Map<string, Promise<StsLookup>>();

  constructor(
    private readonly dns: StsDns,
    private readonly settings: StsSettings,
  ) {}

  private now(): number {
    return this.settings.now?.() ?? Date.now();
  }

  /** The policy for a recipient domain (A-label, lower case); identical lookups under way are shared. */
  lookup(domain: string): Promise<StsLookup> {
    const running = this.inflight.get(domain);
    if (running) return running;
    const work = this.run(domain).finally(() => this.inflight.delete(domain));
    this.inflight.set(domain, work);
    return work;
  }

  /** The policy cached for a domain, if any and not expired (for the probe and tests). */
  async cached(domain: string): Promise<CachedStsPolicy | undefined> {
    return asCached(await this.settings.store.get(policyKey(domain)), domain, this.now());
  }

  private async run(domain: string): Promise<StsLookup> {
    const store = this.settings.store;
    const result: StsLookup = { domain, notes: [] };
    const cached = await this.cached(domain).catch((err: Error) => {
      result.notes.push(`the MTA-STS cache could not be read: ${err.message}`);
      return undefined;
    });
    const useCache = (why: string): StsLookup => {
      if (cached) {
        result.policy = { ...cached, from: 'cache' };
        result.notes.push(`${why}; the cached policy (id ${cached.id}, mode ${cached.mode}, until ${day(cached.expiresAt)}) applies (RFC 8461 section 5.1)`);
      } else {
        result.notes.push(`${why}; no policy is cached, so ${domain} is treated as having no MTA-STS policy`);
      }
      return result;
    };
    const name = `_mta-sts.${domain}`;
    const txt = await this.dns.txt(name);
    if (txt.status === 'failed') return useCache(`the TXT lookup of ${name} failed (${txt.reason})`);
    const texts = txt.records.map((r) => r.text);
    const parsed = parseStsRecord(texts);
    if ('none' in parsed) {
      if (cached) return useCache(`${name} has no valid MTA-STS record (${parsed.none})`);
      result.notes.push(`${name}: ${parsed.none}, so ${domain} has no MTA-STS policy`);
      return result;
    }
    const id = parsed.record.id;
    result.record = { id, text: texts.find((t) => t.startsWith('v=STSv1')) ?? '' };
    const now = this.now();
    if (cached && cached.id === id) {
      // Section 10.2: the domain still announces this policy; extend it without a fetch.
      result.policy = { ...cached, from: 'cache' };
      if (now - cached.confirmedAt >= Math.min(EXTEND_EVERY_MS, (cached.maxAge * 1000) / 2)) {
        const extended: CachedStsPolicy = { ...cached, confirmedAt: now, expiresAt: now + cached.maxAge * 1000 };
        await store.set(policyKey(domain), extended, cached.maxAge * 1000).catch(() => undefined);
        result.policy = { ...extended, from: 'cache' };
      }
      result.notes.push(`${name} announces id ${id}, the id of the cached policy (mode ${cached.mode}, until ${day(result.policy.expiresAt)})`);
      return result;
    }
    if (await store.get(failedKey(domain, id)).catch(() => undefined)) {
      return useCache(`the policy for id ${id} failed to fetch less than ${FETCH_RETRY_MS / 60_000} minutes ago and is not fetched again yet`);
    }
    // One fetch of a new id per fleet: the senders sharing the store claim it, and the others wait
    // for its result there. Keyv has no atomic set-if-absent, so the claim is a write and, once
    // every write racing it has landed (CLAIM_SETTLE_MS), a read that must still see our token:
    // the last writer fetches. Best effort; a lost race costs one more fetch, never a wrong policy.
    const claim = fetchingKey(domain, id);
    const token = randomUUID();
    let ours = !this.settings.shared;
    if (!ours && (await store.get(claim).catch(() => undefined)) === undefined) {
      await store.set(claim, token, this.settings.fetchTimeout + 5_000).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, CLAIM_SETTLE_MS)); // not unref'd: a send is waiting on it
      ours = (await store.get(claim).catch(() => token)) === token;
    }
    if (!ours) {
      const waited = await this.waitForFetch(domain, id);
      if (waited.policy) {
        result.policy = { ...waited.policy, from: 'cache' };
        result.notes.push(`${name} announces id ${id}; its policy was fetched by another sender sharing the store (mode ${waited.policy.mode})`);
        return result;
      }
      if (waited.failed) return useCache(`${name} announces id ${id}, whose policy another sender sharing the store failed to fetch`);
      // The other sender went away without a result: fetch it here.
    }
    try {
      return await this.fetchAndStore(domain, id, cached, result, useCache);
    } finally {
      if (ours) await store.delete(claim).catch(() => undefined);
    }
  }

  /** Polls the store while another sender fetches `id`: its policy, its failure, or neither (it went away). */
  private async waitForFetch(domain: string, id: string): Promise<{ policy?: CachedStsPolicy; failed?: boolean }> {
    const store = this.settings.store;
    const deadline = Date.now() + this.settings.fetchTimeout + 1_000;
    for (let pause = 25; Date.now() < deadline; pause = Math.min(pause * 2, 250)) {
      await new Promise((resolve) => setTimeout(resolve, pause));
      const policy = await this.cached(domain).catch(() => undefined);
      if (policy?.id === id) return { policy };
      if (await store.get(failedKey(domain, id)).catch(() => undefined)) return { failed: true };
      if ((await store.get(fetchingKey(domain, id)).catch(() => undefined)) === undefined) return {};
    }
    return {};
  }

  private async fetchAndStore(
    domain: string,
    id: string,
    cached: CachedStsPolicy | undefined,
    result: StsLookup,
    useCache: (why: string) => StsLookup,
  ): Promise<StsLookup> {
    const store = this.settings.store;
    const name = `_mta-sts.${domain}`;
    const now = this.now();
    const addresses = await this.dns.addresses(`mta-sts.${domain}`);
    const fetched: FetchResult & { host: string } =
      addresses.status === 'failed'
        ? { ok: false, host: `mta-sts.${domain}`, reason: addresses.reason, resultType: 'sts-policy-fetch-error', ms: 0 }
        : await fetchStsPolicy(domain, {
            addresses: addresses.records.map((r) => r.address),
            port: this.settings.port,
            timeoutMs: this.settings.fetchTimeout,
            ...(this.settings.ca !== undefined ? { ca: this.settings.ca } : {}),
          });
    result.fetch = fetched;
    const failed = async (resultType: StsFailureType, reason: string): Promise<StsLookup> => {
      result.failure = { resultType, reason };
      await store.set(failedKey(domain, id), true, FETCH_RETRY_MS).catch(() => undefined);
      return useCache(`${name} announces id ${id}${cached ? ` (the cached policy has id ${cached.id})` : ''}, but the policy could not be used: ${reason}`);
    };
    if (!fetched.ok) return failed(fetched.resultType, `fetching it failed: ${fetched.reason}`);
    const policy = parseStsPolicy(fetched.body);
    if ('invalid' in policy) return failed('sts-policy-invalid', `the policy of ${fetched.host} is invalid: ${policy.invalid}`);
    const p = policy.policy;
    if (p.mode === 'none') {
      // Section 8.3: mode none withdraws the policy; a cached one is dropped.
      await store.delete(policyKey(domain)).catch(() => undefined);
      result.notes.push(`the policy of ${domain} (id ${id}) has mode none: ${domain} has no MTA-STS policy${cached ? ', and the cached one was removed' : ''}`);
      return result;
    }
    const entry: CachedStsPolicy = {
      domain,
      id,
      mode: p.mode,
      mx: p.mx,
      maxAge: p.maxAge,
      lines: p.lines,
      fetchedAt: now,
      confirmedAt: now,
      expiresAt: now + p.maxAge * 1000,
    };
    if (p.maxAge > 0) {
      await store.set(policyKey(domain), entry, p.maxAge * 1000).catch((err: Error) => result.notes.push(`the policy could not be cached: ${err.message}`));
    }
    result.policy = { ...entry, from: 'fetched' };
    result.notes.push(`fetched the policy of ${domain} (id ${id}, mode ${p.mode}, mx ${p.mx.join(' ')}, max_age ${p.maxAge})`);
    return result;
  }
}
