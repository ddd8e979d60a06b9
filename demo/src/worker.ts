/// <reference lib="webworker" />
/**
 * The engine worker: the library's serveEngineInWorker, with a createEngine that reads the model
 * through the demo's download cache (checking the storage quota first) and adds the cache's
 * counts to the progress it reports.
 */
import { createEngine, serveEngineInWorker, type EngineWorkerScope, type LoadProgress } from '../../index.ts';
import { checkStorage, demoSource, modelName, storeRefusedWarning } from './model-source.ts';
import type { DemoMessage, DemoModel, LoadOptions } from './protocol.ts';

const scope = self as unknown as EngineWorkerScope;
const post = (m: DemoMessage) => scope.postMessage(m);

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

serveEngineInWorker(scope, {
  async createEngine(options) {
    const model = options.model as DemoModel;
    let src = await demoSource(model, (options as LoadOptions).cache ?? true);
    let totalBytes = 0;
    let quotaWarning: string | undefined;
    // Without an adapter nothing is downloaded: createEngine answers through the fallback or throws.
    if (await hasAdapter()) {
      const checked = await checkStorage(src);
      src = checked.source;
      totalBytes = checked.totalBytes;
      quotaWarning = checked.warning;
      if (quotaWarning) post({ demo: 'notice', text: quotaWarning });
    }
    const stats = src.stats;
    const report = options.onProgress;
    const onProgress = (p: LoadProgress) => {
      const refused = quotaWarning ? undefined : storeRefusedWarning(stats);
      if (refused) post({ demo: 'notice', text: (quotaWarning = refused) });
      report?.({ ...p, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes } as LoadProgress);
    };
    const engine = await createEngine({ ...options, model: src.source, modelId: modelName(model), onProgress });
    post({ demo: 'loaded', stats: { totalBytes, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes, quotaWarning } });
    return engine;
  },
});
