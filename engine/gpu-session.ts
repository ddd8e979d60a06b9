/**
 * One token stream on the GPU: its KV cache, its activations, and the forward pass recorded
 * from bind groups built once here. Prefill runs in batches of up to maxBatch tokens; decode
 * records one command buffer per token whose only read-back is the sampled token id.
 */
import type { GptOssConfig } from '../loader/config.ts';
import { createBuffer, readBuffer } from './gpu/buffers.ts';
import type { GpuModel } from './gpu-model.ts';
import { GREEDY, validateSampling, type SamplingParams } from './sampling.ts';
import { profileOps, type ProfiledOp, type StepProfile } from './gpu-profiler.ts';
import { denseReads, expertReads, kvReads, rowReads, type ReadEstimate } from './read-bytes.ts';
import { writeStep, STEP_BYTES } from '../kernels/common.ts';
import { createKvCache, kvCapacity, type KvCache } from '../kernels/kv-cache.ts';
import { ropeTableData } from '../kernels/rope.ts';
import { SAMPLE_PARAMS_BYTES, writeSampleParams } from '../kernels/sample.ts';

export class ContextLimitError extends RangeError {
  override name = 'ContextLimitError';
  constructor(readonly needed: number, readonly limit: number) {
    super(`the sequence would be ${needed} tokens long, over this session's context limit of ${limit}`);
  }
}

export interface SessionOptions {
  /** At most the model's contextLimit (default: the model's). */
  contextLimit?: number;
  /** Keep logits of every position of a batch (for `logits`), not just the last. */
  allLogits?: boolean;
}

