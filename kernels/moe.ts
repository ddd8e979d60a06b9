/**
 * The MoE experts over MXFP4 weights, decoded on the fly from the checkpoint's raw bytes (no
 * dequantised copy in GPU memory). Routing comes from the GPU buffers written by
 * TopkSoftmaxKernel (router.ts): ids u32 [T, k], weights f32 [T, k].
 *
 * Weight layout (SPEC §3), all uploaded as raw bytes and read as array<u32>:
 *   blocks u8 [E, rows, cols/32, 16]: byte j of block g holds input g*32 + 2j (low nibble) and
 *   g*32 + 2j + 1 (high nibble), so the 8 nibbles of a little-endian word are 8 consecutive
 *   inputs in order; scales u8 [E, rows, cols/32] (E8M0, 2^(s-127)); bias bf16 [E, rows].
 *
 * Work split shared by both kernels: a workgroup of 256 threads is ROWS rows x LANES lanes; the
 * lanes of a row stride over its 32-element blocks (each lane decodes whole blocks: 4 words,
 * one scale), then a tree reduction within the row's lanes in workgroup memory, or with
 * `subgroups` subgroup shuffles and adds (threads then numbered by subgroup slot, see common.ts
 * subgroupFns). LANES is the block count rounded up to a power of two, at most 32, so small
 * shapes do not leave most threads idle.
 */
import { BF16_FNS, requireSubgroups, STEP_STRUCT, SUBGROUP_ARGS, subgroupFns } from './common.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 256;

export interface MoeParams {
  hidden: number;
  intermediate: number;
  /** Experts per token. */
  k: number;
  /**
   * Reduce each row's lanes with subgroup operations (common.ts subgroupFns) instead of a tree
   * in workgroup memory (and, for the staged norm, its sum of squares). The device must have
   * been granted `subgroups`; the engine sets it on GPUs that offer them.
   */
  subgroups?: boolean;
}

export interface MoeGateUpParams extends MoeParams {
  /** SwiGLU clamp (7.0 for gpt-oss). */
  limit: number;
  /** SwiGLU sigmoid slope (1.702 for gpt-oss). */
  alpha: number;
  /** Fold in the RMSNorm with this epsilon: the input is the residual x, plus the norm's gain. */
  normEps?: number;
  /**
   * With normEps: stage the normalised x in workgroup memory (GPUs), or let every invocation
   * compute the norm itself and read x from memory (CPU adapters, where barriers are dear).
   */
  stageNorm?: boolean;
}

function lanesFor(blocks: number): number {
  let l = 1;
  while (l < blocks && l < 32) l *= 2;
  return l;
}

function checkShape(p: MoeParams): void {
  if (p.hidden % 32 || p.intermediate % 32 || p.hidden <= 0 || p.intermediate <= 0) {
    throw new Error(`moe: hidden ${p.hidden} and intermediate ${p.intermediate} must be positive multiples of 32`);
  }
  if (!(p.k >= 1)) throw new Error(`moe: k=${p.k} must be >= 1`);
}

/**
 * WGSL shared by both kernels: e2m1 decode, the dot of one 32-element block with 8 vec4s of
 * activations starting at `xv` (vec4 index), scaled by the block's E8M0 byte.
 */
