/**
 * f32_bf16w_matmul: out[t*S + O + o] (= or +=) sum_i W[o, i] * x[t*K + i] (+ b[o])
 *   for o < N, t < step.n_tokens.  W: bf16 [N, K] row-major, b: bf16 [N], x/out: f32.
 *
 * Bindings: 0 x: array<f32> [T, K] (array<vec4<f32>> in the simple variant when K % 8 == 0);
 * 1 weight: bf16 [N, K] as array<u32> (array<vec4<u32>> when K % 8 == 0); 2 out: array<f32>;
 * 3 step: Step uniform; 4 bias: bf16 [N] as array<u32> (only in the `_bias` variant).
 *
 * One shader, two paths picked by step.n_tokens (a uniform, so the branch is workgroup-uniform
 * and one bind group serves every batch size; `auto` layouts differ per pipeline, so two
 * pipelines could not share it):
 *  - n_tokens == 1 (one token, memory-bound): 'tiled': 8 rows per workgroup, 32 threads per row
 *    striding over K, reduced in workgroup memory; 'simple': SIMPLE_ROWS rows per invocation.
 *  - n_tokens > 1 (prefill): the register-blocked GEMMs of matmul-bf16-prefill.ts.
 * The row-group index is folded into (x, y) so the lm_head (201088 rows) stays under 65535
 * workgroups per dimension; the prefill token tile is workgroup_id.z.
 * Assumes K even (a row starts on a u32 boundary). N and T may be anything.
 *
 * f32_q8w_matmul (`weights: 'q8'`): the same with W stored 8-bit (engine/quant-q8.ts: int8
 * [N, K] then f32 scales [N, K / 32] in the one weight binding, read as array<vec4<u32>>);
 * K % 32 == 0. Each value is its int8 times its block's scale, as f32_q8w_matvec reads it.
 */
import { BF16_FNS, STEP_STRUCT } from './common.ts';
import { bindBuffers, grid2d, kernelKey, type PipelineCache } from './pipeline-cache.ts';
import {
  gemmSimple, gemmTiled, GEMM_ROWS, GEMM_TOKENS, Q8_FNS, SIMPLE_CONSTS, SIMPLE_ROWS, SIMPLE_TOKENS, SIMPLE_WG,
} from './matmul-bf16-prefill.ts';

const WG = 256;
/** One-token path of the tiled variant: rows per workgroup and threads per row (ROWS * LANES == WG). */
const ROWS = 8;
const LANES = WG / ROWS;

export interface Bf16MatmulParams {
  inDim: number;
  outDim: number;
  bias: boolean;
  /** out += result (e.g. adding a projection into the residual stream). */
  accumulate: boolean;
  /** Distance between tokens in `out`, in f32 elements (default outDim). */
  outStride?: number;
  /** Where row 0 of this matrix lands in each token's output (default 0). */
  outOffset?: number;
  /**
   * 'simple': no workgroup memory or barriers, for CPU (fallback) adapters such as
   * SwiftShader, where a barrier costs far more than the arithmetic; GPUs use 'tiled'.
   */
  variant?: 'tiled' | 'simple';
  /** 'q8': 8-bit weights with a scale per 32 values (f32_q8w_matmul); default 'bf16'. */
  weights?: 'bf16' | 'q8';
}

