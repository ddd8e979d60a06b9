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
 * Grid (indirect, args from the route kernel): x = tile, y = groups of WG threads. A unit is a
 * pair of weight rows (gate/linear for gate_up, outputs 2u and 2u + 1 for down); each thread owns
 * 1 (tiled) or SIMPLE_UNITS (simple) units and one accumulator per row per slot of the tile.
 * Each block's E8M0 scale is folded into its decoded weights as 2^(s-127-16) (exact for s > 16;
 * the 2^-16 keeps 6 * 2^127 finite) and the sums are multiplied by 2^16 once at the end.
 * Variants from one source:
 *   tiled:  the tile's inputs are staged in workgroup memory, CB blocks (32 CB inputs) per round,
 *           zero-padded to TM slots so the slot loop has a constant trip count (registers).
 *   simple: (CPU adapters, where barriers are dear) no workgroup memory and no barriers: each
 *           thread reads the inputs itself, SIMPLE_CHUNK slots per pass over the weights.
 * Assumes hidden and intermediate are multiples of 32, k >= 1, tile <= 64.
 */
import { BF16_FNS, STEP_STRUCT } from './common.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 64;
/** Slots per tile the engine uses (the memory plan sizes the tile table with it). */
export const MOE_TILE = 16;
/** Blocks of inputs per workgroup-memory round of the tiled variant. */
const CB = 8;
/** Slots per unrolled chunk of the simple variant (a tile of more slots takes several passes). */
const SIMPLE_CHUNK = 4;
/** Units (row pairs) per thread of the simple variant: each input load feeds 2 SIMPLE_UNITS rows. */
const SIMPLE_UNITS = 2;

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
 * The shared kernel body: each thread owns UN units (rows 2 UN u .. 2 UN u + 2 UN - 1 of the
 * tile's expert: gate / linear pairs for gate_up, output pairs for down) and U slots at a time,
 * in unrolled scalar accumulators a{row}_{slot} (dynamically indexed arrays end up in slow
 * memory on CPU adapters). `xRow` gives the input row of SLOT; `finish` writes one unit of
 * `slot` (UNIT) from A0, A1 (its two rows' sums) with its weight rows at W0, W1.
 */
function groupedSource(p: MoeGroupedParams, o: { IN: number; OUT: number; xRow: string; consts: string; finish: string }): string {
  const G = o.IN / 32;
  const tiled = p.variant === 'tiled';
  const U = tiled ? p.tile : Math.min(p.tile, SIMPLE_CHUNK);
  const UN = tiled ? 1 : SIMPLE_UNITS;
  const ms = Array.from({ length: U }, (_, m) => m);
  const rs = Array.from({ length: 2 * UN }, (_, r) => r);
  const rowOf = (m: string) => o.xRow.replace('SLOT', `list[first + ${m}]`);
  // input vec4 i of block g for chunk slot m: workgroup memory (tiled) or the input buffer
  const xAt = (m: number, i: string) => (tiled ? `xs[${m * CB * 8}u + gl * 8u + ${i}]` : `x[r${m} + g * 8u + ${i}]`);
  // One block: decode each row's 8 vec4s of weights and use each for every slot of the chunk.
  // Both variants loop over the 8: unrolled, the simple variant took SwiftShader 3.5x as long to
  // compile (every load compiles it), and the tiled one keeps its TM-slot body small.
  const piece = (word: string, i: string) => `
${rs.map((r) => `        let w${r} = nib4(${word.replaceAll('Q', `q${r}`)}) * s${r};`).join('\n')}
${ms.map((m) => `        { let v = ${xAt(m, i)};${rs.map((r) => ` a${r}_${m} += dot(w${r}, v);`).join('')} }`).join('\n')}`;
  const body = `
${rs.map((r) => `      let q${r} = blocks[wrow${r} + g];\n      let s${r} = scale_f(wrow${r} + g);`).join('\n')}
      for (var i = 0u; i < 8u; i++) {${piece('(Q[i >> 1u] >> ((i & 1u) * 16u))', 'i')}
      }`;
  const accs = ms.map((m) => rs.map((r) => `  var a${r}_${m} = 0.0;`).join('\n')).join('\n');
  const finish = (m: number, mIdx: string) => `      if (${mIdx} < n) {
        let slot = list[first + ${mIdx}];
${Array.from({ length: UN }, (_, j) => o.finish
    .replaceAll('A0', `a${2 * j}_${m} * UNSCALE`).replaceAll('A1', `a${2 * j + 1}_${m} * UNSCALE`)
    .replaceAll('UNIT', `(u * ${UN}u + ${j}u)`).replaceAll('W0', `wrow${2 * j}`).replaceAll('W1', `wrow${2 * j + 1}`)).join('\n')}
      }`;
  return /* wgsl */ `
${BF16_FNS}
const IN: u32 = ${o.IN}u;
const OUT: u32 = ${o.OUT}u;
const G: u32 = ${G}u;
const K: u32 = ${p.k}u;
const TM: u32 = ${p.tile}u;
const UNSCALE: f32 = 65536.0;
${o.consts}
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> list: array<u32>;
@group(0) @binding(2) var<storage, read> tiles: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> scales: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
${tiled ? `const CB: u32 = ${CB}u;\nvar<workgroup> xs: array<vec4<f32>, ${p.tile * CB * 8}>;\nvar<workgroup> xr: array<u32, ${p.tile}>;` : ''}

// e2m1 nibbles -> f32 bits without a table: magnitude code c = n & 7 is (1 + m/2) 2^(e-1) for
// c >= 2, which is c << 22 plus the exponent bias 126 << 23; c = 0, 1 are 0 and 0.5.
fn nib4(w: u32) -> vec4<f32> {
  let n = vec4<u32>(w) >> vec4<u32>(0u, 4u, 8u, 12u);
  let c = n & vec4<u32>(7u);
  let mag = select((c << vec4<u32>(22u)) + vec4<u32>(0x3f000000u), c * vec4<u32>(0x3f000000u), c < vec4<u32>(2u));
  return bitcast<vec4<f32>>(mag | ((n & vec4<u32>(8u)) << vec4<u32>(28u)));
}
// The E8M0 scale folded into the decoded weights, times 2^-16 so that no weight overflows
// (6 * 2^(254-127) would): 2^(s-143), exact for s > 16, and UNSCALE = 2^16 undoes it once per
// output. Blocks with s <= 16 (below 2^-110) read as zero.
fn scale_f(idx: u32) -> f32 {
  let s = (scales[idx >> 2u] >> ((idx & 3u) * 8u)) & 255u;
  return bitcast<f32>((max(s, 16u) - 16u) << 23u);
}
fn bias_at(idx: u32) -> f32 { return bf16_at(bias[idx >> 1u], (idx & 1u) == 1u); }

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = tiles[wg.x];
  let e = tile.x;
  let first = tile.y;
  let n = tile.z;
  let u = wg.y * ${WG}u + lid;
  let live = u * ${UN}u < OUT;
  let wrow0 = (e * 2u * OUT + 2u * ${UN}u * min(u, OUT / ${UN}u - 1u)) * G;
${rs.slice(1).map((r) => `  let wrow${r} = wrow0 + ${r}u * G;`).join('\n')}
${tiled ? /* wgsl */ `${accs}
  // input row (vec4 index) of each slot, read by the staging loop after its first barrier
  if (lid < n) { xr[lid] = ${rowOf('lid')} * (IN / 4u); }
  for (var g0 = 0u; g0 < G; g0 += CB) {
    workgroupBarrier();
    for (var i = lid; i < TM * CB * 8u; i += ${WG}u) {
      let m = i / (CB * 8u);
      let q = g0 * 8u + i % (CB * 8u);
      var v = vec4<f32>(0.0);
      if (m < n && q < G * 8u) { v = x[xr[m] + q]; }
      xs[i] = v;
    }
    workgroupBarrier();
    if (live) {
      for (var g = g0; g < min(g0 + CB, G); g++) {
        let gl = g - g0;${body.replace(/^ {6}/gm, '        ')}
      }
    }
  }
  if (live) {
${ms.map((m) => finish(m, `${m}u`)).join('\n')}
  }` : /* wgsl */ `
  for (var m0 = 0u; m0 < n; m0 += ${U}u) {
    // slots past n repeat the last one (computed, not written)
${ms.map((m) => `    let r${m} = ${rowOf(`min(m0 + ${m}u, n - 1u)`)} * (IN / 4u);`).join('\n')}
${accs.replace(/^ {2}/gm, '    ')}
    if (live) {
      for (var g = 0u; g < G; g++) {${body.replace(/^ {6}/gm, '        ')}
      }
${ms.map((m) => finish(m, `m0 + ${m}u`)).join('\n')}
    }
  }`}
}`;
}

/** f32_mf4w_moe_grouped_gateup_swiglu (see the file comment). */
export function moeGroupedGateUpSource(p: MoeGroupedGateUpParams): string {
  return groupedSource(p, {
    IN: p.hidden, OUT: p.intermediate, xRow: '(SLOT / K)',
    consts: `const LIMIT: f32 = ${f32Literal(p.limit)};\nconst ALPHA: f32 = ${f32Literal(p.alpha)};`,
    finish: /* wgsl */ `        {
          let glu = min(A0 + bias_at(W0 / G), LIMIT);
          let lin = clamp(A1 + bias_at(W1 / G), -LIMIT, LIMIT);
          out[slot * OUT + UNIT] = glu / (1.0 + exp(-ALPHA * glu)) * (lin + 1.0);
        }`,
  });
}

/** f32_mf4w_moe_grouped_down (see the file comment). */
export function moeGroupedDownSource(p: MoeGroupedParams): string {
  return groupedSource(p, {
    IN: p.intermediate, OUT: p.hidden / 2, xRow: '(SLOT)', consts: '',
    finish: /* wgsl */ `        out[slot * OUT * 2u + 2u * UNIT] = A0 + bias_at(W0 / G);
        out[slot * OUT * 2u + 2u * UNIT + 1u] = A1 + bias_at(W1 / G);`,
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
    this.groupsY = Math.ceil(units / (p.variant === 'simple' ? SIMPLE_UNITS : 1) / WG);
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
    super(cache, 'f32_mf4w_moe_grouped_down', p, p.hidden / 2, {}, () => moeGroupedDownSource(p));
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
