/**
 * Grouped MoE for prefill: the (token, expert) slots sorted by expert into tiles of up to TM
 * slots (MoeRouteKernel, moe-route.ts), and each tile's expert rows multiplied with all of its
 * slots at once, so every MXFP4 block is decoded once per tile instead of once per slot.
 *
 *   f32_mf4w_moe_grouped_gateup_swiglu: act[s, i] = swiglu(W1[e] h[s / k] + b1[e]) (unit i; as
 *     MoeGateUpKernel: rows 2i and 2i + 1 are gate and linear, clamp at limit)
 *   f32_mf4w_moe_grouped_down:          y[s, o] = W2[e] row o . act[s, :] + b2[e, o]
 *   f32_moe_combine:                    x[t, :] += sum_j w[t, j] y[t k + j, :], j in order
 * (e = the tile's expert, s = a slot of the tile). Summing the k slot outputs in a separate,
 * fixed-order pass keeps the result deterministic without float atomics.
 *
 * Bindings of both expert kernels: 0 x: array<vec4<f32>> (gate_up: h [T, H]; down: act [T k, I]);
 *   1 list: array<u32> and 2 tiles: array<vec4<u32>> (moe-route.ts); 3 blocks: array<vec4<u32>>
 *   (u8 [E, rows, in/32, 16]); 4 scales: array<u32> (u8 [E, rows, in/32]); 5 bias: array<u32>
 *   (bf16 [E, rows]); 6 out: array<f32> (gate_up: act [T k, I]; down: y [T k, H]).
 * Grid (indirect, args from the route kernel): x = tile, y = groups of WG output units (a unit
 * is a gate/linear row pair for gate_up, one row for down). Each thread owns one unit and keeps
 * one accumulator per slot of the tile; the weights come from the MXFP4 layout of moe.ts.
 * Variants from one source:
 *   tiled:  the tile's inputs are staged in workgroup memory, CB blocks (32 CB inputs) per round,
 *           zero-padded to TM slots so the slot loop has a constant trip count (registers).
 *   simple: (CPU adapters, where barriers are dear) no workgroup memory and no barriers: each
 *           thread reads the inputs itself and loops over the tile's real slot count only.
 */
import { BF16_FNS, STEP_STRUCT } from './common.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 64;
/** Slots per tile the engine uses (the memory plan sizes the tile table with it). */
export const MOE_TILE = 16;
/** Blocks of inputs per workgroup-memory round of the tiled variant. */
const CB = 8;

export type MoeGroupedVariant = 'tiled' | 'simple';

export interface MoeGroupedParams {
  hidden: number;
  intermediate: number;
  /** Experts per token. */
  k: number;
  /** Slots per tile (the route kernel's `tile`). */
  tile: number;
  variant: MoeGroupedVariant;
}

export interface MoeGroupedGateUpParams extends MoeGroupedParams {
  limit: number;
  alpha: number;
}

/** Workgroup memory of the tiled variant: TM slots x CB blocks of 32 f32 inputs. */
export function moeGroupedStageBytes(tile: number): number {
  return tile * CB * 32 * 4;
}

function checkShape(p: MoeGroupedParams): void {
  if (p.hidden % 32 || p.intermediate % 32 || p.hidden <= 0 || p.intermediate <= 0) {
    throw new Error(`moe_grouped: hidden ${p.hidden} and intermediate ${p.intermediate} must be positive multiples of 32`);
  }
  if (!(p.k >= 1) || !(p.tile >= 1 && p.tile <= 64)) throw new Error(`moe_grouped: k=${p.k} must be >= 1 and tile ${p.tile} in 1..64`);
}

/**
 * The shared kernel body. `rows` output rows per unit (2 for gate_up), `IN` inputs, `OUT` units;
 * `xRow(slot)` is the input row of a slot; `finish` writes unit u of slot `slot` from acc{r}[m].
 */
