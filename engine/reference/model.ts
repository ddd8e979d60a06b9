/**
 * The readable CPU reference forward pass of gpt-oss (SPEC §4).
 *
 * Weights are decoded exactly to f32, activations are kept in f32 arrays between operations,
 * and every dot product / reduction is accumulated in f64 (plain JS numbers). It processes one
 * token at a time through all layers with a KV cache, which is the same computation as a causal
 * pass over the whole sequence. The operations themselves are the free functions of ops.ts,
 * which the kernel tests compare each GPU kernel against.
 */
import type { Checkpoint } from '../../loader/checkpoint.ts';
import type { GptOssConfig } from '../../loader/config.ts';
import { attention, linear, moeDownSum, moeGateUp, quantizeQ8Rows, rmsNorm, topkSoftmax } from './ops.ts';
import { applyRope, ropeRow, yarnParams, type YarnParams } from './rope.ts';
import { loadWeights, type LayerWeights, type ModelWeights } from './weights.ts';

export interface ReferenceSessionOptions {
  /** KV cache precision: 'f32' (default) or 'q8' (int8 with one scale per position and kv head). */
  kv?: 'f32' | 'q8';
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

    const window = c.layerTypes[l] === 'sliding' ? c.slidingWindow : 0;
    const o = attention(q, cache.k, cache.v, pos, { heads: nq, kvHeads: nkv, headDim: D, window }, lw.sinks);
    linear(lw.oW, lw.oB, o, H, nq * D, x, { accumulate: true });
  }

  /** x += sum over the top-k experts of w_e (W2[e] swiglu(W1[e] h + b1[e]) + b2[e]). */
  private moe(lw: LayerWeights, x: Float32Array): void {
    const c = this.model.config;
    const H = c.hiddenSize, E = c.numExperts;
    const h = rmsNorm(x, lw.mlpNorm, c.rmsNormEps);
    const r = linear(lw.routerW, lw.routerB, h, E, H);
    const { ids, weights } = topkSoftmax(r, c.expertsPerToken);
    const acts = ids.map((e) => moeGateUp(lw.gateUp, e, h, c.swigluLimit, c.swigluAlpha));
    moeDownSum(lw.down, ids, weights, acts, x);
  }
}
