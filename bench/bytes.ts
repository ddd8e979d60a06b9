/**
 * What one decoded token reads from GPU memory, as stored there (bf16 floats, MXFP4 experts,
 * the 8-bit or f32 KV cache), and the model's parameter count. Environment-agnostic.
 */
import type { GptOssConfig } from '../loader/config.ts';
import type { KvFormat } from '../kernels/kv-cache.ts';

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

const BF16 = 2;

/** MXFP4 matrix of rows x cols: 4 bits per weight, one scale byte per 32, a bf16 bias per row. */
const mxfp4 = (rows: number, cols: number) => rows * (cols / 2 + cols / 32) + rows * BF16;

/**
 * Weight bytes read to decode one token: each layer's attention, router and norms,
 * expertsPerToken of the numExperts experts, one embedding row and the whole lm_head. The KV
 * cache is decodeKvBytes; activations are left out.
 */
export function decodeWeightBytes(c: GptOssConfig, weights: 'bf16' | 'q8' = 'bf16'): DecodeBytes {
  const H = c.hiddenSize, I = c.intermediateSize, L = c.numLayers;
  const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  // weights 'q8': qkv, o and lm_head in blocks of 32 int8 values + an f32 scale (engine/quant-q8.ts).
  const matrix = (rows: number, cols: number) => (weights === 'q8' ? rows * (cols + (cols / 32) * 4) : BF16 * rows * cols);
  const attention = L * (matrix(qDim + 2 * kvDim, H) + matrix(H, qDim) + BF16 * (qDim + 2 * kvDim + H + c.numHeads));
  const router = L * BF16 * (c.numExperts * H + c.numExperts);
  const norms = BF16 * (2 * L * H + H);
  const experts = L * c.expertsPerToken * (mxfp4(2 * I, H) + mxfp4(H, I));
  const embed = BF16 * H;
  const lmHead = matrix(c.vocabSize, H);
  return { attention, router, norms, experts, embed, lmHead, total: attention + router + norms + experts + embed + lmHead };
}

/** Bytes of one cached (position, kv head) row of k or v: int8 values and an f32 scale, or f32 values. */
export function kvRowBytes(fmt: KvFormat, headDim: number): number {
  return fmt === 'q8' ? headDim + 4 : 4 * headDim;
}

/**
 * KV cache bytes read to decode the token at `position` (positions 0..position are visible):
 * k and v rows of every visible position in full layers, of at most the window in sliding ones.
 */
export function decodeKvBytes(c: GptOssConfig, fmt: KvFormat, position: number): number {
  const row = 2 * c.numKvHeads * kvRowBytes(fmt, c.headDim);
  let rows = 0;
  for (const kind of c.layerTypes) rows += kind === 'sliding' ? Math.min(position + 1, c.slidingWindow) : position + 1;
  return rows * row;
}

/** Mean of decodeKvBytes over the tokens decoded at positions from..to-1. */
export function meanDecodeKvBytes(c: GptOssConfig, fmt: KvFormat, from: number, to: number): number {
  if (to <= from) return decodeKvBytes(c, fmt, from);
  let sum = 0;
  for (let p = from; p < to; p++) sum += decodeKvBytes(c, fmt, p);
  return sum / (to - from);
}

/** Parameters (weights and biases; MXFP4 values count one each, their scales not). */
export function paramCount(c: GptOssConfig): number {
  const H = c.hiddenSize, I = c.intermediateSize, E = c.numExperts;
  const q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
  const attention = H * q + q + 2 * (H * kv + kv) + q * H + H + c.numHeads;
  const layer = attention + 2 * H + E * H + E + E * (2 * I * H + 2 * I + H * I + H);
  return c.numLayers * layer + 2 * c.vocabSize * H + H;
}