function groupedSource(p: MoeGroupedParams, o: { IN: number; OUT: number; rows: number; xRow: string; consts: string; finish: string }): string {
  const G = o.IN / 32;
  const tiled = p.variant === 'tiled';
  const R = Array.from({ length: o.rows }, (_, r) => r);
  // x vec4 index of input block g for slot m: workgroup memory (tiled) or the input buffer.
  const X = tiled ? (i: number) => `xs[xb + ${i}u]` : (i: number) => `x[xb + ${i}u]`;
  const decode = R.map((r) => `      let q${r} = blocks[wrow${r} + g];
      let sf${r} = bitcast<f32>(scale_byte(wrow${r} + g) << 23u);
${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `      let w${r}_${i} = nib4(q${r}.${'xyzw'[i >> 1]}${i & 1 ? ' >> 16u' : ''});`).join('\n')}`).join('\n');
  const fma = R.map((r) => `        acc${r}[m] += sf${r} * (${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `dot(w${r}_${i}, ${X(i)})`).join(' + ')});`).join('\n');
  const blockLoop = (gFrom: string, gTo: string, xb: string) => /* wgsl */ `
    for (var g = ${gFrom}; g < ${gTo}; g++) {
${decode}
      for (var m = 0u; m < ${tiled ? 'TM' : 'n'}; m++) {
        let xb = ${xb};
${fma}
      }
    }`;
  return /* wgsl */ `
${BF16_FNS}
const IN: u32 = ${o.IN}u;
const OUT: u32 = ${o.OUT}u;
const G: u32 = ${G}u;
const K: u32 = ${p.k}u;
const TM: u32 = ${p.tile}u;
${o.consts}
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> list: array<u32>;
@group(0) @binding(2) var<storage, read> tiles: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> scales: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
${tiled ? `const CB: u32 = ${CB}u;\nvar<workgroup> xs: array<vec4<f32>, ${p.tile * CB * 8}>;` : ''}

// e2m1 nibbles -> f32 without a table (as moe.ts): sign, exponent e, mantissa m.
fn nib4(w: u32) -> vec4<f32> {
  let n = (vec4<u32>(w) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  let e = (n >> vec4<u32>(1u)) & vec4<u32>(3u);
  let m = n & vec4<u32>(1u);
  let s = (n & vec4<u32>(8u)) << vec4<u32>(28u);
  let normal = s | ((e + vec4<u32>(126u)) << vec4<u32>(23u)) | (m << vec4<u32>(22u));
  let sub = s | (m * vec4<u32>(0x3f000000u));
  return bitcast<vec4<f32>>(select(normal, sub, e == vec4<u32>(0u)));
}
// The E8M0 scale 2^(s-127) is exact as f32 bits s << 23 for s >= 1 (s == 0 reads as 0, not
// 2^-127: a block that small contributes below f32 resolution of any real sum).
fn scale_byte(idx: u32) -> u32 { return (scales[idx >> 2u] >> ((idx & 3u) * 8u)) & 255u; }
fn bias_at(idx: u32) -> f32 { return bf16_at(bias[idx >> 1u], (idx & 1u) == 1u); }

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = tiles[wg.x];
  let e = tile.x;
  let first = tile.y;
  let n = tile.z;
  let u = wg.y * ${WG}u + lid;
  let live = u < OUT;
${R.map((r) => `  var acc${r}: array<f32, ${p.tile}>;\n  let wrow${r} = (e * ${o.rows}u * OUT + ${o.rows}u * min(u, OUT - 1u) + ${r}u) * G;`).join('\n')}
${tiled ? /* wgsl */ `
  for (var g0 = 0u; g0 < G; g0 += CB) {
    workgroupBarrier();
    for (var i = lid; i < TM * CB * 8u; i += ${WG}u) {
      let m = i / (CB * 8u);
      let q = g0 * 8u + i % (CB * 8u);
      var v = vec4<f32>(0.0);
      if (m < n && q < G * 8u) { v = x[${o.xRow.replace('SLOT', 'list[first + m]')} * (IN / 4u) + q]; }
      xs[i] = v;
    }
    workgroupBarrier();
    if (live) {${blockLoop('g0', 'min(g0 + CB, G)', 'm * CB * 8u + (g - g0) * 8u')}
    }
  }` : /* wgsl */ `
  var xrow: array<u32, ${p.tile}>;
  for (var m = 0u; m < n; m++) { xrow[m] = ${o.xRow.replace('SLOT', 'list[first + m]')} * (IN / 4u); }
  if (live) {${blockLoop('0u', 'G', 'xrow[m] + g * 8u')}
  }`}
  if (live) {
    for (var m = 0u; m < n; m++) {
      let slot = list[first + m];
${o.finish}
    }
  }
}`;
}