function mxfp4Fns(xName: string, isFn = false): string {
  const X = (i: string) => (isFn ? `${xName}(${i})` : `${xName}[${i}]`);
  return /* wgsl */ `
// e2m1 nibble -> f32 bits, without a table (a dynamically indexed constant array can end up in
// slow per-thread memory: on an H100 this decode made the MoE kernels 3x faster): sign s,
// exponent e, mantissa m; e > 0 is (1 + m/2) 2^(e-1), e == 0 is m/2 (0.5 or +-0).
fn nib4(w: u32) -> vec4<f32> {
  let n = (vec4<u32>(w) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  let e = (n >> vec4<u32>(1u)) & vec4<u32>(3u);
  let m = n & vec4<u32>(1u);
  let s = (n & vec4<u32>(8u)) << vec4<u32>(28u);
  let normal = s | ((e + vec4<u32>(126u)) << vec4<u32>(23u)) | (m << vec4<u32>(22u));
  let sub = s | (m * vec4<u32>(0x3f000000u));
  return bitcast<vec4<f32>>(select(normal, sub, e == vec4<u32>(0u)));
}
fn scale_byte(idx: u32) -> u32 { return (scales[idx >> 2u] >> ((idx & 3u) * 8u)) & 255u; }
// block gi (global block index) dotted with ${xName}[xv .. xv + 8) (vec4s); ldexp keeps s == 0
// (2^-127, subnormal) and never overflows for a partial sum that stays finite.
fn block_dot(gi: u32, xv: u32) -> f32 {
  let w = blocks[gi];
  let acc = dot(nib4(w.x), ${X('xv')}) + dot(nib4(w.x >> 16u), ${X('xv + 1u')})
          + dot(nib4(w.y), ${X('xv + 2u')}) + dot(nib4(w.y >> 16u), ${X('xv + 3u')})
          + dot(nib4(w.z), ${X('xv + 4u')}) + dot(nib4(w.z >> 16u), ${X('xv + 5u')})
          + dot(nib4(w.w), ${X('xv + 6u')}) + dot(nib4(w.w >> 16u), ${X('xv + 7u')});
  return ldexp(acc, i32(scale_byte(gi)) - 127);
}
fn bias_at(idx: u32) -> f32 { return bf16_at(bias[idx >> 1u], (idx & 1u) == 1u); }`;
}

/** Tree reduction of `partial` within each row's LANES consecutive entries. */
function reduceRows(lanes: number): string {
  return /* wgsl */ `
  workgroupBarrier();
  for (var s = ${Math.floor(lanes / 2)}u; s > 0u; s >>= 1u) {
    if (lane < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }`;
}

