/**
 * Flash-decoding attention for one token (decode), in two kernels:
 *
 * f32_{fmt}kv_sdpa_decode (split): workgroup (g, s) takes KV head g and the s-th of S equal
 *   slices of the visible keys (full layer: 0..pos; sliding W: pos-W+1..pos), and serves every
 *   query head of g's GQA group from one read of each K/V row. It first applies RoPE to the
 *   group's query heads (and, in the slice holding pos, to the new key, which it stores in the
 *   cache in the cache's format before reading it back like any other key), then runs an online
 *   softmax over its keys and writes, per query head, (m, l, acc[D]): the slice's running max,
 *   sum of exp(s - m) and sum of exp(s - m) v, unnormalised.
 * f32_sdpa_decode_combine: per query head h, merges the S slices and the sink:
 *   out = sum_s e^(m_s - M) acc_s / (e^(sink_h - M) + sum_s e^(m_s - M) l_s),  M = max(sink, m_s).
 *
 * The same definitions as the batched kernel (attention.ts, SPEC §4) in another order, so the
 * results agree to rounding. S = decodeSplits(visible keys) is the grid's y size and is
 * recomputed by the combine kernel from step.pos0.
 *
 * Split bindings: 0 step: uniform Step (pos0 = the token's position); 1 qkv: array<f32> [q | k | v]
 *   of this token (before RoPE); 2 rope table (rope.ts); 3 kCache, 4 vCache (read_write; layout in
 *   kv-cache.ts); 5 part: array<f32> [H, MAX_SPLITS, D + 2].
 * Combine bindings: 0 step; 1 part; 2 sinks: bf16 [H] as array<u32>; 3 out: array<f32> [H * D].
 * Workgroup: GROUP x TPH threads (TPH threads per query head, each owning D / TPH output dims);
 * a tile is one key per thread. Assumes H % nKv == 0, D % 4 == 0.
 */
import { BF16_FNS, checkWindow, STEP_STRUCT } from './common.ts';
import type { KvCache, KvFormat } from './kv-cache.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

/** At most this many slices per KV head, each of at least MIN_SLICE keys. */
export const MAX_SPLITS = 32;
const MIN_SLICE = 64;

/** Number of slices the split kernel uses for `keys` visible keys (the combine kernel recomputes it). */
export function decodeSplits(keys: number): number {
  return Math.min(MAX_SPLITS, Math.max(1, Math.ceil(keys / MIN_SLICE)));
}

/** Keys visible to the token at `pos` in a layer with this window (0 = full). */
export function visibleKeys(pos: number, window: number): number {
  return window > 0 ? Math.min(pos + 1, window) : pos + 1;
}

export interface DecodeAttentionParams {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Sliding window W (keys incl. self), or 0 for a full layer. */
  window: number;
  fmt: KvFormat;
  /**
   * CPU (fallback) adapters: the split kernel as one invocation per (kv head, slice), looping over
   * the group's query heads and the slice's keys: no workgroup memory and no barriers, which
   * SwiftShader runs as coroutines. Same bindings, grid, partial results and combine kernel.
   */
  simple?: boolean;
}

function threadsPerHead(d: number): number {
  let t = 16;
  while (d % t !== 0) t /= 2;
  return t;
}

// step.window: the layer's sliding window (0 = full), so sliding and full layers share pipelines.
const VISIBLE_WGSL = /* wgsl */ `
fn first_key(pos: u32) -> u32 {
  if (step.window > 0u && pos + 1u > step.window) { return pos + 1u - step.window; }
  return 0u;
}`;

