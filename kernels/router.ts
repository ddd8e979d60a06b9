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
import { requireSubgroups, STEP_STRUCT, SUBGROUP_ARGS, subgroupFns } from './common.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 64;

export interface TopkSoftmaxParams {
  experts: number;
  k: number;
}

/**
 * WGSL statements: the top k of E logits (`logit` reads logit i) in k passes, each taking the
 * best entry that ranks strictly after the previous pick in (value desc, index asc) order, and
 * the softmax over those k; expert j's id and weight go to ids[at] and weights[at] (`at` in j).
 * Shared by the batched top-k and the decode router.
 */
function topkSoftmaxWgsl(k: number, logit: string, at: string): string {
  return /* wgsl */ `  var vals: array<f32, ${k}>;
  var prev_v = 0.0;
  var prev_i = 0u;
  for (var j = 0u; j < K; j++) {
    var best_i = E;
    var best_v = 0.0;
    for (var i = 0u; i < E; i++) {
      let v = ${logit};
      // ranks after the previous pick: smaller value, or equal value and higher index
      let after = j == 0u || v < prev_v || (v == prev_v && i > prev_i);
      // strictly greater keeps the lowest index among equal values
      if (after && (best_i == E || v > best_v)) { best_i = i; best_v = v; }
    }
    vals[j] = best_v;
    ids[${at}] = best_i;
    prev_v = best_v;
    prev_i = best_i;
  }
  let m = vals[0];
  var sum = 0.0;
  for (var j = 0u; j < K; j++) {
    vals[j] = exp(vals[j] - m);
    sum += vals[j];
  }
  for (var j = 0u; j < K; j++) { weights[${at}] = vals[j] / sum; }`;
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
${topkSoftmaxWgsl(p.k, 'logits[base + i]', 't * K + j')}
}`;
}

export class TopkSoftmaxKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: TopkSoftmaxParams) {
    if (!(p.k >= 1 && p.k <= p.experts)) throw new Error(`topk: k=${p.k} must be in 1..E=${p.experts}`);
    this.key = kernelKey('f32_topk_softmax', { e: p.experts, k: p.k });
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

/**
 * f32_bf16w_router_topk: the whole decode-time router in one workgroup, for one token:
 *   h = RMSNorm(x) * gain;  logits = W h + b;  ids, weights = the top-k of logits and their softmax
 * (the same selection and softmax as f32_topk_softmax above).
 *
 * Bindings: 0 x: array<vec4<f32>> [H/4]; 1 gain: bf16 [H] as array<u32>; 2 w: bf16 [E, H] as
 * array<vec4<u32>>; 3 bias: bf16 [E] as array<u32>; 4 ids: array<u32> [k] (out);
 * 5 weights: array<f32> [k] (out). One workgroup of 256 threads; H % 8 == 0. The norm's sum and
 * the rows' lanes meet through workgroup memory (trees), or with `subgroups` through subgroup
 * operations (common.ts subgroupFns); with `simple` (CPU adapters) one invocation does it all.
 */
export interface RouterDecodeParams {
  hidden: number;
  experts: number;
  k: number;
  normEps: number;
  /**
   * Reduce the norm's sum of squares and each row's lanes with subgroup operations (common.ts
   * subgroupFns) instead of trees in workgroup memory. The device must have been granted
   * `subgroups`; the engine sets it on GPUs that offer them.
   */
  subgroups?: boolean;
  /**
   * CPU (fallback) adapters: one invocation does it all (norm, the E rows, the top k) with no
   * workgroup memory and no barriers, which SwiftShader runs as coroutines.
   */
  simple?: boolean;
}

const RWG = 256;

/** Both decode routers' constants, bindings and bf16 readers. */
function routerCommon(p: RouterDecodeParams): string {
  return /* wgsl */ `
const H4: u32 = ${p.hidden / 4}u;
const H8: u32 = ${p.hidden / 8}u;
const E: u32 = ${p.experts}u;
const K: u32 = ${p.k}u;
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gain: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> weights: array<f32>;
fn lo(v: u32) -> f32 { return bitcast<f32>(v << 16u); }
fn hi(v: u32) -> f32 { return bitcast<f32>(v & 0xffff0000u); }
fn bf16x4(a: u32, b: u32) -> vec4<f32> { return vec4<f32>(lo(a), hi(a), lo(b), hi(b)); }`;
}

/** The decode router of CPU adapters: a workgroup of one invocation (see RouterDecodeParams.simple). */
function routerDecodeSimpleSource(p: RouterDecodeParams): string {
  return /* wgsl */ `
${routerCommon(p)}
// x * gain, vec4 i
fn xs(i: u32) -> vec4<f32> { return x[i] * bf16x4(gain[2u * i], gain[2u * i + 1u]); }