/** Module-level declarations both variants share: constants, bindings and `store`. */
function header(p: Required<Bf16MatmulParams>, xType: string, wType: string): string {
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const K: u32 = ${p.inDim}u;
const N: u32 = ${p.outDim}u;
const OUT_STRIDE: u32 = ${p.outStride}u;
const OUT_OFFSET: u32 = ${p.outOffset}u;
@group(0) @binding(0) var<storage, read> x: array<${xType}>;
@group(0) @binding(1) var<storage, read> weight: array<${wType}>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
${p.bias ? '@group(0) @binding(4) var<storage, read> bias: array<u32>;' : ''}
${p.weights === 'q8' ? Q8_FNS : ''}

fn store(t: u32, o: u32, v: f32) {
  let idx = t * OUT_STRIDE + OUT_OFFSET + o;
  var r = v;
  ${p.bias ? 'r += bf16_at(bias[o / 2u], (o & 1u) == 1u);' : ''}
  ${p.accumulate ? 'out[idx] += r;' : 'out[idx] = r;'}
}`;
}

export function matmulSource(p: Required<Bf16MatmulParams>): string {
  if (p.variant === 'simple') return simpleMatmulSource(p);
  const K = p.inDim;
  const vec8 = K % 8 === 0;
  const q8 = p.weights === 'q8';
  return /* wgsl */ `${header(p, 'f32', vec8 ? 'vec4<u32>' : 'u32')}

var<workgroup> red: array<f32, ${WG}>;

fn matvec(group: u32, lid: u32) {
  let lane = lid % ${LANES}u;
  let o = group * ${ROWS}u + lid / ${LANES}u;
  var acc = 0.0;
  if (o < N) {
${q8 ? `    for (var u = lane; u < K16; u += ${LANES}u) {
      let w = weight[o * K16 + u];
      let xi = u * 16u;
      var d = 0.0;
      for (var j = 0u; j < 4u; j++) {
        let i = xi + 4u * j;
        d += dot(i8x4(w[j]), vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]));
      }
      acc += q8_scale(o, xi) * d;
    }` : vec8 ? `    let base = o * (K / 8u);
    for (var u = lane; u < K / 8u; u += ${LANES}u) {
      let w = weight[base + u];
      let xi = u * 8u;
      acc += bf16_lo(w.x) * x[xi] + bf16_hi(w.x) * x[xi + 1u]
           + bf16_lo(w.y) * x[xi + 2u] + bf16_hi(w.y) * x[xi + 3u]
           + bf16_lo(w.z) * x[xi + 4u] + bf16_hi(w.z) * x[xi + 5u]
           + bf16_lo(w.w) * x[xi + 6u] + bf16_hi(w.w) * x[xi + 7u];
    }` : `    let base = o * (K / 2u);
    for (var u = lane; u < K / 2u; u += ${LANES}u) {
      let w = weight[base + u];
      acc += bf16_lo(w) * x[u * 2u] + bf16_hi(w) * x[u * 2u + 1u];
    }`}
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var s = ${LANES / 2}u; s > 0u; s >>= 1u) {
    if (lane < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && o < N) { store(0u, o, red[lid]); }
}
${gemmTiled(K, q8)}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let group = wg.x + wg.y * nwg.x;
  if (step.n_tokens == 1u) {
    if (group * ${ROWS}u >= N) { return; }
    matvec(group, lid);
  } else {
    if (group * ${GEMM_ROWS}u >= N) { return; }
    gemm_tiled(group, wg.z, lid);
  }
}`;
}

/** The 'simple' variant: invocation = a block of SIMPLE_ROWS rows; workgroup_id.z = token block. */
function simpleMatmulSource(p: Required<Bf16MatmulParams>): string {
  const K = p.inDim;
  const vec8 = K % 8 === 0;
  return /* wgsl */ `${header(p, vec8 ? 'vec4<f32>' : 'f32', vec8 ? 'vec4<u32>' : 'u32')}
${SIMPLE_CONSTS}
${gemmSimple(K, SIMPLE_ROWS, 1, 'gemm_one', p.weights === 'q8')}
${gemmSimple(K, SIMPLE_ROWS, SIMPLE_TOKENS, 'gemm_simple', p.weights === 'q8')}

@compute @workgroup_size(${SIMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row0 = (gid.x + gid.y * nwg.x * ${SIMPLE_WG}u) * ${SIMPLE_ROWS}u;
  if (row0 >= N) { return; }
  if (step.n_tokens == 1u) {
    gemm_one(row0, 0u);
  } else {
    // Every token block in turn: the R weight rows stay in cache while x streams past.
    for (var t0 = 0u; t0 < step.n_tokens; t0 += ${SIMPLE_TOKENS}u) { gemm_simple(row0, t0); }
  }
}`;
}

export interface MatmulBuffers {
  x: GPUBuffer | GPUBufferBinding;
  weight: GPUBuffer | GPUBufferBinding;
  bias?: GPUBuffer | GPUBufferBinding;
  out: GPUBuffer | GPUBufferBinding;
  step: GPUBuffer | GPUBufferBinding;
}

export class Bf16MatmulKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  readonly p: Required<Bf16MatmulParams>;

  constructor(cache: PipelineCache, params: Bf16MatmulParams) {
    const p: Required<Bf16MatmulParams> = {
      ...params, outStride: params.outStride ?? params.outDim, outOffset: params.outOffset ?? 0, variant: params.variant ?? 'tiled', weights: params.weights ?? 'bf16',
    };
    if (p.inDim % 2 !== 0) throw new Error(`f32_bf16w_matmul: inDim ${p.inDim} must be even`);
    if (p.weights === 'q8' && p.inDim % 32 !== 0) throw new Error(`f32_q8w_matmul: inDim ${p.inDim} must be a multiple of 32`);
    if (p.outOffset + p.outDim > p.outStride) {
      throw new Error(`f32_bf16w_matmul: rows ${p.outOffset}..${p.outOffset + p.outDim} do not fit in outStride ${p.outStride}`);
    }
    this.p = p;
    const strided = p.outStride !== p.outDim || p.outOffset !== 0;
    this.key = kernelKey(p.weights === 'q8' ? 'f32_q8w_matmul' : 'f32_bf16w_matmul', {
      k: p.inDim, n: p.outDim, bias: p.bias, acc: p.accumulate, s: strided ? p.outStride : undefined, o: strided ? p.outOffset : undefined, simple: p.variant === 'simple',
    });
    this.pipeline = cache.get(this.key, () => matmulSource(p));
  }

  bind(device: GPUDevice, b: MatmulBuffers): GPUBindGroup {
    if (this.p.bias !== (b.bias !== undefined)) throw new Error(`${this.key}: bias buffer ${this.p.bias ? 'missing' : 'not expected'}`);
    return bindBuffers(device, this.pipeline, [b.x, b.weight, b.out, b.step, ...(b.bias ? [b.bias] : [])], this.key);
  }

  /** `tokens` must equal the bound Step's n_tokens: it sizes the grid, the shader picks its path from the Step. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    if (tokens < 1) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    if (this.p.variant === 'simple') {
      const [gx, gy] = grid2d(Math.ceil(this.p.outDim / (SIMPLE_ROWS * SIMPLE_WG)));
      pass.dispatchWorkgroups(gx, gy, 1);
    } else if (tokens === 1) {
      const [gx, gy] = grid2d(Math.ceil(this.p.outDim / ROWS));
      pass.dispatchWorkgroups(gx, gy, 1);
    } else {
      const [gx, gy] = grid2d(Math.ceil(this.p.outDim / GEMM_ROWS));
      pass.dispatchWorkgroups(gx, gy, Math.ceil(tokens / GEMM_TOKENS));
    }
  }
}

/**
 * Splits a [rows, rowBytes] tensor into row ranges of at most `maxBindingBytes` each (as equal as
 * possible), so tensors over maxStorageBufferBindingSize (embedding, lm_head) live in one buffer
 * per chunk.
 */
export function planRowChunks(rows: number, rowBytes: number, maxBindingBytes: number): { rowStart: number; rows: number }[] {
  const maxRows = Math.floor(maxBindingBytes / rowBytes);
  if (maxRows < 1) throw new Error(`planRowChunks: a ${rowBytes}-byte row exceeds the ${maxBindingBytes}-byte binding limit`);
  const n = Math.ceil(rows / maxRows);
  const per = Math.ceil(rows / n);
  const chunks: { rowStart: number; rows: number }[] = [];
  for (let s = 0; s < rows; s += per) chunks.push({ rowStart: s, rows: Math.min(per, rows - s) });
  return chunks;
}
