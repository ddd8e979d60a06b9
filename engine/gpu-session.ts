/**
 * One token stream on the GPU: its KV cache, its activations, and the forward pass recorded
 * from bind groups built once here.
 *
 * - Prefill (`append`) runs batches of up to maxBatch tokens through the batched kernels.
 * - A draw (`sample`) runs the final norm + lm_head on the last position and the sampler.
 * - Decode (`enqueueStep`) records one command buffer per token with the fused one-token
 *   kernels (7 dispatches per layer), whose only read-back is the sampled id (4 bytes). The id
 *   also stays on the GPU, where the next step's embedding reads it, so a caller can submit
 *   token N+1 before reading token N back (pipelining; see engine/generate.ts).
 */
import type { GptOssConfig } from '../loader/config.ts';
import { createBuffer, readBuffer } from './gpu/buffers.ts';
import { gpuWait, throwIfLost } from './gpu/device-lost.ts';
import type { GpuModel } from './gpu-model.ts';
import { GREEDY, validateSampling, type SamplingParams } from './sampling.ts';
import { profileOps, type ProfiledOp, type StepProfile } from './gpu-profiler.ts';
import { denseReads, rowReads, type ReadEstimate } from './read-bytes.ts';
import { bindDecodeLayer, bindPrefillLayer } from './session-layers.ts';
import { writeStep, STEP_BYTES } from '../kernels/common.ts';
import { createKvCache, kvCapacity, type KvCache } from '../kernels/kv-cache.ts';
import { ropeTableData } from './reference/rope.ts';
import { drawsFromCandidates, SAMPLE_PARAMS_BYTES, writeSampleParams } from '../kernels/sample.ts';
import { decodePartBytes } from '../kernels/attention-decode.ts';
import { maxMoeTiles } from '../kernels/moe-route.ts';
import { MOE_TILE } from '../kernels/moe-grouped.ts';

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

/** One recorded kernel: its profile name and how to record it for `tokens` tokens at `pos`. */
export interface BoundOp {
  name: string;
  run(pass: GPUComputePassEncoder, tokens: number, pos: number): void;
  /** Bytes it reads (for the profile's GB/s). */
  reads?: ReadEstimate;
}

/** Steps submitted but not yet read back, at most: one being read, one running behind it. */
const MAX_IN_FLIGHT = 2;

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export type BufferName = 'step' | 'stepSliding' | 'tokens' | 'x' | 'h' | 'qkv' | 'attn' | 'routerLogits' | 'ids' | 'expertWeights' | 'act' |
  'moeOffsets' | 'moeList' | 'moeTiles' | 'moeArgs' | 'moeOut' | 'xLast' | 'logits' | 'cand' | 'part' | 'rope' | 'sampleParams';

export class GpuSession {
  readonly contextLimit: number;
  private pos = 0;
  /** The token fed at each position 0..pos-1 (-1 until a step in flight is read back). */
  private history: number[] = [];
  /** The most recent draw's id, for the history of the step that feeds it. */
  private lastDraw: Promise<number> | null = null;
  /** A token sampled but not yet fed through the model (null: none, or not read back yet). */
  private pending: number | null = null;
  /** tokens[0] on the GPU holds the pending token (false after a rewind). */
  private pendingOnGpu = false;
  private hasLogits = false;
  private disposed = false;
  private inFlight = 0;
  private seq = 0;
  private readonly buffers: GPUBuffer[] = [];
  private readonly kv: KvCache[] = [];
  private readonly b: Record<BufferName, GPUBuffer>;
  private readonly readback: GPUBuffer[];
  private readonly prefillLayers: BoundOp[][] = [];
  private readonly decodeLayers: BoundOp[][] = [];
  private readonly embed: BoundOp[];
  private readonly finalNorm: BoundOp;
  private readonly lmHeadAll: BoundOp[];
  /** lm_head over the last prefill position (xLast) and over the decode token (x row 0). */
  private readonly lmHeadLast: BoundOp;
  private readonly lmHeadDecode: BoundOp;
  /** allLogits sessions of an 8-bit lm_head: one row of logits at a time, into rowLogits. */
  private readonly lmHeadRow: { op: BoundOp; out: GPUBuffer } | null;
  /** The full-vocabulary draw, bound on first use (its kernel compiles then: see sampleFull). */
  private sampleFullOp: BoundOp | null = null;
  /** Until the device has accepted that kernel: its check (null once it has). */
  private sampleFullCheck: Promise<void> | null = null;
  private readonly sampleCand: BoundOp;
  /** Kernels this session compiled after the load (allLogits' lm_head): checked before the first submit. */
  private lateKernels: Promise<void> | null = null;
  private readonly logitRows: number;
  /** Created with allLogits: `append(..., 'all')` answers every position (even when maxBatch is 1). */
  private readonly allLogits: boolean;

