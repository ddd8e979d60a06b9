/**
 * The operations of the CPU reference forward pass (SPEC §4) as free functions: ReferenceSession
 * (model.ts) is written with them, and every kernel case table (test/kernels) checks its kernel
 * against them, so a kernel and the model are measured against one definition.
 *
 * Values are f32 arrays between operations; every dot product and reduction accumulates in f64
 * (plain JS numbers) and is rounded to f32 once, when stored.
 */
import { FP4_VALUES, e8m0 } from '../../loader/numeric.ts';
import type { Mxfp4Experts } from './weights.ts';

/** sum_k a[aOff + k] * x[k], k < n, in f64. */
export function dot(a: Float32Array, aOff: number, x: Float32Array, n: number): number {
  let s = 0;
  for (let k = 0; k < n; k++) s += a[aOff + k]! * x[k]!;
  return s;
}

export interface LinearOptions {
  /** Where row 0 lands in `out` (default 0). */
  outOffset?: number;
  /** out += result (a projection added into the residual stream) instead of out = result. */
  accumulate?: boolean;
}

/**
 * out[off + r] (= or +=) W[r,:] . x + b[r] for W [rows, cols] row-major: f64 dot, rounded to f32
 * before it is added to `out`.
 */
export function linear(
  w: Float32Array, b: Float32Array | null, x: Float32Array, rows: number, cols: number,
  out: Float32Array = new Float32Array(rows), options: LinearOptions = {},
): Float32Array {
  const off = options.outOffset ?? 0;
  for (let r = 0; r < rows; r++) {
    const y = dot(w, r * cols, x, cols) + (b ? b[r]! : 0);
    out[off + r] = options.accumulate ? out[off + r]! + Math.fround(y) : y;
  }
  return out;
}

/** rmsnorm(x) * weight: mean of squares over the vector, eps inside the square root. */
export function rmsNorm(x: Float32Array, weight: Float32Array, eps: number, out: Float32Array = new Float32Array(x.length)): Float32Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i]! * inv) * weight[i]!;
  return out;
}

/** Indices of the k largest values, largest first; ties go to the lower index. */
export function topK(values: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b]! - values[a]! || a - b);
  return idx.slice(0, k);
}

/** The router's choice: the top-k experts (topK) and a softmax over their logits only (f32 weights). */
export function topkSoftmax(logits: ArrayLike<number>, k: number): { ids: number[]; weights: number[] } {
  const ids = topK(logits, k);
  const m = logits[ids[0]!]!;
  const ex = ids.map((e) => Math.exp(logits[e]! - m));
  const sum = ex.reduce((a, b) => a + b, 0);
  return { ids, weights: ex.map((v) => Math.fround(v / sum)) };
}

/** SwiGLU of gpt-oss: glu = min(g, limit), lin = clamp(l, ±limit); glu * sigmoid(alpha glu) * (lin + 1). */
export function swiglu(gate: number, up: number, limit: number, alpha: number): number {
  const glu = Math.min(gate, limit);
  const lin = Math.min(Math.max(up, -limit), limit);
  return (glu / (1 + Math.exp(-alpha * glu))) * (lin + 1);
}

/** e2m1 value of the low / high nibble of a byte. */
const FP4_LO = Float64Array.from({ length: 256 }, (_, b) => FP4_VALUES[b & 15]!);
const FP4_HI = Float64Array.from({ length: 256 }, (_, b) => FP4_VALUES[b >> 4]!);

/**
 * Row `row` of expert `e` of an MXFP4 matrix dotted with x (length cols), decoding the weights
 * exactly on the fly; f64 accumulation.
 */
export function mxfp4RowDot(m: Mxfp4Experts, e: number, row: number, x: Float32Array): number {
  const blocks = m.blocks[e]!;
  const scales = m.scales[e]!;
  const groups = m.cols / 32;
  let s = 0;
  for (let g = 0; g < groups; g++) {
    const gi = row * groups + g;
    const base = gi * 16;
    const xo = g * 32;
    // sum of e2m1 value * x over the block, then times the block's power-of-two scale
    let gs = 0;
    for (let j = 0; j < 16; j++) {
      const b = blocks[base + j]!;
      gs += FP4_LO[b]! * x[xo + 2 * j]! + FP4_HI[b]! * x[xo + 2 * j + 1]!;
    }
    s += gs * e8m0(scales[gi]!);
  }
  return s;
}

/**
 * Expert e's gate/up projection and SwiGLU: u = W1[e] h + b1[e] (2I rows, gate and linear
 * interleaved, each rounded to f32), act[i] = swiglu(u[2i], u[2i + 1]).
 */
