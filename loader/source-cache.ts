/**
 * Browser-side download cache for HTTP model sources (Cache API). `cachingFetch` wraps fetch:
 * every Range request is stored under its own key (the URL plus the byte range), so a second
 * load reads everything from the cache and an interrupted download resumes: the chunks already
 * fetched are not fetched again. `cachedHttpSource` is httpSource over that fetch.
 */
import { httpSource, type HttpSourceOptions } from './source-http.ts';
import type { ModelSource } from './source.ts';

export const DEFAULT_CACHE_NAME = 'gpt-oss-webgpu-models';

export interface CacheStats {
  /** Bytes that came from the network. */
  networkBytes: number;
  /** Bytes served from the cache. */
  cachedBytes: number;
  networkRequests: number;
  cachedRequests: number;
  /** Answers the cache refused to store (quota exceeded, storage evicted): served all the same. */
  storeFailures: number;
}

export interface CachingFetchOptions {
  cacheName?: string;
  fetch?: typeof fetch;
  /** Called after each response with the running totals. */
  onStats?: (s: CacheStats) => void;
}

function cacheKey(url: string, range: string | null): string {
  const u = new URL(url);
  u.searchParams.set('__gptoss_range', range ?? 'all');
  return u.toString();
}

function rangeOf(init?: RequestInit): string | null {
  const h = new Headers(init?.headers);
  return h.get('range');
}

/** A fetch that answers GETs from the Cache API and stores successful answers there. */
export function cachingFetch(options: CachingFetchOptions = {}): { fetch: typeof fetch; stats: CacheStats } {
  const name = options.cacheName ?? DEFAULT_CACHE_NAME;
  const inner = options.fetch ?? globalThis.fetch.bind(globalThis);
  const stats: CacheStats = { networkBytes: 0, cachedBytes: 0, networkRequests: 0, cachedRequests: 0, storeFailures: 0 };
  let cachePromise: Promise<Cache> | undefined;
  const open = () => (cachePromise ??= caches.open(name));
  const f = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url;
    const key = cacheKey(url, rangeOf(init));
    const cache = await open();
    const hit = await cache.match(key);
    if (hit) {
      const body = new Uint8Array(await hit.arrayBuffer());
      stats.cachedBytes += body.byteLength;
      stats.cachedRequests++;
      options.onStats?.(stats);
      const status = Number(hit.headers.get('x-gptoss-status') ?? '200');
      return new Response(body, { status, headers: hit.headers });
    }
    const res = await inner(input, init);
    // 404 is cached too (a checkpoint without an index file is probed for one on every load).
    if (res.status !== 200 && res.status !== 206 && res.status !== 404) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    stats.networkBytes += body.byteLength;
    stats.networkRequests++;
    const headers = new Headers();
    for (const h of ['content-range', 'content-length', 'content-type', 'accept-ranges']) {
      const v = res.headers.get(h);
      if (v !== null) headers.set(h, v);
    }
    headers.set('content-length', String(body.byteLength));
    headers.set('x-gptoss-status', String(res.status));
    // Cache.put refuses 206 (and 404 is not ok): stored as 200 with the real status in a header.
    // A full quota only costs the caching: the download goes on.
    try {
      await cache.put(key, new Response(body, { status: 200, headers }));
    } catch {
      stats.storeFailures++;
    }
    options.onStats?.(stats);
    return new Response(body, { status: res.status, headers });
  };
  return { fetch: f as typeof fetch, stats };
}

export interface CachedHttpSource {
  source: ModelSource;
  stats: CacheStats;
}

/** httpSource whose requests go through the Cache API. */
export function cachedHttpSource(baseUrl: string, options: CachingFetchOptions & HttpSourceOptions = {}): CachedHttpSource {
  const { fetch: f, stats } = cachingFetch(options);
  return { source: httpSource(baseUrl, { ...options, fetch: f }), stats };
}

/** Bytes stored in the cache (sum of the stored bodies' lengths). */
export async function cacheSize(cacheName = DEFAULT_CACHE_NAME): Promise<number> {
  if (!(await caches.has(cacheName))) return 0;
  const cache = await caches.open(cacheName);
  let total = 0;
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    const len = Number(res?.headers.get('content-length') ?? NaN);
    total += Number.isFinite(len) ? len : (await res!.arrayBuffer()).byteLength;
  }
  return total;
}

export async function clearCache(cacheName = DEFAULT_CACHE_NAME): Promise<void> {
  await caches.delete(cacheName);
}

/** Whether `bytes` more fit in the origin's storage quota (navigator.storage.estimate()). */
export async function checkQuota(bytes: number): Promise<{ ok: boolean; quota: number; usage: number; available: number }> {
  const est = await navigator.storage?.estimate?.();
  const quota = est?.quota ?? Infinity;
  const usage = est?.usage ?? 0;
  const available = quota - usage;
  return { ok: available >= bytes, quota, usage, available };
}
