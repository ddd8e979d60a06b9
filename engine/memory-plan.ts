/**
 * GPU memory plan, computed from the config and the adapter's limits before anything is
 * uploaded: every weight buffer (the embedding and lm_head split into row chunks when they
 * exceed maxStorageBufferBindingSize), the KV cache at the session's context limit, and the
 * scratch activations of one prefill batch. A model that cannot fit fails here, with sizes.
 */
import type { GptOssConfig } from '../loader/config.ts';
import { DTYPE_BYTES, numel } from '../loader/safetensors.ts';
import { allParams, paramSpec, tensorName, type ParamName } from '../loader/weight-map.ts';
import { kvCacheBytes, kvCapacity, type KvFormat } from '../kernels/kv-cache.ts';
import { planRowChunks } from '../kernels/matmul-bf16.ts';
import { decodePartBytes } from '../kernels/attention-decode.ts';
import { maxMoeTiles } from '../kernels/moe-route.ts';
import { MOE_TILE } from '../kernels/moe-grouped.ts';
import { q8Bytes, q8RowBytes } from './quant-q8.ts';

export type { KvFormat };


/** How bf16 matrices are stored: as they are, or quantised to 8 bits at load (engine/quant-q8.ts). */
export type WeightFormat = 'bf16' | 'q8';

/**
 * The matrices `weights: 'q8'` quantises: the attention projections (fused qkv and o; read by
 * f32_q8w_matvec at decode and f32_q8w_matmul at prefill) and lm_head. The router stays bf16:
 * it is small and the top-k choice is sensitive to it.
 */
export const Q8_PARAMS: GpuParam[] = ['qkv_w', 'o_w', 'lm_head'];

export interface PlanOptions {
  /** Storage of the large bf16 matrices (default 'bf16': exact). */
  weights?: WeightFormat;
  /**
   * Sliding-window layers keep the whole context in their KV cache, not just the window, so a
   * session can return to any earlier position (reusing a conversation's cache). Default false.
   */
  kvReuse?: boolean;
  /** Sessions (conversations) kept at once, each with its own KV cache and activations (default 1). */
  sessions?: number;
  /** Longest sequence a session can hold (prompt + generated tokens). */
  contextLimit: number;
  /** Tokens per prefill batch. */
  maxBatch: number;
  kvFormat: KvFormat;
  /** Rows of logits kept at once (1 for generation; maxBatch when all positions are wanted). */
  logitRows: number;
}

export interface AdapterLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Optional cap on the total, e.g. the GPU's memory when the caller knows it. */
  memoryLimit?: number;
}

export interface RowChunk {
  rowStart: number;
  rows: number;
  bytes: number;
}

/**
 * GPU-side weights: checkpoint parameters, plus q, k and v fused into one [q; k; v] matrix (and
 * bias) so one matmul (prefill) or one matvec (decode) computes all three.
 */
export type FusedParam = 'qkv_w' | 'qkv_b';
export type GpuParam = Exclude<ParamName, 'q_w' | 'k_w' | 'v_w' | 'q_b' | 'k_b' | 'v_b'> | FusedParam;
export const FUSED_PARTS: Record<FusedParam, ParamName[]> = { qkv_w: ['q_w', 'k_w', 'v_w'], qkv_b: ['q_b', 'k_b', 'v_b'] };

export interface WeightEntry {
  param: GpuParam;
  layer?: number;
  name: string;
  bytes: number;
  /** Set for row-split tensors (embedding, lm_head); otherwise one buffer. */
  chunks?: RowChunk[];
  /** Set for fused weights: the checkpoint tensors stored one after another in the buffer. */
  parts?: { param: ParamName; bytes: number }[];
  /** Set for matrices stored as 8-bit weights: the row length (the layout is in quant-q8.ts). */
  q8Cols?: number;
}

export interface MemoryPlan {
  weights: WeightEntry[];
  weightBytes: number;
  kvBytes: number;
  kvBytesPerLayer: { layer: number; kind: string; capacity: number; bytes: number }[];
  scratchBytes: number;
  totalBytes: number;
  options: PlanOptions;
}

export class ModelTooLargeError extends Error {
  override name = 'ModelTooLargeError';
  constructor(message: string, readonly neededBytes: number, readonly availableBytes: number) {
    super(message);
  }
}

/**
 * Activation buffers of one batch (f32), named as the session allocates them. Not counted: the
 * session's uniform and read-back buffers (under 100 bytes in all). test/memory-plan-gpu.test.ts
 * checks these sizes against the buffers a session really creates.
 */
