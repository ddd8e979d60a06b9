/**
 * The readable CPU reference forward pass of gpt-oss (SPEC §4).
 *
 * Weights are decoded exactly to f32, activations are kept in f32 arrays between operations,
 * and every dot product / reduction is accumulated in f64 (plain JS numbers). It processes one
 * token at a time through all layers with a KV cache, which is the same computation as a causal
 * pass over the whole sequence.
 */
import type { Checkpoint } from '../../loader/checkpoint.ts';
import type { GptOssConfig } from '../../loader/config.ts';
import { FP4_VALUES, e8m0 } from '../../loader/numeric.ts';
import { applyRope, ropeRow, yarnParams, type YarnParams } from './rope.ts';
import { dot, loadWeights, type LayerWeights, type ModelWeights, type Mxfp4Experts } from './weights.ts';

export interface ReferenceSessionOptions {
  /** KV cache precision: 'f32' (default) or 'q8' (int8 with one scale per position and kv head). */
  kv?: 'f32' | 'q8';
}

/**
 * The 8-bit KV cache rounding, as kernels/kv-cache.ts stores it: per row of `headDim` values,
 * q = clamp(roundHalfEven(x * (127 / max|x|)), -127, 127), value = q * (max|x| / 127), in f32.
 */
export function quantizeQ8Rows(x: Float32Array, headDim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += headDim) {
    let max = 0;
    for (let i = 0; i < headDim; i++) max = Math.max(max, Math.abs(x[r + i]!));
    if (max === 0) continue;
    const inv = Math.fround(127 / max);
    const scale = Math.fround(max / 127);
    for (let i = 0; i < headDim; i++) {
      const q = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(x[r + i]! * inv))));
      out[r + i] = Math.fround(q * scale);
    }
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface ForwardHooks {
  /** x = the residual stream AFTER layer `layer` (a copy); layer -1 = the embedding. */
  onHidden?(layer: number, position: number, x: Float32Array): void;
}

export async function loadReferenceModel(ck: Checkpoint): Promise<ReferenceModel> {
  return new ReferenceModel(ck.config, await loadWeights(ck));
}

export class ReferenceModel {
  readonly rope: YarnParams;

  constructor(
    readonly config: GptOssConfig,
    readonly weights: ModelWeights,
  ) {
    this.rope = yarnParams(config.rope, config.headDim);
  }

  /** `kv: 'q8'` stores keys and values as the GPU's 8-bit cache does (the reference for that path). */
  newSession(options: ReferenceSessionOptions = {}): ReferenceSession {
    return new ReferenceSession(this, options);
  }
}

/** y[r] = W[r,:] . x + b[r] for W [rows, cols] row-major; f64 accumulation, f32 result. */
export function linear(w: Float32Array, b: Float32Array | null, x: Float32Array, rows: number, cols: number, y = new Float32Array(rows)): Float32Array {
  for (let r = 0; r < rows; r++) y[r] = dot(w, r * cols, x, cols) + (b ? b[r]! : 0);
  return y;
}

/** rmsnorm(x) * weight: mean of squares over the vector, eps inside the square root. */
export function rmsNorm(x: Float32Array, weight: Float32Array, eps: number, out = new Float32Array(x.length)): Float32Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i]! * inv) * weight[i]!;
  return out;
}

/** Indices of the k largest values, largest first; ties go to the lower index. */
export function topK(values: Float32Array, k: number): number[] {
  const idx = Array.from(values, (_, i) => i);
  idx.sort((a, b) => values[b]! - values[a]! || a - b);
  return idx.slice(0, k);
}

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

/** e2m1 value of the low / high nibble of a byte. */
const FP4_LO = Float64Array.from({ length: 256 }, (_, b) => FP4_VALUES[b & 15]!);
const FP4_HI = Float64Array.from({ length: 256 }, (_, b) => FP4_VALUES[b >> 4]!);

/** Growing per-layer KV cache: [position, kvHeads * headDim] for k (after RoPE) and v. */
class KvCache {
  k: Float32Array;
  v: Float32Array;
  length = 0;
  constructor(readonly width: number) {
    this.k = new Float32Array(width * 16);
    this.v = new Float32Array(width * 16);
  }
  push(k: Float32Array, v: Float32Array): void {
    const need = (this.length + 1) * this.width;
    if (need > this.k.length) {
      const grow = (a: Float32Array) => {
        const n = new Float32Array(Math.max(need, a.length * 2));
        n.set(a.subarray(0, this.length * this.width));
        return n;
      };
      this.k = grow(this.k);
      this.v = grow(this.v);
    }
    this.k.set(k, this.length * this.width);
    this.v.set(v, this.length * this.width);
    this.length++;
  }
}

export class ReferenceSession {
  private pos = 0;
  private caches: KvCache[];
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;

  constructor(readonly model: ReferenceModel, readonly options: ReferenceSessionOptions = {}) {
    const c = model.config;
    this.caches = this.newCaches();
    this.cos = new Float64Array(c.headDim / 2);
    this.sin = new Float64Array(c.headDim / 2);
  }

  /** Tokens processed so far. */
  get position(): number {
    return this.pos;
  }

  reset(): void {
    this.pos = 0;
    this.caches = this.newCaches();
  }

  /** Feeds tokens through the model with the KV cache; returns logits [tokens.length * vocab]. */
  forward(tokens: number[], hooks?: ForwardHooks): Float32Array {
    const c = this.model.config;
    const logits = new Float32Array(tokens.length * c.vocabSize);
    for (let t = 0; t < tokens.length; t++) this.step(tokens[t]!, hooks, logits, t * c.vocabSize);
    return logits;
  }

