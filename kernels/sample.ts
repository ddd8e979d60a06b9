/**
 * f32_sample: picks the next token id from one row of logits, on the GPU, as engine/sampling.ts
 * defines it (greedy, or temperature + top-k + top-p, Gumbel-max with counter-based noise).
 *
 * Bindings: 0 logits: array<f32> (rows of V, row r at element offset + r * V);
 *           1 params: uniform SampleParams (SAMPLE_PARAMS_BYTES, see writeSampleParams);
 *           2 out: array<u32>, out[out_index + r] = the token drawn from row r.
 * One workgroup per row (256 threads; fewer for a vocabulary under 256); workgroup r uses step + r.
 * V is a compile-time constant (any value >= 1). Logits must not be NaN or +inf; -inf logits are
 * never drawn (unless all are).
 *
 * No sort: the top-k and top-p thresholds are found by bisection over the f32 bit patterns of the
 * logits (mapped to order-preserving u32 keys), so each search takes at most 32 passes over the
 * row, each a parallel count (top-k) or a parallel sum of exp((x - max) / T) (top-p); a search
 * stops early once a single token separates "enough" from "too few". The result is exact: the
 * threshold is the k-th largest logit, or the logit where the descending cumulative mass reaches
 * top_p; every token equal to a threshold is kept.
 */
