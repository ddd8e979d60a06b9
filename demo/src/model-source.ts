/**
 * Where the demo's workers read a model from: a URL or Hugging Face repo id (through the Cache
 * API download cache unless turned off) or a local folder. Before a download, the storage quota
 * is checked against the model's size; a quota too small is said, and the model is then read
 * without caching.
 */
import { Checkpoint, huggingFaceUrl, resolveModelSource, type ModelSource } from '../../index.ts';
import { cachedHttpSource, cacheSize, checkQuota, type CacheStats } from '../../loader/source-cache.ts';
import type { DemoModel } from './protocol.ts';

export interface DemoSource {
  source: ModelSource;
  /** Bytes from the network and from the cache (zeros when uncached). */
  stats: CacheStats;
  /** Whether downloads go through the cache. */
  cached: boolean;
  /** The URL for a URL or repo id. */
  url?: string;
}

/** An absolute URL as is; anything else is a Hugging Face repo id (the page resolves site paths). */
export function toUrl(model: string): string {
  return /^https?:\/\//i.test(model) ? model : huggingFaceUrl(model);
}

export async function demoSource(model: DemoModel, cache: boolean): Promise<DemoSource> {
  const stats: CacheStats = { networkBytes: 0, cachedBytes: 0, networkRequests: 0, cachedRequests: 0, storeFailures: 0 };
  if (typeof model !== 'string') return { source: await resolveModelSource(model), stats, cached: false };
  const url = toUrl(model);
  if (cache && typeof caches !== 'undefined') {
    const c = cachedHttpSource(url);
    return { source: c.source, stats: c.stats, cached: true, url };
  }
  return { source: await resolveModelSource(url), stats, cached: false, url };
}

/** The name a model answers to: the last part of its URL or repo id, or the picked folder's name. */
export function modelName(model: DemoModel): string {
  if (typeof model === 'string') return model.replace(/\/+$/, '').split('/').at(-1) || model;
  if (Array.isArray(model)) return (model[0] as File & { webkitRelativePath?: string } | undefined)?.webkitRelativePath?.split('/')[0] || 'gpt-oss';
  return model.name;
}

const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;

/**
 * Reads the checkpoint's headers for its size and checks the quota. When the model does not fit,
 * `warning` says so and the returned source reads without caching.
 */
export async function checkStorage(s: DemoSource): Promise<{ source: DemoSource; totalBytes: number; warning?: string }> {
  const probe = await Checkpoint.open(s.source);
  const totalBytes = probe.totalBytes;
  await probe.close();
  if (!s.cached || s.url === undefined) return { source: s, totalBytes };
  const q = await checkQuota(Math.max(0, totalBytes - (await cacheSize())));
  if (q.ok) return { source: s, totalBytes };
  const warning = `The browser's storage quota (${gb(q.available)} free of ${gb(q.quota)}) is too small to keep this ${gb(totalBytes)} model: ` +
    'it is loaded without caching, so the next visit downloads it again. Free some space (clear this or other sites\' data) to cache it.';
  return { source: { ...s, source: await resolveModelSource(s.url), cached: false }, totalBytes, warning };
}

/** What to say once the cache has refused to store a download (the estimate can be wrong). */
export function storeRefusedWarning(stats: CacheStats): string | undefined {
  if (stats.storeFailures === 0) return undefined;
  return 'The browser refused to store part of the model (its storage is full or over quota): the rest is downloaded ' +
    'without caching, so the next visit downloads it again. Free some space (clear this or other sites\' data) to cache it.';
}
