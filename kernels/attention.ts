/**
 * f32_{f32|q8}kv_sdpa: prefill (flash) attention with sinks, GQA and an optional sliding window (SPEC §4).
 *
 * For batch token t < step.n_tokens (position pos = step.pos0 + t) and query head h
 * (kv head g = h / (H / nKv)), over the visible keys j (full: 0..pos; sliding W: max(0, pos-W+1)..pos):
 *   s_j = (q . k_j) * scale ;  out = sum_j exp(s_j - m) v_j / (sum_j exp(s_j - m) + exp(sink_h - m))
 * All keys, including this batch's, are read from the KV cache (KvStoreKernel runs first).
 * The online softmax starts from the sink (m = sink, l = 1, no value) and walks only the keys
 * the work item's queries can see: [first visible key of its first query, its last query].
 *
 * Bindings: 0 step: uniform Step; 1 q: array<vec4<f32>> [T, Q_STRIDE / 4] (H heads of D at the
 *   start of each row); 2 kCache, 3 vCache (layout in kv-cache.ts; capacity from arrayLength);
 *   4 sinks: array<u32> (bf16 [H]); 5 out: array<vec4<f32>> [T, H*D / 4].
 *
 * One work item serves all GROUP = H / nKv query heads of a KV head for a tile of query tokens,
 * so each key and value is read (and q8-dequantized) once per tile:
 * - 'tiled' (GPUs): a workgroup of 64 threads per (kv head, BQ = floor(64 / GROUP) tokens), one
 *   thread per query row (q and the output accumulator in registers). K/V tiles of KB keys are
 *   dequantized once into workgroup memory (2 * KB * D * 4 <= 16 KiB) and read by every row.
 * - 'simple' (CPU adapters): no workgroup memory, no barriers. One invocation per (kv head,
 *   SQ = max(1, floor(2 / GROUP)) tokens) keeps its GROUP * SQ query rows (code unrolled over
 *   rows, loops over D) and reads each key row straight from the cache, once for all rows. Few
 *   rows: SwiftShader's compile time grows with the unrolled code (8 rows took 4x as long to
 *   compile as 2). The window is read from the Step (step.window), not baked in: sliding and
 *   full layers share one pipeline.
 * Assumes D % 4 == 0, D <= 128, Q_STRIDE % 4 == 0, H % nKv == 0, n_tokens <= 65535 * BQ.
 */
import { BF16_FNS, checkWindow, STEP_STRUCT } from './common.ts';
import type { KvCache, KvFormat } from './kv-cache.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

/** 'tiled': threads per workgroup (the most query rows a workgroup serves). */
const WG = 64;
/** 'simple': query rows an invocation aims for, and invocations per workgroup. */
const SIMPLE_ROWS = 2;
const SIMPLE_WG = 16;

export interface AttentionParams {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Sliding window W (keys incl. self), or 0 for a full layer. */
  window: number;
  fmt: KvFormat;
  /** Score scale; default 1/sqrt(D). */
  scale?: number;
  /** Floats between tokens in q (default heads * headDim; the q heads start each row). */
  qStride?: number;
  /** 'simple' for CPU (fallback) adapters, where barriers are expensive; default 'tiled'. */
  variant?: 'tiled' | 'simple';
}

/** Query tokens per work item, and keys per workgroup-memory tile ('tiled'). */
export function attentionTiles(p: AttentionParams): { tokens: number; keys: number } {
  const group = p.heads / p.kvHeads;
  if (p.variant === 'simple') return { tokens: Math.max(1, Math.floor(SIMPLE_ROWS / group)), keys: 1 };
  return { tokens: Math.max(1, Math.floor(WG / group)), keys: Math.min(64, Math.floor(2048 / p.headDim)) };
}

