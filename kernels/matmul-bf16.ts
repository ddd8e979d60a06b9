/**
 * f32_bf16w_matmul: out[t*S + O + o] (= or +=) sum_i W[o, i] * x[t*K + i] (+ b[o])
 *   for o < N, t < step.n_tokens.  W: bf16 [N, K] row-major, b: bf16 [N], x/out: f32.
 *
 * Bindings: 0 x: array<f32> [T, K]; 1 weight: bf16 [N, K] as array<u32> (array<vec4<u32>> when
 * K % 8 == 0); 2 out: array<f32>; 3 step: Step uniform; 4 bias: bf16 [N] as array<u32> (only in
 * the `_bias` variant).
 *
 * One shader, two paths picked by step.n_tokens (a uniform, so the branch is workgroup-uniform
 * and one bind group serves every batch size; `auto` layouts differ per pipeline, so two
 * pipelines could not share it):
 *  - n_tokens == 1 (decode, memory-bound): 8 rows per workgroup, 32 threads per row striding
 *    over K (8 bf16 per vec4<u32> load, or 2 per u32), reduced in workgroup memory.
 *  - n_tokens > 1 (prefill): a 64-row x 16-token tile per workgroup; K is walked 32 at a time
 *    with the W and x tiles staged in workgroup memory so each weight load serves 16 tokens.
 * The row-group index is folded into (x, y) so the lm_head (201088 rows) stays under 65535
 * workgroups per dimension; the prefill token tile is workgroup_id.z.
 * Assumes K even (a row starts on a u32 boundary). N and T may be anything.
 */
import { BF16_FNS, STEP_STRUCT } from './common.ts';
import { bindBuffers, grid2d, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 256;
/** Decode path: rows per workgroup and threads per row (ROWS * LANES == WG). */
const ROWS = 8;
const LANES = WG / ROWS;
/** Prefill path: tile of TN rows x TT tokens, K staged KT at a time; each thread 1 row x 4 tokens. */
const TN = 64;
const TT = 16;
const KT = 32;

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
   * 'simple': one invocation per output row looping over K and 4 tokens at a time, with no
   * workgroup memory or barriers. For CPU (fallback) adapters such as SwiftShader, where a
   * barrier costs far more than the arithmetic; GPUs use the default 'tiled'.
   */
  variant?: 'tiled' | 'simple';
}

