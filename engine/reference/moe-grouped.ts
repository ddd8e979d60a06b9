/**
 * CPU reference of the grouped MoE's pieces (kernels/moe-route.ts, kernels/moe-grouped.ts): the
 * routing tables and the per-slot expert math, with f64 accumulation as ReferenceSession.moe.
 * A slot is s = t k + j: token t's j-th expert.
 */
import { mxfp4RowDot } from './ops.ts';
import type { Mxfp4Experts } from './weights.ts';

export interface MoeRouteTables {
  /** [E + 1] exclusive prefix sums of the per-expert slot counts. */
  offsets: Uint32Array;
  /** Slots sorted by expert, increasing slot order within an expert. */
  list: Uint32Array;
  /** (expert, first list index, count, 0) per tile: each expert's run in tiles of `tile` slots. */
  tiles: Uint32Array;
  tileCount: number;
}

export function moeRouteTables(ids: ArrayLike<number>, tokens: number, k: number, experts: number, tile: number): MoeRouteTables {
  const n = tokens * k;
  const counts = new Uint32Array(experts);
  for (let s = 0; s < n; s++) counts[ids[s]!]!++;
  const offsets = new Uint32Array(experts + 1);
  for (let e = 0; e < experts; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const list = new Uint32Array(n);
  const at = offsets.slice(0, experts);
  for (let s = 0; s < n; s++) list[at[ids[s]!]!++] = s;
  const tiles: number[] = [];
  for (let e = 0; e < experts; e++) {
    for (let i = 0; i < counts[e]!; i += tile) tiles.push(e, offsets[e]! + i, Math.min(tile, counts[e]! - i), 0);
  }
  return { offsets, list, tiles: Uint32Array.from(tiles), tileCount: tiles.length / 4 };
}

/** y[s, :] = W2[e] act + b2[e] for one slot. */
export function slotDown(dn: Mxfp4Experts, e: number, act: Float32Array): Float32Array {
  const H = dn.rows;
  const y = new Float32Array(H);
  for (let o = 0; o < H; o++) y[o] = mxfp4RowDot(dn, e, o, act) + dn.bias[e * H + o]!;
  return y;
}

/** x[t, :] + sum_j w[t, j] y[t k + j, :] (f64 sum, j in order). */
export function combineSlots(x: Float32Array, y: Float32Array, w: ArrayLike<number>, tokens: number, k: number, hidden: number): Float32Array {
  const out = Float32Array.from(x);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < hidden; o++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += w[t * k + j]! * y[(t * k + j) * hidden + o]!;
      out[t * hidden + o] = x[t * hidden + o]! + s;
    }
  }
  return out;
}
