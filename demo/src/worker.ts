/// <reference lib="webworker" />
/** The engine in a Web Worker: loads the model (through the download cache) and streams chats. */
import { createEngine, deleteModelFromCache, DeviceLostError, listCachedModels, type Engine, type LoadProgress } from '../../index.ts';
import { cacheSize, clearCache } from '../../loader/source-cache.ts';
import { checkStorage, demoSource, modelName, storeRefusedWarning } from './model-source.ts';
import type { DemoModel, FromWorker, LoadInfo, LoadOptions, ToWorker, WireError } from './protocol.ts';

const post = (m: FromWorker) => (self as unknown as Worker).postMessage(m);
let engine: Engine | undefined;
const aborts = new Map<number, AbortController>();
/** The request that hears upload progress: the load, or later a recovery (which reuses the callback). */
let progressId = 0;

function wire(e: unknown): WireError {
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: unknown }).code;
  const lost = err instanceof DeviceLostError ? { reason: err.reason, deviceMessage: err.deviceMessage } : {};
  return { name: err.name, message: err.message, code: typeof code === 'string' ? code : undefined, ...lost };
}

/** Whether this worker has a WebGPU adapter (checked before anything is downloaded). */
async function hasAdapter(): Promise<boolean> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

async function load(id: number, model: DemoModel, o: LoadOptions): Promise<LoadInfo> {
  await engine?.dispose();
  engine = undefined;
  let src = await demoSource(model, o.cache ?? true);
  const modelId = modelName(model);
  let totalBytes = 0;
  let quotaWarning: string | undefined;
  // Without an adapter nothing is downloaded: createEngine answers through the fallback or throws.
  if (await hasAdapter()) {
    const checked = await checkStorage(src);
    src = checked.source;
    totalBytes = checked.totalBytes;
    quotaWarning = checked.warning;
    if (quotaWarning) post({ type: 'notice', id, text: quotaWarning });
  }
  const stats = src.stats;
  progressId = id;
  const onProgress = (p: LoadProgress) => {
    const refused = quotaWarning ? undefined : storeRefusedWarning(stats);
    if (refused) post({ type: 'notice', id: progressId, text: (quotaWarning = refused) });
    post({ type: 'progress', id: progressId, progress: { ...p, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes } });
  };
  engine = await createEngine({ model: src.source, modelId, contextLimit: o.contextLimit, memoryLimit: o.memoryLimit, fallback: o.fallback, onProgress });
  engine.onDeviceLost((e) => post({ type: 'device-lost', id: 0, error: wire(e) }));
  return {
    modelId: engine.modelId, backend: engine.backend, adapter: engine.adapter, totalBytes,
    networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes, quotaWarning, fallbackReason: engine.fallbackReason,
  };
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'load':
      post({ type: 'result', id: m.id, value: await load(m.id, m.model, m.options) });
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
    case 'list-cache':
      post({ type: 'result', id: m.id, value: typeof caches === 'undefined' ? [] : await listCachedModels() });
      return;
    case 'delete-model':
      post({ type: 'result', id: m.id, value: await deleteModelFromCache(m.url) });
      return;
    case 'recover':
      if (!engine) throw new Error('no model loaded');
      progressId = m.id;
      await engine.recover();
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
  handle(m).catch((e: unknown) => post({ type: 'error', id: m.id, error: wire(e) }));
};
