/**
 * A gpt-oss model resident on the GPU: the memory plan checked against the adapter, every
 * weight streamed into its buffer, and the kernels (pipelines) of this shape compiled once.
 * Sessions (engine/gpu-session.ts) hold the KV cache and activations and replay the kernels.
 */
import type { Checkpoint } from '../loader/checkpoint.ts';
import type { GptOssConfig } from '../loader/config.ts';
import type { GpuContext } from './gpu/device.ts';
import { planMemoryAuto, type KvFormat, type MemoryPlan } from './memory-plan.ts';
import { key, uploadWeights, type ProgressCallback, type UploadedTensor } from './upload.ts';
import { PipelineCache } from '../kernels/pipeline-cache.ts';
import { Bf16MatmulKernel } from '../kernels/matmul-bf16.ts';
import { EmbedKernel } from '../kernels/embed.ts';
import { RmsNormKernel } from '../kernels/rmsnorm.ts';
import { RopeKernel } from '../kernels/rope.ts';
import { KvStoreKernel } from '../kernels/kv-cache.ts';
import { AttentionKernel } from '../kernels/attention.ts';
import { TopkSoftmaxKernel } from '../kernels/router.ts';
import { MoeDownKernel, MoeGateUpKernel } from '../kernels/moe.ts';
import { MoeRouteKernel } from '../kernels/moe-route.ts';
import { MOE_TILE, MoeCombineKernel, MoeGroupedDownKernel, MoeGroupedGateUpKernel, moeGroupedStageBytes } from '../kernels/moe-grouped.ts';
import { SampleCandidatesKernel, SampleKernel } from '../kernels/sample.ts';
import { MatvecKernel, matvecStageBytes } from '../kernels/matvec.ts';
import { DecodeAttentionKernel } from '../kernels/attention-decode.ts';
import { RouterDecodeKernel } from '../kernels/router.ts';
import type { GpuParam, WeightFormat } from './memory-plan.ts';

export interface ModelOptions {
  /** Longest sequence of the sessions this model will serve (default min(4096, max positions)). */
  contextLimit?: number;
  /** Prefill batch size (default: the largest of 512, 256, 128, ... that the memory plan allows). */
  maxBatch?: number;
  /** KV cache format (default 'q8'). */
  kvFormat?: KvFormat;
  /** GPU memory to plan against, when known (bytes). */
  memoryLimit?: number;
  /**
   * Plan for sessions that keep the logits of every position of a batch (GpuSession's
   * allLogits: maxBatch rows of logits instead of one). Default false.
   */
  allLogits?: boolean;
  /**
   * 'q8' stores the attention projections (qkv, o) and lm_head as 8-bit weights (blocks of 32
   * with an f32 scale, quantised at load: engine/quant-q8.ts), 44% fewer bytes for each of
   * them; the router stays bf16. Default 'bf16' (exact).
   */
  weights?: WeightFormat;
  /**
   * Sliding-window layers keep the whole context (not only the window) so sessions can reuse
   * their cache from any earlier position (GpuSession.reuse); costs their KV at full context.
   */
  kvReuse?: boolean;
  /** Sessions planned for (each with its own KV cache and activations; default 1). */
  sessions?: number;
  onProgress?: ProgressCallback;
  /** Pipeline compilation: (0, 1) when it starts, (1, 1) when every kernel is ready. */
  onCompileProgress?: (done: number, total: number) => void;
  /** The integrity check's end (see UploadOptions.verify): a throw fails the load with nothing left on the GPU. */
  verify?: () => Promise<void>;
  signal?: AbortSignal;
}

/**
 * The kernels of one model shape; a session binds them to its buffers. Prefill (a batch of
 * tokens) and decode (one token) have their own sets: decode fuses what a single token allows
 * (RMSNorm into the next projection, RoPE and the KV store into attention, router and top-k).
 */