export function scratchSizes(c: GptOssConfig, o: PlanOptions): Record<string, number> {
  const T = o.maxBatch;
  return {
    x: T * c.hiddenSize * 4,
    h: T * c.hiddenSize * 4,
    qkv: T * (c.numHeads + 2 * c.numKvHeads) * c.headDim * 4,
    attn: T * c.numHeads * c.headDim * 4,
    routerLogits: T * c.numExperts * 4,
    expertIds: T * c.expertsPerToken * 4,
    expertWeights: T * c.expertsPerToken * 4,
    act: T * c.expertsPerToken * c.intermediateSize * 4,
    // The grouped MoE (kernels/moe-route.ts, moe-grouped.ts): routing tables, the indirect
    // dispatch args of gate_up and down, and each slot's down output before the combine.
    moeOffsets: (c.numExperts + 1) * 4,
    moeList: T * c.expertsPerToken * 4,
    moeTiles: maxMoeTiles(T, c.expertsPerToken, c.numExperts, MOE_TILE) * 16,
    moeArgs: 2 * 16,
    moeOut: T * c.expertsPerToken * c.hiddenSize * 4,
    xLast: c.hiddenSize * 4,
    logits: o.logitRows * c.vocabSize * 4,
    // One candidate per lm_head row at most (the per-row variant of CPU adapters).
    sampleCandidates: 2 * c.vocabSize * 4,
    attnPartials: decodePartBytes(c.numHeads, c.headDim),
    tokens: T * 4,
    rope: 2 * o.contextLimit * (c.headDim / 2) * 4,
  };
}

const SPLIT: ParamName[] = ['embed', 'lm_head'];

/** The largest prefill batch chosen by default. */
export const DEFAULT_MAX_BATCH = 512;

/**
 * planMemory with the prefill batch chosen when not given: the largest of DEFAULT_MAX_BATCH
 * (at most the context limit), half of it, a quarter, ... whose plan fits the adapter (scratch
 * buffers under the binding limit, the total under memoryLimit). allLogits keeps maxBatch rows
 * of logits (logitRows) instead of one.
 */
export function planMemoryAuto(
  c: GptOssConfig,
  limits: AdapterLimits,
  o: Omit<PlanOptions, 'maxBatch' | 'logitRows'> & { maxBatch?: number; allLogits: boolean },
): MemoryPlan {
  const { maxBatch: given, allLogits, ...rest } = o;
  const plan = (maxBatch: number) => planMemory(c, limits, { ...rest, maxBatch, logitRows: allLogits ? maxBatch : 1 });
  if (given !== undefined) return plan(given);
  for (let b = Math.min(DEFAULT_MAX_BATCH, o.contextLimit); ; b = Math.ceil(b / 2)) {
    try {
      return plan(b);
    } catch (e) {
      if (!(e instanceof ModelTooLargeError) || b === 1) throw e;
    }
  }
}