function cacheReaders(fmt: KvFormat): string {
  if (fmt === 'f32') {
    return /* wgsl */ `
@group(0) @binding(3) var<storage, read_write> kc: array<f32>;
@group(0) @binding(4) var<storage, read_write> vc: array<f32>;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * D); }
fn k4(row: u32, w: u32) -> vec4<f32> {
  let b = row * D + 4u * w;
  return vec4<f32>(kc[b], kc[b + 1u], kc[b + 2u], kc[b + 3u]);
}
fn k_scale(row: u32) -> f32 { return 1.0; }
fn v_val(row: u32, d: u32) -> f32 { return vc[row * D + d]; }
fn store_new(row: u32, lid: u32) {
  for (var i = lid; i < D; i += WG) {
    kc[row * D + i] = new_k[i];
    vc[row * D + i] = new_v[i];
  }
}`;
  }
  return /* wgsl */ `
@group(0) @binding(3) var<storage, read_write> kc: array<u32>;
@group(0) @binding(4) var<storage, read_write> vc: array<u32>;
const RW: u32 = D / 4u;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * (RW + 1u)); }
fn i8_at(w: u32, byte: u32) -> f32 { return f32(bitcast<i32>(w << (24u - 8u * byte)) >> 24u); }
fn k4(row: u32, w: u32) -> vec4<f32> {
  let x = kc[row * RW + w];
  return vec4<f32>(i8_at(x, 0u), i8_at(x, 1u), i8_at(x, 2u), i8_at(x, 3u));
}
fn k_scale(row: u32) -> f32 { return bitcast<f32>(kc[capacity() * NKV * RW + row]); }
fn v_val(row: u32, d: u32) -> f32 {
  return i8_at(vc[row * RW + d / 4u], d % 4u) * bitcast<f32>(vc[capacity() * NKV * RW + row]);
}
// The same quantisation as f32_kv_store (kv-cache.ts): scale = max|x| / 127 per row.
fn quant_word(src: u32, w: u32, inv: f32) -> u32 {
  var word = 0u;
  for (var c = 0u; c < 4u; c++) {
    var x = 0.0;
    if (src == 0u) { x = new_k[4u * w + c]; } else { x = new_v[4u * w + c]; }
    let qv = clamp(round(x * inv), -127.0, 127.0);
    word |= (bitcast<u32>(i32(qv)) & 0xffu) << (8u * c);
  }
  return word;
}
fn store_new(row: u32, lid: u32) {
  let sbase = capacity() * NKV * RW;
  if (lid < 2u) {
    var amax = 0.0;
    for (var i = 0u; i < D; i++) {
      if (lid == 0u) { amax = max(amax, abs(new_k[i])); } else { amax = max(amax, abs(new_v[i])); }
    }
    amax_sh[lid] = amax;
  }
  workgroupBarrier();
  let ka = amax_sh[0];
  let va = amax_sh[1];
  for (var w = lid; w < RW; w += WG) {
    kc[row * RW + w] = quant_word(0u, w, select(0.0, 127.0 / ka, ka > 0.0));
    vc[row * RW + w] = quant_word(1u, w, select(0.0, 127.0 / va, va > 0.0));
  }
  if (lid == 0u) {
    kc[sbase + row] = bitcast<u32>(ka / 127.0);
    vc[sbase + row] = bitcast<u32>(va / 127.0);
  }
}`;
}

/** The split kernels' first lines: kv head g, slice `split` of `nsplit`, its keys [j0, j1) of the n visible. */
const SLICE_WGSL = /* wgsl */ `  let g = wg.x;
  let split = wg.y;
  let nsplit = nwg.y;
  let pos = step.pos0;
  let first = first_key(pos);
  let n = pos - first + 1u;
  let chunk = (n + nsplit - 1u) / nsplit;
  let j0 = min(split * chunk, n);
  let j1 = min(j0 + chunk, n);
  let cap = capacity();`;

/**
 * What both forms of the split kernel declare: the shape constants, bindings 0-2 and 5,
 * first_key and roped (RoPE of element i of a head stored at qkv[base ..], half-split pairs,
 * SPEC §4).
 */