import { bindBuffers, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 256;

/** How a token is drawn (engine/sampling.ts DrawParams has this shape and defines it). */
export interface DrawParams {
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k largest logits; 0 = off. */
  topK: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP: number;
  seed: number;
}

/** Byte size of the SampleParams uniform. */
export const SAMPLE_PARAMS_BYTES = 32;

export interface SampleKernelParams {
  vocab: number;
}

/** Threads per workgroup: 256, or the next power of two >= V for small vocabularies. */
function workgroupSize(vocab: number): number {
  return Math.min(WG, 2 ** Math.ceil(Math.log2(vocab)));
}

/** The SampleParams uniform (SAMPLE_PARAMS_BYTES; written by writeSampleParams). */
export const SAMPLE_PARAMS_STRUCT = /* wgsl */ `
struct SampleParams {
  temperature: f32, // 0 = greedy
  top_k: u32,       // 0 = off
  top_p: f32,       // 1 = off
  seed: u32,
  step: u32,        // draw counter: fresh noise per token
  out_index: u32,   // out[out_index + row] receives the token id
  offset: u32,      // element offset of row 0 in logits
  _pad: u32,
}`;

/**
 * The Gumbel-max score of logit x at vocabulary index i, for row \`row\` of a draw: the same hash
 * and formula as engine/sampling.ts (pcgHash, drawKey, drawUniform, gumbelScore). Needs \`prm\`.
 */
export const SAMPLE_NOISE_FNS = /* wgsl */ `
fn pcg(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn uniform01(key: u32, i: u32) -> f32 {
  return (f32(pcg(pcg(i) ^ key) >> 9u) + 0.5) * (1.0 / 8388608.0);
}
fn gumbel_score_row(x: f32, i: u32, row: u32) -> f32 {
  let key = pcg(pcg(prm.seed) ^ (prm.step + row));
  return x / prm.temperature - log(-log(uniform01(key, i)));
}
fn gumbel_score(x: f32, i: u32) -> f32 { return gumbel_score_row(x, i, 0u); }`;

/** True when a draw is the argmax of per-row scores (greedy, or Gumbel-max over every token). */
export function drawsFromCandidates(params: DrawParams): boolean {
  return params.temperature === 0 || params.topK === 1 || (params.topK === 0 && params.topP >= 1);
}

export function sampleSource(p: SampleKernelParams): string {
  const wg = workgroupSize(p.vocab);
  // Reductions go through G groups of S threads (two barriers instead of log2(WG)).
  const g = 2 ** Math.ceil(Math.log2(wg) / 2);
  return /* wgsl */ `
${SAMPLE_PARAMS_STRUCT}
const V: u32 = ${p.vocab}u;
const WG: u32 = ${wg}u;
const G: u32 = ${g}u;
const S: u32 = ${wg / g}u;
const NONE: u32 = 0xffffffffu;
const NEG_INF_KEY: u32 = 0x007fffffu; // key_of(-inf)
const SUM: u32 = 0u;
const BEST: u32 = 1u;
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<uniform> prm: SampleParams;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

// Per-thread partials: SUM reduces (f, u) = (mass, count) by addition; BEST reduces (f, u) =
// (value, index) by argmax (NONE = empty, ties to the lower index) and k by min.
struct Acc { f: f32, u: u32, k: u32 }
var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> red_k: array<u32, WG>;
var<workgroup> acc: Acc;

// Order-preserving map f32 -> u32 (finite values and +-inf): a bisection on keys ends on
// adjacent floats after at most 32 halvings.
fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}
fn from_key(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k >> 31u) == 1u));
}

${SAMPLE_NOISE_FNS}

fn merge(op: u32, a: u32, b: u32) {
  if (op == SUM) {
    red_f[a] += red_f[b];
    red_u[a] += red_u[b];
    return;
  }
  let j = red_u[b];
  let i = red_u[a];
  if (j != NONE && (i == NONE || red_f[b] > red_f[a] || (red_f[b] == red_f[a] && j < i))) {
    red_f[a] = red_f[b];
    red_u[a] = j;
  }
  red_k[a] = min(red_k[a], red_k[b]);
}
// Reduces red_* (each thread has written its own slot) for every thread.
fn reduce(lid: u32, op: u32) -> Acc {
  workgroupBarrier();
  if (lid < G) {
    for (var j = 1u; j < S; j++) { merge(op, lid * S, lid * S + j); }
  }
  workgroupBarrier();
  if (lid == 0u) {
    for (var j = 1u; j < G; j++) { merge(op, 0u, j * S); }
    acc = Acc(red_f[0], red_u[0], red_k[0]);
  }
  return workgroupUniformLoad(&acc);
}

// (softmax mass if with_mass, count) of the tokens with logit >= t; mass is unnormalised.
fn above(lid: u32, base: u32, t: f32, mx: f32, with_mass: bool) -> Acc {
  var m = 0.0;
  var c = 0u;
  for (var i = lid; i < V; i += WG) {
    let x = logits[base + i];
    if (x >= t) {
      c += 1u;
      if (with_mass) { m += exp((x - mx) / prm.temperature); }
    }
  }
  red_f[lid] = m;
  red_u[lid] = c;
  return reduce(lid, SUM);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  let base = prm.offset + row * V;

  // Pass 1: argmax (lowest index on ties) and the smallest finite logit (as a key).
  var bv = 0.0;
  var bi = NONE;
  var lk = NONE;
  for (var i = lid; i < V; i += WG) {
    let x = logits[base + i];
    if (bi == NONE || x > bv) { bv = x; bi = i; }
    let k = key_of(x);
    if (k > NEG_INF_KEY) { lk = min(lk, k); }
  }
  red_f[lid] = bv;
  red_u[lid] = bi;
  red_k[lid] = lk;
  let first = reduce(lid, BEST);
  if (prm.temperature == 0.0 || prm.top_k == 1u || first.k == NONE) {
    if (lid == 0u) { out[prm.out_index + row] = first.u; }
    return;
  }
  let mx = first.f;
  let max_key = key_of(mx);

  // Bisections keep lo (the kept set is x >= from_key(lo)) and hi (too few / too little) and
  // stop once [lo, hi) holds a single token: the kept set is then final.
  // top-k: the largest key with count(x >= key) >= k.
  var thr_key = first.k;
  if (prm.top_k > 0u && prm.top_k < V) {
    var lo = thr_key;
    var hi = max_key;
    var c_lo = above(lid, base, from_key(lo), mx, false).u;
    var c_hi = above(lid, base, mx, mx, false).u;
    if (c_hi >= prm.top_k) { lo = hi; }
    // c_lo < k: fewer finite logits than k, keep them all.
    while (c_lo > prm.top_k && c_hi < prm.top_k && hi - lo > 1u) {
      let mid = lo + (hi - lo) / 2u;
      let c = above(lid, base, from_key(mid), mx, false).u;
      if (c >= prm.top_k) { lo = mid; c_lo = c; } else { hi = mid; c_hi = c; }
    }
    thr_key = lo;
  }

  // top-p within the top-k set: the largest key with mass(x >= key) >= top_p * mass(top-k set).
  if (prm.top_p < 1.0) {
    let all = above(lid, base, from_key(thr_key), mx, true);
    let goal = prm.top_p * all.f;
    var lo = thr_key;
    var hi = max_key;
    var c_lo = all.u;
    let at_max = above(lid, base, mx, mx, true);
    var c_hi = at_max.u;
    if (at_max.f >= goal) { lo = hi; c_lo = c_hi; }
    while (c_lo - c_hi > 1u && hi - lo > 1u) {
      let mid = lo + (hi - lo) / 2u;
      let a = above(lid, base, from_key(mid), mx, true);
      if (a.f >= goal) { lo = mid; c_lo = a.u; } else { hi = mid; c_hi = a.u; }
    }
    thr_key = lo;
  }

  // Gumbel-max over the kept tokens.
  let thr = from_key(thr_key);
  var sv = 0.0;
  var si = NONE;
  for (var i = lid; i < V; i += WG) {
    let x = logits[base + i];
    if (x >= thr) {
      let s = gumbel_score_row(x, i, row);
      if (si == NONE || s > sv) { sv = s; si = i; }
    }
  }
  red_f[lid] = sv;
  red_u[lid] = si;
  red_k[lid] = 0u;
  let pick = reduce(lid, BEST);
  if (lid == 0u) { out[prm.out_index + row] = pick.u; }
}`;
}

export class SampleKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: SampleKernelParams) {
    if (!Number.isInteger(p.vocab) || p.vocab < 1) throw new RangeError(`f32_sample: vocab must be an integer >= 1, got ${p.vocab}`);
    this.key = kernelKey('f32_sample', { v: p.vocab });
    this.pipeline = cache.get(this.key, () => sampleSource(p));
  }

  bind(
    device: GPUDevice,
    logits: GPUBuffer | GPUBufferBinding,
    params: GPUBuffer | GPUBufferBinding,
    out: GPUBuffer | GPUBufferBinding,
  ): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [logits, params, out], this.key);
  }

  /** Draws `rows` tokens (at most 65535: one workgroup each), row r with step + r. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, rows = 1): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(rows);
  }
}

export interface SampleDraw {
  /** Draw counter of row 0. */
  step: number;
  /** out[outIndex + r] receives row r's token. */
  outIndex?: number;
  /** Element offset of row 0 in the logits binding. */
  offset?: number;
}

