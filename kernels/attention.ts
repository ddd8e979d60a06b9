/**
 * f32_{f32|q8}kv_sdpa: attention with sinks, GQA and an optional sliding window (SPEC §4).
 *
 * For batch token t < step.n_tokens (position pos = step.pos0 + t) and query head h
 * (kv head g = h / (H / nKv)), over the visible keys j (full: 0..pos; sliding W: max(0, pos-W+1)..pos):
 *   s_j = (q . k_j) * scale ;  out = sum_j exp(s_j - m) v_j / (sum_j exp(s_j - m) + exp(sink_h - m))
 * All keys, including this batch's, are read from the KV cache (KvStoreKernel runs first).
 *
 * Bindings: 0 step: uniform Step; 1 q: array<f32> [T, Q_STRIDE] (H heads of D at the start of each row); 2 kCache, 3 vCache (layout in
 *   kv-cache.ts; capacity from arrayLength); 4 sinks: array<u32> (bf16 [H]); 5 out: array<f32> [T, H*D].
 * One workgroup of 64 threads per (h, t): grid (H, T). Keys go in tiles of 64 (one per thread for
 * the score), with an online softmax (running max and sum, started at the sink) so any number
 * of keys works in fixed workgroup memory; each thread owns output dims lid and lid + 64.
 * Assumes D <= 128, D % 4 == 0 for q8, H % nKv == 0.
 */
import { BF16_FNS, STEP_STRUCT } from './common.ts';
import type { KvCache, KvFormat } from './kv-cache.ts';
import { bindBuffers, f32Literal, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 64;

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
}

/** WGSL helpers reading the cache: k_dot(row) = q . k[row] (unscaled), v_at(row, d). */
function cacheReaders(fmt: KvFormat): string {
  if (fmt === 'f32') {
    return /* wgsl */ `
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * D); }
fn k_dot(row: u32, sbase: u32) -> f32 {
  var s = 0.0;
  let b = row * D;
  for (var i = 0u; i < D; i++) { s += q_sh[i] * kc[b + i]; }
  return s;
}
fn v_at(row: u32, d: u32, sbase: u32) -> f32 { return vc[row * D + d]; }`;
  }
  return /* wgsl */ `
@group(0) @binding(2) var<storage, read> kc: array<u32>;
@group(0) @binding(3) var<storage, read> vc: array<u32>;
const RW: u32 = D / 4u;
fn capacity() -> u32 { return arrayLength(&kc) / (NKV * (RW + 1u)); }
fn i8_at(w: u32, byte: u32) -> f32 { return f32(bitcast<i32>(w << (24u - 8u * byte)) >> 24u); }
fn k_dot(row: u32, sbase: u32) -> f32 {
  var s = 0.0;
  let b = row * RW;
  for (var w = 0u; w < RW; w++) {
    let word = kc[b + w];
    let i = 4u * w;
    s += q_sh[i] * i8_at(word, 0u) + q_sh[i + 1u] * i8_at(word, 1u)
       + q_sh[i + 2u] * i8_at(word, 2u) + q_sh[i + 3u] * i8_at(word, 3u);
  }
  return s * bitcast<f32>(kc[sbase + row]);
}
fn v_at(row: u32, d: u32, sbase: u32) -> f32 {
  return i8_at(vc[row * RW + d / 4u], d % 4u) * bitcast<f32>(vc[sbase + row]);
}`;
}