  constructor(readonly model: GpuModel, options: SessionOptions = {}) {
    const c = model.config;
    const dev = model.gpu.device;
    this.contextLimit = options.contextLimit ?? model.contextLimit;
    if (!Number.isSafeInteger(this.contextLimit) || this.contextLimit < 1 || this.contextLimit > model.contextLimit) {
      throw new RangeError(`contextLimit must be an integer between 1 and the model's ${model.contextLimit}, got ${options.contextLimit}`);
    }
    const T = model.maxBatch;
    const qkvRows = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
    this.allLogits = options.allLogits === true;
    this.logitRows = this.allLogits ? T : 1;
    const f32 = (n: number, label: string) => this.track(createBuffer(dev, n * 4, STORAGE(), label));
    this.b = {
      step: this.track(createBuffer(dev, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, 'step')),
      // The Step of the sliding layers' attention: the window written once, n_tokens and pos0
      // copied from `step` on the GPU at the start of each forward pass (startForward).
      stepSliding: this.track(createBuffer(dev, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step_sliding')),
      tokens: f32(T, 'tokens'),
      x: f32(T * c.hiddenSize, 'x'),
      h: f32(T * c.hiddenSize, 'h'),
      qkv: f32(T * qkvRows, 'qkv'),
      attn: f32(T * c.numHeads * c.headDim, 'attn'),
      routerLogits: f32(T * c.numExperts, 'router_logits'),
      ids: f32(T * c.expertsPerToken, 'expert_ids'),
      expertWeights: f32(T * c.expertsPerToken, 'expert_weights'),
      act: f32(T * c.expertsPerToken * c.intermediateSize, 'moe_act'),
      moeOffsets: this.track(createBuffer(dev, (c.numExperts + 1) * 4, STORAGE(), 'moe_offsets')),
      moeList: this.track(createBuffer(dev, T * c.expertsPerToken * 4, STORAGE(), 'moe_list')),
      moeTiles: this.track(createBuffer(dev, maxMoeTiles(T, c.expertsPerToken, c.numExperts, MOE_TILE) * 16, STORAGE(), 'moe_tiles')),
      moeArgs: this.track(createBuffer(dev, model.kernels.moe.route.argsBytes, STORAGE() | GPUBufferUsage.INDIRECT, 'moe_dispatch_args')),
      moeOut: f32(T * c.expertsPerToken * c.hiddenSize, 'moe_slot_out'),
      xLast: f32(c.hiddenSize, 'x_last'),
      logits: f32(this.logitRows * c.vocabSize, 'logits'),
      // Sized for one candidate per row (the CPU-adapter variant), as the memory plan counts it.
      cand: f32(2 * c.vocabSize, 'sample_candidates'),
      part: this.track(createBuffer(dev, decodePartBytes(c.numHeads, c.headDim), STORAGE(), 'attn_partials')),
      rope: this.track(createBuffer(dev, 2 * this.contextLimit * (c.headDim / 2) * 4, STORAGE(), 'rope_table')),
      sampleParams: this.track(createBuffer(dev, SAMPLE_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'sample_params')),
    };
    writeStep(dev, this.b.stepSliding, 0, 0, c.slidingWindow);
    this.readback = Array.from({ length: MAX_IN_FLIGHT }, (_, i) =>
      this.track(createBuffer(dev, 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `token_readback${i}`)));
    dev.queue.writeBuffer(this.b.rope, 0, ropeTableData(c, this.contextLimit));
    for (let l = 0; l < c.numLayers; l++) {
      const cap = kvCapacity(c.layerTypes[l]!, c.slidingWindow, this.contextLimit, T, model.plan.options.kvReuse);
      const kv = createKvCache(dev, model.kvFormat, cap, c.numKvHeads, c.headDim, `kv${l}`);
      this.kv.push(kv);
      this.buffers.push(kv.k, kv.v);
      this.prefillLayers.push(bindPrefillLayer(model, this.b, l, kv));
      this.decodeLayers.push(bindDecodeLayer(model, this.b, l, kv));
    }
    const kn = model.kernels;
    const B = this.b;
    const embedW = model.weight('embed');
    const H = c.hiddenSize * 4;
    this.embed = kn.embed.map((k, i) => op(k.key, k.bind(dev, { tokens: B.tokens, weight: embedW[i]!, x: B.x, step: B.step }), (p, bg, n) => k.encode(p, bg, n),
      rowReads([embedW[i]!], c.vocabSize, 4)));
    this.finalNorm = op(kn.rmsnorm.key, kn.rmsnorm.bind(dev, B.x, model.weight('norm')[0]!, B.h), (p, bg, n) => kn.rmsnorm.encode(p, bg, n),
      denseReads(model.weight('norm'), H));
    const lm = model.weight('lm_head');
    this.lmHeadAll = options.allLogits && model.weightFormat === 'bf16'
      ? kn.lmHead().map((k, i) => op(k.key, k.bind(dev, { x: B.h, weight: lm[i]!, out: B.logits, step: B.step }), (p, bg, n) => k.encode(p, bg, n)))
      : [];
    if (this.lmHeadAll.length > 0) this.lateKernels = model.pipelines.ready(kn.lmHead().map((k) => k.key));
    const lmd = kn.decode.lmHead;
    const lmBind = (x: GPUBuffer) => lmd.bind(dev, { x, out: B.logits, weights: lm, norm: model.weight('norm')[0]!, cand: B.cand, sampleParams: B.sampleParams });
    const lmReads = denseReads([...lm, ...model.weight('norm')], H);
    this.lmHeadLast = op(lmd.key, lmBind(B.xLast), (p, bg) => lmd.encode(p, bg), lmReads);
    this.lmHeadDecode = op(lmd.key, lmBind(B.x), (p, bg) => lmd.encode(p, bg), lmReads);
    if (options.allLogits && this.lmHeadAll.length === 0) {
      const out = f32(c.vocabSize, 'row_logits');
      const bg = lmd.bind(dev, { x: B.xLast, out, weights: lm, norm: model.weight('norm')[0]!, cand: B.cand, sampleParams: B.sampleParams });
      this.lmHeadRow = { op: op(lmd.key, bg, (p, g) => lmd.encode(p, g)), out };
    } else {
      this.lmHeadRow = null;
    }
    const sc = kn.decode.sampleCandidates;
    this.sampleCand = op(sc.key, sc.bind(dev, B.cand, B.sampleParams, B.tokens), (p, bg) => sc.encode(p, bg), denseReads([], sc.candidates * 8));
  }

  /**
   * The full-vocabulary draw (top-k > 1 or top-p < 1). Most draws take lm_head's candidates, so
   * its kernel, the slowest to compile, compiles on the first draw that needs it; `checked`
   * resolves once the device has accepted it, and is null from then on (nothing per step).
   */
  private sampleFull(): { op: BoundOp; checked: Promise<void> | null } {
    if (!this.sampleFullOp) {
      const k = this.model.kernels.sample();
      this.sampleFullOp = op(k.key, k.bind(this.model.gpu.device, this.b.logits, this.b.sampleParams, this.b.tokens), (p, bg) => k.encode(p, bg, 1),
        denseReads([], this.model.config.vocabSize * 4));
      this.sampleFullCheck = this.model.pipelines.ready([k.key]).then(() => {
        this.sampleFullCheck = null;
      });
    }
    return { op: this.sampleFullOp, checked: this.sampleFullCheck };
  }

  /** The draw for `params`, and the check of its kernel (see sampleFull). */
  private draw(params: SamplingParams): { op: BoundOp; checked: Promise<void> | null } {
    return drawsFromCandidates(params) ? { op: this.sampleCand, checked: null } : this.sampleFull();
  }

  /** Tokens in the KV cache (including steps submitted but not yet read back). */
  get position(): number {
    return this.pos;
  }

  /**
   * Feeds tokens through the model (in batches) and returns logits: of the last token
   * ('last'), of every token ('all', needs allLogits), or none (`sample` draws from the last
   * position).
   */
  async append(tokens: number[], want: 'none' | 'last' | 'all' = 'none'): Promise<Float32Array | undefined> {
    this.checkIdle();
    const c = this.model.config;
    if (want === 'all' && !this.allLogits) throw new Error('logits of every position need a session created with allLogits');
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new RangeError(`token id ${t} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    const needed = this.pos + (this.pending === null ? 0 : 1) + tokens.length;
    if (needed > this.contextLimit) throw new ContextLimitError(needed, this.contextLimit);
    if (this.lateKernels) {
      await this.lateKernels;
      this.lateKernels = null;
      this.checkIdle();
    }
    if (this.pending !== null) {
      // The sampled token was accepted by the caller: feed it first.
      tokens = [this.pending, ...tokens];
      this.pending = null;
      this.pendingOnGpu = false;
    }
    const all = want === 'all' ? new Float32Array(tokens.length * c.vocabSize) : undefined;
    const dev = this.model.gpu.device;
    for (let at = 0; at < tokens.length; at += this.model.maxBatch) {
      const batch = tokens.slice(at, at + this.model.maxBatch);
      const n = batch.length;
      dev.queue.writeBuffer(this.b.tokens, 0, new Uint32Array(batch));
      writeStep(dev, this.b.step, n, this.pos);
      const enc = this.startForward(`prefill ${this.pos}+${n}`);
      const pass = enc.beginComputePass();
      for (const o of this.prefillOps()) o.run(pass, n, this.pos);
      if (want === 'all' && this.lmHeadAll.length > 0) {
        this.finalNorm.run(pass, n, this.pos);
        for (const k of this.lmHeadAll) k.run(pass, n, this.pos);
      }
      pass.end();
      if (want === 'all' && this.lmHeadAll.length === 0) this.encodeRowLogits(enc, n);
      enc.copyBufferToBuffer(this.b.x, (n - 1) * c.hiddenSize * 4, this.b.xLast, 0, c.hiddenSize * 4);
      dev.queue.submit([enc.finish()]);
      this.pos += n;
      this.history.push(...batch);
      if (all) all.set(new Float32Array(await readBuffer(dev, this.b.logits, n * c.vocabSize * 4)), at * c.vocabSize);
    }
    this.hasLogits = tokens.length > 0 || this.hasLogits;
    if (want === 'last') {
      // Greedy parameters: lm_head's candidates are then the logits themselves, no noise.
      writeSampleParams(dev, this.b.sampleParams, { temperature: 0, topK: 0, topP: 1, seed: 0 }, { step: this.pos });
      const enc = dev.createCommandEncoder({ label: `logits ${this.pos}` });
      const pass = enc.beginComputePass();
      this.lmHeadLast.run(pass, 1, this.pos);
      pass.end();
      dev.queue.submit([enc.finish()]);
      return new Float32Array(await readBuffer(dev, this.b.logits, c.vocabSize * 4));
    }
    return all;
  }

  /**
   * Samples the next token from the last appended position. The token is kept pending: the
   * next step or `append` feeds it through the model without another upload.
   */
  async sample(params: SamplingParams): Promise<number> {
    this.checkIdle();
    validateSampling(params);
    if (!this.hasLogits || this.pending !== null) throw new Error('nothing to sample from: append tokens (or step) first');
    const dev = this.model.gpu.device;
    writeSampleParams(dev, this.b.sampleParams, params, { step: this.pos, outIndex: 0 });
    const draw = this.draw(params);
    await draw.checked;
    const enc = dev.createCommandEncoder({ label: `sample ${this.pos}` });
    const pass = enc.beginComputePass();
    this.lmHeadLast.run(pass, 1, this.pos);
    draw.op.run(pass, 1, this.pos);
    pass.end();
    const id = await this.submitToken(enc);
    this.pending = id;
    return id;
  }

  /**
   * Submits one decode step: the forward pass of the pending token (taken from the GPU, where
   * the previous draw left it) and the draw of the next one, in one command buffer. Returns the
   * drawn id's promise without waiting for it, so the next step can be submitted first (at most
   * two unread steps). Ids resolve in submission order.
   */
  enqueueStep(params: SamplingParams): Promise<number> {
    this.checkUsable();
    validateSampling(params);
    if (this.pending === null && this.inFlight === 0) throw new Error('a step needs a sampled token: call sample() after append()');
    if (this.inFlight >= MAX_IN_FLIGHT) throw new Error(`at most ${MAX_IN_FLIGHT} steps can be in flight; await one first`);
    if (this.pos + 1 > this.contextLimit) throw new ContextLimitError(this.pos + 1, this.contextLimit);
    const dev = this.model.gpu.device;
    if (!this.pendingOnGpu) {
      dev.queue.writeBuffer(this.b.tokens, 0, new Uint32Array([this.pending!]));
      this.pendingOnGpu = true;
    }
    const feedIndex = this.history.length;
    if (this.pending !== null) {
      this.history.push(this.pending);
    } else {
      // The token fed is the previous step's draw, still on its way back.
      this.history.push(-1);
      void this.lastDraw?.then((id) => {
        if (this.history.length > feedIndex) this.history[feedIndex] = id;
      }, () => {});
    }
    this.pending = null;
    const pos = this.pos;
    writeStep(dev, this.b.step, 1, pos);
    writeSampleParams(dev, this.b.sampleParams, params, { step: pos + 1, outIndex: 0 });
    const { op: drawOp, checked } = this.draw(params);
    const enc = this.startForward(`decode ${pos}`);
    const pass = enc.beginComputePass();
    for (const o of this.decodeOps(params, drawOp)) o.run(pass, 1, pos);
    pass.end();
    this.pos += 1;
    const submitted = this.submitToken(enc);
    // A full-vocabulary draw compiled just now: a kernel the device refused fails the step.
    const draw = (checked ? Promise.all([submitted, checked]).then(([id]) => id) : submitted).then((id) => {
      if (this.inFlight === 0) this.pending = id;
      return id;
    });
    this.lastDraw = draw;
    return draw;
  }

  /** Feeds the pending token and samples the one after it: one command buffer, one 4-byte read. */
  async step(params: SamplingParams): Promise<number> {
    return this.enqueueStep(params);
  }

  /**
   * Takes back the last fed token (after a step that ran past a stop token): the position
   * goes back by one and `token` (the stop token) becomes the pending token again.
   */
  rewind(token: number): void {
    this.checkIdle();
    if (this.pos < 1) throw new Error('nothing to rewind');
    this.pos -= 1;
    this.history.length = this.pos;
    this.pending = token;
    this.pendingOnGpu = false;
  }

  /** The tokens in the KV cache, in order (a copy). */
  get tokens(): number[] {
    return this.history.slice();
  }

  /**
   * Prepares the session for `prompt` keeping what its cache already holds: the longest common
   * prefix of the cached tokens and the prompt stays (at most prompt.length - 1 tokens, so the
   * last one is fed again and gives the logits to draw from), the rest is forgotten. Returns the
   * number of prompt tokens kept; append(prompt.slice(that)) continues.
   *
   * Full layers keep every position. Sliding-window layers keep the window + maxBatch - 1 most
   * recent ones unless the model was loaded with kvReuse: going back further than that would
   * need keys they have overwritten, so the session then starts over (returns 0).
   */
  reuse(prompt: readonly number[]): number {
    this.checkIdle();
    const h = this.history;
    let p = 0;
    const max = Math.min(h.length, prompt.length - 1);
    while (p < max && h[p] === prompt[p]) p++;
    const c = this.model.config;
    if (!this.model.plan.options.kvReuse && c.layerTypes.includes('sliding')) {
      const cap = kvCapacity('sliding', c.slidingWindow, this.contextLimit, this.model.maxBatch);
      // Keys a token at position p attends to in sliding layers: max(0, p - W + 1) .. p - 1;
      // the ring holds positions pos - cap .. pos - 1.
      if (p > 0 && Math.max(0, p - c.slidingWindow + 1) < this.pos - cap) p = 0;
    }
    this.pos = p;
    h.length = p;
    this.pending = null;
    this.pendingOnGpu = false;
    this.hasLogits = false;
    return p;
  }

  /**
   * Feeds one token through the one-token decode kernels (the path generation takes) and
   * returns its logits: for tests and tools that check that path against a reference.
   */
  async decodeLogits(token: number): Promise<Float32Array> {
    this.checkIdle();
    const c = this.model.config;
    if (this.pending !== null) throw new Error('a sampled token is pending: append it (or reset) first');
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) throw new RangeError(`token id ${token} is outside the vocabulary [0, ${c.vocabSize})`);
    if (this.pos + 1 > this.contextLimit) throw new ContextLimitError(this.pos + 1, this.contextLimit);
    const dev = this.model.gpu.device;
    const greedy = { temperature: 0, topK: 0, topP: 1, seed: 0 };
    dev.queue.writeBuffer(this.b.tokens, 0, new Uint32Array([token]));
    this.pendingOnGpu = false;
    writeStep(dev, this.b.step, 1, this.pos);
    writeSampleParams(dev, this.b.sampleParams, greedy, { step: this.pos + 1 });
    this.history.push(token);
    const enc = this.startForward(`decode logits ${this.pos}`);
    const pass = enc.beginComputePass();
    for (const o of this.decodeOps(greedy).slice(0, -1)) o.run(pass, 1, this.pos);
    pass.end();
    enc.copyBufferToBuffer(this.b.x, 0, this.b.xLast, 0, c.hiddenSize * 4);
    dev.queue.submit([enc.finish()]);
    this.pos += 1;
    this.hasLogits = true;
    return new Float32Array(await readBuffer(dev, this.b.logits, c.vocabSize * 4));
  }

  /**
   * A command encoder for a forward pass whose Step was just written: it first copies n_tokens and
   * pos0 into the sliding layers' Step (whose window stays), so nothing more is uploaded per token.
   */
  private startForward(label: string): GPUCommandEncoder {
    const enc = this.model.gpu.device.createCommandEncoder({ label });
    this.copySlidingStep(enc);
    return enc;
  }

  private copySlidingStep(enc: GPUCommandEncoder): void {
    enc.copyBufferToBuffer(this.b.step, 0, this.b.stepSliding, 0, 8);
  }

  /** The kernels of one prefill batch, in order (the lm_head and the draw not included). */
  prefillOps(): BoundOp[] {
    return [...this.embed, ...this.prefillLayers.flat()];
  }

  /** The kernels of one decode step, in order, for a draw with `params`. */
  decodeOps(params: SamplingParams, drawOp = this.draw(params).op): BoundOp[] {
    return [...this.embed, ...this.decodeLayers.flat(), this.lmHeadDecode, drawOp];
  }

  /**
   * Debugging aid: records what a step of `tokens` tokens runs at the current position in ONE
   * command buffer, each kernel in its own compute pass between GPU timestamps (needs
   * 'timestamp-query'), and returns each kernel's GPU time and estimated bytes read. One token:
   * a decode step (the fused one-token kernels, lm_head, greedy draw); more: a prefill batch,
   * then the last position's lm_head and a greedy draw. Leaves the session as if the tokens had
   * been appended (sample() draws the next one; no token is pending).
   */
  async profile(tokens: number[]): Promise<StepProfile> {
    this.checkIdle();
    const dev = this.model.gpu.device;
    const c = this.model.config;
    const n = tokens.length;
    if (n < 1 || n > this.model.maxBatch) throw new RangeError(`profile takes 1..${this.model.maxBatch} tokens`);
    if (this.pos + n > this.contextLimit) throw new ContextLimitError(this.pos + n, this.contextLimit);
    const pos0 = this.pos;
    dev.queue.writeBuffer(this.b.tokens, 0, new Uint32Array(tokens));
    writeStep(dev, this.b.step, n, pos0);
    writeSampleParams(dev, this.b.sampleParams, GREEDY, { step: pos0 + n, outIndex: 0 });
    const prof = (b: BoundOp, count: number): ProfiledOp => ({ name: b.name, bytesRead: b.reads?.(count, pos0), run: (pass) => b.run(pass, count, pos0) });
    let ops: ProfiledOp[];
    if (n === 1) {
      ops = this.decodeOps(GREEDY).map((b) => prof(b, 1));
    } else {
      const lm = prof(this.lmHeadLast, 1);
      lm.before = (enc) => enc.copyBufferToBuffer(this.b.x, (n - 1) * c.hiddenSize * 4, this.b.xLast, 0, c.hiddenSize * 4);
      ops = [...this.prefillOps().map((b) => prof(b, n)), lm, prof(this.sampleCand, 1)];
    }
    ops[0]!.before = (enc) => this.copySlidingStep(enc);
    const result = await profileOps(dev, ops);
    if (n === 1) {
      // sample() draws from the last position's hidden state: the decode step left it in x.
      const enc = dev.createCommandEncoder();
      enc.copyBufferToBuffer(this.b.x, 0, this.b.xLast, 0, c.hiddenSize * 4);
      dev.queue.submit([enc.finish()]);
    }
    this.pos += n;
    this.history.push(...tokens);
    this.pending = null;
    this.pendingOnGpu = false;
    this.hasLogits = true;
    return { tokens: n, position: pos0, ...result };
  }

  /** Forgets the sequence (the KV cache is simply overwritten from position 0). */
  reset(): void {
    this.checkIdle();
    this.pos = 0;
    this.history = [];
    this.pending = null;
    this.pendingOnGpu = false;
    this.hasLogits = false;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.buffers) b.destroy();
  }

  /**
   * Every row's logits through the one-row lm_head (8-bit lm_head, which the batched matmul
   * does not read), each copied to its place.
   */
  private encodeRowLogits(enc: GPUCommandEncoder, n: number): void {
    const c = this.model.config;
    const dev = this.model.gpu.device;
    const row = this.lmHeadRow!;
    writeSampleParams(dev, this.b.sampleParams, { temperature: 0, topK: 0, topP: 1, seed: 0 }, { step: this.pos });
    for (let r = 0; r < n; r++) {
      enc.copyBufferToBuffer(this.b.x, r * c.hiddenSize * 4, this.b.xLast, 0, c.hiddenSize * 4);
      const pass = enc.beginComputePass();
      row.op.run(pass, 1, this.pos);
      pass.end();
      enc.copyBufferToBuffer(row.out, 0, this.b.logits, r * c.vocabSize * 4, c.vocabSize * 4);
    }
  }

  /** Copies the drawn id (tokens[0]) to a free read-back buffer, submits, and reads it. */
  private submitToken(enc: GPUCommandEncoder): Promise<number> {
    const dev = this.model.gpu.device;
    const rb = this.readback[this.seq++ % MAX_IN_FLIGHT]!;
    enc.copyBufferToBuffer(this.b.tokens, 0, rb, 0, 4);
    dev.queue.submit([enc.finish()]);
    this.pendingOnGpu = true;
    this.inFlight++;
    return gpuWait(dev, rb.mapAsync(GPUMapMode.READ)).then(
      () => {
        const id = new Uint32Array(rb.getMappedRange())[0]!;
        rb.unmap();
        this.inFlight--;
        return id;
      },
      (e: unknown) => {
        this.inFlight--;
        throw e;
      },
    );
  }

  private track(b: GPUBuffer): GPUBuffer {
    this.buffers.push(b);
    return b;
  }

  private checkUsable(): void {
    throwIfLost(this.model.gpu.device);
    if (this.disposed) throw new Error('the session has been disposed');
  }

  /** Usable, and no step still in flight (their ids decide what comes next). */
  private checkIdle(): void {
    this.checkUsable();
    if (this.inFlight > 0) throw new Error('a decode step is still in flight: await its id first');
  }
}

function op(name: string, bg: GPUBindGroup, run: (pass: GPUComputePassEncoder, bg: GPUBindGroup, tokens: number) => void, reads?: ReadEstimate): BoundOp {
  return { name, reads, run: (pass, tokens) => run(pass, bg, tokens) };
}

export type { GptOssConfig };