function splitCommon(p: DecodeAttentionParams): string {
  const D = p.headDim;
  return /* wgsl */ `
${STEP_STRUCT}
const D: u32 = ${D}u;
const HALF: u32 = ${D / 2}u;
const NKV: u32 = ${p.kvHeads}u;
const GROUP: u32 = ${p.heads / p.kvHeads}u;
const MAXS: u32 = ${MAX_SPLITS}u;
const SCALE: f32 = ${f32Literal(1 / Math.sqrt(D))};
const K_OFF: u32 = ${p.heads * D}u;
const V_OFF: u32 = ${(p.heads + p.kvHeads) * D}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
${VISIBLE_WGSL}
fn roped(base: u32, i: u32, pos: u32) -> f32 {
  let d = i % HALF;
  let c = table[pos * HALF + d];
  let s = table[arrayLength(&table) / 2u + pos * HALF + d];
  let x1 = qkv[base + d];
  let x2 = qkv[base + d + HALF];
  return select(x2 * c + x1 * s, x1 * c - x2 * s, i < HALF);
}`;
}

export function decodeAttentionSource(p: DecodeAttentionParams): string {
  const D = p.headDim;
  const GROUP = p.heads / p.kvHeads;
  const TPH = threadsPerHead(D);
  const WG = GROUP * TPH;
  const DPT = D / TPH;
  const heads = Array.from({ length: GROUP }, (_, i) => i);
  const dims = Array.from({ length: DPT }, (_, i) => i);
  return /* wgsl */ `${splitCommon(p)}
const H: u32 = ${p.heads}u;
const TPH: u32 = ${TPH}u;
const DPT: u32 = ${DPT}u;
const WG: u32 = ${WG}u;
var<workgroup> q_sh: array<vec4<f32>, ${(GROUP * D) / 4}>;
var<workgroup> new_k: array<f32, ${D}>;
var<workgroup> new_v: array<f32, ${D}>;
var<workgroup> amax_sh: array<f32, 2>;
var<workgroup> sc: array<f32, ${GROUP * WG}>;   // [head][key in tile]: score, then weight
var<workgroup> rows: array<u32, ${WG}>;
var<workgroup> red: array<f32, ${WG}>;
${cacheReaders(p.fmt)}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
${SLICE_WGSL}

  for (var e = lid; e < GROUP * D / 4u; e += WG) {
    let hb = (g * GROUP + (4u * e) / D) * D;
    let i = (4u * e) % D;
    q_sh[e] = vec4<f32>(roped(hb, i, pos), roped(hb, i + 1u, pos), roped(hb, i + 2u, pos), roped(hb, i + 3u, pos));
  }
  if (split == nsplit - 1u) {
    // This slice holds the new token: store its key (after RoPE) and value first.
    for (var i = lid; i < D; i += WG) {
      new_k[i] = roped(K_OFF + g * D, i, pos);
      new_v[i] = qkv[V_OFF + g * D + i];
    }
    workgroupBarrier();
    store_new((pos % cap) * NKV + g, lid);
    storageBarrier();
  }
  workgroupBarrier();

  let hh = lid / TPH;          // this thread's query head in the group (phases 2 and 3)
  let ti = lid % TPH;
  var m = -3.0e38;
  var l = 0.0;
${dims.map((d) => `  var acc${d} = 0.0;`).join('\n')}
  for (var base = j0; base < j1; base += WG) {
    // Phase 1: one key per thread, its score for every head of the group.
    let j = base + lid;
${heads.map((h) => `    var s${h} = -3.0e38;`).join('\n')}
    if (j < j1) {
      let row = ((first + j) % cap) * NKV + g;
      rows[lid] = row;
${heads.map((h) => `      s${h} = 0.0;`).join('\n')}
      for (var w = 0u; w < D / 4u; w++) {
        let kv = k4(row, w);
${heads.map((h) => `        s${h} += dot(q_sh[${(h * D) / 4}u + w], kv);`).join('\n')}
      }
      let ks = k_scale(row);
${heads.map((h) => `      s${h} = s${h} * ks * SCALE;`).join('\n')}
    }
${heads.map((h) => `    sc[${h}u * WG + lid] = s${h};`).join('\n')}
    workgroupBarrier();
    // Phase 2: per head, the tile's max, the weights exp(s - m_new) and their sum.
    let cnt = min(WG, j1 - base);
    var tmax = -3.0e38;
    for (var k = ti; k < cnt; k += TPH) { tmax = max(tmax, sc[hh * WG + k]); }
    red[lid] = tmax;
    workgroupBarrier();
    var m_new = m;
    for (var k = 0u; k < TPH; k++) { m_new = max(m_new, red[hh * TPH + k]); }
    workgroupBarrier();
    var psum = 0.0;
    for (var k = ti; k < cnt; k += TPH) {
      let w = exp(sc[hh * WG + k] - m_new);
      sc[hh * WG + k] = w;
      psum += w;
    }
    red[lid] = psum;
    workgroupBarrier();
    var tsum = 0.0;
    for (var k = 0u; k < TPH; k++) { tsum += red[hh * TPH + k]; }
    let corr = exp(m - m_new);
    l = l * corr + tsum;
    m = m_new;
    // Phase 3: this thread's output dims, over the tile's values.
${dims.map((d) => `    acc${d} *= corr;`).join('\n')}
    for (var k = 0u; k < cnt; k++) {
      let w = sc[hh * WG + k];
      let row = rows[k];
${dims.map((d) => `      acc${d} += w * v_val(row, ti * DPT + ${d}u);`).join('\n')}
    }
    workgroupBarrier();
  }
  let h = g * GROUP + hh;
  let ob = (h * MAXS + split) * (D + 2u);
  if (ti == 0u) {
    part[ob] = m;
    part[ob + 1u] = l;
  }
${dims.map((d) => `  part[ob + 2u + ti * DPT + ${d}u] = acc${d};`).join('\n')}
}`;
}