/** Cache bindings and readers: k_vec/v_vec(row, i) = 4 values (q8: still unscaled), k_scale/v_scale(row). */
function cacheReaders(fmt: KvFormat): string {
  if (fmt === 'f32') {
    return /* wgsl */ `
@group(0) @binding(2) var<storage, read> kc: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<f32>>;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * D4); }
fn k_vec(row: u32, i: u32) -> vec4<f32> { return kc[row * D4 + i]; }
fn v_vec(row: u32, i: u32) -> vec4<f32> { return vc[row * D4 + i]; }
fn k_scale(row: u32, sbase: u32) -> f32 { return 1.0; }
fn v_scale(row: u32, sbase: u32) -> f32 { return 1.0; }`;
  }
  return /* wgsl */ `
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * (D4 + 1u)); }
// Four int8 (low byte first) as f32, sign-extended by an arithmetic shift.
fn unpack_i8(w: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w << 24u, w << 16u, w << 8u, w)) >> vec4<u32>(24u));
}
fn k_vec(row: u32, i: u32) -> vec4<f32> { return unpack_i8(kc[row * D4 + i]); }
fn v_vec(row: u32, i: u32) -> vec4<f32> { return unpack_i8(vc[row * D4 + i]); }
fn k_scale(row: u32, sbase: u32) -> f32 { return bitcast<f32>(kc[sbase + row]); }
fn v_scale(row: u32, sbase: u32) -> f32 { return bitcast<f32>(vc[sbase + row]); }`;
}

function header(p: AttentionParams): string {
  const D = p.headDim;
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const D4: u32 = ${D / 4}u;
const H: u32 = ${p.heads}u;
const NKV: u32 = ${p.kvHeads}u;
const GROUP: u32 = ${p.heads / p.kvHeads}u;
const SCALE: f32 = ${f32Literal(p.scale ?? 1 / Math.sqrt(D))};
const Q4: u32 = ${(p.qStride ?? p.heads * D) / 4}u;
const BQ: u32 = ${attentionTiles(p).tokens}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> sinks: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
${cacheReaders(p.fmt)}
fn sink(h: u32) -> f32 { return bf16_at(sinks[h / 2u], (h & 1u) == 1u); }
// First key position visible from position pos (step.window: the layer's window, 0 = full).
fn first_key(pos: u32) -> u32 { return select(0u, pos + 1u - step.window, step.window > 0u && pos + 1u > step.window); }`;
}

const range = (n: number) => [...Array(n).keys()];

/** 'tiled': one thread per query row, K/V tiles in workgroup memory shared by the whole group. */
function tiledSource(p: AttentionParams): string {
  const D4 = p.headDim / 4;
  const KB = attentionTiles(p).keys;
  return /* wgsl */ `${header(p)}
const KB: u32 = ${KB}u;
var<workgroup> ks: array<vec4<f32>, ${KB * D4}>; // [key][D / 4], scaled
var<workgroup> vs: array<vec4<f32>, ${KB * D4}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wg.x;
  let t0 = wg.y * BQ;
  let n = step.n_tokens;
  if (t0 >= n) { return; }
  let cap = capacity();
  let sbase = cap * NKV * D4;   // q8: where the scales start
  // This thread's query row: token t0 + lid / GROUP, head g * GROUP + lid % GROUP. Threads past
  // the tile (or the batch) take a valid row, help load, and store nothing.
  let live = lid < BQ * GROUP && t0 + lid / GROUP < n;
  let t = min(t0 + lid / GROUP, n - 1u);
  let h = g * GROUP + lid % GROUP;
  let pos = step.pos0 + t;
  let first = first_key(pos);
  let qb = t * Q4 + h * D4;
  var qr: array<vec4<f32>, D4>;
  var acc: array<vec4<f32>, D4>;
  for (var i = 0u; i < D4; i++) { qr[i] = q[qb + i] * SCALE; acc[i] = vec4<f32>(0.0); }
  var m = sink(h);
  var l = 1.0;
  let lo = first_key(step.pos0 + t0);
  let last = step.pos0 + min(t0 + BQ, n) - 1u;
  for (var kb = lo; kb <= last; kb += KB) {
    for (var e = lid; e < KB * D4; e += ${WG}u) {
      let pk = kb + e / D4;
      var kv = vec4<f32>(0.0);
      var vv = vec4<f32>(0.0);
      if (pk <= last) {
        let row = (pk % cap) * NKV + g;
        kv = k_vec(row, e % D4) * k_scale(row, sbase);
        vv = v_vec(row, e % D4) * v_scale(row, sbase);
      }
      ks[e] = kv;
      vs[e] = vv;
    }
    workgroupBarrier();
    if (live) {
      let cnt = min(KB, last + 1u - kb);
      for (var j = 0u; j < cnt; j++) {
        let pk = kb + j;
        if (pk < first || pk > pos) { continue; }
        let kr = j * D4;
        var s = 0.0;
        for (var i = 0u; i < D4; i++) { s += dot(qr[i], ks[kr + i]); }
        // Branch-free online softmax (a data-dependent rescale branch costs more than the exp).
        let mn = max(m, s);
        let corr = exp(m - mn);
        let pj = exp(s - mn);
        m = mn;
        l = l * corr + pj;
        for (var i = 0u; i < D4; i++) { acc[i] = acc[i] * corr + pj * vs[kr + i]; }
      }
    }
    workgroupBarrier();
  }
  if (live) {
    let inv = 1.0 / l;
    let ob = (t * H + h) * D4;
    for (var i = 0u; i < D4; i++) { out[ob + i] = acc[i] * inv; }
  }
}`;
}

/**
 * 'simple': GROUP * SQ query rows per invocation, unrolled over the rows (loops over D keep the
 * shader small: SwiftShader's compile time grows fast with unrolled code); each key row is read
 * once from the cache and serves every row.
 */
function simpleSource(p: AttentionParams): string {
  const G = p.heads / p.kvHeads;
  const SQ = attentionTiles(p).tokens;
  const rows = range(G * SQ).map((r) => ({ r, tq: Math.floor(r / G), hh: r % G }));
  const R = (f: (x: { r: number; tq: number; hh: number }) => string) => rows.map(f).join('\n');
  const T = (f: (tq: number) => string) => range(SQ).map(f).join('\n');
  return /* wgsl */ `${header(p)}

