/**
 * Browser-side download cache for HTTP model sources (Cache API). `cachingFetch` wraps fetch:
 * every Range request is stored under its own key (the URL plus the byte range), so a second
 * load reads everything from the cache and an interrupted download resumes: the chunks already
 * fetched are not fetched again. `cachedHttpSource` is httpSource over that fetch, plus what the
 * integrity check (loader/integrity.ts) and the cache listing (loader/cache-models.ts) need:
 * a record of each file (its model and size) and a verified mark once its hash matched.
 *
 * Keys are URLs with one of our query parameters added; request headers (an access token) are
 * never part of a key. Storing anything fetched from the network for a file first removes the
 * file's verified mark: a mark only ever covers bytes that were hashed.
 */
import { hubTreeUrl, parseHubUrl, type HubRepo } from './hub.ts';
import { httpSource, type HttpSourceOptions } from './source-http.ts';
import type { ModelSource, SourceCache } from './source.ts';

export const DEFAULT_CACHE_NAME = 'gpt-oss-webgpu-models';

/** Query parameters of our keys: a stored answer (by range), a file's record, its verified mark, a model's record. */
export const KEY = { range: '__gptoss_range', file: '__gptoss_file', verified: '__gptoss_verified', model: '__gptoss_model' } as const;

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

/** `url` with our parameter `kind` set to `value`. */
export function cacheKey(url: string, kind: keyof typeof KEY, value = '1'): string {
  const u = new URL(url);
  u.searchParams.set(KEY[kind], value);
  return u.toString();
}

/** What a key is: the URL it is about (our parameters removed), its kind and value. */
export function parseCacheKey(key: string): { url: string; kind?: keyof typeof KEY; value?: string } {
  const u = new URL(key);
  let kind: keyof typeof KEY | undefined;
  let value: string | undefined;
  for (const k of Object.keys(KEY) as (keyof typeof KEY)[]) {
    const v = u.searchParams.get(KEY[k]);
    if (v !== null) {
      kind = k;
      value = v;
      u.searchParams.delete(KEY[k]);
    }
  }
  return { url: u.toString(), kind, value };
}

function rangeOf(init?: RequestInit): string | null {
  const h = new Headers(init?.headers);
  return h.get('range');
}

export interface CachingFetch {
  fetch: typeof fetch;
  stats: CacheStats;
  /** Answers for `url` that came from the network so far. */
  networkReads(url: string): number;
}

/** A fetch that answers GETs from the Cache API and stores successful answers there. */
export function cachingFetch(options: CachingFetchOptions = {}): CachingFetch {
  const name = options.cacheName ?? DEFAULT_CACHE_NAME;
  const inner = options.fetch ?? globalThis.fetch.bind(globalThis);
  const stats: CacheStats = { networkBytes: 0, cachedBytes: 0, networkRequests: 0, cachedRequests: 0, storeFailures: 0 };
  const fromNetwork = new Map<string, number>();
  let cachePromise: Promise<Cache> | undefined;
  const open = () => (cachePromise ??= caches.open(name));
  const f = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url;
    const key = cacheKey(url, 'range', rangeOf(init) ?? 'all');
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
    fromNetwork.set(url, (fromNetwork.get(url) ?? 0) + 1);
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
      await cache.delete(cacheKey(url, 'verified'));
      await cache.put(key, new Response(body, { status: 200, headers }));
    } catch {
      stats.storeFailures++;
    }
    options.onStats?.(stats);
    return new Response(body, { status: res.status, headers });
  };
  return { fetch: f as typeof fetch, stats, networkReads: (url) => fromNetwork.get(url) ?? 0 };
}

export interface CachedHttpSource {
  source: ModelSource;
  stats: CacheStats;
}

export interface CachedSourceOptions extends CachingFetchOptions, HttpSourceOptions {
  /** The name the cache lists the model under (default: the repo id for the hub, else the URL). */
  model?: string;
}

/** What the cache records of a model's file (key: the file's URL with KEY.file). */
export interface FileRecord {
  model: string;
  base: string;
  file: string;
  size: number;
}

/** What the cache records of a model (key: its base URL with KEY.model): other URLs to delete with it. */
export interface ModelRecord {
  model: string;
  base: string;
  related: string[];
}

/** httpSource whose requests go through the Cache API. */
export function cachedHttpSource(baseUrl: string, options: CachedSourceOptions = {}): CachedHttpSource {
  const cf = cachingFetch(options);
  const inner = httpSource(baseUrl, { ...options, fetch: cf.fetch });
  const base = inner.description;
  const hub: HubRepo | undefined = options.hub ?? parseHubUrl(base);
  const model = options.model ?? (hub ? (hub.revision === 'main' ? hub.repo : `${hub.repo}@${hub.revision}`) : base);
  const name = options.cacheName ?? DEFAULT_CACHE_NAME;
  const open = () => caches.open(name);
  const url = (file: string) => new URL(file.split('/').map(encodeURIComponent).join('/'), base).toString();
  let recorded: Promise<void> | undefined;
  const put = async (key: string, value: string) => {
    try {
      await (await open()).put(key, new Response(value, { headers: { 'content-type': 'application/json' } }));
    } catch {
      cf.stats.storeFailures++;
    }
  };
  const cache: SourceCache = {
    async verifiedMark(file) {
      return (await (await open()).match(cacheKey(url(file), 'verified')))?.text();
    },
    async markVerified(file, mark) {
      await put(cacheKey(url(file), 'verified'), mark);
    },
    async drop(file) {
      // The file's record stays: the listing then shows the model as incomplete, not as one file short.
      const c = await open();
      const target = url(file);
      for (const req of await c.keys()) {
        const k = parseCacheKey(req.url);
        if (k.url === target && k.kind !== 'file') await c.delete(req);
      }
    },
    networkReads: (file) => cf.networkReads(url(file)),
    get networkBytes() {
      return cf.stats.networkBytes;
    },
  };
  const source: ModelSource = {
    description: inner.description,
    digests: inner.digests,
    cache,
    exists: (file) => inner.exists(file),
    async open(file) {
      const bs = await inner.open(file);
      recorded ??= put(cacheKey(base, 'model'), JSON.stringify({ model, base, related: hub ? [hubTreeUrl(hub)] : [] } satisfies ModelRecord));
      await recorded;
      const fileKey = cacheKey(url(file), 'file');
      const known = await (await open()).match(fileKey).catch(() => undefined);
      if (!known) await put(fileKey, JSON.stringify({ model, base, file, size: bs.size } satisfies FileRecord));
      return bs;
    },
  };
  return { source, stats: cf.stats };
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
