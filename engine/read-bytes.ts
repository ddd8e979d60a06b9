/**
 * Estimates of the bytes a dispatch reads from GPU memory, built from the buffers it binds, for
 * the per-kernel profile's GB/s column. Each estimate is a function of the dispatch's token
 * count and the position of its first token. Weights count once per dispatch (a kernel that
 * reads them again for each token of a batch is slower than the estimate says, which is what
 * the GB/s column is for), activations per token, KV rows once per visible position.
 */
import type { KvCache } from '../kernels/kv-cache.ts';

/** Bytes read by a dispatch over `tokens` tokens whose first one is at position `pos0`. */
export type ReadEstimate = (tokens: number, pos0: number) => number;

const size = (buffers: GPUBuffer[]) => buffers.reduce((a, b) => a + b.size, 0);

/** Whole buffers (weights, biases, norm scales) once, plus `perToken` bytes of activations per token. */
export function denseReads(weights: GPUBuffer[], perToken: number): ReadEstimate {
  const w = size(weights);
  return (tokens) => w + perToken * tokens;
}

/**
 * Expert weights of which each token reads `k` of `experts`: the expected share of experts a
 * batch touches under uniform routing, 1 - (1 - k/E)^T (exactly k/E for one token).
 */
export function expertReads(weights: GPUBuffer[], experts: number, k: number, perToken: number): ReadEstimate {
  const w = size(weights);
  return (tokens) => w * (1 - Math.pow(1 - k / experts, tokens)) + perToken * tokens;
}

/** Rows of a table (or a chunk of one) picked by token ids, out of `totalRows`: one row per token on average. */
export function rowReads(table: GPUBuffer[], totalRows: number, perToken: number): ReadEstimate {
  const t = size(table);
  return (tokens) => (t * tokens) / totalRows + perToken * tokens;
}

/**
 * Attention over a KV cache: k and v rows (int8 values and scale, or f32) of every position a
 * batch sees once, the positions before it and its own: all of them for a full layer, the last
 * `window` before each token for a sliding one; plus `extra` buffers whole (sinks) and the
 * queries per token.
 */
export function kvReads(kv: KvCache, window: number, extra: GPUBuffer[], perToken: number): ReadEstimate {
  const rowBytes = kv.k.size / (kv.capacity * kv.nKv); // one (position, kv head) row, with its scale for q8
  const e = size(extra);
  return (tokens, pos0) => {
    const seen = window > 0 ? Math.min(pos0 + tokens, window + tokens - 1) : pos0 + tokens;
    return 2 * seen * kv.nKv * rowBytes + e + perToken * tokens;
  };
}