/** Both gate_up forms' constants and bindings (with normEps: the norm gain and gain4). */
function gateUpCommon(p: MoeGateUpParams): string {
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const H: u32 = ${p.hidden}u;
const I: u32 = ${p.intermediate}u;
const K: u32 = ${p.k}u;
const G: u32 = ${p.hidden / 32}u;
const LIMIT: f32 = ${f32Literal(p.limit)};
const ALPHA: f32 = ${f32Literal(p.alpha)};
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> h: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> scales: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<u32>;
@group(0) @binding(6) var<storage, read_write> act: array<f32>;
${p.normEps !== undefined ? `@group(0) @binding(7) var<storage, read> gain: array<u32>;
fn gain4(i: u32) -> vec4<f32> {
  let gw = vec2<u32>(gain[2u * i], gain[2u * i + 1u]);
  return vec4<f32>(bf16_lo(gw.x), bf16_hi(gw.x), bf16_lo(gw.y), bf16_hi(gw.y));
}` : ''}`;
}

/**
 * f32_mf4w_moe_gateup_swiglu_h{H}_i{I}_k{k}:
 *   u = W1[e] h[t] + b1[e] (2I rows, interleaved gate/linear), e = ids[t, j];
 *   act[t, j, i] = min(u[2i], limit) * sigmoid(alpha * min(u[2i], limit)) * (clamp(u[2i+1], ±limit) + 1)
 *
 * Bindings: 0 step: Step uniform; 1 h: array<vec4<f32>> (f32 [T, H]); 2 ids: array<u32> [T, k];
 *   3 blocks: array<vec4<u32>> (u8 [E, 2I, H/32, 16]: one block per element); 4 scales: array<u32>
 *   (u8 [E, 2I, H/32]); 5 bias: array<u32> (bf16 [E, 2I]); 6 act: array<f32> [T, k, I] (out);
 *   with \`normEps\` also 7 gain: bf16 [H] as array<u32>.
 * With \`normEps\` (decode) the RMSNorm before the MLP is folded in: binding 1 is the residual x,
 * which each workgroup normalises (times gain) into workgroup memory for its token.
 * Grid: x = groups of ROWS/2 units, y = t * k + j (workgroups with t >= n_tokens exit).
 */
export function moeGateUpSource(p: MoeGateUpParams): string {
  if (isPerInvocation(p)) return gateUpPerInvocationSource(p);
  const G = p.hidden / 32;
  const lanes = lanesFor(G);
  const rows = WG / lanes;
  const norm = p.normEps !== undefined;
  const stage = norm && p.stageNorm !== false;
  const sg = !!p.subgroups;
  const eps = norm ? f32Literal(p.normEps!) : '';
  // The staged norm's sum of squares: summed while staging (workgroup memory), or by t once the
  // subgroup slots are known (a fixed order).
  const stagedNorm = sg ? `  workgroupBarrier();
  let t = sg_index(taken, sl, sz);
  var sq = 0.0;
  for (var i = t; i < H / 4u; i += ${WG}u) { let v = h[xb + i]; sq += dot(v, v); }
  let scale = inverseSqrt(sg_run_sum(sq, t, sz, ${WG}u) / f32(H) + ${eps});` : `  partial[lid] = ss;
  workgroupBarrier();
  // Two-level sum: 16 partial sums of 16 (all read before any is written back), then every
  // thread adds the 16.
  var t = 0.0;
  if (lid < 16u) {
    for (var j = 0u; j < 16u; j++) { t += partial[lid * 16u + j]; }
  }
  workgroupBarrier();
  if (lid < 16u) { partial[lid] = t; }
  workgroupBarrier();
  var total = 0.0;
  for (var j = 0u; j < 16u; j++) { total += partial[j]; }
  let scale = inverseSqrt(total / f32(H) + ${eps});
  workgroupBarrier();`;
  const slots = sg ? `  workgroupBarrier();
  let t = sg_index(taken, sl, sz);\n` : '';
  return /* wgsl */ `${sg ? 'enable subgroups;' : ''}
${gateUpCommon(p)}
const LANES: u32 = ${lanes}u;
${stage ? `var<workgroup> xs: array<vec4<f32>, ${p.hidden / 4}>;` : ''}
${norm && !stage ? `fn xg(i: u32) -> vec4<f32> { return h[i] * gain4(i % (H / 4u)); }` : ''}
var<workgroup> partial: array<f32, ${sg ? rows : WG}>;
${sg ? subgroupFns(WG) : ''}
${mxfp4Fns(stage ? 'xs' : norm ? 'xg' : 'h', !stage && norm)}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32${sg ? `, ${SUBGROUP_ARGS}` : ''}) {
  let tj = wg.y;
  if (tj / K >= step.n_tokens) { return; }
  let e = ids[tj];
${sg ? '  let taken = sg_take();\n' : ''}${stage ? `  // The token's RMSNorm, folded in: xs = x * gain, and the 1/rms factor applied to each dot.
  let xb = (tj / K) * (H / 4u);
  var ss = 0.0;
  for (var i = lid; i < H / 4u; i += ${WG}u) {
    let v = h[xb + i];
    ${sg ? '' : 'ss += dot(v, v);'}
    xs[i] = v * gain4(i);
  }
${stagedNorm}
  let hv = 0u;` : norm ? `${slots}  // The token's RMSNorm, folded in: every invocation computes 1/rms itself (no barriers).
  let xb = (tj / K) * (H / 4u);
  var ss = 0.0;
  for (var i = 0u; i < H / 4u; i++) { let v = h[xb + i]; ss += dot(v, v); }
  let scale = inverseSqrt(ss / f32(H) + ${eps});
  let hv = xb;` : `${slots}  let scale = 1.0;
  let hv = (tj / K) * (H / 4u);`}
  let r = ${sg ? 't' : 'lid'} / LANES;
  let lane = ${sg ? 't' : 'lid'} % LANES;
  let unit = wg.x * ${rows / 2}u + r / 2u;
  let row = 2u * unit + (r & 1u);         // row of W1[e]: even = gate, odd = linear
  let grow = e * 2u * I + row;            // row across experts
  var acc = 0.0;
  if (unit < I) {
    for (var g = lane; g < G; g += LANES) { acc += block_dot(grow * G + g, hv + g * 8u); }
  }
${sg ? `  // Row sums by subgroup; gate and linear rows may sit in different subgroups: one per row in partial.
  let rs = sg_run_sum(acc, t, sz, LANES);
  if (lane == 0u) { partial[r] = rs; }
  workgroupBarrier();
  if (lane == 0u && (r & 1u) == 0u && unit < I) {
    let u_glu = partial[r] * scale + bias_at(grow);
    let u_lin = partial[r + 1u] * scale + bias_at(grow + 1u);` : `  partial[lid] = acc;
${reduceRows(lanes)}
  if (lane == 0u && (r & 1u) == 0u && unit < I) {
    let u_glu = partial[lid] * scale + bias_at(grow);
    let u_lin = partial[lid + LANES] * scale + bias_at(grow + 1u);`}
    let glu = min(u_glu, LIMIT);
    let lin = clamp(u_lin, -LIMIT, LIMIT);
    act[tj * I + unit] = glu / (1.0 + exp(-ALPHA * glu)) * (lin + 1.0);
  }
}`;
}

/** Invocations per workgroup of the barrier-free CPU-adapter variants (one output each). */
const SIMPLE_WG = 64;

/** The gate_up of CPU adapters: normEps without staging (and without subgroups). */
function isPerInvocation(p: MoeGateUpParams): boolean {
  return p.normEps !== undefined && p.stageNorm === false && !p.subgroups;
}

/**
 * The per-invocation-norm gate_up (CPU adapters, where a barrier costs far more than the
 * arithmetic): one invocation per (slot, unit) computes the token's 1/rms, then both rows of
 * its unit (gate and linear) over all of x: no workgroup memory, no barriers.
 */
function gateUpPerInvocationSource(p: MoeGateUpParams): string {
  return /* wgsl */ `
