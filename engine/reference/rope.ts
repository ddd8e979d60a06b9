/**
 * YaRN rotary position embedding of gpt-oss (SPEC §4), computed on the host in f64.
 *
 * Pairs are half-split: element i of a head rotates with element i + d/2. The tables hold
 * cos(pos * inv_freq_i) * c and sin(pos * inv_freq_i) * c, c being the YaRN concentration.
 */
import type { GptOssConfig, YarnRope } from '../../loader/config.ts';

export interface YarnParams {
  /** Ramp start (dimension index, in units of i = 0..d/2-1); floored when `truncate`. */
  low: number;
  /** Ramp end; ceiled when `truncate`. */
  high: number;
  /** Concentration c = 0.1 ln(factor) + 1: multiplies both cos and sin. */
  concentration: number;
  /** inv_freq_i for i = 0..d/2-1, in f64. */
  invFreq: Float64Array;
}

/** low / high / concentration / inv_freq of the YaRN scaling, in f64. */
export function yarnParams(rope: YarnRope, headDim: number): YarnParams {
  const half = headDim / 2;
  const { theta, factor, betaFast, betaSlow, originalMaxPositions } = rope;
  const bound = (beta: number) => (half * Math.log(originalMaxPositions / (beta * 2 * Math.PI))) / Math.log(theta);
  let low = bound(betaFast);
  let high = bound(betaSlow);
  if (rope.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  const concentration = 0.1 * Math.log(factor) + 1;
  const invFreq = new Float64Array(half);
  // Guard against low == high (as the reference implementations do).
  const span = high - low === 0 ? 0.001 : high - low;
  for (let i = 0; i < half; i++) {
    const freq = theta ** ((2 * i) / headDim);
    const ramp = Math.min(1, Math.max(0, (i - low) / span));
    invFreq[i] = ramp / (factor * freq) + (1 - ramp) / freq;
  }
  return { low, high, concentration, invFreq };
}

/** cos/sin rows (d/2 values each, concentration included) for one position, in f64. */
export function ropeRow(p: YarnParams, position: number, cos: Float64Array, sin: Float64Array): void {
  const c = p.concentration;
  for (let i = 0; i < p.invFreq.length; i++) {
    const a = position * p.invFreq[i]!;
    cos[i] = Math.cos(a) * c;
    sin[i] = Math.sin(a) * c;
  }
}

/**
 * Tables for positions 0..positions-1: `cos` and `sin` are [positions, headDim/2] row-major,
 * concentration included, computed in f64.
 */
export function yarnTables(config: GptOssConfig, positions: number): { cos: Float64Array; sin: Float64Array; half: number } {
  const p = yarnParams(config.rope, config.headDim);
  const half = config.headDim / 2;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let pos = 0; pos < positions; pos++) {
    ropeRow(p, pos, cos.subarray(pos * half, (pos + 1) * half), sin.subarray(pos * half, (pos + 1) * half));
  }
  return { cos, sin, half };
}

/**
 * Rotates `heads` heads of `x` (each headDim values, contiguous) in place with one position's
 * cos/sin rows (d/2 each). Result is rounded to f32 by the array.
 */
export function applyRope(x: Float32Array, heads: number, headDim: number, cos: Float64Array, sin: Float64Array): void {
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    const o = h * headDim;
    for (let i = 0; i < half; i++) {
      const x1 = x[o + i]!;
      const x2 = x[o + i + half]!;
      x[o + i] = x1 * cos[i]! - x2 * sin[i]!;
      x[o + i + half] = x2 * cos[i]! + x1 * sin[i]!;
    }
  }
}

/** [cos table | sin table], each [positions, headDim/2], computed in f64 then rounded to f32. */
export function ropeTableData(config: Pick<GptOssConfig, 'rope' | 'headDim'>, positions: number): Float32Array {
  const half = config.headDim / 2;
  const p = yarnParams(config.rope, config.headDim);
  const out = new Float32Array(2 * positions * half);
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let pos = 0; pos < positions; pos++) {
    ropeRow(p, pos, cos, sin);
    out.set(cos, pos * half);
    out.set(sin, (positions + pos) * half);
  }
  return out;
}