/** The simple variant's cache readers and its store of the new key and value (one invocation). */
function simpleCacheFns(fmt: KvFormat): string {
  if (fmt === 'f32') {
    return /* wgsl */ `
@group(0) @binding(3) var<storage, read_write> kc: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> vc: array<vec4<f32>>;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * D4); }
fn k4(row: u32, w: u32) -> vec4<f32> { return kc[row * D4 + w]; }
fn k_scale(row: u32) -> f32 { return 1.0; }
fn v4(row: u32, w: u32) -> vec4<f32> { return vc[row * D4 + w]; }
fn store_new(row: u32, g: u32, pos: u32) {
  for (var w = 0u; w < D4; w++) {
    kc[row * D4 + w] = new_k4(g, w, pos);
    vc[row * D4 + w] = new_v4(g, w);
  }
}`;
  }
  return /* wgsl */ `
@group(0) @binding(3) var<storage, read_write> kc: array<u32>;
@group(0) @binding(4) var<storage, read_write> vc: array<u32>;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * (D4 + 1u)); }
fn i8_at(w: u32, byte: u32) -> f32 { return f32(bitcast<i32>(w << (24u - 8u * byte)) >> 24u); }
fn i8x4(x: u32) -> vec4<f32> { return vec4<f32>(i8_at(x, 0u), i8_at(x, 1u), i8_at(x, 2u), i8_at(x, 3u)); }
fn k4(row: u32, w: u32) -> vec4<f32> { return i8x4(kc[row * D4 + w]); }
fn k_scale(row: u32) -> f32 { return bitcast<f32>(kc[capacity() * NKV * D4 + row]); }
fn v4(row: u32, w: u32) -> vec4<f32> { return i8x4(vc[row * D4 + w]) * bitcast<f32>(vc[capacity() * NKV * D4 + row]); }
// The same quantisation as f32_kv_store (kv-cache.ts): scale = max|x| / 127 per row.
fn quant4(x: vec4<f32>, inv: f32) -> u32 {
  let q = vec4<i32>(clamp(round(x * inv), vec4<f32>(-127.0), vec4<f32>(127.0)));
  let b = bitcast<vec4<u32>>(q) & vec4<u32>(0xffu);
  return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}
fn store_new(row: u32, g: u32, pos: u32) {
  var ka = 0.0;
  var va = 0.0;
  for (var w = 0u; w < D4; w++) {
    let k = abs(new_k4(g, w, pos));
    let v = abs(new_v4(g, w));
    ka = max(ka, max(max(k.x, k.y), max(k.z, k.w)));
    va = max(va, max(max(v.x, v.y), max(v.z, v.w)));
  }
  let ki = select(0.0, 127.0 / ka, ka > 0.0);
  let vi = select(0.0, 127.0 / va, va > 0.0);
  for (var w = 0u; w < D4; w++) {
    kc[row * D4 + w] = quant4(new_k4(g, w, pos), ki);
    vc[row * D4 + w] = quant4(new_v4(g, w), vi);
  }
  let sbase = capacity() * NKV * D4;
  kc[sbase + row] = bitcast<u32>(ka / 127.0);
  vc[sbase + row] = bitcast<u32>(va / 127.0);
}`;
}

