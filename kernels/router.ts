/**
 * f32_topk{k}_softmax_e{E}: per token, the k largest router logits (largest first, ties to the
 * lower expert index) and a softmax over those k logits only.
 *
 * Bindings: 0 step: Step uniform (n_tokens); 1 logits: array<f32> [T, E];
 *           2 ids: array<u32> [T, k] (out); 3 weights: array<f32> [T, k] (out).
 * One thread per token, 64 tokens per workgroup; E and k are compile-time constants (k <= E).
 * Selection is k passes over the logits, each taking the best entry that ranks strictly after the
 * previous pick in (value desc, index asc) order, so no "taken" mask is needed.
 */
import { STEP_STRUCT } from './common.ts';
import { bindBuffers, type PipelineCache } from './pipeline-cache.ts';

const WG = 64;

export interface TopkSoftmaxParams {
  experts: number;
  k: number;
}

export function topkSoftmaxSource(p: TopkSoftmaxParams): string {
  return /* wgsl */ `
${STEP_STRUCT}
const E: u32 = ${p.experts}u;
const K: u32 = ${p.k}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= step.n_tokens) { return; }
  let base = t * E;
  var vals: array<f32, ${p.k}>;
  var prev_v = 0.0;
  var prev_i = 0u;
  for (var j = 0u; j < K; j++) {
    var best_i = E;
    var best_v = 0.0;
    for (var i = 0u; i < E; i++) {
      let v = logits[base + i];
      // ranks after the previous pick: smaller value, or equal value and higher index
      let after = j == 0u || v < prev_v || (v == prev_v && i > prev_i);
      // strictly greater keeps the lowest index among equal values
      if (after && (best_i == E || v > best_v)) { best_i = i; best_v = v; }
    }
    vals[j] = best_v;
    ids[t * K + j] = best_i;
    prev_v = best_v;
    prev_i = best_i;
  }
  let m = vals[0];
  var sum = 0.0;
  for (var j = 0u; j < K; j++) {
    vals[j] = exp(vals[j] - m);
    sum += vals[j];
  }
  for (var j = 0u; j < K; j++) { weights[t * K + j] = vals[j] / sum; }
}`;
}

export class TopkSoftmaxKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: TopkSoftmaxParams) {
    if (!(p.k >= 1 && p.k <= p.experts)) throw new Error(`topk: k=${p.k} must be in 1..E=${p.experts}`);
    this.key = `f32_topk${p.k}_softmax_e${p.experts}`;
    this.pipeline = cache.get(this.key, () => topkSoftmaxSource(p));
  }

  bind(device: GPUDevice, step: GPUBuffer, logits: GPUBuffer, ids: GPUBuffer, weights: GPUBuffer): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [step, logits, ids, weights], this.key);
  }

  /** Routes the first `tokens` tokens (the Step uniform's n_tokens decides which are written). */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(tokens / WG));
  }
}