export function matmulSource(p: Required<Bf16MatmulParams>): string {
  if (p.variant === 'simple') return simpleMatmulSource(p);
  const K = p.inDim;
  const vec8 = K % 8 === 0;
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const K: u32 = ${K}u;
const N: u32 = ${p.outDim}u;
const OUT_STRIDE: u32 = ${p.outStride}u;
const OUT_OFFSET: u32 = ${p.outOffset}u;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<${vec8 ? 'vec4<u32>' : 'u32'}>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
${p.bias ? '@group(0) @binding(4) var<storage, read> bias: array<u32>;' : ''}

var<workgroup> red: array<f32, ${WG}>;
var<workgroup> ws: array<f32, ${TN * (KT + 1)}>; // +1 column: threads read by row without bank conflicts
var<workgroup> xs: array<vec4<f32>, ${(TT / 4) * KT}>; // [token / 4, k] with 4 tokens per vec4


fn store(t: u32, o: u32, v: f32) {
  let idx = t * OUT_STRIDE + OUT_OFFSET + o;
  var r = v;
  ${p.bias ? 'r += bf16_at(bias[o / 2u], (o & 1u) == 1u);' : ''}
  ${p.accumulate ? 'out[idx] += r;' : 'out[idx] = r;'}
}

fn matvec(group: u32, lid: u32) {
  let lane = lid % ${LANES}u;
  let o = group * ${ROWS}u + lid / ${LANES}u;
  var acc = 0.0;
  if (o < N) {
${vec8 ? `    let base = o * (K / 8u);
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

fn tiled(tile: u32, tok_tile: u32, lid: u32) {
  let row0 = tile * ${TN}u;
  let tok0 = tok_tile * ${TT}u;
  let nt = step.n_tokens;
  let r = lid % ${TN}u;
  let tg = lid / ${TN}u; // this thread's tokens: tg*4 .. tg*4+3 within the tile
  var acc = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += ${KT}u) {
${vec8 ? `    // W tile: ${TN} rows x ${KT} values, one vec4<u32> (8 bf16) per thread.
    {
      let rr = lid / ${KT / 8}u;
      let kk = (lid % ${KT / 8}u) * 8u;
      var w = vec4<u32>(0u);
      if (row0 + rr < N && k0 + kk < K) { w = weight[((row0 + rr) * K + k0 + kk) / 8u]; }
      let d = rr * ${KT + 1}u + kk;
      ws[d] = bf16_lo(w.x); ws[d + 1u] = bf16_hi(w.x); ws[d + 2u] = bf16_lo(w.y); ws[d + 3u] = bf16_hi(w.y);
      ws[d + 4u] = bf16_lo(w.z); ws[d + 5u] = bf16_hi(w.z); ws[d + 6u] = bf16_lo(w.w); ws[d + 7u] = bf16_hi(w.w);
    }
` : `    // W tile: ${TN} rows x ${KT / 2} words, ${(TN * KT) / 2 / WG} words per thread.
    for (var i = 0u; i < ${(TN * KT) / 2 / WG}u; i++) {
      let e = lid + i * ${WG}u;
      let rr = e / ${KT / 2}u;
      let kk = (e % ${KT / 2}u) * 2u;
      var w = 0u;
      if (row0 + rr < N && k0 + kk < K) { w = weight[((row0 + rr) * K + k0 + kk) / 2u]; }
      ws[rr * ${KT + 1}u + kk] = bf16_lo(w);
      ws[rr * ${KT + 1}u + kk + 1u] = bf16_hi(w);
    }
`}    // x tile: ${TT} tokens x ${KT} values.
    for (var i = 0u; i < ${(TT * KT) / WG}u; i++) {
      let e = lid + i * ${WG}u;
      let tt = e / ${KT}u;
      let kk = e % ${KT}u;
      var v = 0.0;
      if (tok0 + tt < nt && k0 + kk < K) { v = x[(tok0 + tt) * K + k0 + kk]; }
      xs[(tt / 4u) * ${KT}u + kk][tt % 4u] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${KT}u; kk++) {
      let w = ws[r * ${KT + 1}u + kk];
      acc += w * xs[tg * ${KT}u + kk];
    }
    workgroupBarrier();
  }
  let o = row0 + r;
  if (o < N) {
    for (var j = 0u; j < 4u; j++) {
      let t = tok0 + tg * 4u + j;
      if (t < nt) { store(t, o, acc[j]); }
    }
  }
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let group = wg.x + wg.y * nwg.x;
  if (step.n_tokens == 1u) {
    if (group * ${ROWS}u >= N) { return; }
    matvec(group, lid);
  } else {
    if (group * ${TN}u >= N) { return; }
    tiled(group, wg.z, lid);
  }
}`;
}

const SIMPLE_WG = 64;

/** The 'simple' variant: invocation o computes row o for every token, 4 tokens per pass over W. */
function simpleMatmulSource(p: Required<Bf16MatmulParams>): string {
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const K: u32 = ${p.inDim}u;
const N: u32 = ${p.outDim}u;
const OUT_STRIDE: u32 = ${p.outStride}u;
const OUT_OFFSET: u32 = ${p.outOffset}u;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> step: Step;
${p.bias ? '@group(0) @binding(4) var<storage, read> bias: array<u32>;' : ''}

@compute @workgroup_size(${SIMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * ${SIMPLE_WG}u;
  if (o >= N) { return; }
  let nt = step.n_tokens;
  let base = o * (K / 2u);
  ${p.bias ? 'let b = bf16_at(bias[o / 2u], (o & 1u) == 1u);' : 'let b = 0.0;'}
  if (nt == 1u) {
    // Decode: one token, a scalar dot product (the 4-token form would compute it 4 times).
    var a = 0.0;
    for (var u = 0u; u < K / 2u; u++) {
      let w = weight[base + u];
      a += bf16_lo(w) * x[2u * u] + bf16_hi(w) * x[2u * u + 1u];
    }
    ${p.accumulate ? 'out[OUT_OFFSET + o] += a + b;' : 'out[OUT_OFFSET + o] = a + b;'}
    return;
  }
  for (var t0 = 0u; t0 < nt; t0 += 4u) {
    let t1 = min(t0 + 1u, nt - 1u);
    let t2 = min(t0 + 2u, nt - 1u);
    let t3 = min(t0 + 3u, nt - 1u);
    var acc = vec4<f32>(0.0);
    for (var u = 0u; u < K / 2u; u++) {
      let w = weight[base + u];
      let w0 = bf16_lo(w);
      let w1 = bf16_hi(w);
      let i = 2u * u;
      acc += vec4<f32>(w0) * vec4<f32>(x[t0 * K + i], x[t1 * K + i], x[t2 * K + i], x[t3 * K + i])
           + vec4<f32>(w1) * vec4<f32>(x[t0 * K + i + 1u], x[t1 * K + i + 1u], x[t2 * K + i + 1u], x[t3 * K + i + 1u]);
    }
    for (var j = 0u; j < 4u; j++) {
      let t = t0 + j;
      if (t < nt) {
        let idx = t * OUT_STRIDE + OUT_OFFSET + o;
        ${p.accumulate ? 'out[idx] += acc[j] + b;' : 'out[idx] = acc[j] + b;'}
      }
    }
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
    const p: Required<Bf16MatmulParams> = { ...params, outStride: params.outStride ?? params.outDim, outOffset: params.outOffset ?? 0, variant: params.variant ?? 'tiled' };
    if (p.inDim % 2 !== 0) throw new Error(`f32_bf16w_matmul: inDim ${p.inDim} must be even`);
    if (p.outOffset + p.outDim > p.outStride) {
      throw new Error(`f32_bf16w_matmul: rows ${p.outOffset}..${p.outOffset + p.outDim} do not fit in outStride ${p.outStride}`);
    }
    this.p = p;
    const strided = p.outStride !== p.outDim || p.outOffset !== 0;
    this.key = kernelKey('f32_bf16w_matmul', {
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
      const [gx, gy] = grid2d(Math.ceil(this.p.outDim / SIMPLE_WG));
      pass.dispatchWorkgroups(gx, gy, 1);
    } else if (tokens === 1) {
      const [gx, gy] = grid2d(Math.ceil(this.p.outDim / ROWS));
      pass.dispatchWorkgroups(gx, gy, 1);
    } else {
      const [gx, gy] = grid2d(Math.ceil(this.p.outDim / TN));
      pass.dispatchWorkgroups(gx, gy, Math.ceil(tokens / TT));
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