/** The split kernel of CPU adapters (DecodeAttentionParams.simple). */
export function decodeAttentionSimpleSource(p: DecodeAttentionParams): string {
  const D = p.headDim;
  // q and the accumulator as D/4 vec4 variables (unrolled): private arrays indexed in a loop
  // compile slowly on SwiftShader.
  const ws = Array.from({ length: D / 4 }, (_, w) => w);
  const W = (f: (w: number) => string, sep = '\n') => ws.map(f).join(sep);
  return /* wgsl */ `${splitCommon(p)}
const D4: u32 = ${D / 4}u;
fn roped4(base: u32, w: u32, pos: u32) -> vec4<f32> {
  return vec4<f32>(roped(base, 4u * w, pos), roped(base, 4u * w + 1u, pos), roped(base, 4u * w + 2u, pos), roped(base, 4u * w + 3u, pos));
}
// The new token's key (after RoPE) and value of kv head g, vec4 w.
fn new_k4(g: u32, w: u32, pos: u32) -> vec4<f32> { return roped4(K_OFF + g * D, w, pos); }
fn new_v4(g: u32, w: u32) -> vec4<f32> {
  let b = V_OFF + g * D + 4u * w;
  return vec4<f32>(qkv[b], qkv[b + 1u], qkv[b + 2u], qkv[b + 3u]);
}
${simpleCacheFns(p.fmt)}

@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${SLICE_WGSL}
  // The slice holding the new token stores its key and value before reading any key.
  if (split == nsplit - 1u) { store_new((pos % cap) * NKV + g, g, pos); }
  for (var hh = 0u; hh < GROUP; hh++) {
    let h = g * GROUP + hh;
${W((w) => `    let q${w} = roped4(h * D, ${w}u, pos);
    var a${w} = vec4<f32>(0.0);`)}
    var m = -3.0e38;
    var l = 0.0;
    for (var j = j0; j < j1; j++) {
      let row = ((first + j) % cap) * NKV + g;
      let sc = (${W((w) => `dot(q${w}, k4(row, ${w}u))`, ' + ')}) * k_scale(row) * SCALE;
      let m_new = max(m, sc);
      let corr = exp(m - m_new);
      let pw = exp(sc - m_new);
      l = l * corr + pw;
${W((w) => `      a${w} = a${w} * corr + pw * v4(row, ${w}u);`)}
      m = m_new;
    }
    let ob = (h * MAXS + split) * (D + 2u);
    part[ob] = m;
    part[ob + 1u] = l;
${W((w) => `    part[ob + ${2 + 4 * w}u] = a${w}.x;
    part[ob + ${3 + 4 * w}u] = a${w}.y;
    part[ob + ${4 + 4 * w}u] = a${w}.z;
    part[ob + ${5 + 4 * w}u] = a${w}.w;`)}
  }
}`;
}

