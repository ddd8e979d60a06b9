/**
 * Prefill and decode throughput of a GpuModel on the device it was loaded on. Environment-
 * agnostic (no node: imports): the `gptoss bench` command and a browser bench page share it.
 *
 * One untimed warm-up (a prefill of the same length and a few decode steps) comes first, so
 * pipeline compilation and first-use allocations stay out of the numbers. Then each repeat:
 * - prefill: append `promptLen` random token ids and sample the first token; timed from the
 *   append to the token id read back (the tokens/s a user waits for before the first token).
 * - decode: `gen` greedy steps, timed from the first step to the last token id read back.
 */
import type { GptOssConfig } from '../loader/config.ts';
import type { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { GREEDY } from '../engine/sampling.ts';
import { Rng } from '../loader/rng.ts';

export interface BenchOptions {
  /** Prompt tokens per prefill. */
  promptLen: number;
  /** Greedy decode steps per repeat. */
  gen: number;
  /** Timed repeats (median, min and max are reported). */
  repeat: number;
  /** Seed of the random prompt (default 0). */
  seed?: number;
  /** Also time each kernel (session.profile) for one prefill batch and one decode token. */
  profile?: boolean;
  /** Progress lines (e.g. to stderr). */
  onProgress?(message: string): void;
}

export interface Stats {
  median: number;
  min: number;
  max: number;
  /** Every repeat's value, in run order. */
  runs: number[];
}

export interface KernelTime {
  kernel: string;
  ms: number;
  percent: number;
}

export interface BenchResult {
  promptLen: number;
  gen: number;
  repeat: number;
  prefill: { ms: Stats; tokensPerSecond: Stats };
  decode: {
    ms: Stats;
    tokensPerSecond: Stats;
    /** Estimated weight bytes one decoded token reads (decodeWeightBytes). */
    weightBytesPerToken: number;
    /** weightBytesPerToken x tokens/s, in GB/s (1e9 bytes). */
    weightGBps: Stats;
  };
  /** Wall time per kernel, each kernel in its own submission (so sums exceed the batched times). */
  profile?: { prefillTokens: number; prefill: KernelTime[]; decode: KernelTime[] };
}

export interface DecodeBytes {
  /** q, k, v, o weights and biases, sinks. */
  attention: number;
  /** Router weight and bias. */
  router: number;
  /** Both per-layer RMSNorm scales and the final norm. */
  norms: number;
  /** expertsPerToken experts' MXFP4 blocks, E8M0 scales and biases (gate_up and down). */
  experts: number;
  /** One embedding row. */
  embed: number;
  lmHead: number;
  total: number;
}

/**
 * Weight bytes read to decode one token, as stored on the GPU (bf16 floats, MXFP4 experts):
 * each layer's attention, router and norms, expertsPerToken of the numExperts experts, one
 * embedding row and the whole lm_head. An estimate: KV cache and activation traffic are left out.
 */
export function decodeWeightBytes(c: GptOssConfig): DecodeBytes {
  const BF16 = 2;
  const H = c.hiddenSize, I = c.intermediateSize, L = c.numLayers;
  const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  const attention = L * BF16 * (H * qDim + qDim + 2 * (H * kvDim + kvDim) + qDim * H + H + c.numHeads);
  const router = L * BF16 * (c.numExperts * H + c.numExperts);
  const norms = BF16 * (2 * L * H + H);
  // One expert: gate_up is 2I rows of H inputs, down is H rows of I inputs; 4 bits per weight
  // plus one scale byte per 32 weights, and a bf16 bias per output row.
  const mxfp4 = (rows: number, cols: number) => rows * (cols / 2 + cols / 32) + rows * BF16;
  const experts = L * c.expertsPerToken * (mxfp4(2 * I, H) + mxfp4(H, I));
  const embed = BF16 * H;
  const lmHead = BF16 * c.vocabSize * H;
  return { attention, router, norms, experts, embed, lmHead, total: attention + router + norms + experts + embed + lmHead };
}

export function stats(values: number[]): Stats {
  if (values.length === 0) throw new RangeError('stats of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]!, runs: values };
}

function kernelTable(times: Map<string, number>): KernelTime[] {
  const total = [...times.values()].reduce((a, b) => a + b, 0);
  return [...times.entries()]
    .map(([kernel, ms]) => ({ kernel, ms, percent: total > 0 ? (100 * ms) / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
}

export async function runBench(model: GpuModel, opts: BenchOptions): Promise<BenchResult> {
  const { promptLen, gen, repeat } = opts;
  checkInt('promptLen', promptLen, 1);
  checkInt('gen', gen, 1);
  checkInt('repeat', repeat, 1);
  // The prompt, the first sampled token and `gen` more, each fed through the model but the last.
  if (promptLen + gen > model.contextLimit) {
    throw new RangeError(`prompt ${promptLen} + ${gen} generated tokens exceed the context limit ${model.contextLimit}`);
  }
  const rng = new Rng(opts.seed ?? 0, 'bench-prompt');
  const prompt = Array.from({ length: promptLen }, () => Math.floor(rng.uniform() * model.config.vocabSize));
  const log = opts.onProgress ?? (() => {});
  const session = new GpuSession(model);
  try {
    log('warm-up (pipeline compilation, not timed)');
    await session.append(prompt);
    await session.sample(GREEDY);
    for (let i = 0; i < Math.min(gen, 2); i++) await session.step(GREEDY);

    const prefillMs: number[] = [];
    const decodeMs: number[] = [];
    for (let r = 0; r < repeat; r++) {
      session.reset();
      const t0 = performance.now();
      await session.append(prompt);
      await session.sample(GREEDY);
      const t1 = performance.now();
      for (let i = 0; i < gen; i++) await session.step(GREEDY);
      const t2 = performance.now();
      prefillMs.push(t1 - t0);
      decodeMs.push(t2 - t1);
      log(`run ${r + 1}/${repeat}: prefill ${(t1 - t0).toFixed(1)} ms, decode ${(t2 - t1).toFixed(1)} ms`);
    }

    const bytes = decodeWeightBytes(model.config).total;
    const decodeTps = decodeMs.map((ms) => (gen * 1000) / ms);
    const result: BenchResult = {
      promptLen, gen, repeat,
      prefill: { ms: stats(prefillMs), tokensPerSecond: stats(prefillMs.map((ms) => (promptLen * 1000) / ms)) },
      decode: { ms: stats(decodeMs), tokensPerSecond: stats(decodeTps), weightBytesPerToken: bytes, weightGBps: stats(decodeTps.map((t) => (t * bytes) / 1e9)) },
    };

    if (opts.profile) {
      log('profiling kernels');
      session.reset();
      const batch = prompt.slice(0, model.maxBatch);
      const prefill = kernelTable(await session.profile(batch));
      const decode = kernelTable(await session.profile([prompt[0]!]));
      result.profile = { prefillTokens: batch.length, prefill, decode };
    }
    return result;
  } finally {
    session.dispose();
  }
}