/** The SampleParams uniform bytes; `params` must have passed validateSampling. */
export function sampleParamsData(params: DrawParams, draw: SampleDraw): ArrayBuffer {
  const data = new ArrayBuffer(SAMPLE_PARAMS_BYTES);
  const f = new Float32Array(data);
  const u = new Uint32Array(data);
  f[0] = params.temperature;
  u[1] = Math.min(params.topK, 0xffffffff);
  f[2] = params.topP;
  u[3] = params.seed >>> 0;
  u[4] = draw.step >>> 0;
  u[5] = draw.outIndex ?? 0;
  u[6] = draw.offset ?? 0;
  return data;
}

export function writeSampleParams(device: GPUDevice, buf: GPUBuffer, params: DrawParams, draw: SampleDraw, byteOffset = 0): void {
  device.queue.writeBuffer(buf, byteOffset, sampleParamsData(params, draw));
}

/**
 * f32_sample_candidates: the draw from per-workgroup candidates (matvec.ts with `candidates`):
 * out[prm.out_index] = the row of the best (score, row) pair, ties to the lower row; NaN scores
 * are never chosen (row 0 if every score is NaN). Valid when
 * drawsFromCandidates(params): the candidates' scores then already are the logits (greedy) or
 * the Gumbel-max scores over every token.
 *
 * Bindings: 0 cand: array<u32> [2 * NC] (score bits, row); 1 params: SampleParams; 2 out: array<u32>.
 * One workgroup of 256 threads.
 */