${gateUpCommon(p)}
${mxfp4Fns('h')}
// Block gi of a row dotted with the 8 normalised x vec4s of its 32 columns.
fn block_dot_x(gi: u32, x: array<vec4<f32>, 8>) -> f32 {
  let w = blocks[gi];
  let acc = dot(nib4(w.x), x[0]) + dot(nib4(w.x >> 16u), x[1]) + dot(nib4(w.y), x[2]) + dot(nib4(w.y >> 16u), x[3])
          + dot(nib4(w.z), x[4]) + dot(nib4(w.z >> 16u), x[5]) + dot(nib4(w.w), x[6]) + dot(nib4(w.w >> 16u), x[7]);
  return ldexp(acc, i32(scale_byte(gi)) - 127);
}

@compute @workgroup_size(${SIMPLE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tj = wg.y;
  let unit = wg.x * ${SIMPLE_WG}u + lid;
  if (tj / K >= step.n_tokens || unit >= I) { return; }
  let e = ids[tj];
  let xb = (tj / K) * (H / 4u);
  var ss = 0.0;
  for (var i = 0u; i < H / 4u; i++) { let v = h[xb + i]; ss += dot(v, v); }
  let scale = inverseSqrt(ss / f32(H) + ${f32Literal(p.normEps!)});
  let grow = e * 2u * I + 2u * unit;      // the unit's gate row; its linear row follows
  var ag = 0.0;
  var al = 0.0;
  for (var g = 0u; g < G; g++) {
    // x * gain for the block's 32 columns, read once for both rows
    let xv = xb + g * 8u;
    let gv = g * 8u;
    let x = array<vec4<f32>, 8>(h[xv] * gain4(gv), h[xv + 1u] * gain4(gv + 1u), h[xv + 2u] * gain4(gv + 2u), h[xv + 3u] * gain4(gv + 3u),
                                h[xv + 4u] * gain4(gv + 4u), h[xv + 5u] * gain4(gv + 5u), h[xv + 6u] * gain4(gv + 6u), h[xv + 7u] * gain4(gv + 7u));
    ag += block_dot_x(grow * G + g, x);
    al += block_dot_x((grow + 1u) * G + g, x);
  }
  let glu = min(ag * scale + bias_at(grow), LIMIT);
  let lin = clamp(al * scale + bias_at(grow + 1u), -LIMIT, LIMIT);
  act[tj * I + unit] = glu / (1.0 + exp(-ALPHA * glu)) * (lin + 1.0);
}`;
}

/**
 * f32_mf4w_moe_down_sum_h{H}_i{I}_k{k}:
 *   x[t, o] += sum_j weights[t, j] * (W2[ids[t, j]] row o . act[t, j, :] + b2[ids[t, j], o])
 *
 * Bindings: 0 step: Step uniform; 1 act: array<vec4<f32>> (f32 [T, k, I]); 2 ids: array<u32> [T, k];
 *   3 weights: array<f32> [T, k]; 4 blocks: array<u32> (u8 [E, H, I/32, 16]);
 *   5 scales: array<u32> (u8 [E, H, I/32]); 6 bias: array<u32> (bf16 [E, H]);
 *   7 x: array<f32> [T, H] (read-modify-write; one thread owns each (t, o), no atomics).
 * Grid: x = groups of ROWS outputs, y = t.
 */
/** Both down forms' constants, bindings and MXFP4 readers of act. */
function downCommon(p: MoeParams): string {
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const H: u32 = ${p.hidden}u;
const I: u32 = ${p.intermediate}u;
const K: u32 = ${p.k}u;
const G: u32 = ${p.intermediate / 32}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> act: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scales: array<u32>;
@group(0) @binding(6) var<storage, read> bias: array<u32>;
@group(0) @binding(7) var<storage, read_write> x: array<f32>;
${mxfp4Fns('act')}`;
}