@compute @workgroup_size(${SIMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // Neighbouring invocations are the kv heads of one token tile: equal key ranges, no divergence.
  let g = gid.x % NKV;
  let t0 = (gid.x / NKV) * BQ;
  let n = step.n_tokens;
  if (t0 >= n) { return; }
  let cap = capacity();
  let sbase = cap * NKV * D4;   // q8: where the scales start
${T((tq) => `  let tk${tq} = min(t0 + ${tq}u, n - 1u);
  let pos${tq} = step.pos0 + tk${tq};
  let first${tq} = first_key(pos${tq});`)}
${R(({ r, tq, hh }) => `  var q${r}: array<vec4<f32>, D4>;
  var a${r}: array<vec4<f32>, D4>;
  var m${r} = sink(g * GROUP + ${hh}u);
  var l${r} = 1.0;
  let qb${r} = tk${tq} * Q4 + (g * GROUP + ${hh}u) * D4;`)}
  for (var i = 0u; i < D4; i++) {
${R(({ r }) => `    q${r}[i] = q[qb${r} + i] * SCALE;
    a${r}[i] = vec4<f32>(0.0);`)}
  }
  for (var pk = first_key(step.pos0 + t0); pk <= pos${SQ - 1}; pk++) {
    let row = (pk % cap) * NKV + g;
${R(({ r }) => `    var s${r} = 0.0;`)}
    for (var i = 0u; i < D4; i++) {
      let kv = k_vec(row, i);
${R(({ r }) => `      s${r} += dot(q${r}[i], kv);`)}
    }
    let ksc = k_scale(row, sbase);
    let vsc = v_scale(row, sbase);
${T((tq) => `    let vis${tq} = pk >= first${tq} && pk <= pos${tq};`)}
${R(({ r, tq }) => `    s${r} *= ksc;
    if (vis${tq} && s${r} > m${r}) {
      let c = exp(m${r} - s${r});
      l${r} *= c;
      for (var i = 0u; i < D4; i++) { a${r}[i] *= c; }
      m${r} = s${r};
    }
    let p${r} = select(0.0, exp(s${r} - m${r}), vis${tq});
    l${r} += p${r};
    let pv${r} = p${r} * vsc;`)}
    for (var i = 0u; i < D4; i++) {
      let vv = v_vec(row, i);
${R(({ r }) => `      a${r}[i] += pv${r} * vv;`)}
    }
  }
${R(({ r, tq, hh }) => `  if (t0 + ${tq}u < n) {
    let ob = (tk${tq} * H + g * GROUP + ${hh}u) * D4;
    for (var i = 0u; i < D4; i++) { out[ob + i] = a${r}[i] / l${r}; }
  }`)}
}`;
}

export function attentionSource(p: AttentionParams): string {
  return p.variant === 'simple' ? simpleSource(p) : tiledSource(p);
}

export class AttentionKernel {
  /** The kernel's name in labels and profiles: the pipeline's key and the window. */
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  private readonly tokensPerItem: number;

  constructor(cache: PipelineCache, readonly p: AttentionParams) {
    const qStride = p.qStride ?? p.heads * p.headDim;
    if (p.headDim % 4 !== 0 || p.headDim > 128) throw new Error(`attention: head dim ${p.headDim} must be a multiple of 4, at most 128`);
    if (p.heads % p.kvHeads !== 0) throw new Error(`attention: ${p.heads} heads not a multiple of ${p.kvHeads} kv heads`);
    if (qStride % 4 !== 0 || qStride < p.heads * p.headDim) throw new Error(`attention: q stride ${qStride} must be a multiple of 4, at least ${p.heads * p.headDim}`);
    if (p.heads / p.kvHeads > WG) throw new Error(`attention: more than ${WG} query heads per kv head`);
    checkWindow(p.window);
    this.tokensPerItem = attentionTiles(p).tokens;
    const simple = p.variant === 'simple';
    const shape = (w?: number) => ({ h: p.heads, kv: p.kvHeads, d: p.headDim, w, s: p.scale, qs: p.qStride, simple });
    // The window comes from the bound Step (step.window), so sliding and full layers share the
    // pipeline; the key (labels, profiles) still names it.
    this.key = kernelKey(`f32_${p.fmt}kv_sdpa`, shape(p.window));
    this.pipeline = cache.get(kernelKey(`f32_${p.fmt}kv_sdpa`, shape()), () => attentionSource(p));
  }

  /** step: a Step whose window is this kernel's (writeStep); q f32 [T, qStride] (after RoPE); sinks: raw bf16 [H]; out f32 [T, H*D]. */
  bind(
    device: GPUDevice, step: GPUBuffer | GPUBufferBinding, q: GPUBuffer, kv: KvCache, sinks: GPUBuffer, out: GPUBuffer,
  ): GPUBindGroup {
    if (kv.fmt !== this.p.fmt || kv.nKv !== this.p.kvHeads || kv.headDim !== this.p.headDim) {
      throw new Error(`${this.key}: cache is ${kv.fmt} nKv=${kv.nKv} D=${kv.headDim}`);
    }
    return bindBuffers(device, this.pipeline, [step, q, kv.k, kv.v, sinks, out], this.key);
  }

  /** Attends `tokens` batch rows; rows at or past step.n_tokens are skipped. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    if (tokens < 1) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    const tiles = Math.ceil(tokens / this.tokensPerItem);
    if (this.p.variant === 'simple') pass.dispatchWorkgroups(Math.ceil((tiles * this.p.kvHeads) / SIMPLE_WG));
    else pass.dispatchWorkgroups(this.p.kvHeads, tiles);
  }
}
