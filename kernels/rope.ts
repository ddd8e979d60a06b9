/**
 * f32_rope: rotates q or k in place with YaRN RoPE (SPEC §4), half-split pairs (i, i + D/2).
 *
 *   x1' = x1 cos[pos, i] - x2 sin[pos, i] ;  x2' = x2 cos[pos, i] + x1 sin[pos, i]
 *
 * for batch token t < step.n_tokens at position pos = step.pos0 + t.
 * Bindings: 0 step: uniform Step; 1 x: array<f32> [T, STRIDE], heads at the start of each row (read_write);
 *           2 table: array<f32> [cos [P, D/2] | sin [P, D/2]] (engine/reference/rope.ts ropeTableData).
 * The sin half starts at arrayLength(table) / 2, so the table binding must be exactly the
 * 2 * P * D/2 floats of one table. One thread per (t, head, i); 64 threads per workgroup.
 * The angles are never formed on the GPU: f32 sin/cos of pos * inv_freq loses precision at
 * long context, so the host builds the tables in f64 (concentration included).
 */
import { STEP_STRUCT } from './common.ts';
import { bindBuffers, grid2d, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 64;

export interface RopeParams {
  /** Heads rotated per token (e.g. the q and k heads at the start of a qkv row). */
  heads: number;
  headDim: number;
  /** Floats between consecutive tokens' rows (default heads * headDim). */
  stride?: number;
}

export function ropeSource(p: RopeParams): string {
  const half = p.headDim / 2;
  return /* wgsl */ `
${STEP_STRUCT}
const D: u32 = ${p.headDim}u;
const HALF: u32 = ${half}u;
const HEADS: u32 = ${p.heads}u;
const STRIDE: u32 = ${p.stride ?? p.heads * p.headDim}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wg.y * nwg.x + wg.x) * ${WG}u + lid;
  let i = idx % HALF;
  let th = idx / HALF;            // t * HEADS + head
  let t = th / HEADS;
  if (t >= step.n_tokens) { return; }
  let pos = step.pos0 + t;
  let c = table[pos * HALF + i];
  let s = table[arrayLength(&table) / 2u + pos * HALF + i];
  let o = t * STRIDE + (th % HEADS) * D + i;
  let x1 = x[o];
  let x2 = x[o + HALF];
  x[o] = x1 * c - x2 * s;
  x[o + HALF] = x2 * c + x1 * s;
}`;
}

export class RopeKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: RopeParams) {
    if (p.headDim % 2 !== 0) throw new Error(`rope: head dim ${p.headDim} must be even`);
    if (p.stride !== undefined && p.stride < p.heads * p.headDim) throw new Error(`rope: stride ${p.stride} < ${p.heads} heads x ${p.headDim}`);
    this.key = kernelKey('f32_rope', { h: p.heads, d: p.headDim, s: p.stride });
    this.pipeline = cache.get(this.key, () => ropeSource(p));
  }

  /** `x` is rotated in place; `table` is exactly one ropeTableData upload. */
  bind(device: GPUDevice, step: GPUBuffer | GPUBufferBinding, x: GPUBuffer, table: GPUBuffer): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [step, x, table], this.key);
  }

  /** Covers `tokens` rows; rows at or past step.n_tokens are left alone. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    const [x, y] = grid2d(Math.ceil((tokens * this.p.heads * this.p.headDim) / 2 / WG));
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}