export function moeDownSource(p: MoeParams & { simple?: boolean }): string {
  if (p.simple) return downSimpleSource(p);
  const G = p.intermediate / 32;
  const lanes = lanesFor(G);
  const sg = !!p.subgroups;
  return /* wgsl */ `${sg ? 'enable subgroups;' : ''}
${downCommon(p)}
const LANES: u32 = ${lanes}u;
${sg ? subgroupFns(WG) : `var<workgroup> partial: array<f32, ${WG}>;`}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32${sg ? `, ${SUBGROUP_ARGS}` : ''}) {
  let t = wg.y;
  if (t >= step.n_tokens) { return; }
${sg ? `  let taken = sg_take();
  workgroupBarrier();
  let id = sg_index(taken, sl, sz);` : '  let id = lid;'}
  let r = id / LANES;
  let lane = id % LANES;
  let o = wg.x * ${WG / lanes}u + r;
  var acc = 0.0;
  if (o < H) {
    for (var j = 0u; j < K; j++) {
      let e = ids[t * K + j];
      let grow = e * H + o;
      let av = (t * K + j) * (I / 4u);
      var s = 0.0;
      for (var g = lane; g < G; g += LANES) { s += block_dot(grow * G + g, av + g * 8u); }
      acc += weights[t * K + j] * s;
    }
  }
${sg ? '  let rs = sg_run_sum(acc, id, sz, LANES);' : `  partial[lid] = acc;
${reduceRows(lanes)}
  let rs = partial[lid];`}
  if (lane == 0u && o < H) {
    var b = 0.0;
    for (var j = 0u; j < K; j++) { b += weights[t * K + j] * bias_at(ids[t * K + j] * H + o); }
    x[t * H + o] += rs + b;
  }
}`;
}

