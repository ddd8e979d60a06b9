/// <reference lib="webworker" />
/** The engine in a Web Worker: loads the model (through the download cache) and streams chats. */
import { Checkpoint, createEngine, huggingFaceUrl, resolveModelSource, type Engine, type ModelSource } from '../../index.ts';
import { cachedHttpSource, cacheSize, checkQuota, clearCache, type CacheStats } from '../../loader/source-cache.ts';
import type { FromWorker, LoadInfo, ToWorker } from './protocol.ts';

const post = (m: FromWorker) => (self as unknown as Worker).postMessage(m);
let engine: Engine | undefined;
const aborts = new Map<number, AbortController>();

/** An absolute URL as is; anything else is a Hugging Face repo id (the page resolves site paths). */
function toUrl(model: string): string {
  return /^https?:\/\//i.test(model) ? model : huggingFaceUrl(model);
}

async function load(id: number, model: string | FileSystemDirectoryHandle, cache: boolean, contextLimit?: number): Promise<LoadInfo> {
  await engine?.dispose();
  engine = undefined;
  let source: ModelSource;
  let stats: CacheStats = { networkBytes: 0, cachedBytes: 0, networkRequests: 0, cachedRequests: 0 };
  let quotaWarning: string | undefined;
  let modelId = 'gpt-oss';
  if (typeof model === 'string') {
    const url = toUrl(model);
    modelId = model.replace(/\/+$/, '').split('/').at(-1) || model;
    if (cache && typeof caches !== 'undefined') {
      const c = cachedHttpSource(url);
      source = c.source;
      stats = c.stats;
    } else source = await resolveModelSource(url);
  } else {
    source = await resolveModelSource(model);
    modelId = model.name;
  }
  // The size first (headers only), to check the storage quota before a large download.
  const probe = await Checkpoint.open(source);
  const totalBytes = probe.totalBytes;
  await probe.close();
  if (typeof model === 'string' && cache) {
    const q = await checkQuota(Math.max(0, totalBytes - (await cacheSize())));
    if (!q.ok) {
      quotaWarning = `The browser's storage quota (${(q.available / 1e9).toFixed(1)} GB free of ${(q.quota / 1e9).toFixed(1)} GB) ` +
        `is too small to cache this ${(totalBytes / 1e9).toFixed(1)} GB model: it is loaded without caching.`;
      source = await resolveModelSource(toUrl(model));
    }
  }
  engine = await createEngine({
    model: source,
    modelId,
    contextLimit,
    onProgress: (p) => post({ type: 'progress', id, progress: { phase: 'download', ...p, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes } }),
  });
  return {
    modelId: engine.modelId, backend: engine.backend, adapter: engine.adapter, totalBytes,
    networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes, quotaWarning,
  };
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'load':
      post({ type: 'result', id: m.id, value: await load(m.id, m.model, m.options.cache ?? true, m.options.contextLimit) });
      return;
    case 'create': {
      if (!engine) throw new Error('no model loaded');
      const ac = new AbortController();
      aborts.set(m.id, ac);
      try {
        const stream = await engine.chat.completions.create({ ...m.params, stream: true }, { signal: ac.signal });
        for await (const chunk of stream) post({ type: 'chunk', id: m.id, chunk });
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      } finally {
        aborts.delete(m.id);
      }
      post({ type: 'result', id: m.id, value: null });
      return;
    }
    case 'abort':
      aborts.get(m.id)?.abort();
      return;
    case 'cache-size':
      post({ type: 'result', id: m.id, value: typeof caches === 'undefined' ? 0 : await cacheSize() });
      return;
    case 'clear-cache':
      await clearCache();
      post({ type: 'result', id: m.id, value: null });
      return;
    case 'dispose':
      await engine?.dispose();
      engine = undefined;
      post({ type: 'result', id: m.id, value: null });
      return;
  }
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  handle(m).catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    post({ type: 'error', id: m.id, error: { name: err.name, message: err.message } });
  });
};