export function decodeCombineSource(p: DecodeAttentionParams): string {
  const D = p.headDim;
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const D: u32 = ${D}u;
const MAXS: u32 = ${MAX_SPLITS}u;
const MIN_SLICE: u32 = ${MIN_SLICE}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> sinks: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${VISIBLE_WGSL}

@compute @workgroup_size(${Math.min(D, 256)})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x;
  let pos = step.pos0;
  let n = pos - first_key(pos) + 1u;
  let nsplit = clamp((n + MIN_SLICE - 1u) / MIN_SLICE, 1u, MAXS);
  let sink = bf16_at(sinks[h / 2u], (h & 1u) == 1u);
  var big = sink;
  for (var s = 0u; s < nsplit; s++) { big = max(big, part[(h * MAXS + s) * (D + 2u)]); }
  var den = exp(sink - big);
  for (var s = 0u; s < nsplit; s++) {
    let b = (h * MAXS + s) * (D + 2u);
    den += part[b + 1u] * exp(part[b] - big);
  }
  for (var d = lid; d < D; d += ${Math.min(D, 256)}u) {
    var num = 0.0;
    for (var s = 0u; s < nsplit; s++) {
      let b = (h * MAXS + s) * (D + 2u);
      num += part[b + 2u + d] * exp(part[b] - big);
    }
    out[h * D + d] = num / den;
  }
}`;
}

/** Bytes of the partial-results buffer the split kernel writes for `heads` query heads. */
export function decodePartBytes(heads: number, headDim: number): number {
  return heads * MAX_SPLITS * (headDim + 2) * 4;
}

export class DecodeAttentionKernel {
  readonly key: string;
  readonly combineKey: string;
  readonly pipeline: GPUComputePipeline;
  readonly combine: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: DecodeAttentionParams) {
    if (p.heads % p.kvHeads !== 0) throw new Error(`attention decode: ${p.heads} heads not a multiple of ${p.kvHeads} kv heads`);
    if (p.headDim % 4 !== 0) throw new Error(`attention decode: head dim ${p.headDim} must be a multiple of 4`);
    if (!p.simple && (p.heads / p.kvHeads) * threadsPerHead(p.headDim) > 256) throw new Error(`attention decode: GQA group of ${p.heads / p.kvHeads} heads is too large for one workgroup`);
    checkWindow(p.window);
    // The window comes from the bound Step: the keys (labels, profiles) name it, the pipelines'
    // keys do not, so sliding and full layers share both pipelines.
    const shape = (w?: number) => ({ h: p.heads, kv: p.kvHeads, d: p.headDim, w, simple: p.simple });
    this.key = kernelKey(`f32_${p.fmt}kv_sdpa_decode`, shape(p.window));
    this.combineKey = kernelKey('f32_sdpa_decode_combine', { d: p.headDim, w: p.window });
    this.pipeline = cache.get(kernelKey(`f32_${p.fmt}kv_sdpa_decode`, shape()), () => (p.simple ? decodeAttentionSimpleSource(p) : decodeAttentionSource(p)));
    this.combine = cache.get(kernelKey('f32_sdpa_decode_combine', { d: p.headDim }), () => decodeCombineSource(p));
  }

  /** step: a Step whose window is this kernel's (writeStep); qkv: this token's [q | k | v] before RoPE; part: decodePartBytes; out: f32 [H * D]. */
  bind(
    device: GPUDevice, step: GPUBuffer, qkv: GPUBuffer, table: GPUBuffer, kv: KvCache, part: GPUBuffer, sinks: GPUBuffer, out: GPUBuffer,
  ): { split: GPUBindGroup; combine: GPUBindGroup } {
    if (kv.fmt !== this.p.fmt || kv.nKv !== this.p.kvHeads || kv.headDim !== this.p.headDim) {
      throw new Error(`${this.key}: cache is ${kv.fmt} nKv=${kv.nKv} D=${kv.headDim}`);
    }
    return {
      split: bindBuffers(device, this.pipeline, [step, qkv, table, kv.k, kv.v, part], this.key),
      combine: bindBuffers(device, this.combine, [step, part, sinks, out], this.combineKey),
    };
  }

  /** Records both kernels for the token at `pos` (the value the bound Step holds). */
  encode(pass: GPUComputePassEncoder, bg: { split: GPUBindGroup; combine: GPUBindGroup }, pos: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bg.split);
    pass.dispatchWorkgroups(this.p.kvHeads, decodeSplits(visibleKeys(pos, this.p.window)));
    pass.setPipeline(this.combine);
    pass.setBindGroup(0, bg.combine);
    pass.dispatchWorkgroups(this.p.heads);
  }
}