/** f32_mf4w_moe_grouped_gateup_swiglu (see the file comment). */
export function moeGroupedGateUpSource(p: MoeGroupedGateUpParams): string {
  return groupedSource(p, {
    IN: p.hidden, OUT: p.intermediate, rows: 2, xRow: '(SLOT / K)',
    consts: `const LIMIT: f32 = ${f32Literal(p.limit)};\nconst ALPHA: f32 = ${f32Literal(p.alpha)};`,
    finish: /* wgsl */ `      let glu = min(acc0[m] + bias_at(wrow0 / G), LIMIT);
      let lin = clamp(acc1[m] + bias_at(wrow1 / G), -LIMIT, LIMIT);
      out[slot * OUT + u] = glu / (1.0 + exp(-ALPHA * glu)) * (lin + 1.0);`,
  });
}

/** f32_mf4w_moe_grouped_down (see the file comment). */
export function moeGroupedDownSource(p: MoeGroupedParams): string {
  return groupedSource(p, {
    IN: p.intermediate, OUT: p.hidden, rows: 1, xRow: '(SLOT)', consts: '',
    finish: `      out[slot * OUT + u] = acc0[m] + bias_at(wrow0 / G);`,
  });
}

class GroupedKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  /** Grid y: workgroups of WG units (what the route kernel writes into the args). */
  readonly groupsY: number;

  constructor(cache: PipelineCache, family: string, readonly p: MoeGroupedParams, units: number, extra: Record<string, number>, source: () => string) {
    checkShape(p);
    this.key = kernelKey(family, { h: p.hidden, i: p.intermediate, k: p.k, tile: p.tile, ...extra, simple: p.variant === 'simple' });
    this.groupsY = Math.ceil(units / WG);
    this.pipeline = cache.get(this.key, source);
  }

  /** Buffers in binding order; see the file comment for their layouts. */
  bind(device: GPUDevice, b: { x: GPUBuffer; list: GPUBuffer; tiles: GPUBuffer; blocks: GPUBuffer; scales: GPUBuffer; bias: GPUBuffer; out: GPUBuffer }): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [b.x, b.list, b.tiles, b.blocks, b.scales, b.bias, b.out], this.key);
  }

  /** Records the kernel over the tiles the route kernel wrote; its args start at `argsOffset`. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, args: GPUBuffer, argsOffset: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroupsIndirect(args, argsOffset);
  }
}

export class MoeGroupedGateUpKernel extends GroupedKernel {
  constructor(cache: PipelineCache, p: MoeGroupedGateUpParams) {
    super(cache, 'f32_mf4w_moe_grouped_gateup_swiglu', p, p.intermediate, { limit: p.limit, alpha: p.alpha }, () => moeGroupedGateUpSource(p));
  }
}

export class MoeGroupedDownKernel extends GroupedKernel {
  constructor(cache: PipelineCache, p: MoeGroupedParams) {
    super(cache, 'f32_mf4w_moe_grouped_down', p, p.hidden, {}, () => moeGroupedDownSource(p));
  }
}

/**
 * f32_moe_combine_h{H}_k{k}: x[t, :] += sum_j w[t, j] y[t k + j, :] for t < step.n_tokens, the
 * k terms summed in slot order (as the reference). Bindings: 0 step: Step uniform;
 * 1 y: array<vec4<f32>> [T k, H]; 2 weights: array<f32> [T, k]; 3 x: array<vec4<f32>> [T, H].
 * One thread per 4 outputs, 256 per workgroup, grid x = ceil(T H / 1024) (at most 65535).
 */
export function moeCombineSource(p: { hidden: number; k: number }): string {
  return /* wgsl */ `
${STEP_STRUCT}
const H4: u32 = ${p.hidden / 4}u;
const K: u32 = ${p.k}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = i / H4;
  if (t >= step.n_tokens) { return; }
  let c = i % H4;
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < K; j++) { s += weights[t * K + j] * y[(t * K + j) * H4 + c]; }
  x[i] += s;
}`;
}

export class MoeCombineKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: { hidden: number; k: number }) {
    if (p.hidden % 4 || p.hidden <= 0 || !(p.k >= 1)) throw new Error(`moe_combine: hidden ${p.hidden} must be a positive multiple of 4, k=${p.k} >= 1`);
    this.key = kernelKey('f32_moe_combine', { h: p.hidden, k: p.k });
    this.pipeline = cache.get(this.key, () => moeCombineSource(p));
  }

  bind(device: GPUDevice, b: { step: GPUBuffer; y: GPUBuffer; weights: GPUBuffer; x: GPUBuffer }): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [b.step, b.y, b.weights, b.x], this.key);
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    const groups = Math.ceil((tokens * this.p.hidden) / 1024);
    if (groups > 65535) throw new Error(`${this.key}: ${tokens} tokens need ${groups} workgroups, over 65535`);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups);
  }
}
