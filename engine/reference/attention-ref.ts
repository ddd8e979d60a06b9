/**
 * Reference attention for a batch of queries (SPEC §4, in f64): what the prefill attention
 * kernels compute. Keys and values are given by absolute position, so a test can hand in
 * exactly what a KV cache holds (e.g. q8-dequantized rows).
 */

export interface BatchAttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Sliding window (keys including the query's own), or 0 for a full layer. */
  window: number;
  /** Floats between tokens in q (default heads * headDim; the heads start each row). */
  qStride?: number;
}

/**
 * out [T, heads * headDim] for the queries of tokens pos0 .. pos0 + T - 1:
 *   out = sum_j exp(s_j - m) v_j / (sum_j exp(s_j - m) + exp(sink - m)),  s_j = q . k_j / sqrt(D)
 * over the visible keys j. keys[p], values[p]: [kvHeads * headDim] of position p.
 */
export function attentionBatch(
  q: Float32Array, T: number, pos0: number, keys: Float32Array[], values: Float32Array[],
  sinks: ArrayLike<number>, s: BatchAttentionShape,
): Float64Array {
  const { heads: H, kvHeads: nKv, headDim: D } = s;
  const stride = s.qStride ?? H * D;
  const group = H / nKv;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(T * H * D);
  for (let t = 0; t < T; t++) {
    const pos = pos0 + t;
    const first = s.window > 0 ? Math.max(0, pos - s.window + 1) : 0;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      const qo = t * stride + h * D;
      const scores: number[] = [];
      let max = sinks[h]!;
      for (let j = first; j <= pos; j++) {
        let dot = 0;
        for (let i = 0; i < D; i++) dot += q[qo + i]! * keys[j]![g * D + i]!;
        scores.push(dot * scale);
        max = Math.max(max, dot * scale);
      }
      let denom = Math.exp(sinks[h]! - max);
      const p = scores.map((x) => Math.exp(x - max));
      for (const x of p) denom += x;
      const oo = (t * H + h) * D;
      for (let i = 0; i < D; i++) {
        let acc = 0;
        for (let j = first; j <= pos; j++) acc += p[j - first]! * values[j]![g * D + i]!;
        out[oo + i] = acc / denom;
      }
    }
  }
  return out;
}
