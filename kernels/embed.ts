/**
 * f32_bf16w_embed: for t < step.n_tokens with ROW_START <= id < ROW_START + ROWS
 * (id = tokens[TOKEN_OFFSET + t]): x[t, :] = f32(weight[id - ROW_START, :]).
 *
 * Bindings: 0 tokens: array<u32>; 1 weight: bf16 [ROWS, H] (this chunk) as array<u32>;
 * 2 x: array<f32> [T, H]; 3 step: Step uniform.
 * One workgroup of 256 threads per token (grid folded into (x, y) past 65535), each thread
 * copying whole u32 words (2 bf16): H must be even. Tokens outside the chunk are left alone,
 * so dispatching every chunk of a split embedding writes each row exactly once.
 */
import { BF16_FNS, STEP_STRUCT } from './common.ts';
import { bindBuffers, grid2d, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 256;

export interface EmbedParams {
  hidden: number;
  /** Rows held by this chunk's weight buffer. */
  rows: number;
  /** Vocabulary index of the chunk's first row (default 0). */
  rowStart?: number;
  /** First token id read from the tokens buffer, in u32 elements (default 0). */
  tokenOffset?: number;
}

export function embedSource(p: Required<EmbedParams>): string {
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const H: u32 = ${p.hidden}u;
const ROW_START: u32 = ${p.rowStart}u;
const ROWS: u32 = ${p.rows}u;
const TOKEN_OFFSET: u32 = ${p.tokenOffset}u;
@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> weight: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= step.n_tokens) { return; }
  let id = tokens[TOKEN_OFFSET + t];
  // Unsigned wrap makes ids below ROW_START huge, so one compare checks both ends.
  let row = id - ROW_START;
  if (row >= ROWS) { return; }
  let src = row * (H / 2u);
  let dst = t * H;
  for (var i = lid; i < H / 2u; i += ${WG}u) {
    let w = weight[src + i];
    x[dst + 2u * i] = bf16_lo(w);
    x[dst + 2u * i + 1u] = bf16_hi(w);
  }
}`;
}

export interface EmbedBuffers {
  tokens: GPUBuffer | GPUBufferBinding;
  weight: GPUBuffer | GPUBufferBinding;
  x: GPUBuffer | GPUBufferBinding;
  step: GPUBuffer | GPUBufferBinding;
}

export class EmbedKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  readonly p: Required<EmbedParams>;

  constructor(cache: PipelineCache, params: EmbedParams) {
    const p = { ...params, rowStart: params.rowStart ?? 0, tokenOffset: params.tokenOffset ?? 0 };
    if (p.hidden % 2 !== 0) throw new Error(`f32_bf16w_embed: hidden ${p.hidden} must be even`);
    this.p = p;
    this.key = kernelKey('f32_bf16w_embed', { h: p.hidden, n: p.rows, r: p.rowStart || undefined, t: p.tokenOffset || undefined });
    this.pipeline = cache.get(this.key, () => embedSource(p));
  }

  bind(device: GPUDevice, b: EmbedBuffers): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [b.tokens, b.weight, b.x, b.step], this.key);
  }

  /** `tokens` must equal the bound Step's n_tokens (it sizes the grid: one workgroup per token). */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    if (tokens < 1) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    const [gx, gy] = grid2d(tokens);
    pass.dispatchWorkgroups(gx, gy, 1);
  }
}