export function attentionSource(p: AttentionParams): string {
  const D = p.headDim;
  const scale = p.scale ?? 1 / Math.sqrt(D);
  const dims = D > WG ? [0, WG] : [0]; // output dims owned by a thread: lid + each
  return /* wgsl */ `
${STEP_STRUCT}
${BF16_FNS}
const D: u32 = ${D}u;
const H: u32 = ${p.heads}u;
const NKV: u32 = ${p.kvHeads}u;
const GROUP: u32 = ${p.heads / p.kvHeads}u;
const WINDOW: u32 = ${p.window}u;   // 0: full layer
const SCALE: f32 = ${f32Literal(scale)};
const Q_STRIDE: u32 = ${p.qStride ?? p.heads * D}u;
const WG: u32 = ${WG}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> sinks: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
var<workgroup> q_sh: array<f32, D>;
var<workgroup> p_sh: array<f32, WG>;
var<workgroup> red: array<f32, WG>;
${cacheReaders(p.fmt)}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x;
  let t = wg.y;
  if (t >= step.n_tokens) { return; }
  let g = h / GROUP;
  let pos = step.pos0 + t;
  var first = 0u;
  if (WINDOW > 0u && pos + 1u > WINDOW) { first = pos + 1u - WINDOW; }
  let n = pos - first + 1u;
  let cap = capacity();
  let sbase = cap * NKV * (D / 4u);   // q8: where the scales start
  let qo = (t * H + h) * D;
  let qi = t * Q_STRIDE + h * D;
  for (var i = lid; i < D; i += WG) { q_sh[i] = q[qi + i]; }
  workgroupBarrier();

  // Running max m and denominator l start at the sink: exp(sink - sink) = 1, no value.
  var m = bf16_at(sinks[h / 2u], (h & 1u) == 1u);
  var l = 1.0;
${dims.map((o) => `  var acc${o} = 0.0;`).join('\n')}
  for (var base = 0u; base < n; base += WG) {
    let j = base + lid;
    var s = -3.0e38;
    if (j < n) { s = k_dot(((first + j) % cap) * NKV + g, sbase) * SCALE; }
    red[lid] = s;
    workgroupBarrier();
    for (var r = WG / 2u; r > 0u; r >>= 1u) {
      if (lid < r) { red[lid] = max(red[lid], red[lid + r]); }
      workgroupBarrier();
    }
    let m_new = max(m, red[0]);
    workgroupBarrier();
    let pj = select(0.0, exp(s - m_new), j < n);
    p_sh[lid] = pj;
    red[lid] = pj;
    workgroupBarrier();
    for (var r = WG / 2u; r > 0u; r >>= 1u) {
      if (lid < r) { red[lid] += red[lid + r]; }
      workgroupBarrier();
    }
    let corr = exp(m - m_new);
    l = l * corr + red[0];
    m = m_new;
    let cnt = min(WG, n - base);
${dims.map((o) => `    acc${o} *= corr;`).join('\n')}
    for (var jj = 0u; jj < cnt; jj++) {
      let row = ((first + base + jj) % cap) * NKV + g;
      let pw = p_sh[jj];
${dims.map((o) => `      if (lid + ${o}u < D) { acc${o} += pw * v_at(row, lid + ${o}u, sbase); }`).join('\n')}
    }
    workgroupBarrier();
  }
  let inv = 1.0 / l;
${dims.map((o) => `  if (lid + ${o}u < D) { out[qo + lid + ${o}u] = acc${o} * inv; }`).join('\n')}
}`;
}

export class AttentionKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: AttentionParams) {
    if (p.headDim > 2 * WG) throw new Error(`attention: head dim ${p.headDim} > ${2 * WG}`);
    if (p.heads % p.kvHeads !== 0) throw new Error(`attention: ${p.heads} heads not a multiple of ${p.kvHeads} kv heads`);
    if (p.fmt === 'q8' && p.headDim % 4 !== 0) throw new Error(`attention: q8 cache needs head dim % 4 == 0`);
    this.key = kernelKey(`f32_${p.fmt}kv_sdpa`, { h: p.heads, kv: p.kvHeads, d: p.headDim, w: p.window, s: p.scale, qs: p.qStride });
    this.pipeline = cache.get(this.key, () => attentionSource(p));
  }

  /** q f32 [T, H, D] (after RoPE); sinks: raw bf16 [H]; out f32 [T, H*D]. */
  bind(
    device: GPUDevice, step: GPUBuffer | GPUBufferBinding, q: GPUBuffer, kv: KvCache, sinks: GPUBuffer, out: GPUBuffer,
  ): GPUBindGroup {
    if (kv.fmt !== this.p.fmt || kv.nKv !== this.p.kvHeads || kv.headDim !== this.p.headDim) {
      throw new Error(`${this.key}: cache is ${kv.fmt} nKv=${kv.nKv} D=${kv.headDim}`);
    }
    return bindBuffers(device, this.pipeline, [step, q, kv.k, kv.v, sinks, out], this.key);
  }

  /** Attends `tokens` batch rows (at most 65535); rows at or past step.n_tokens are skipped. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(this.p.heads, tokens);
  }
}