export function planMemory(c: GptOssConfig, limits: AdapterLimits, o: PlanOptions): MemoryPlan {
  if (!Number.isSafeInteger(o.contextLimit) || o.contextLimit < 1 || o.contextLimit > c.maxPositions) {
    throw new RangeError(`contextLimit ${o.contextLimit} must be between 1 and the model's max_position_embeddings ${c.maxPositions}`);
  }
  const maxBind = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const weights: WeightEntry[] = [];
  const tensorBytes = (param: ParamName) => numel(paramSpec(param).shape(c)) * DTYPE_BYTES[paramSpec(param).dtypes[0]!];
  const fusedInto = new Map<ParamName, FusedParam>(Object.entries(FUSED_PARTS).flatMap(([f, ps]) => ps.map((p) => [p, f as FusedParam])));
  for (const { param, layer } of allParams(c)) {
    const spec = paramSpec(param);
    const shape = spec.shape(c);
    const bytes = tensorBytes(param);
    const name = tensorName(param, 'hf', layer);
    const fused = fusedInto.get(param);
    if (fused !== undefined) {
      // The fused entry is added at its first part; the other parts only check their size.
      if (FUSED_PARTS[fused][0] !== param) continue;
      const parts = FUSED_PARTS[fused].map((p) => ({ param: p, bytes: tensorBytes(p) }));
      // Parts share the row length; q8 stores their rows one after another, then all the scales.
      const q8Cols = o.weights === 'q8' && Q8_PARAMS.includes(fused) ? shape[1]! : undefined;
      const rows = FUSED_PARTS[fused].reduce((a, p) => a + paramSpec(p).shape(c)[0]!, 0);
      const total = q8Cols !== undefined ? q8Bytes(rows, q8Cols) : parts.reduce((a, p) => a + p.bytes, 0);
      const fname = parts.map((p) => tensorName(p.param, 'hf', layer)).join(' + ');
      if (total > maxBind) {
        throw new ModelTooLargeError(`the fused ${fname} needs one ${fmtBytes(total)} buffer, but this adapter binds at most ${fmtBytes(maxBind)}`, total, maxBind);
      }
      weights.push({ param: fused, layer, name: fname, bytes: total, parts, ...(q8Cols !== undefined ? { q8Cols } : {}) });
      continue;
    }
    const q8Cols = o.weights === 'q8' && Q8_PARAMS.includes(param as GpuParam) ? shape[1]! : undefined;
    const stored = q8Cols !== undefined ? q8Bytes(shape[0]!, q8Cols) : bytes;
    if (SPLIT.includes(param)) {
      const rowBytes = q8Cols !== undefined ? q8RowBytes(q8Cols) : bytes / shape[0]!;
      // A q8 chunk is padded by up to 12 bytes (quant-q8.ts): leave room for it under the limit.
      const chunks = planRowChunks(shape[0]!, rowBytes, q8Cols !== undefined ? maxBind - 12 : maxBind)
        .map((c) => ({ ...c, bytes: q8Cols !== undefined ? q8Bytes(c.rows, q8Cols) : c.rows * rowBytes }));
      weights.push({ param: param as GpuParam, layer, name, bytes: chunks.reduce((a, c) => a + c.bytes, 0), chunks, ...(q8Cols !== undefined ? { q8Cols } : {}) });
    } else if (stored > maxBind) {
      throw new ModelTooLargeError(
        `tensor ${name} needs one ${fmtBytes(stored)} buffer, but this adapter binds at most ${fmtBytes(maxBind)} ` +
          `(maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, maxBufferSize ${limits.maxBufferSize})`,
        stored, maxBind,
      );
    } else {
      weights.push({ param: param as GpuParam, layer, name, bytes: stored, ...(q8Cols !== undefined ? { q8Cols } : {}) });
    }
  }
  const weightBytes = weights.reduce((a, w) => a + w.bytes, 0);
  const kvBytesPerLayer = c.layerTypes.map((kind, layer) => {
    const capacity = kvCapacity(kind, c.slidingWindow, o.contextLimit, o.maxBatch, o.kvReuse);
    return { layer, kind, capacity, bytes: kvCacheBytes(o.kvFormat, capacity, c.numKvHeads, c.headDim) };
  });
  const kvBytes = kvBytesPerLayer.reduce((a, l) => a + l.bytes, 0);
  const scratch = scratchSizes(c, o);
  for (const [name, bytes] of Object.entries(scratch)) {
    if (bytes > maxBind) {
      throw new ModelTooLargeError(`scratch buffer ${name} needs ${fmtBytes(bytes)}, over the adapter's ${fmtBytes(maxBind)} binding limit (lower maxBatch or contextLimit)`, bytes, maxBind);
    }
  }
  for (const l of kvBytesPerLayer) {
    if (l.bytes / 2 > maxBind) {
      throw new ModelTooLargeError(`the KV cache of layer ${l.layer} needs ${fmtBytes(l.bytes / 2)} per buffer at context ${o.contextLimit}, over the adapter's ${fmtBytes(maxBind)} binding limit`, l.bytes / 2, maxBind);
    }
  }
  const scratchBytes = Object.values(scratch).reduce((a, b) => a + b, 0);
  const sessions = o.sessions ?? 1;
  if (!Number.isSafeInteger(sessions) || sessions < 1) throw new RangeError(`sessions must be an integer >= 1, got ${sessions}`);
  const totalBytes = weightBytes + sessions * (kvBytes + scratchBytes);
  if (limits.memoryLimit !== undefined && totalBytes > limits.memoryLimit) {
    throw new ModelTooLargeError(
      `the model needs ${fmtBytes(totalBytes)} of GPU memory (weights ${fmtBytes(weightBytes)}, KV cache ${fmtBytes(kvBytes)} at context ${o.contextLimit}, ` +
        `scratch ${fmtBytes(scratchBytes)}${sessions > 1 ? `, both for each of ${sessions} conversations` : ''}), but only ${fmtBytes(limits.memoryLimit)} is available`,
      totalBytes, limits.memoryLimit,
    );
  }
  return { weights, weightBytes, kvBytes, kvBytesPerLayer, scratchBytes, totalBytes, options: o };
}

export function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** A printable table of the plan. */
export function describePlan(p: MemoryPlan): string {
  const o = p.options;
  const split = p.weights.filter((w) => w.chunks && w.chunks.length > 1).map((w) => `${w.name} in ${w.chunks!.length} chunks`);
  return [
    `context ${o.contextLimit}, KV ${o.kvFormat}${o.kvReuse ? ' (sliding layers keep the context, for reuse)' : ''}, batch ${o.maxBatch}` +
      `${o.weights === 'q8' ? ', 8-bit attention and lm_head' : ''}${(o.sessions ?? 1) > 1 ? `, ${o.sessions} conversations kept` : ''}`,
    `  weights  ${fmtBytes(p.weightBytes).padStart(10)}${split.length ? ` (${split.join(', ')})` : ''}`,
    `  KV cache ${fmtBytes(p.kvBytes).padStart(10)}${(o.sessions ?? 1) > 1 ? ' per conversation' : ''}`,
    `  scratch  ${fmtBytes(p.scratchBytes).padStart(10)}${(o.sessions ?? 1) > 1 ? ' per conversation' : ''}`,
    `  total    ${fmtBytes(p.totalBytes).padStart(10)}`,
  ].join('\n');
}