export interface ModelKernels {
  rmsnorm: RmsNormKernel;
  /** q, k and v in one matmul over the fused [q; k; v] weight: qkv [T, (H + 2 nKv) D]. */
  qkv: Bf16MatmulKernel;
  o: Bf16MatmulKernel;
  /** RoPE of the q and k heads, in place in the qkv rows. */
  rope: RopeKernel;
  kvStore: KvStoreKernel;
  attnSliding: AttentionKernel;
  attnFull: AttentionKernel;
  router: Bf16MatmulKernel;
  topk: TopkSoftmaxKernel;
  /**
   * The grouped MoE of a batch: the slots sorted by expert into tiles (route), each tile's expert
   * rows applied to all its slots (gateUp, down; dispatched indirectly with the route kernel's
   * args at offsets 0 and 16), then the k slot outputs summed into x in a fixed order (combine).
   */
  moe: { route: MoeRouteKernel; gateUp: MoeGroupedGateUpKernel; down: MoeGroupedDownKernel; combine: MoeCombineKernel };
  /** The experts' down projection and weighted sum into x, one (token, expert) slot at a time (decode). */
  down: MoeDownKernel;
  embed: EmbedKernel[];
  /**
   * lm_head, one kernel per row chunk of the vocabulary (every position's logits: sessions with
   * allLogits only). Compiled on first call, as is `sample`.
   */
  lmHead: () => Bf16MatmulKernel[];
  /** The full-vocabulary draw (top-k > 1 or top-p < 1); the other draws take lm_head's candidates. */
  sample: () => SampleKernel;
  decode: {
    qkv: MatvecKernel;
    attnSliding: DecodeAttentionKernel;
    attnFull: DecodeAttentionKernel;
    o: MatvecKernel;
    router: RouterDecodeKernel;
    gateUp: MoeGateUpKernel;
    /** Final RMSNorm + lm_head over every chunk, writing sampling candidates. */
    lmHead: MatvecKernel;
    sampleCandidates: SampleCandidatesKernel;
  };
}

export class GpuModel {
  private disposed = false;

  private constructor(
    readonly gpu: GpuContext,
    readonly config: GptOssConfig,
    readonly plan: MemoryPlan,
    private readonly weights: Map<string, UploadedTensor>,
    readonly pipelines: PipelineCache,
    readonly kernels: ModelKernels,
  ) {}

  static async load(ck: Checkpoint, gpu: GpuContext, options: ModelOptions = {}): Promise<GpuModel> {
    const c = ck.config;
    const kvFormat = options.kvFormat ?? 'q8';
    if (options.weights !== undefined && options.weights !== 'bf16' && options.weights !== 'q8') {
      throw new RangeError(`weights must be 'bf16' or 'q8', got ${JSON.stringify(options.weights)}`);
    }
    if (kvFormat !== 'q8' && kvFormat !== 'f32') throw new RangeError(`kvFormat must be 'q8' or 'f32', got ${JSON.stringify(kvFormat)}`);
    if (kvFormat === 'q8' && c.headDim % 4 !== 0) throw new RangeError(`the q8 KV cache needs head_dim to be a multiple of 4, got ${c.headDim}: use kvFormat 'f32'`);
    const plan = planMemoryAuto(
      c,
      { maxBufferSize: gpu.device.limits.maxBufferSize, maxStorageBufferBindingSize: gpu.device.limits.maxStorageBufferBindingSize, memoryLimit: options.memoryLimit },
      {
        contextLimit: options.contextLimit ?? Math.min(4096, c.maxPositions),
        maxBatch: options.maxBatch,
        kvFormat,
        allLogits: options.allLogits ?? false,
        weights: options.weights ?? 'bf16',
        kvReuse: options.kvReuse ?? false,
        sessions: options.sessions ?? 1,
      },
    );
    options.onCompileProgress?.(0, 1);
    const pipelines = PipelineCache.for(gpu.device);
    // Subgroup reductions on GPUs that grant them; CPU adapters keep the barrier-free variants.
    const subgroups = gpu.subgroups && !gpu.fallback;
    const kernels = buildKernels(pipelines, c, plan, gpu.fallback ? 'simple' : 'tiled', gpu.device.limits.maxComputeWorkgroupStorageSize, subgroups);
    // A kernel the device refuses (WGSL or pipeline validation) fails the load, naming the kernel.
    await pipelines.verify();
    options.onCompileProgress?.(1, 1);
    const weights = await uploadWeights(gpu.device, ck, plan.weights, { onProgress: options.onProgress, signal: options.signal, verify: options.verify });
    const model = new GpuModel(gpu, c, plan, weights, pipelines, kernels);
    // The plan is what the memory check and `gptoss plan` report: it must be what was allocated
    // (createBuffer rounds each size up to 4 bytes).
    const slack = model.weightBufferBytes - plan.weightBytes;
    if (slack < 0 || slack > 3 * [...weights.values()].reduce((a, t) => a + t.buffers.length, 0)) {
      model.dispose();
      throw new Error(`internal: weight buffers take ${model.weightBufferBytes} bytes, the memory plan says ${plan.weightBytes}`);
    }
    return model;
  }

