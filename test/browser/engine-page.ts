/**
 * The whole engine in the browser, from the same source as in Node: the checkpoint is opened over
 * HTTP (Range requests), uploaded with GpuModel.load, and either the logits of every position are
 * returned or n tokens are generated greedily. Query parameters:
 *   model=<url of the checkpoint directory>  tokens=1,2,3  mode=logits|generate  n=32
 *   kv=f32|q8  maxBatch=<prefill batch>  context=<context limit>
 *   opfs=config.json,model.safetensors  (optional) first copy these files of the checkpoint into
 *     the Origin Private File System and open the model from there, through a
 *     FileSystemDirectoryHandle and resolveModelSource (what showDirectoryPicker() gives)
 * The result goes to window.__engineResult (an EngineResult, or an error string).
 */
import { Checkpoint } from '../../loader/checkpoint.ts';
import { httpSource } from '../../loader/source-http.ts';
import { resolveModelSource } from '../../loader/resolve.ts';
import type { ModelSource } from '../../loader/source.ts';
import { createGpuContext, type AdapterSummary } from '../../engine/gpu/device.ts';
import { GpuModel } from '../../engine/gpu-model.ts';
import { GpuSession } from '../../engine/gpu-session.ts';
import { generate } from '../../engine/generate.ts';
import { GREEDY } from '../../engine/sampling.ts';

export interface EngineResult {
  mode: 'logits' | 'generate';
  /** The ModelSource's description (where the bytes came from). */
  source: string;
  /** opfs=...: ms spent copying the files into OPFS, and whether a missing file reads as missing. */
  opfs?: { copyMs: number; missingIsMissing: boolean };
  adapter: AdapterSummary;
  /** The engine chose barrier-free kernels for a CPU adapter. */
  fallback: boolean;
  /** Features granted to the device, sorted. */
  deviceFeatures: string[];
  /** The pipeline keys of the kernels the model built (the shader variants that ran). */
  kernelKeys: string[];
  vocab: number;
  progress: { calls: number; done: number; total: number };
  /** mode=logits: [tokens, vocab] row-major, as a plain array. */
  logits?: number[];
  /** mode=generate: the generated tokens. */
  tokens?: number[];
  finishReason?: string;
  timings: { openMs: number; loadMs: number; runMs: number; prefillMs?: number; decodeMs?: number; tokensPerSecond?: number };
}

declare global {
  interface Window {
    __engineResult?: EngineResult | string;
  }
}

const log = (line: string) => {
  document.getElementById('log')!.textContent += `\n${line}`;
  console.log(line); // echoed to the Node test's output
};

function intParam(q: URLSearchParams, name: string, fallback: number): number {
  const v = q.get(name);
  if (v === null) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`query parameter ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

async function run(): Promise<EngineResult> {
  const q = new URLSearchParams(location.search);
  const modelUrl = q.get('model');
  if (!modelUrl) throw new Error('missing query parameter model=<checkpoint url>');
  const tokens = (q.get('tokens') ?? '').split(',').filter((s) => s !== '').map(Number);
  if (tokens.length === 0 || tokens.some((t) => !Number.isSafeInteger(t) || t < 0)) throw new RangeError(`bad tokens=${q.get('tokens')}`);
  const mode = q.get('mode') ?? 'logits';
  if (mode !== 'logits' && mode !== 'generate') throw new RangeError(`mode must be logits or generate, got ${mode}`);
  const kv = q.get('kv') ?? 'f32';
  if (kv !== 'f32' && kv !== 'q8') throw new RangeError(`kv must be f32 or q8, got ${kv}`);
  const n = intParam(q, 'n', 32);
  const maxBatch = intParam(q, 'maxBatch', 8);
  const contextLimit = intParam(q, 'context', 64);

  const base = new URL(modelUrl, location.href).toString();
  let source: ModelSource = httpSource(base);
  let opfs: EngineResult['opfs'];
  const opfsFiles = q.get('opfs');
  if (opfsFiles) {
    const c0 = performance.now();
    const root = await navigator.storage.getDirectory();
    await root.removeEntry('model', { recursive: true }).catch(() => {});
    const dir = await root.getDirectoryHandle('model', { create: true });
    for (const file of opfsFiles.split(',')) {
      const res = await fetch(new URL(file, base));
      if (!res.ok) throw new Error(`fetching ${file}: ${res.status}`);
      const w = await (await dir.getFileHandle(file, { create: true })).createWritable();
      await res.body!.pipeTo(w);
    }
    source = await resolveModelSource(dir);
    opfs = { copyMs: performance.now() - c0, missingIsMissing: !(await source.exists('no-such-file.json')) && !(await source.exists('sub/dir.json')) };
    log(`copied ${opfsFiles} into OPFS in ${opfs.copyMs.toFixed(0)} ms; source: ${source.description}`);
  }

  const gpu = await createGpuContext();
  log(`adapter: ${gpu.info.vendor} ${gpu.info.architecture} ${gpu.info.description} (fallback ${gpu.fallback})`);
  const t0 = performance.now();
  const ck = await Checkpoint.open(source);
  const t1 = performance.now();
  const progress = { calls: 0, done: 0, total: 0 };
  const model = await GpuModel.load(ck, gpu, {
    kvFormat: kv,
    maxBatch,
    contextLimit,
    onProgress: (done, total) => {
      progress.calls++;
      progress.done = done;
      progress.total = total;
    },
  });
  const t2 = performance.now();
  log(`opened in ${(t1 - t0).toFixed(0)} ms, loaded in ${(t2 - t1).toFixed(0)} ms (${progress.calls} progress calls, ${progress.done}/${progress.total} bytes)`);
  const kernelKeys = [...new Set(Object.values(model.kernels).flat().map((k: { key: string }) => k.key))].sort();
  const summary = {
    mode, source: source.description, opfs, adapter: gpu.info, fallback: gpu.fallback, deviceFeatures: [...gpu.device.features].sort(),
    kernelKeys, vocab: model.config.vocabSize, progress,
  } as const;
  try {
    if (mode === 'logits') {
      const session = new GpuSession(model, { allLogits: true });
      const logits = (await session.append(tokens, 'all'))!;
      const runMs = performance.now() - t2;
      session.dispose();
      return { ...summary, logits: Array.from(logits), timings: { openMs: t1 - t0, loadMs: t2 - t1, runMs } };
    }
    const session = new GpuSession(model);
    const res = await generate(session, tokens, { maxTokens: n, sampling: GREEDY });
    const runMs = performance.now() - t2;
    session.dispose();
    const tokensPerSecond = res.tokens.length > 1 ? ((res.tokens.length - 1) * 1000) / res.decodeMs : undefined;
    log(`generated ${res.tokens.length} tokens: prefill ${res.prefillMs.toFixed(0)} ms, decode ${tokensPerSecond?.toFixed(2)} tokens/s`);
    return {
      ...summary,
      tokens: res.tokens,
      finishReason: res.finishReason,
      timings: { openMs: t1 - t0, loadMs: t2 - t1, runMs, prefillMs: res.prefillMs, decodeMs: res.decodeMs, tokensPerSecond },
    };
  } finally {
    model.dispose();
    await ck.close();
    gpu.destroy();
  }
}

run().then(
  (r) => (window.__engineResult = r),
  (e: unknown) => (window.__engineResult = `engine page failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`),
);