/** The down projection of CPU adapters: one invocation per (token, output row), no barriers. */
function downSimpleSource(p: MoeParams): string {
  return /* wgsl */ `
${downCommon(p)}

@compute @workgroup_size(${SIMPLE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  let o = wg.x * ${SIMPLE_WG}u + lid;
  if (t >= step.n_tokens || o >= H) { return; }
  var acc = 0.0;
  var b = 0.0;
  for (var j = 0u; j < K; j++) {
    let e = ids[t * K + j];
    let w = weights[t * K + j];
    let grow = e * H + o;
    let av = (t * K + j) * (I / 4u);
    var s = 0.0;
    for (var g = 0u; g < G; g++) { s += block_dot(grow * G + g, av + g * 8u); }
    acc += w * s;
    b += w * bias_at(grow);
  }
  x[t * H + o] += acc + b;
}`;
}

export class MoeGateUpKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  private readonly unitsPerGroup: number;

  constructor(cache: PipelineCache, readonly p: MoeGateUpParams) {
    checkShape(p);
    if (p.subgroups) requireSubgroups(cache.device, 'f32_mf4w_moe_gateup_swiglu');
    this.key = kernelKey('f32_mf4w_moe_gateup_swiglu', {
      h: p.hidden, i: p.intermediate, k: p.k, limit: p.limit, alpha: p.alpha, norm: p.normEps, nostage: p.normEps !== undefined && p.stageNorm === false,
      sg: p.subgroups,
    });
    this.unitsPerGroup = isPerInvocation(p) ? SIMPLE_WG : WG / lanesFor(p.hidden / 32) / 2;
    this.pipeline = cache.get(this.key, () => moeGateUpSource(p));
  }

  /** Buffers in binding order; see moeGateUpSource for their layouts. */
  bind(
    device: GPUDevice,
    step: GPUBuffer,
    h: GPUBuffer,
    ids: GPUBuffer,
    blocks: GPUBuffer,
    scales: GPUBuffer,
    bias: GPUBuffer,
    act: GPUBuffer,
    gain?: GPUBuffer,
  ): GPUBindGroup {
    if ((gain !== undefined) !== (this.p.normEps !== undefined)) throw new Error(`${this.key}: norm gain ${gain ? 'not expected' : 'missing'}`);
    return bindBuffers(device, this.pipeline, [step, h, ids, blocks, scales, bias, act, ...(gain ? [gain] : [])], this.key);
  }

  /** Records the experts' gate/up for `tokens` tokens (tokens * k <= 65535). */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    const slots = tokens * this.p.k;
    if (slots > 65535) throw new Error(`${this.key}: ${tokens} tokens x k=${this.p.k} exceeds 65535 workgroups`);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(this.p.intermediate / this.unitsPerGroup), slots);
  }
}

export class MoeDownKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  private readonly rowsPerGroup: number;

  /** `simple`: the barrier-free variant of CPU adapters (one invocation per output row). */
  constructor(cache: PipelineCache, readonly p: MoeParams & { simple?: boolean }) {
    checkShape(p);
    if (p.subgroups && p.simple) throw new Error('f32_mf4w_moe_down_sum: subgroups apply to the workgroup variant only');
    if (p.subgroups) requireSubgroups(cache.device, 'f32_mf4w_moe_down_sum');
    this.key = kernelKey('f32_mf4w_moe_down_sum', { h: p.hidden, i: p.intermediate, k: p.k, sg: p.subgroups, simple: p.simple });
    this.rowsPerGroup = p.simple ? SIMPLE_WG : WG / lanesFor(p.intermediate / 32);
    this.pipeline = cache.get(this.key, () => moeDownSource(p));
  }

  /** Buffers in binding order; see moeDownSource for their layouts. */
  bind(
    device: GPUDevice,
    step: GPUBuffer,
    act: GPUBuffer,
    ids: GPUBuffer,
    weights: GPUBuffer,
    blocks: GPUBuffer,
    scales: GPUBuffer,
    bias: GPUBuffer,
    x: GPUBuffer,
  ): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [step, act, ids, weights, blocks, scales, bias, x], this.key);
  }

  /** Records the experts' down projection and weighted sum into x for `tokens` tokens (<= 65535). */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    if (tokens > 65535) throw new Error(`${this.key}: ${tokens} tokens exceeds 65535 workgroups`);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(this.p.hidden / this.rowsPerGroup), tokens);
  }
}