@compute @workgroup_size(1)
fn main() {
  var ss = 0.0;
  for (var i = 0u; i < H4; i++) { let v = x[i]; ss += dot(v, v); }
  let scale = inverseSqrt(ss / f32(H4 * 4u) + ${f32Literal(p.normEps)});
  var lg: array<f32, ${p.experts}>;
  for (var row = 0u; row < E; row++) {
    var acc = 0.0;
    for (var u = 0u; u < H8; u++) {
      let q = w[row * H8 + u];
      acc += dot(bf16x4(q.x, q.y), xs(2u * u)) + dot(bf16x4(q.z, q.w), xs(2u * u + 1u));
    }
    let bw = bias[row / 2u];
    lg[row] = acc * scale + select(lo(bw), hi(bw), (row & 1u) == 1u);
  }
${topkSoftmaxWgsl(p.k, 'lg[i]', 'j')}
}`;
}

export function routerDecodeSource(p: RouterDecodeParams): string {
  let lanes = 1;
  while (lanes * 2 * p.experts <= RWG && lanes < 64) lanes *= 2;
  const rowsPerRound = RWG / lanes;
  const sg = !!p.subgroups;
  return /* wgsl */ `${sg ? 'enable subgroups;' : ''}
${routerCommon(p)}
const LANES: u32 = ${lanes}u;
var<workgroup> xs: array<vec4<f32>, ${p.hidden / 4}>;
${sg ? subgroupFns(RWG) : `var<workgroup> red: array<f32, ${RWG}>;`}
var<workgroup> lg: array<f32, ${p.experts}>;


@compute @workgroup_size(${RWG})
fn main(@builtin(local_invocation_index) lid: u32${sg ? `, ${SUBGROUP_ARGS}` : ''}) {
${sg ? '  let taken = sg_take();\n' : ''}  var ss = 0.0;
  for (var i = lid; i < H4; i += ${RWG}u) {
    let v = x[i];
    ${sg ? '' : 'ss += dot(v, v);'}
    xs[i] = v * bf16x4(gain[2u * i], gain[2u * i + 1u]);
  }
${sg ? `  workgroupBarrier();
  // Threads numbered by subgroup slot; the sum of squares by that number (a fixed order).
  let id = sg_index(taken, sl, sz);
  for (var i = id; i < H4; i += ${RWG}u) { let v = x[i]; ss += dot(v, v); }
  let scale = inverseSqrt(sg_run_sum(ss, id, sz, ${RWG}u) / f32(H4 * 4u) + ${f32Literal(p.normEps)});` : `  red[lid] = ss;
  workgroupBarrier();
  for (var s = ${RWG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let scale = inverseSqrt(red[0] / f32(H4 * 4u) + ${f32Literal(p.normEps)});
  workgroupBarrier();
  let id = lid;`}
  let lane = id % LANES;
  for (var r0 = 0u; r0 < E; r0 += ${rowsPerRound}u) {
    let row = r0 + id / LANES;
    var acc = 0.0;
    if (row < E) {
      for (var u = lane; u < H8; u += LANES) {
        let q = w[row * H8 + u];
        acc += dot(bf16x4(q.x, q.y), xs[2u * u]) + dot(bf16x4(q.z, q.w), xs[2u * u + 1u]);
      }
    }
${sg ? '    let rs = sg_run_sum(acc, id, sz, LANES);' : `    red[lid] = acc;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
      if (lane < s) { red[lid] += red[lid + s]; }
      workgroupBarrier();
    }
    let rs = red[lid];`}
    if (lane == 0u && row < E) {
      let bw = bias[row / 2u];
      lg[row] = rs * scale + select(lo(bw), hi(bw), (row & 1u) == 1u);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
${topkSoftmaxWgsl(p.k, 'lg[i]', 'j')}
  }
}`;
}

export class RouterDecodeKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: RouterDecodeParams) {
    if (!(p.k >= 1 && p.k <= p.experts)) throw new Error(`router: k=${p.k} must be in 1..E=${p.experts}`);
    if (p.hidden % 8 !== 0) throw new Error(`router: hidden ${p.hidden} must be a multiple of 8`);
    if (p.subgroups && p.simple) throw new Error('router: subgroups apply to the workgroup variant only');
    if (p.subgroups) requireSubgroups(cache.device, 'f32_bf16w_router_topk');
    this.key = kernelKey('f32_bf16w_router_topk', { h: p.hidden, e: p.experts, k: p.k, norm: p.normEps, sg: p.subgroups, simple: p.simple });
    this.pipeline = cache.get(this.key, () => (p.simple ? routerDecodeSimpleSource(p) : routerDecodeSource(p)));
  }

  bind(device: GPUDevice, b: { x: GPUBuffer; gain: GPUBuffer; weight: GPUBuffer; bias: GPUBuffer; ids: GPUBuffer; weights: GPUBuffer }): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [b.x, b.gain, b.weight, b.bias, b.ids, b.weights], this.key);
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(1);
  }
}