  /** Bytes of the GPU buffers holding the weights (the plan's weightBytes plus 4-byte rounding). */
  get weightBufferBytes(): number {
    let n = 0;
    for (const t of this.weights.values()) for (const b of t.buffers) n += b.size;
    return n;
  }

  get contextLimit(): number {
    return this.plan.options.contextLimit;
  }

  get maxBatch(): number {
    return this.plan.options.maxBatch;
  }

  get weightFormat(): WeightFormat {
    return this.plan.options.weights ?? 'bf16';
  }

  get kvFormat(): KvFormat {
    return this.plan.options.kvFormat;
  }

  /** The buffer(s) of a weight. */
  weight(param: GpuParam, layer?: number): GPUBuffer[] {
    if (this.disposed) throw new Error('the model has been disposed');
    const t = this.weights.get(key(param, layer));
    if (!t) throw new Error(`no weight ${key(param, layer)}`);
    return t.buffers;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.weights.values()) for (const b of t.buffers) b.destroy();
    this.weights.clear();
  }
}

function buildKernels(cache: PipelineCache, c: GptOssConfig, plan: MemoryPlan, variant: 'tiled' | 'simple', wgMemory: number, subgroups: boolean): ModelKernels {
  const H = c.hiddenSize, D = c.headDim, nq = c.numHeads, nkv = c.numKvHeads;
  const qkvRows = (nq + 2 * nkv) * D;
  const fmt = plan.options.kvFormat;
  const chunks = (param: 'embed' | 'lm_head') => plan.weights.find((w) => w.param === param)!.chunks!;
  const stage = (k: number) => matvecStageBytes(k) <= wgMemory;
  // Subgroup reductions apply to the tiled decode kernels only.
  const sg = subgroups && variant === 'tiled';
  /** CPU adapters: the barrier-free forms of the kernels that have one. */
  const simple = variant === 'simple';
  const mv = { variant, accumulate: false, bias: false, subgroups: sg } as const;
  // 'q8': qkv_w, o_w and lm_head are stored 8-bit (memory-plan.ts Q8_PARAMS); the router stays bf16.
  const wf = plan.options.weights === 'q8' ? 'q8' : 'bf16';
  const lmChunks = chunks('lm_head').map((ch) => ch.rows);
  const attn = (window: number) => ({ heads: nq, kvHeads: nkv, headDim: D, window, fmt });
  const prefillAttn = (window: number) => new AttentionKernel(cache, { ...attn(window), qStride: qkvRows, variant });
  // lm_head: 32 rows per workgroup, so x (read whole by every workgroup) adds 6% to the weight
  // bytes rather than 25%; still ~6,300 workgroups.
  const LM_ROWS = 32;
  const lmHead = new MatvecKernel(cache, {
    ...mv, inDim: H, chunkRows: lmChunks, normEps: c.rmsNormEps, candidates: true, stageX: matvecStageBytes(H, LM_ROWS) <= wgMemory,
    weights: wf, rowsPerGroup: LM_ROWS,
  });
  return {
    rmsnorm: new RmsNormKernel(cache, { hidden: H, eps: c.rmsNormEps, variant: simple ? 'simple' : 'workgroup' }),
    qkv: new Bf16MatmulKernel(cache, { inDim: H, outDim: qkvRows, bias: true, accumulate: false, variant, weights: wf }),
    o: new Bf16MatmulKernel(cache, { inDim: nq * D, outDim: H, bias: true, accumulate: true, variant, weights: wf }),
    rope: new RopeKernel(cache, { heads: nq + nkv, headDim: D, stride: qkvRows }),
    kvStore: new KvStoreKernel(cache, { kvHeads: nkv, headDim: D, fmt, stride: qkvRows, kOffset: nq * D, vOffset: (nq + nkv) * D }),
    attnSliding: prefillAttn(c.slidingWindow),
    attnFull: prefillAttn(0),
    router: new Bf16MatmulKernel(cache, { inDim: H, outDim: c.numExperts, bias: true, accumulate: false, variant }),
    topk: new TopkSoftmaxKernel(cache, { experts: c.numExperts, k: c.expertsPerToken }),
    moe: groupedMoe(cache, c, variant === 'tiled' && moeGroupedStageBytes(MOE_TILE) <= wgMemory ? 'tiled' : 'simple'),
    down: new MoeDownKernel(cache, { hidden: H, intermediate: c.intermediateSize, k: c.expertsPerToken, subgroups: sg, simple }),
    embed: chunks('embed').map((ch) => new EmbedKernel(cache, { hidden: H, rows: ch.rows, rowStart: ch.rowStart })),
    lmHead: once(() => chunks('lm_head').map((ch) => new Bf16MatmulKernel(cache, { inDim: H, outDim: ch.rows, bias: false, accumulate: false, outStride: c.vocabSize, outOffset: ch.rowStart, variant }))),
    sample: once(() => new SampleKernel(cache, { vocab: c.vocabSize })),
    decode: {
      qkv: new MatvecKernel(cache, { ...mv, inDim: H, chunkRows: [qkvRows], bias: true, normEps: c.rmsNormEps, stageX: stage(H), weights: wf }),
      attnSliding: new DecodeAttentionKernel(cache, { ...attn(c.slidingWindow), simple }),
      attnFull: new DecodeAttentionKernel(cache, { ...attn(0), simple }),
      o: new MatvecKernel(cache, { ...mv, inDim: nq * D, chunkRows: [H], bias: true, accumulate: true, stageX: stage(nq * D), weights: wf }),
      router: new RouterDecodeKernel(cache, { hidden: H, experts: c.numExperts, k: c.expertsPerToken, normEps: c.rmsNormEps, subgroups: sg, simple }),
      gateUp: new MoeGateUpKernel(cache, {
        hidden: H, intermediate: c.intermediateSize, k: c.expertsPerToken, limit: c.swigluLimit, alpha: c.swigluAlpha, normEps: c.rmsNormEps, stageNorm: variant === 'tiled',
        subgroups: sg,
      }),
      lmHead,
      sampleCandidates: new SampleCandidatesKernel(cache, lmHead.candidateCount, simple),
    },
  };
}

/** `make()` on the first call, the same value after. */
function once<T>(make: () => T): () => T {
  let v: { value: T } | undefined;
  return () => (v ??= { value: make() }).value;
}

function groupedMoe(cache: PipelineCache, c: GptOssConfig, variant: 'tiled' | 'simple'): ModelKernels['moe'] {
  const p = { hidden: c.hiddenSize, intermediate: c.intermediateSize, k: c.expertsPerToken, tile: MOE_TILE, variant };
  const gateUp = new MoeGroupedGateUpKernel(cache, { ...p, limit: c.swigluLimit, alpha: c.swigluAlpha });
  const down = new MoeGroupedDownKernel(cache, p);
  return {
    route: new MoeRouteKernel(cache, { experts: c.numExperts, k: c.expertsPerToken, tile: MOE_TILE, ys: [gateUp.groupsY, down.groupsY] }),
    gateUp,
    down,
    combine: new MoeCombineKernel(cache, { hidden: c.hiddenSize, k: c.expertsPerToken }),
  };
}
