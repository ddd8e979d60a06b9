/// <reference lib="webworker" />
/**
 * The benchmark page's worker: puts a checkpoint on this browser's WebGPU device (downloads
 * through the Cache API unless turned off) and runs bench/decode-prefill.ts on it, the same
 * measurement as `gptoss bench`. The model stays loaded between runs with the same model, KV
 * format and context, so a second run measures without loading again.
 */
import { Checkpoint, GpuUnavailableError } from '../../index.ts';
import { createGpuContext, type GpuContext } from '../../engine/gpu/device.ts';
import { GpuModel } from '../../engine/gpu-model.ts';
import { decodeWeightBytes, runBench } from '../../bench/decode-prefill.ts';
import { describeConfig } from '../../loader/config.ts';
import type { CacheStats } from '../../loader/source-cache.ts';
import { checkStorage, demoSource, toUrl } from './model-source.ts';
import type { BenchAdapter, BenchProgress, BenchReport, BenchRunOptions, FromBenchWorker, ToBenchWorker } from './bench-protocol.ts';

/** Seed of the random prompt, as in `gptoss bench`, so runs are comparable across machines. */
const SEED = 0;

const post = (m: FromBenchWorker) => (self as unknown as Worker).postMessage(m);

let gpuPromise: Promise<GpuContext> | undefined;
interface Loaded {
  key: string | undefined;
  ck: Checkpoint;
  model: GpuModel;
}
let loaded: Loaded | undefined;

/** One device for the worker's lifetime; created again after a device loss. */
function getGpu(): Promise<GpuContext> {
  if (!gpuPromise) {
    if (!('gpu' in navigator)) return Promise.reject(new GpuUnavailableError('navigator.gpu is missing in this browser\'s workers'));
    const p = createGpuContext();
    gpuPromise = p;
    p.then(
      (g) => void g.device.lost.then(() => {
        if (gpuPromise === p) gpuPromise = undefined;
        if (loaded?.model.gpu === g) loaded = undefined;
      }),
      () => {
        if (gpuPromise === p) gpuPromise = undefined;
      },
    );
  }
  return gpuPromise;
}

function adapterOf(gpu: GpuContext): BenchAdapter {
  return { ...gpu.info, fallback: gpu.fallback, f16: gpu.f16 };
}

async function unload(): Promise<void> {
  const l = loaded;
  loaded = undefined;
  if (!l) return;
  l.model.dispose();
  await l.ck.close();
}

async function run(id: number, model: string | FileSystemDirectoryHandle, o: BenchRunOptions): Promise<BenchReport> {
  const progress = (p: BenchProgress) => post({ type: 'progress', id, progress: p });
  // A folder handle is read again every time; a URL's model is kept while the settings match.
  const key = typeof model === 'string' ? JSON.stringify([toUrl(model), o.kvFormat, o.contextLimit ?? null]) : undefined;
  const reused = key !== undefined && loaded?.key === key;
  const t0 = performance.now();
  let stats: Pick<CacheStats, 'networkBytes' | 'cachedBytes'> = { networkBytes: 0, cachedBytes: 0 };
  let quotaWarning: string | undefined;
  if (!reused) {
    await unload();
    // The GPU first: without one, nothing of the model is downloaded.
    const gpu = await getGpu();
    progress({ phase: 'bench', message: 'reading the checkpoint\'s headers' });
    const checked = await checkStorage(await demoSource(model, o.cache));
    quotaWarning = checked.warning;
    stats = checked.source.stats;
    const ck = await Checkpoint.open(checked.source.source);
    try {
      const m = await GpuModel.load(ck, gpu, {
        contextLimit: o.contextLimit,
        kvFormat: o.kvFormat,
        onProgress: (bytesDone, bytesTotal) =>
          progress({ phase: 'download', bytesDone, bytesTotal, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes }),
      });
      loaded = { key, ck, model: m };
    } catch (e) {
      await ck.close();
      throw e;
    }
  }
  const { ck, model: m } = loaded!;
  const loadSeconds = (performance.now() - t0) / 1000;
  const result = await runBench(m, {
    promptLen: o.promptLen, gen: o.gen, repeat: o.repeat, seed: SEED, profile: o.profile,
    onProgress: (message) => progress({ phase: 'bench', message }),
  });
  return {
    kind: 'gptoss-bench',
    version: 1,
    date: new Date().toISOString(),
    runtime: { userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency, where: 'browser-worker' },
    adapter: adapterOf(m.gpu),
    model: { source: ck.source.description, description: describeConfig(m.config), config: m.config, weightBytes: m.plan.weightBytes },
    kvFormat: m.kvFormat,
    context: m.contextLimit,
    maxBatch: m.maxBatch,
    decodeWeightBytes: decodeWeightBytes(m.config, m.weightFormat),
    load: { reused, seconds: reused ? 0 : loadSeconds, networkBytes: stats.networkBytes, cachedBytes: stats.cachedBytes, quotaWarning },
    result,
  };
}

async function handle(m: ToBenchWorker): Promise<void> {
  switch (m.type) {
    case 'adapter':
      post({ type: 'result', id: m.id, value: adapterOf(await getGpu()) });
      return;
    case 'run':
      post({ type: 'result', id: m.id, value: await run(m.id, m.model, m.options) });
      return;
  }
}

self.onmessage = (ev: MessageEvent<ToBenchWorker>) => {
  const m = ev.data;
  handle(m).catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    post({ type: 'error', id: m.id, error: { name: err.name, message: err.message } });
  });
};
