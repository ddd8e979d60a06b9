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
import type { GpuModel } from './gpu-model.ts';
import { validateSampling, type SamplingParams } from './sampling.ts';
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
}

/** Steps submitted but not yet read back, at most: one being read, one running behind it. */
const MAX_IN_FLIGHT = 2;

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

type BufferName = 'step' | 'tokens' | 'x' | 'h' | 'qkv' | 'attn' | 'routerLogits' | 'ids' | 'expertWeights' | 'act' |
  'moeOffsets' | 'moeList' | 'moeTiles' | 'moeArgs' | 'moeOut' | 'xLast' | 'logits' | 'cand' | 'part' | 'rope' | 'sampleParams';

export class GpuSession {
  readonly contextLimit: number;
  private pos = 0;
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
  private readonly sampleFull: BoundOp;
  private readonly sampleCand: BoundOp;
  private readonly logitRows: number;

  constructor(readonly model: GpuModel, options: SessionOptions = {}) {
    const c = model.config;
    const dev = model.gpu.device;
    this.contextLimit = options.contextLimit ?? model.contextLimit;
    if (!Number.isSafeInteger(this.contextLimit) || this.contextLimit < 1 || this.contextLimit > model.contextLimit) {
      throw new RangeError(`contextLimit must be an integer between 1 and the model's ${model.contextLimit}, got ${options.contextLimit}`);
    }
    const T = model.maxBatch;
    const qkvRows = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
    this.logitRows = options.allLogits ? T : 1;
    const f32 = (n: number, label: string) => this.track(createBuffer(dev, n * 4, STORAGE(), label));
    this.b = {
      step: this.track(createBuffer(dev, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step')),
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
    this.readback = Array.from({ length: MAX_IN_FLIGHT }, (_, i) =>
      this.track(createBuffer(dev, 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `token_readback${i}`)));
    dev.queue.writeBuffer(this.b.rope, 0, ropeTableData(c, this.contextLimit));
    for (let l = 0; l < c.numLayers; l++) {
      const cap = kvCapacity(c.layerTypes[l]!, c.slidingWindow, this.contextLimit, T);
      const kv = createKvCache(dev, model.kvFormat, cap, c.numKvHeads, c.headDim, `kv${l}`);
      this.kv.push(kv);
      this.buffers.push(kv.k, kv.v);
      this.prefillLayers.push(this.bindPrefillLayer(l, kv));
      this.decodeLayers.push(this.bindDecodeLayer(l, kv));
    }
    const kn = model.kernels;
    const B = this.b;
    const embedW = model.weight('embed');
    this.embed = kn.embed.map((k, i) => op(k.key, k.bind(dev, { tokens: B.tokens, weight: embedW[i]!, x: B.x, step: B.step }), (p, bg, n) => k.encode(p, bg, n)));
    this.finalNorm = op(kn.rmsnorm.key, kn.rmsnorm.bind(dev, B.x, model.weight('norm')[0]!, B.h), (p, bg, n) => kn.rmsnorm.encode(p, bg, n));
    const lm = model.weight('lm_head');
    this.lmHeadAll = options.allLogits
      ? kn.lmHead.map((k, i) => op(k.key, k.bind(dev, { x: B.h, weight: lm[i]!, out: B.logits, step: B.step }), (p, bg, n) => k.encode(p, bg, n)))
      : [];
    const lmd = kn.decode.lmHead;
    const lmBind = (x: GPUBuffer) => lmd.bind(dev, { x, out: B.logits, weights: lm, norm: model.weight('norm')[0]!, cand: B.cand, sampleParams: B.sampleParams });
    this.lmHeadLast = op(lmd.key, lmBind(B.xLast), (p, bg) => lmd.encode(p, bg));
    this.lmHeadDecode = op(lmd.key, lmBind(B.x), (p, bg) => lmd.encode(p, bg));
    this.sampleFull = op(kn.sample.key, kn.sample.bind(dev, B.logits, B.sampleParams, B.tokens), (p, bg) => kn.sample.encode(p, bg, 1));
    const sc = kn.decode.sampleCandidates;
    this.sampleCand = op(sc.key, sc.bind(dev, B.cand, B.sampleParams, B.tokens), (p, bg) => sc.encode(p, bg));
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
    if (want === 'all' && this.lmHeadAll.length === 0) throw new Error('logits of every position need a session created with allLogits');
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new RangeError(`token id ${t} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    const needed = this.pos + (this.pending === null ? 0 : 1) + tokens.length;
    if (needed > this.contextLimit) throw new ContextLimitError(needed, this.contextLimit);
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
      const enc = dev.createCommandEncoder({ label: `prefill ${this.pos}+${n}` });
      const pass = enc.beginComputePass();
      for (const o of this.prefillOps()) o.run(pass, n, this.pos);
      if (want === 'all') {
        this.finalNorm.run(pass, n, this.pos);
        for (const k of this.lmHeadAll) k.run(pass, n, this.pos);
      }
      pass.end();
      enc.copyBufferToBuffer(this.b.x, (n - 1) * c.hiddenSize * 4, this.b.xLast, 0, c.hiddenSize * 4);
      dev.queue.submit([enc.finish()]);
      this.pos += n;
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
    const enc = dev.createCommandEncoder({ label: `sample ${this.pos}` });
    const pass = enc.beginComputePass();
    this.lmHeadLast.run(pass, 1, this.pos);
    (drawsFromCandidates(params) ? this.sampleCand : this.sampleFull).run(pass, 1, this.pos);
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
    this.pending = null;
    const pos = this.pos;
    writeStep(dev, this.b.step, 1, pos);
    writeSampleParams(dev, this.b.sampleParams, params, { step: pos + 1, outIndex: 0 });
    const enc = dev.createCommandEncoder({ label: `decode ${pos}` });
    const pass = enc.beginComputePass();
    for (const o of this.decodeOps(params)) o.run(pass, 1, pos);
    pass.end();
    this.pos += 1;
    return this.submitToken(enc).then((id) => {
      if (this.inFlight === 0) this.pending = id;
      return id;
    });
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
    this.pending = token;
    this.pendingOnGpu = false;
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
    const enc = dev.createCommandEncoder({ label: `decode logits ${this.pos}` });
    const pass = enc.beginComputePass();
    for (const o of this.decodeOps(greedy).slice(0, -1)) o.run(pass, 1, this.pos);
    pass.end();
    enc.copyBufferToBuffer(this.b.x, 0, this.b.xLast, 0, c.hiddenSize * 4);
    dev.queue.submit([enc.finish()]);
    this.pos += 1;
    this.hasLogits = true;
    return new Float32Array(await readBuffer(dev, this.b.logits, c.vocabSize * 4));
  }

  /** The kernels of one prefill batch, in order (the lm_head and the draw not included). */
  prefillOps(): BoundOp[] {
    return [...this.embed, ...this.prefillLayers.flat()];
  }

  /** The kernels of one decode step, in order, for a draw with `params`. */
  decodeOps(params: SamplingParams): BoundOp[] {
    return [...this.embed, ...this.decodeLayers.flat(), this.lmHeadDecode, drawsFromCandidates(params) ? this.sampleCand : this.sampleFull];
  }

  /**
   * Debugging aid: runs the forward pass of `tokens` tokens at the current position with every
   * kernel in its own submission and returns the wall time of each, summed per kernel name.
   * Leaves the session as if those tokens had been appended.
   */
  async profile(tokens: number[]): Promise<Map<string, number>> {
    this.checkIdle();
    const dev = this.model.gpu.device;
    const n = tokens.length;
    if (n < 1 || n > this.model.maxBatch) throw new RangeError(`profile takes 1..${this.model.maxBatch} tokens`);
    if (this.pos + n > this.contextLimit) throw new ContextLimitError(this.pos + n, this.contextLimit);
    dev.queue.writeBuffer(this.b.tokens, 0, new Uint32Array(tokens));
    writeStep(dev, this.b.step, n, this.pos);
    await dev.queue.onSubmittedWorkDone();
    const times = new Map<string, number>();
    const ops = n === 1 ? this.decodeOps({ temperature: 0, topK: 0, topP: 1, seed: 0 }).slice(0, -2) : this.prefillOps();
    for (const o of ops) {
      const t0 = performance.now();
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      o.run(pass, n, this.pos);
      pass.end();
      dev.queue.submit([enc.finish()]);
      await dev.queue.onSubmittedWorkDone();
      times.set(o.name, (times.get(o.name) ?? 0) + performance.now() - t0);
    }
    const c = this.model.config;
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(this.b.x, (n - 1) * c.hiddenSize * 4, this.b.xLast, 0, c.hiddenSize * 4);
    dev.queue.submit([enc.finish()]);
    this.pos += n;
    this.pending = null;
    this.hasLogits = true;
    return times;
  }

  /** Forgets the sequence (the KV cache is simply overwritten from position 0). */
  reset(): void {
    this.checkIdle();
    this.pos = 0;
    this.pending = null;
    this.pendingOnGpu = false;
    this.hasLogits = false;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.buffers) b.destroy();
  }

  /** Copies the drawn id (tokens[0]) to a free read-back buffer, submits, and reads it. */
  private submitToken(enc: GPUCommandEncoder): Promise<number> {
    const dev = this.model.gpu.device;
    const rb = this.readback[this.seq++ % MAX_IN_FLIGHT]!;
    enc.copyBufferToBuffer(this.b.tokens, 0, rb, 0, 4);
    dev.queue.submit([enc.finish()]);
    this.pendingOnGpu = true;
    this.inFlight++;
    return rb.mapAsync(GPUMapMode.READ).then(
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

  private bindPrefillLayer(l: number, kv: KvCache): BoundOp[] {
    const m = this.model;
    const dev = m.gpu.device;
    const kn = m.kernels;
    const B = this.b;
    const w = (p: Parameters<GpuModel['weight']>[0]) => m.weight(p, l)[0]!;
    const attn = m.config.layerTypes[l] === 'sliding' ? kn.attnSliding : kn.attnFull;
    const batch = <K extends { key: string; encode(p: GPUComputePassEncoder, bg: GPUBindGroup, n: number): void }>(k: K, bg: GPUBindGroup) =>
      op(k.key, bg, (p, g, n) => k.encode(p, g, n));
    return [
      batch(kn.rmsnorm, kn.rmsnorm.bind(dev, B.x, w('attn_norm'), B.h)),
      batch(kn.qkv, kn.qkv.bind(dev, { x: B.h, weight: w('qkv_w'), bias: w('qkv_b'), out: B.qkv, step: B.step })),
      batch(kn.rope, kn.rope.bind(dev, B.step, B.qkv, B.rope)),
      batch(kn.kvStore, kn.kvStore.bind(dev, B.step, B.qkv, B.qkv, kv)),
      batch(attn, attn.bind(dev, B.step, B.qkv, kv, w('sinks'), B.attn)),
      batch(kn.o, kn.o.bind(dev, { x: B.attn, weight: w('o_w'), bias: w('o_b'), out: B.x, step: B.step })),
      batch(kn.rmsnorm, kn.rmsnorm.bind(dev, B.x, w('mlp_norm'), B.h)),
      batch(kn.router, kn.router.bind(dev, { x: B.h, weight: w('router_w'), bias: w('router_b'), out: B.routerLogits, step: B.step })),
      batch(kn.topk, kn.topk.bind(dev, B.step, B.routerLogits, B.ids, B.expertWeights)),
      ...this.bindGroupedMoe(l),
    ];
  }

  /** The grouped MoE of one layer: route, gate_up and down over tiles (indirect), combine into x. */
  private bindGroupedMoe(l: number): BoundOp[] {
    const m = this.model;
    const dev = m.gpu.device;
    const { route, gateUp, down, combine } = m.kernels.moe;
    const B = this.b;
    const w = (p: Parameters<GpuModel['weight']>[0]) => m.weight(p, l)[0]!;
    const tables = { list: B.moeList, tiles: B.moeTiles };
    const routeBg = route.bind(dev, { step: B.step, ids: B.ids, offsets: B.moeOffsets, ...tables, args: B.moeArgs });
    const gateUpBg = gateUp.bind(dev, { x: B.h, ...tables, blocks: w('gate_up_blocks'), scales: w('gate_up_scales'), bias: w('gate_up_bias'), out: B.act });
    const downBg = down.bind(dev, { x: B.act, ...tables, blocks: w('down_blocks'), scales: w('down_scales'), bias: w('down_bias'), out: B.moeOut });
    const combineBg = combine.bind(dev, { step: B.step, y: B.moeOut, weights: B.expertWeights, x: B.x });
    return [
      op(route.key, routeBg, (p, bg) => route.encode(p, bg)),
      op(gateUp.key, gateUpBg, (p, bg) => gateUp.encode(p, bg, B.moeArgs, 0)),
      op(down.key, downBg, (p, bg) => down.encode(p, bg, B.moeArgs, 16)),
      op(combine.key, combineBg, (p, bg, n) => combine.encode(p, bg, n)),
    ];
  }

  /** One layer of a decode step: 7 dispatches. */
  private bindDecodeLayer(l: number, kv: KvCache): BoundOp[] {
    const m = this.model;
    const dev = m.gpu.device;
    const kd = m.kernels.decode;
    const B = this.b;
    const w = (p: Parameters<GpuModel['weight']>[0]) => m.weight(p, l)[0]!;
    const attn = m.config.layerTypes[l] === 'sliding' ? kd.attnSliding : kd.attnFull;
    const attnBg = attn.bind(dev, B.step, B.qkv, B.rope, kv, B.part, w('sinks'), B.attn);
    return [
      op(kd.qkv.key, kd.qkv.bind(dev, { x: B.x, out: B.qkv, weights: [w('qkv_w')], bias: w('qkv_b'), norm: w('attn_norm') }), (p, bg) => kd.qkv.encode(p, bg)),
      { name: attn.key, run: (p, _n, pos) => attn.encode(p, attnBg, pos) },
      op(kd.o.key, kd.o.bind(dev, { x: B.attn, out: B.x, weights: [w('o_w')], bias: w('o_b') }), (p, bg) => kd.o.encode(p, bg)),
      op(kd.router.key, kd.router.bind(dev, { x: B.x, gain: w('mlp_norm'), weight: w('router_w'), bias: w('router_b'), ids: B.ids, weights: B.expertWeights }), (p, bg) => kd.router.encode(p, bg)),
      op(kd.gateUp.key, kd.gateUp.bind(dev, B.step, B.x, B.ids, w('gate_up_blocks'), w('gate_up_scales'), w('gate_up_bias'), B.act, w('mlp_norm')), (p, bg) => kd.gateUp.encode(p, bg, 1)),
      op(m.kernels.down.key, m.kernels.down.bind(dev, B.step, B.act, B.ids, B.expertWeights, w('down_blocks'), w('down_scales'), w('down_bias'), B.x), (p, bg) => m.kernels.down.encode(p, bg, 1)),
    ];
  }

  private track(b: GPUBuffer): GPUBuffer {
    this.buffers.push(b);
    return b;
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error('the session has been disposed');
  }

  /** Usable, and no step still in flight (their ids decide what comes next). */
  private checkIdle(): void {
    this.checkUsable();
    if (this.inFlight > 0) throw new Error('a decode step is still in flight: await its id first');
  }
}

function op(name: string, bg: GPUBindGroup, run: (pass: GPUComputePassEncoder, bg: GPUBindGroup, tokens: number) => void): BoundOp {
  return { name, run: (pass, tokens) => run(pass, bg, tokens) };
}

export type { GptOssConfig };
