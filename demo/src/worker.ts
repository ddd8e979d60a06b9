/// <reference lib="webworker" />
/**
 * The engine worker: the library's serveEngineInWorker, with a createEngine that reads the model
 * through the demo's download cache (checking the storage quota first), asks the page before a
 * download of more than ASK_ABOVE_BYTES, adds the cache's counts to the progress it reports, and
 * sends each generated token's text to the page (shown when the output is not harmony).
 */
import {
  createEngine, listCachedModels, serveEngineInWorker, type ChatCompletionsApi, type EngineWorkerScope, type LoadProgress,
} from '../../index.ts';
import { checkStorage, demoSource, modelName, storeRefusedWarning } from './model-source.ts';
import { ASK_ABOVE_BYTES, type DemoMessage, type DemoModel, type DownloadAnswer, type LoadOptions } from './protocol.ts';

const scope = self as unknown as EngineWorkerScope & { addEventListener(t: 'message', l: (ev: MessageEvent) => void): void };
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

const answers = new Map<number, (ok: boolean) => void>();
let nextQuestion = 1;
scope.addEventListener('message', (ev: MessageEvent<DownloadAnswer>) => {
  if (ev.data?.demo !== 'download-answer') return;
  answers.get(ev.data.id)?.(ev.data.ok);
  answers.delete(ev.data.id);
});

/** Asks the page whether to download `bytes`; throws DownloadDeclinedError when the reader says no. */
async function askDownload(bytes: number, model: string): Promise<void> {
  const id = nextQuestion++;
  const ok = await new Promise<boolean>((resolve) => {
    answers.set(id, resolve);
    post({ demo: 'ask-download', id, bytes, model });
  });
  if (ok) return;
  const e = new Error(`Nothing was downloaded: you chose not to download ${(bytes / 1e9).toFixed(1)} GB of ${model}.`);
  e.name = 'DownloadDeclinedError';
  throw e;
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
      if (src.url !== undefined) {
        const cached = src.cached ? ((await listCachedModels()).find((m) => m.url === src.url!.replace(/\/*$/, '/'))?.bytes ?? 0) : 0;
        if (totalBytes - cached > ASK_ABOVE_BYTES) await askDownload(totalBytes - cached, modelName(model));
      }
    }
    const stats = src.stats;
    const report = options.onProgress;
    const onProgress = (p: LoadProgress) => {
      const refused = quotaWarning ? undefined : storeRefusedWarning(stats);
      if (refused) post({ demo: 'notice', text: (quotaWarning = refused) });
      report?.({ ...p, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes } as LoadProgress);
    };
    const engine = await createEngine({ ...options, model: src.source, modelId: modelName(model), onProgress });
    // Every token's text goes to the page as well as through the chat stream's harmony parser.
    const completions = engine.chat.completions as { create: ChatCompletionsApi['create'] };
    const create = completions.create.bind(completions);
    completions.create = ((params, o = {}) => create(params, { ...o, onToken: (_id, text) => post({ demo: 'token', text }) })) as ChatCompletionsApi['create'];
    post({ demo: 'loaded', stats: { totalBytes, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes, quotaWarning } });
    return engine;
  },
});