export function moeGateUp(
  gu: Mxfp4Experts, e: number, h: Float32Array, limit: number, alpha: number, act: Float32Array = new Float32Array(gu.rows / 2),
): Float32Array {
  const I = gu.rows / 2;
  for (let i = 0; i < I; i++) {
    const u0 = Math.fround(mxfp4RowDot(gu, e, 2 * i, h) + gu.bias[e * 2 * I + 2 * i]!);
    const u1 = Math.fround(mxfp4RowDot(gu, e, 2 * i + 1, h) + gu.bias[e * 2 * I + 2 * i + 1]!);
    act[i] = swiglu(u0, u1, limit, alpha);
  }
  return act;
}

/**
 * x += sum_j weights[j] (W2[ids[j]] acts[j] + b2[ids[j]]): each expert's output rounded to f32,
 * the weighted sum over experts in f64, added to x once.
 */
export function moeDownSum(
  dn: Mxfp4Experts, ids: ArrayLike<number>, weights: ArrayLike<number>, acts: Float32Array[], x: Float32Array,
): Float32Array {
  const H = dn.rows;
  const y = new Float64Array(H);
  for (let j = 0; j < ids.length; j++) {
    const e = ids[j]!;
    for (let i = 0; i < H; i++) y[i] += weights[j]! * Math.fround(mxfp4RowDot(dn, e, i, acts[j]!) + dn.bias[e * H + i]!);
  }
  for (let i = 0; i < H; i++) x[i] = x[i]! + y[i]!;
  return x;
}

/** First key position visible to the query at `pos`: window W keys including itself, 0 = full layer. */
export function firstVisibleKey(pos: number, window: number): number {
  return window > 0 ? Math.max(0, pos - window + 1) : 0;
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Sliding window (keys including the query's own), or 0 for a full layer. */
  window: number;
}

/**
 * Attention of one query position `pos` with sinks, GQA and an optional sliding window:
 * q [heads * D] (after RoPE); keys and values [position, kvHeads * D] by absolute position
 * (after RoPE; as cached), at least pos + 1 rows. Query head h reads kv head h / (heads / kvHeads):
 *   p_j = exp(s_j) / (sum_j exp(s_j) + exp(sink_h)), s_j = q_h . k_j / sqrt(D), o_h = sum_j p_j v_j.
 */
export function attention(
  q: Float32Array, keys: Float32Array, values: Float32Array, pos: number, s: AttentionShape, sinks: ArrayLike<number>,
  out: Float32Array = new Float32Array(s.heads * s.headDim),
): Float32Array {
  const { heads: nq, kvHeads: nkv, headDim: D } = s;
  const first = firstVisibleKey(pos, s.window);
  const n = pos - first + 1;
  const scale = 1 / Math.sqrt(D);
  const width = nkv * D;
  const group = nq / nkv;
  const scores = new Float64Array(n);
  for (let hd = 0; hd < nq; hd++) {
    const g = Math.floor(hd / group);
    const qo = hd * D;
    const sink = sinks[hd]!;
    let max = sink;
    for (let j = 0; j < n; j++) {
      const ko = (first + j) * width + g * D;
      let sc = 0;
      for (let i = 0; i < D; i++) sc += q[qo + i]! * keys[ko + i]!;
      sc *= scale;
      scores[j] = sc;
      if (sc > max) max = sc;
    }
    let denom = Math.exp(sink - max);
    for (let j = 0; j < n; j++) {
      scores[j] = Math.exp(scores[j]! - max);
      denom += scores[j]!;
    }
    for (let i = 0; i < D; i++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += scores[j]! * values[(first + j) * width + g * D + i]!;
      out[qo + i] = acc / denom;
    }
  }
  return out;
}

/**
 * The 8-bit KV cache rounding, as kernels/kv-cache.ts stores it: per row of `headDim` values,
 * scale = max|x| / 127 and q = clamp(roundHalfEven(x * (127 / max|x|)), -127, 127), in f32
 * (an all-zero row: scale 0, q 0).
 */
export function quantizeQ8(x: Float32Array, headDim: number): { q: Int8Array; scales: Float32Array } {
  const q = new Int8Array(x.length);
  const scales = new Float32Array(x.length / headDim);
  for (let r = 0; r < x.length; r += headDim) {
    let max = 0;
    for (let i = 0; i < headDim; i++) max = Math.max(max, Math.abs(x[r + i]!));
    if (max === 0) continue;
    const inv = Math.fround(127 / max);
    scales[r / headDim] = max / 127;
    for (let i = 0; i < headDim; i++) q[r + i] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(x[r + i]! * inv))));
  }
  return { q, scales };
}

/** x as the 8-bit cache holds it: quantizeQ8, then q * scale in f32. */
export function quantizeQ8Rows(x: Float32Array, headDim: number): Float32Array {
  const { q, scales } = quantizeQ8(x, headDim);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = q[i]! * scales[Math.floor(i / headDim)]!;
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
