/**
 * A gpt-oss model resident on the GPU: the memory plan checked against the adapter, every
 * weight streamed into its buffer, and the kernels (pipelines) of this shape compiled once.
 * Sessions (engine/gpu-session.ts) hold the KV cache and activations and replay the kernels.
 */
import type { Checkpoint } from '../loader/checkpoint.ts';
import type { GptOssConfig } from '../loader/config.ts';
import type { GpuContext } from './gpu/device.ts';
import { planMemory, type KvFormat, type MemoryPlan } from './memory-plan.ts';
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
import { SampleKernel } from '../kernels/sample.ts';
import type { LayerParam, GlobalParam } from '../loader/weight-map.ts';

export interface ModelOptions {
  /** Longest sequence of the sessions this model will serve (default min(4096, max positions)). */
  contextLimit?: number;
  /** Prefill batch size (default 128). */
  maxBatch?: number;
  /** KV cache format (default 'q8'). */
  kvFormat?: KvFormat;
  /** GPU memory to plan against, when known (bytes). */
  memoryLimit?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** The kernels of one model shape; a session binds them to its buffers. */
export interface ModelKernels {
  rmsnorm: RmsNormKernel;
  q: Bf16MatmulKernel;
  k: Bf16MatmulKernel;
  v: Bf16MatmulKernel;
  o: Bf16MatmulKernel;
  ropeQ: RopeKernel;
  ropeK: RopeKernel;
  kvStore: KvStoreKernel;
  attnSliding: AttentionKernel;
  attnFull: AttentionKernel;
  router: Bf16MatmulKernel;
  topk: TopkSoftmaxKernel;
  gateUp: MoeGateUpKernel;
  down: MoeDownKernel;
  embed: EmbedKernel[];
  /** lm_head, one kernel per row chunk of the vocabulary. */
  lmHead: Bf16MatmulKernel[];
  sample: SampleKernel;
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
    if (kvFormat !== 'q8' && kvFormat !== 'f32') throw new RangeError(`kvFormat must be 'q8' or 'f32', got ${JSON.stringify(kvFormat)}`);
    if (kvFormat === 'q8' && c.headDim % 4 !== 0) throw new RangeError(`the q8 KV cache needs head_dim to be a multiple of 4, got ${c.headDim}: use kvFormat 'f32'`);
    const plan = planMemory(
      c,
      { maxBufferSize: gpu.device.limits.maxBufferSize, maxStorageBufferBindingSize: gpu.device.limits.maxStorageBufferBindingSize, memoryLimit: options.memoryLimit },
      {
        contextLimit: options.contextLimit ?? Math.min(4096, c.maxPositions),
        maxBatch: options.maxBatch ?? 128,
        kvFormat,
        logitRows: options.maxBatch ?? 128,
      },
    );
    const pipelines = PipelineCache.for(gpu.device);
    const kernels = buildKernels(pipelines, c, plan, gpu.fallback ? 'simple' : 'tiled');
    // A kernel the device refuses (WGSL or pipeline validation) fails the load, naming the kernel.
    await pipelines.verify();
    const weights = await uploadWeights(gpu.device, ck, plan.weights, { onProgress: options.onProgress, signal: options.signal });
    return new GpuModel(gpu, c, plan, weights, pipelines, kernels);
  }

  get contextLimit(): number {
    return this.plan.options.contextLimit;
  }

  get maxBatch(): number {
    return this.plan.options.maxBatch;
  }

  get kvFormat(): KvFormat {
    return this.plan.options.kvFormat;
  }

  /** The buffer(s) of a weight. */
  weight(param: GlobalParam | LayerParam, layer?: number): GPUBuffer[] {
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

function buildKernels(cache: PipelineCache, c: GptOssConfig, plan: MemoryPlan, variant: 'tiled' | 'simple'): ModelKernels {
  const H = c.hiddenSize, D = c.headDim, nq = c.numHeads, nkv = c.numKvHeads;
  const fmt = plan.options.kvFormat;
  const chunks = (param: 'embed' | 'lm_head') => plan.weights.find((w) => w.param === param)!.chunks!;
  return {
    rmsnorm: new RmsNormKernel(cache, { hidden: H, eps: c.rmsNormEps }),
    q: new Bf16MatmulKernel(cache, { inDim: H, outDim: nq * D, bias: true, accumulate: false, variant }),
    k: new Bf16MatmulKernel(cache, { inDim: H, outDim: nkv * D, bias: true, accumulate: false, variant }),
    v: new Bf16MatmulKernel(cache, { inDim: H, outDim: nkv * D, bias: true, accumulate: false, variant }),
    o: new Bf16MatmulKernel(cache, { inDim: nq * D, outDim: H, bias: true, accumulate: true, variant }),
    ropeQ: new RopeKernel(cache, { heads: nq, headDim: D }),
    ropeK: new RopeKernel(cache, { heads: nkv, headDim: D }),
    kvStore: new KvStoreKernel(cache, { kvHeads: nkv, headDim: D, fmt }),
    attnSliding: new AttentionKernel(cache, { heads: nq, kvHeads: nkv, headDim: D, window: c.slidingWindow, fmt }),
    attnFull: new AttentionKernel(cache, { heads: nq, kvHeads: nkv, headDim: D, window: 0, fmt }),
    router: new Bf16MatmulKernel(cache, { inDim: H, outDim: c.numExperts, bias: true, accumulate: false, variant }),
    topk: new TopkSoftmaxKernel(cache, { experts: c.numExperts, k: c.expertsPerToken }),
    gateUp: new MoeGateUpKernel(cache, { hidden: H, intermediate: c.intermediateSize, k: c.expertsPerToken, limit: c.swigluLimit, alpha: c.swigluAlpha }),
    down: new MoeDownKernel(cache, { hidden: H, intermediate: c.intermediateSize, k: c.expertsPerToken }),
    embed: chunks('embed').map((ch) => new EmbedKernel(cache, { hidden: H, rows: ch.rows, rowStart: ch.rowStart })),
    lmHead: chunks('lm_head').map((ch) => new Bf16MatmulKernel(cache, { inDim: H, outDim: ch.rows, bias: false, accumulate: false, outStride: c.vocabSize, outOffset: ch.rowStart, variant })),
    sample: new SampleKernel(cache, { vocab: c.vocabSize }),
  };
}