export function sampleCandidatesSource(candidates: number, simple = false): string {
  if (simple) return sampleCandidatesSimpleSource(candidates);
  return /* wgsl */ `
${SAMPLE_PARAMS_STRUCT}
const NC: u32 = ${candidates}u;
const WG: u32 = ${WG}u;
const NONE: u32 = 0xffffffffu;
@group(0) @binding(0) var<storage, read> cand: array<u32>;
@group(0) @binding(1) var<uniform> prm: SampleParams;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

// NaN scores are never taken (tested on the bits: a compiler may assume floats are never NaN).
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  let number = (bitcast<u32>(v) & 0x7fffffffu) <= 0x7f800000u;
  return i != NONE && number && (bi == NONE || v > bv || (v == bv && i < bi));
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var bv = 0.0;
  var bi = NONE;
  for (var c = lid; c < NC; c += WG) {
    let v = bitcast<f32>(cand[2u * c]);
    let i = cand[2u * c + 1u];
    if (better(v, i, bv, bi)) { bv = v; bi = i; }
  }
  red_v[lid] = bv;
  red_i[lid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s && better(red_v[lid + s], red_i[lid + s], red_v[lid], red_i[lid])) {
      red_v[lid] = red_v[lid + s];
      red_i[lid] = red_i[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) { out[prm.out_index] = select(red_i[0], 0u, red_i[0] == NONE); }
}`;
}

/**
 * The same draw on CPU adapters: one invocation scans every candidate (no workgroup memory, no
 * barriers, which SwiftShader runs as coroutines), in the same order of preference.
 */
function sampleCandidatesSimpleSource(candidates: number): string {
  return /* wgsl */ `
${SAMPLE_PARAMS_STRUCT}
const NC: u32 = ${candidates}u;
const NONE: u32 = 0xffffffffu;
@group(0) @binding(0) var<storage, read> cand: array<u32>;
@group(0) @binding(1) var<uniform> prm: SampleParams;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(1)
fn main() {
  var bv = 0.0;
  var bi = NONE;
  for (var c = 0u; c < NC; c++) {
    let v = bitcast<f32>(cand[2u * c]);
    let i = cand[2u * c + 1u];
    // NaN scores are never taken (tested on the bits); ties go to the lower row.
    let number = (bitcast<u32>(v) & 0x7fffffffu) <= 0x7f800000u;
    if (i != NONE && number && (bi == NONE || v > bv || (v == bv && i < bi))) { bv = v; bi = i; }
  }
  out[prm.out_index] = select(bi, 0u, bi == NONE);
}`;
}

export class SampleCandidatesKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  /** `simple`: the one-invocation scan of CPU adapters. */
  constructor(cache: PipelineCache, readonly candidates: number, readonly simple = false) {
    if (!Number.isInteger(candidates) || candidates < 1) throw new RangeError(`f32_sample_candidates: candidates must be an integer >= 1, got ${candidates}`);
    this.key = kernelKey('f32_sample_candidates', { n: candidates, simple });
    this.pipeline = cache.get(this.key, () => sampleCandidatesSource(candidates, simple));
  }

  bind(device: GPUDevice, cand: GPUBuffer | GPUBufferBinding, params: GPUBuffer | GPUBufferBinding, out: GPUBuffer | GPUBufferBinding): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [cand, params, out], this.key);
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(1);
  }
}