type Bound = { name: string; run(pass: GPUComputePassEncoder, tokens: number): void; reads?: ReadEstimate };

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export class GpuSession {
  readonly contextLimit: number;
  private pos = 0;
  /** A token sampled but not yet fed through the model (it sits in tokens[0] on the GPU). */
  private pending: number | null = null;
  private hasLogits = false;
  private disposed = false;
  private readonly buffers: GPUBuffer[] = [];
  private readonly kv: KvCache[] = [];
  private readonly b: Record<'stepBatch' | 'stepOne' | 'tokens' | 'x' | 'h' | 'q' | 'k' | 'v' | 'attn' | 'routerLogits' | 'ids' | 'expertWeights' | 'act' | 'hLast' | 'logits' | 'rope' | 'sampleParams' | 'readback', GPUBuffer>;
  private readonly layers: Bound[][] = [];
  private readonly embed: Bound[] = [];
  private readonly finalNorm: Bound;
  private readonly lmHeadLast: Bound[];
  private readonly lmHeadAll: Bound[];
  private readonly sampler: Bound;
  private readonly logitRows: number;

  constructor(readonly model: GpuModel, options: SessionOptions = {}) {
    const c = model.config;
    const dev = model.gpu.device;
    this.contextLimit = options.contextLimit ?? model.contextLimit;
    if (!Number.isSafeInteger(this.contextLimit) || this.contextLimit < 1 || this.contextLimit > model.contextLimit) {
      throw new RangeError(`contextLimit must be an integer between 1 and the model's ${model.contextLimit}, got ${options.contextLimit}`);
    }
    const T = model.maxBatch;
    this.logitRows = options.allLogits ? T : 1;
    const f32 = (n: number, label: string) => this.track(createBuffer(dev, n * 4, STORAGE(), label));
    this.b = {
      stepBatch: this.track(createBuffer(dev, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step')),
      stepOne: this.track(createBuffer(dev, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step1')),
      tokens: f32(T, 'tokens'),
      x: f32(T * c.hiddenSize, 'x'),
      h: f32(T * c.hiddenSize, 'h'),
      q: f32(T * c.numHeads * c.headDim, 'q'),
      k: f32(T * c.numKvHeads * c.headDim, 'k'),
      v: f32(T * c.numKvHeads * c.headDim, 'v'),
      attn: f32(T * c.numHeads * c.headDim, 'attn'),
      routerLogits: f32(T * c.numExperts, 'router_logits'),
      ids: f32(T * c.expertsPerToken, 'expert_ids'),
      expertWeights: f32(T * c.expertsPerToken, 'expert_weights'),
      act: f32(T * c.expertsPerToken * c.intermediateSize, 'moe_act'),
      hLast: f32(c.hiddenSize, 'h_last'),
      logits: f32(this.logitRows * c.vocabSize, 'logits'),
      rope: this.track(createBuffer(dev, 2 * this.contextLimit * (c.headDim / 2) * 4, STORAGE(), 'rope_table')),
      sampleParams: this.track(createBuffer(dev, SAMPLE_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'sample_params')),
      readback: this.track(createBuffer(dev, 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'token_readback')),
    };
    dev.queue.writeBuffer(this.b.rope, 0, ropeTableData(c, this.contextLimit));
    writeStep(dev, this.b.stepOne, 1, 0);
    for (let l = 0; l < c.numLayers; l++) {
      const cap = kvCapacity(c.layerTypes[l]!, c.slidingWindow, this.contextLimit, T);
      const kv = createKvCache(dev, model.kvFormat, cap, c.numKvHeads, c.headDim, `kv${l}`);
      this.kv.push(kv);
      this.buffers.push(kv.k, kv.v);
      this.layers.push(this.bindLayer(l, kv));
    }
    const kn = model.kernels;
    const B = this.b;
    const embedW = model.weight('embed');
    this.embed = kn.embed.map((k, i) => bound(k, k.bind(dev, { tokens: B.tokens, weight: embedW[i]!, x: B.x, step: B.stepBatch }), rowReads([embedW[i]!], c.vocabSize, 4)));
    this.finalNorm = bound(kn.rmsnorm, kn.rmsnorm.bind(dev, B.x, model.weight('norm')[0]!, B.h), denseReads(model.weight('norm'), c.hiddenSize * 4));
    const lm = model.weight('lm_head');
    this.lmHeadLast = kn.lmHead.map((k, i) => bound(k, k.bind(dev, { x: B.hLast, weight: lm[i]!, out: B.logits, step: B.stepOne }), denseReads([lm[i]!], c.hiddenSize * 4)));
    this.lmHeadAll = options.allLogits ? kn.lmHead.map((k, i) => bound(k, k.bind(dev, { x: B.h, weight: lm[i]!, out: B.logits, step: B.stepBatch }))) : [];
    this.sampler = bound(kn.sample, kn.sample.bind(dev, B.logits, B.sampleParams, B.tokens), denseReads([], c.vocabSize * 4));
  }

  /** Tokens in the KV cache. */
  get position(): number {
    return this.pos;
  }

  /**
   * Feeds tokens through the model (in batches) and returns logits: of the last token
   * ('last'), of every token ('all', needs allLogits), or none (the last ones stay on the GPU
   * for `sample`).
   */
  async append(tokens: number[], want: 'none' | 'last' | 'all' = 'none'): Promise<Float32Array | undefined> {
    this.checkUsable();
    const c = this.model.config;
    if (want === 'all' && this.logitRows === 1) throw new Error('logits of every position need a session created with allLogits');
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new RangeError(`token id ${t} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    const needed = this.pos + (this.pending === null ? 0 : 1) + tokens.length;
    if (needed > this.contextLimit) throw new ContextLimitError(needed, this.contextLimit);
    if (this.pending !== null) {
      // The sampled token was accepted by the caller: feed it first.
      tokens = [this.pending, ...tokens];
      this.pending = null;
    }
    const all = want === 'all' ? new Float32Array(tokens.length * c.vocabSize) : undefined;
    const dev = this.model.gpu.device;
    for (let at = 0; at < tokens.length; at += this.model.maxBatch) {
      const batch = tokens.slice(at, at + this.model.maxBatch);
      const n = batch.length;
      dev.queue.writeBuffer(this.b.tokens, 0, new Uint32Array(batch));
      writeStep(dev, this.b.stepBatch, n, this.pos);
      const enc = dev.createCommandEncoder({ label: `prefill ${this.pos}+${n}` });
      this.encodeForward(enc, n, want === 'all');
      dev.queue.submit([enc.finish()]);
      this.pos += n;
      if (all) all.set(new Float32Array(await readBuffer(dev, this.b.logits, n * c.vocabSize * 4)), at * c.vocabSize);
    }
    this.hasLogits = tokens.length > 0 || this.hasLogits;
    if (want === 'last') return new Float32Array(await readBuffer(dev, this.b.logits, c.vocabSize * 4));
    return all;
  }

  /**
   * Samples the next token from the last logits. The token is kept pending: the next `step`
   * or `append` feeds it through the model without another upload.
   */
  async sample(params: SamplingParams): Promise<number> {
    this.checkUsable();
    validateSampling(params);
    if (!this.hasLogits || this.pending !== null) throw new Error('nothing to sample from: append tokens (or step) first');
    const dev = this.model.gpu.device;
    writeSampleParams(dev, this.b.sampleParams, params, { step: this.pos, outIndex: 0 });
    const enc = dev.createCommandEncoder({ label: `sample ${this.pos}` });
    const pass = enc.beginComputePass();
    this.sampler.run(pass, 1);
    pass.end();
    return this.finishToken(enc);
  }

  /** Feeds the pending token and samples the one after it: one command buffer, one 4-byte read. */
  async step(params: SamplingParams): Promise<number> {
    this.checkUsable();
    validateSampling(params);
    if (this.pending === null) throw new Error('step() needs a sampled token: call sample() after append()');
    if (this.pos + 1 > this.contextLimit) throw new ContextLimitError(this.pos + 1, this.contextLimit);
    const dev = this.model.gpu.device;
    this.pending = null;
    writeStep(dev, this.b.stepBatch, 1, this.pos);
    writeSampleParams(dev, this.b.sampleParams, params, { step: this.pos + 1, outIndex: 0 });
    const enc = dev.createCommandEncoder({ label: `decode ${this.pos}` });
    this.encodeForward(enc, 1, false);
    this.pos += 1;
    const pass = enc.beginComputePass();
    this.sampler.run(pass, 1);
    pass.end();
    return this.finishToken(enc);
  }

  /**
   * Debugging aid: runs the forward pass of `tokens` tokens at the current position, the last
   * token's lm_head and a greedy sample, in ONE command buffer with each kernel in its own
   * compute pass between GPU timestamps (needs 'timestamp-query'), and returns each kernel's
   * GPU time and estimated bytes read. Leaves the session as if those tokens had been appended.
   */
  async profile(tokens: number[]): Promise<StepProfile> {
    this.checkUsable();
    const dev = this.model.gpu.device;
    const c = this.model.config;
    const n = tokens.length;
    if (n < 1 || n > this.model.maxBatch) throw new RangeError(`profile takes 1..${this.model.maxBatch} tokens`);
    if (this.pos + n > this.contextLimit) throw new ContextLimitError(this.pos + n, this.contextLimit);
    const pos0 = this.pos;
    dev.queue.writeBuffer(this.b.tokens, 0, new Uint32Array(tokens));
    writeStep(dev, this.b.stepBatch, n, pos0);
    writeSampleParams(dev, this.b.sampleParams, GREEDY, { step: pos0 + n, outIndex: 0 });
    const op = (b: Bound, count: number): ProfiledOp => ({ name: b.name, bytesRead: b.reads?.(count, pos0), run: (pass) => b.run(pass, count) });
    const lmHead = this.lmHeadLast.map((b) => op(b, 1));
    lmHead[0]!.before = (enc) => enc.copyBufferToBuffer(this.b.h, (n - 1) * c.hiddenSize * 4, this.b.hLast, 0, c.hiddenSize * 4);
    const ops = [
      ...this.embed.map((b) => op(b, n)),
      ...this.layers.flat().map((b) => op(b, n)),
      op(this.finalNorm, n),
      ...lmHead,
      op(this.sampler, 1),
    ];
    const result = await profileOps(dev, ops);
    this.pos += n;
    this.hasLogits = true;
    return { tokens: n, position: pos0, ...result };
  }

  /** Forgets the sequence (the KV cache is simply overwritten from position 0). */
  reset(): void {
    this.checkUsable();
    this.pos = 0;
    this.pending = null;
    this.hasLogits = false;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.buffers) b.destroy();
  }

  private async finishToken(enc: GPUCommandEncoder): Promise<number> {
    const dev = this.model.gpu.device;
    enc.copyBufferToBuffer(this.b.tokens, 0, this.b.readback, 0, 4);
    dev.queue.submit([enc.finish()]);
    await this.b.readback.mapAsync(GPUMapMode.READ);
    const id = new Uint32Array(this.b.readback.getMappedRange())[0]!;
    this.b.readback.unmap();
    this.pending = id;
    return id;
  }

  private encodeForward(enc: GPUCommandEncoder, n: number, allLogits: boolean): void {
    const c = this.model.config;
    let pass = enc.beginComputePass();
    for (const e of this.embed) e.run(pass, n);
    for (const layer of this.layers) for (const op of layer) op.run(pass, n);
    this.finalNorm.run(pass, n);
    if (allLogits) {
      for (const k of this.lmHeadAll) k.run(pass, n);
      pass.end();
      return;
    }
    pass.end();
    enc.copyBufferToBuffer(this.b.h, (n - 1) * c.hiddenSize * 4, this.b.hLast, 0, c.hiddenSize * 4);
    pass = enc.beginComputePass();
    for (const k of this.lmHeadLast) k.run(pass, 1);
    pass.end();
  }

  private bindLayer(l: number, kv: KvCache): Bound[] {
    const m = this.model;
    const dev = m.gpu.device;
    const kn = m.kernels;
    const B = this.b;
    const c = m.config;
    const w = (p: Parameters<GpuModel['weight']>[0]) => m.weight(p, l)[0]!;
    const sliding = c.layerTypes[l] === 'sliding';
    const attn = sliding ? kn.attnSliding : kn.attnFull;
    // Bytes each op reads per token of activations (f32), for the profile's GB/s.
    const H = c.hiddenSize * 4, Q = c.numHeads * c.headDim * 4, KV = c.numKvHeads * c.headDim * 4, K = c.expertsPerToken;
    return [
      bound(kn.rmsnorm, kn.rmsnorm.bind(dev, B.x, w('attn_norm'), B.h), denseReads([w('attn_norm')], H)),
      bound(kn.q, kn.q.bind(dev, { x: B.h, weight: w('q_w'), bias: w('q_b'), out: B.q, step: B.stepBatch }), denseReads([w('q_w'), w('q_b')], H)),
      bound(kn.k, kn.k.bind(dev, { x: B.h, weight: w('k_w'), bias: w('k_b'), out: B.k, step: B.stepBatch }), denseReads([w('k_w'), w('k_b')], H)),
      bound(kn.v, kn.v.bind(dev, { x: B.h, weight: w('v_w'), bias: w('v_b'), out: B.v, step: B.stepBatch }), denseReads([w('v_w'), w('v_b')], H)),
      bound(kn.ropeQ, kn.ropeQ.bind(dev, B.stepBatch, B.q, B.rope), denseReads([], Q + c.headDim * 4)),
      bound(kn.ropeK, kn.ropeK.bind(dev, B.stepBatch, B.k, B.rope), denseReads([], KV + c.headDim * 4)),
      bound(kn.kvStore, kn.kvStore.bind(dev, B.stepBatch, B.k, B.v, kv), denseReads([], 2 * KV)),
      bound(attn, attn.bind(dev, B.stepBatch, B.q, kv, w('sinks'), B.attn), kvReads(kv, sliding ? c.slidingWindow : 0, [w('sinks')], Q)),
      bound(kn.o, kn.o.bind(dev, { x: B.attn, weight: w('o_w'), bias: w('o_b'), out: B.x, step: B.stepBatch }), denseReads([w('o_w'), w('o_b')], Q + H)),
      bound(kn.rmsnorm, kn.rmsnorm.bind(dev, B.x, w('mlp_norm'), B.h), denseReads([w('mlp_norm')], H)),
      bound(kn.router, kn.router.bind(dev, { x: B.h, weight: w('router_w'), bias: w('router_b'), out: B.routerLogits, step: B.stepBatch }), denseReads([w('router_w'), w('router_b')], H)),
      bound(kn.topk, kn.topk.bind(dev, B.stepBatch, B.routerLogits, B.ids, B.expertWeights), denseReads([], c.numExperts * 4)),
      bound(kn.gateUp, kn.gateUp.bind(dev, B.stepBatch, B.h, B.ids, w('gate_up_blocks'), w('gate_up_scales'), w('gate_up_bias'), B.act),
        expertReads([w('gate_up_blocks'), w('gate_up_scales'), w('gate_up_bias')], c.numExperts, K, H + 4 * K)),
      bound(kn.down, kn.down.bind(dev, B.stepBatch, B.act, B.ids, B.expertWeights, w('down_blocks'), w('down_scales'), w('down_bias'), B.x),
        expertReads([w('down_blocks'), w('down_scales'), w('down_bias')], c.numExperts, K, K * c.intermediateSize * 4 + 8 * K + H)),
    ];
  }

  private track(b: GPUBuffer): GPUBuffer {
    this.buffers.push(b);
    return b;
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error('the session has been disposed');
  }
}

function bound(kernel: { key: string; encode(pass: GPUComputePassEncoder, bg: GPUBindGroup, tokens: number): void }, bg: GPUBindGroup, reads?: ReadEstimate): Bound {
  return { name: kernel.key, reads, run: (pass, tokens) => kernel.encode(pass, bg, tokens) };
}

export type { GptOssConfig };
