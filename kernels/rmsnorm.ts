/**
 * f32_bf16w_rmsnorm: out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * weight[:]
 *
 * Bindings: 0 x: array<f32> [T, H]; 1 weight: array<u32> (bf16 [H]); 2 out: array<f32> [T, H].
 * - 'workgroup' (GPUs): one workgroup of 256 threads per token, the sum of squares reduced
 *   through workgroup memory.
 * - 'simple' (CPU adapters, where a barrier costs far more than the arithmetic): one
 *   invocation per token (a workgroup of one), no workgroup memory and no barriers.
 * H is a compile-time constant (any value). The weight is read as bf16 directly: no f32 copy of
 * it exists in GPU memory.
 */
import { BF16_FNS } from './common.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 256;

export interface RmsNormParams {
  hidden: number;
  eps: number;
  /** 'simple' for CPU (fallback) adapters; default 'workgroup'. */
  variant?: 'workgroup' | 'simple';
}

/** Both variants' constants and bindings. */
function header(p: RmsNormParams): string {
  return /* wgsl */ `
${BF16_FNS}
const H: u32 = ${p.hidden}u;
const EPS: f32 = ${f32Literal(p.eps)};
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;`;
}

export function rmsnormSource(p: RmsNormParams): string {
  if (p.variant === 'simple') return simpleSource(p);
  return /* wgsl */ `
${header(p)}
var<workgroup> partial: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x;
  let base = t * H;
  var ss = 0.0;
  for (var i = lid; i < H; i += ${WG}u) {
    let v = x[base + i];
    ss += v * v;
  }
  partial[lid] = ss;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(partial[0] / f32(H) + EPS);
  for (var i = lid; i < H; i += ${WG}u) {
    out[base + i] = (x[base + i] * inv) * bf16_at(weight[i / 2u], (i & 1u) == 1u);
  }
}`;
}

function simpleSource(p: RmsNormParams): string {
  return /* wgsl */ `
${header(p)}

@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wg: vec3<u32>) {
  let base = wg.x * H;
  var ss = 0.0;
  for (var i = 0u; i < H; i++) {
    let v = x[base + i];
    ss += v * v;
  }
  let inv = inverseSqrt(ss / f32(H) + EPS);
  for (var i = 0u; i < H; i++) {
    out[base + i] = (x[base + i] * inv) * bf16_at(weight[i / 2u], (i & 1u) == 1u);
  }
}`;
}

export class RmsNormKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: RmsNormParams) {
    this.key = kernelKey('f32_bf16w_rmsnorm', { h: p.hidden, eps: p.eps, simple: p.variant === 'simple' });
    this.pipeline = cache.get(this.key, () => rmsnormSource(p));
  }

  bind(device: GPUDevice, x: GPUBuffer, weight: GPUBuffer, out: GPUBuffer): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [x, weight, out], this.key);
  }

  /** Normalises the first `tokens` rows (at most 65535: one workgroup each). */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(tokens);
  }
}