  private newCaches(): KvCache[] {
    const c = this.model.config;
    return Array.from({ length: c.numLayers }, () => new KvCache(c.numKvHeads * c.headDim));
  }

  private step(token: number, hooks: ForwardHooks | undefined, logits: Float32Array, offset: number): void {
    const c = this.model.config;
    const w = this.model.weights;
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) throw new RangeError(`token ${token} is outside the vocabulary [0, ${c.vocabSize})`);
    const pos = this.pos;
    ropeRow(this.model.rope, pos, this.cos, this.sin);

    const x = w.embed.row(token);
    hooks?.onHidden?.(-1, pos, x.slice());
    for (let l = 0; l < c.numLayers; l++) {
      this.attention(l, w.layers[l]!, x, pos);
      this.moe(w.layers[l]!, x);
      hooks?.onHidden?.(l, pos, x.slice());
    }
    const h = rmsNorm(x, w.norm, c.rmsNormEps);
    w.lmHead.matVec(h, logits, offset);
    this.pos++;
  }

  /** x += Wo attn(rmsnorm(x)) + bo, appending this position's k, v to the layer's cache. */
  private attention(l: number, lw: LayerWeights, x: Float32Array, pos: number): void {
    const c = this.model.config;
    const H = c.hiddenSize, D = c.headDim, nq = c.numHeads, nkv = c.numKvHeads;
    const h = rmsNorm(x, lw.attnNorm, c.rmsNormEps);
    const q = linear(lw.qW, lw.qB, h, nq * D, H);
    const k = linear(lw.kW, lw.kB, h, nkv * D, H);
    const v = linear(lw.vW, lw.vB, h, nkv * D, H);
    applyRope(q, nq, D, this.cos, this.sin);
    applyRope(k, nkv, D, this.cos, this.sin);
    const cache = this.caches[l]!;
    if (this.options.kv === 'q8') cache.push(quantizeQ8Rows(k, D), quantizeQ8Rows(v, D));
    else cache.push(k, v);

    const first = c.layerTypes[l] === 'sliding' ? Math.max(0, pos - c.slidingWindow + 1) : 0;
    const n = pos - first + 1;
    const scale = 1 / Math.sqrt(D);
    const width = nkv * D;
    const group = nq / nkv;
    const scores = new Float64Array(n);
    const o = new Float32Array(nq * D);
    for (let hd = 0; hd < nq; hd++) {
      const g = Math.floor(hd / group);
      const qo = hd * D;
      const sink = lw.sinks[hd]!;
      let max = sink;
      for (let j = 0; j < n; j++) {
        const ko = (first + j) * width + g * D;
        let s = 0;
        for (let i = 0; i < D; i++) s += q[qo + i]! * cache.k[ko + i]!;
        s *= scale;
        scores[j] = s;
        if (s > max) max = s;
      }
      let denom = Math.exp(sink - max);
      for (let j = 0; j < n; j++) {
        scores[j] = Math.exp(scores[j]! - max);
        denom += scores[j]!;
      }
      for (let i = 0; i < D; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += scores[j]! * cache.v[(first + j) * width + g * D + i]!;
        o[qo + i] = s / denom;
      }
    }
    const y = linear(lw.oW, lw.oB, o, H, nq * D);
    for (let i = 0; i < H; i++) x[i] = x[i]! + y[i]!;
  }

  /** x += sum over the top-k experts of w_e (W2[e] swiglu(W1[e] h + b1[e]) + b2[e]). */
  private moe(lw: LayerWeights, x: Float32Array): void {
    const c = this.model.config;
    const H = c.hiddenSize, I = c.intermediateSize, E = c.numExperts;
    const h = rmsNorm(x, lw.mlpNorm, c.rmsNormEps);
    const r = linear(lw.routerW, lw.routerB, h, E, H);
    const top = topK(r, c.expertsPerToken);
    // softmax over the selected logits only
    const m = r[top[0]!]!;
    const ex = top.map((e) => Math.exp(r[e]! - m));
    const sum = ex.reduce((a, b) => a + b, 0);
    const weights = ex.map((v) => Math.fround(v / sum));

    const limit = c.swigluLimit, alpha = c.swigluAlpha;
    const a = new Float32Array(I);
    const y = new Float64Array(H);
    for (let t = 0; t < top.length; t++) {
      const e = top[t]!;
      const gu = lw.gateUp, dn = lw.down;
      for (let k = 0; k < I; k++) {
        const u0 = Math.fround(mxfp4RowDot(gu, e, 2 * k, h) + gu.bias[e * 2 * I + 2 * k]!);
        const u1 = Math.fround(mxfp4RowDot(gu, e, 2 * k + 1, h) + gu.bias[e * 2 * I + 2 * k + 1]!);
        const glu = Math.min(u0, limit);
        const lin = Math.min(Math.max(u1, -limit), limit);
        a[k] = (glu / (1 + Math.exp(-alpha * glu))) * (lin + 1);
      }
      for (let i = 0; i < H; i++) {
        const d = Math.fround(mxfp4RowDot(dn, e, i, a) + dn.bias[e * H + i]!);
        y[i] += weights[t]! * d;
      }
    }
    for (let i = 0; i < H; i++) x[i] = x[i]! + y[i]!;
  }
}
