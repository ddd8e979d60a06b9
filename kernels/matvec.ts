/**
 * f32_bf16w_matvec: the decode (one token) matrix-vector product with the epilogues decode fuses.
 *
 *   out[OFFSET + o] (= or +=) s * (W[o, :] . (x * g)) (+ b[o])        for o < N
 *
 * With `normEps` the RMSNorm before the projection is folded in: g is the norm's bf16 weight and
 * s = 1 / sqrt(mean(x^2) + eps); otherwise g = 1, s = 1. W is bf16 [N, K], possibly split in
 * row chunks over several bindings (lm_head over the binding limit).
 * With `candidates`, workgroup w also writes the best (score, row) among its rows to
 * cand[2w], cand[2w + 1] (score as f32 bits), score being the logit for greedy draws and
 * logit / T + Gumbel noise otherwise (sample.ts: SAMPLE_NOISE_FNS), so sampling reads one
 * candidate per workgroup instead of the whole vocabulary.
 *
 * Bindings, in order: x: array<vec4<f32>> [K/4]; out: array<f32>; one weight binding per chunk
 * (array<vec4<u32>>, 8 bf16 each); then bias (bf16 [N] as array<u32>) if `bias`; the norm weight
 * (bf16 [K]) if `normEps`; cand: array<u32> and the SampleParams uniform if `candidates`.
 *
 * A workgroup of 256 threads computes ROWS rows, LANES threads per row striding over K, 8 values
 * per 16-byte load. x (normalised and scaled by g) is staged once per workgroup in workgroup
 * memory when `stageX` (the engine sets it when K floats fit the adapter's limit). A row's LANES
 * partial sums meet through workgroup memory, or with `subgroups` through subgroup shuffles and
 * adds (then threads are numbered by subgroup slot, common.ts subgroupFns, not by local index).
 * Assumes K % 8 == 0.
 */
import { BF16_FNS, requireSubgroups, SUBGROUP_ARGS, subgroupFns } from './common.ts';
import { bindBuffers, f32Literal, grid2d, kernelKey, type PipelineCache } from './pipeline-cache.ts';
import { SAMPLE_NOISE_FNS, SAMPLE_PARAMS_STRUCT } from './sample.ts';

const WG = 256;
/** Default rows per workgroup ('tiled'): enough workgroups for a 2880-row projection. */
export const MATVEC_ROWS = 8;

export interface MatvecParams {
  inDim: number;
  /** Rows of each weight chunk (one binding each); N is their sum. */
  chunkRows: number[];
  bias: boolean;
  /** out += result (adding a projection into the residual stream). */
  accumulate: boolean;
  /** Fold in the RMSNorm with this epsilon (and bind its weight). */
  normEps?: number;
  /** Where row 0 lands in `out` (default 0). */
  outOffset?: number;
  /** Write per-workgroup sampling candidates (lm_head). */
  candidates?: boolean;
  /** Stage x in workgroup memory (K * 4 bytes). */
  stageX: boolean;
  /**
   * Rows per workgroup ('tiled'; a power of two from 1 to 256, default MATVEC_ROWS). Each
   * workgroup reads all of x (K floats, from cache): more rows per workgroup read it less often
   * per weight byte (lm_head, 201088 rows, uses 32), fewer give small projections more workgroups.
   */
  rowsPerGroup?: number;
  /**
   * 'simple': a few rows per invocation, no workgroup memory or barriers, one candidate per row;
   * for CPU (fallback) adapters such as SwiftShader, where a barrier costs far more than the
   * arithmetic. GPUs use the default 'tiled'.
   */
  variant?: 'tiled' | 'simple';
  /**
   * 'q8': each weight chunk holds int8 rows with an f32 scale per 32 values (engine/quant-q8.ts:
   * int8 [rows, K] then f32 [rows, K/32] in the same buffer); K % 32 == 0. Default 'bf16'.
   */
  weights?: 'bf16' | 'q8';
  /**
   * 'tiled' only: reduce the row dot products (and the norm's sum of squares) with subgroup
   * operations (common.ts subgroupFns) instead of through workgroup memory. The device must
   * have been granted `subgroups`; the engine sets it on GPUs that offer them.
   */
  subgroups?: boolean;
}

const SIMPLE_WG = 64;
/**
 * 'simple': rows per invocation. The invocation normalises x once and, for bf16 rows of one
 * chunk, reads each x value once for all of them (one pass over K with SIMPLE_RR accumulators),
 * where one row per invocation read x, its norm weight and its sum of squares again per row.
 */
const SIMPLE_RR = 4;

/** Sampling candidates a matvec over `rows` rows writes: one per workgroup, or one per row ('simple'). */
export function matvecCandidates(rows: number, variant: 'tiled' | 'simple' = 'tiled', rowsPerGroup = MATVEC_ROWS): number {
  return variant === 'simple' ? rows : Math.ceil(rows / rowsPerGroup);
}

/** Workgroup memory a matvec over K inputs uses when it stages x. */
export function matvecStageBytes(inDim: number, rowsPerGroup = MATVEC_ROWS): number {
  return inDim * 4 + 2 * WG * 4 + rowsPerGroup * 4;
}

export function matvecSource(p: MatvecParams): string {
  const simple = p.variant === 'simple';
  const ROWS = p.rowsPerGroup ?? MATVEC_ROWS;
  const LANES = WG / ROWS;
  const K = p.inDim;
  const chunks = p.chunkRows;
  const N = chunks.reduce((a, b) => a + b, 0);
  const norm = p.normEps !== undefined;
  let b = 2 + chunks.length;
  const bindings = [
    '@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;',
    `@group(0) @binding(1) var<storage, read_write> out: array<f32>;`,
    ...chunks.map((_, c) => `@group(0) @binding(${2 + c}) var<storage, read> w${c}: array<vec4<u32>>;`),
    p.bias ? `@group(0) @binding(${b++}) var<storage, read> bias: array<u32>;` : '',
    norm ? `@group(0) @binding(${b++}) var<storage, read> gain: array<u32>;` : '',
    p.candidates ? `@group(0) @binding(${b++}) var<storage, read_write> cand: array<u32>;` : '',
    p.candidates ? `@group(0) @binding(${b++}) var<uniform> prm: SampleParams;` : '',
  ];
  const gainOf = norm
    ? 'let gw = vec2<u32>(gain[2u * i], gain[2u * i + 1u]); return vec4<f32>(bf16_lo(gw.x), bf16_hi(gw.x), bf16_lo(gw.y), bf16_hi(gw.y));'
    : 'return vec4<f32>(1.0);';
  // Row dot products: the chunk holding row o, each a compile-time branch.
  let start = 0;
  const rowDot = chunks.map((rows, c) => {
    const s = start;
    start += rows;
    return `${c > 0 ? ' else ' : ''}if (o < ${s + rows}u) { acc = dot_row_w${c}(o - ${s}u, lane); }`;
  }).join('');
  const q8 = p.weights === 'q8';
  const dotFns = chunks.map((rows, c) => q8 ? /* wgsl */ `
// Row \`row\` of int8 chunk ${c}: 16 values per vec4<u32>, one f32 scale per 32 (two vec4s).
fn dot_row_w${c}(row: u32, lane: u32) -> f32 {
  var a = 0.0;
  let base = row * K16;
  let sbase = ${(rows * K) / 4}u + row * (K / 32u);   // word index of the row's first scale
  for (var u = lane; u < K16; u += LANES) {
    let w = w${c}[base + u];
    let si = sbase + u / 2u;
    let sc = bitcast<f32>(w${c}[si / 4u][si % 4u]);
    a += sc * (dot(i8x4(w.x), xv(4u * u)) + dot(i8x4(w.y), xv(4u * u + 1u))
             + dot(i8x4(w.z), xv(4u * u + 2u)) + dot(i8x4(w.w), xv(4u * u + 3u)));
  }
  return a;
}` : /* wgsl */ `
fn dot_row_w${c}(row: u32, lane: u32) -> f32 {
  var a = 0.0;
  let base = row * K8;
  for (var u = lane; u < K8; u += LANES) {
    let w = w${c}[base + u];
    a += dot(bf16x4(w.x, w.y), xv(2u * u)) + dot(bf16x4(w.z, w.w), xv(2u * u + 1u));
  }
  return a;
}`).join('');
  // 'simple', bf16: SIMPLE_RR rows of one chunk in one pass over K (x read once for all).
  const dot4Fns = simple && !q8 ? chunks.map((_, c) => /* wgsl */ `
fn dot4_w${c}(row: u32) -> vec4<f32> {
  var a = vec4<f32>(0.0);
  let b = row * K8;
  for (var u = 0u; u < K8; u++) {
    let xl = xv(2u * u);
    let xh = xv(2u * u + 1u);
    let p = w${c}[b + u];
    let q = w${c}[b + K8 + u];
    let r = w${c}[b + 2u * K8 + u];
    let s = w${c}[b + 3u * K8 + u];
    a += vec4<f32>(dot(bf16x4(p.x, p.y), xl) + dot(bf16x4(p.z, p.w), xh), dot(bf16x4(q.x, q.y), xl) + dot(bf16x4(q.z, q.w), xh),
                   dot(bf16x4(r.x, r.y), xl) + dot(bf16x4(r.z, r.w), xh), dot(bf16x4(s.x, s.y), xl) + dot(bf16x4(s.z, s.w), xh));
  }
  return a;
}`).join('') : '';
  start = 0;
  const dot4 = simple && q8 ? '' : chunks.map((rows, c) => {
    const s = start;
    start += rows;
    return `if (o0 >= ${s}u && o0 + ${SIMPLE_RR}u <= ${s + rows}u) { acc4 = dot4_w${c}(o0 - ${s}u); fused = true; }`;
  }).join(' else ');
  return /* wgsl */ `${p.subgroups ? 'enable subgroups;' : ''}
${BF16_FNS}
${p.candidates ? `${SAMPLE_PARAMS_STRUCT}\n${SAMPLE_NOISE_FNS}` : ''}
const K: u32 = ${K}u;
const K4: u32 = ${K / 4}u;
const K8: u32 = ${K / 8}u;
const N: u32 = ${N}u;
const OFFSET: u32 = ${p.outOffset ?? 0}u;
const ROWS: u32 = ${ROWS}u;
const LANES: u32 = ${simple ? 1 : LANES}u;
${bindings.filter(Boolean).join('\n')}
${p.stageX && !simple ? `var<workgroup> xs: array<vec4<f32>, ${K / 4}>;` : ''}
${simple || p.subgroups ? '' : `var<workgroup> red: array<f32, ${WG}>;
var<workgroup> rowsum: array<f32, ${WG}>;`}
${simple ? '' : `var<workgroup> best_v: array<f32, ${ROWS}>;`}
${p.subgroups ? subgroupFns(WG) : ''}

const K16: u32 = ${K / 16}u;
fn i8x4(w: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}
fn bf16x4(a: u32, b: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));
}
fn gain4(i: u32) -> vec4<f32> { ${gainOf} }
// x (times the norm gain) as vec4 i.
fn xv(i: u32) -> vec4<f32> { ${p.stageX && !simple ? 'return xs[i];' : 'return x[i] * gain4(i);'} }
${dotFns}
${dot4Fns}
${simple ? simpleMain(p, N, norm, rowDot, dot4) : tiledMain(p, N, norm, rowDot)}`;
}

/**
 * 'simple': SIMPLE_RR rows o0.. per invocation, x normalised once; bf16 rows of one chunk in one
 * pass (dot4), the others (a chunk boundary, the last rows, q8) row by row.
 */
function simpleMain(p: MatvecParams, N: number, norm: boolean, rowDot: string, dot4: string): string {
  return /* wgsl */ `
@compute @workgroup_size(${SIMPLE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o0 = (gid.x + gid.y * nwg.x * ${SIMPLE_WG}u) * ${SIMPLE_RR}u;
  if (o0 >= N) { return; }
  var scale = 1.0;
  ${norm ? `var ss = 0.0;
  for (var i = 0u; i < K4; i++) { let v = x[i]; ss += dot(v, v); }
  scale = inverseSqrt(ss / f32(K) + ${f32Literal(p.normEps!)});` : ''}
  let lane = 0u;
  var acc4 = vec4<f32>(0.0);
  var fused = false;
  ${dot4}
  if (!fused) {
    for (var r = 0u; r < ${SIMPLE_RR}u; r++) {
      let o = min(o0 + r, N - 1u);
      var acc = 0.0;
      ${rowDot}
      acc4[r] = acc;
    }
  }
  for (var r = 0u; r < ${SIMPLE_RR}u; r++) {
    let o = o0 + r;
    if (o >= N) { break; }
    var v = acc4[r] * scale;
    ${p.bias ? 'v += bf16_at(bias[o / 2u], (o & 1u) == 1u);' : ''}
    ${p.accumulate ? 'out[OFFSET + o] += v;' : 'out[OFFSET + o] = v;'}
    ${p.candidates ? `var score = v;
    if (prm.temperature != 0.0 && prm.top_k != 1u) { score = gumbel_score(v, o); }
    cand[2u * o] = bitcast<u32>(score);
    cand[2u * o + 1u] = o;` : ''}
  }
}`;
}

function tiledMain(p: MatvecParams, N: number, norm: boolean, rowDot: string): string {
  const sg = !!p.subgroups;
  const eps = norm ? f32Literal(p.normEps!) : '';
  // 1/rms of x: the workgroup-memory path sums squares while staging x (two-level sum); the
  // subgroup path sums them by t once the slots are known, so the order is fixed.
  const normWg = norm ? `// Two-level sum: 16 partial sums of 16, then every thread adds the 16.
  red[lid] = ss;
  workgroupBarrier();
  if (lid < 16u) {
    var t = 0.0;
    for (var j = 0u; j < 16u; j++) { t += red[lid * 16u + j]; }
    rowsum[lid] = t;
  }
  workgroupBarrier();
  var total = 0.0;
  for (var j = 0u; j < 16u; j++) { total += rowsum[j]; }
  let scale = inverseSqrt(total / f32(K) + ${eps});
  workgroupBarrier();` : `workgroupBarrier();
  let scale = 1.0;`;
  const normSg = `workgroupBarrier();
  let t = sg_index(taken, sl, sz);
  ${norm ? `var sq = 0.0;
  for (var i = t; i < K4; i += ${WG}u) { let v = x[i]; sq += dot(v, v); }
  let scale = inverseSqrt(sg_run_sum(sq, t, sz, ${WG}u) / f32(K) + ${eps});` : 'let scale = 1.0;'}`;
  const epilogue = /* wgsl */ `
    var v = rs * scale;
    ${p.bias ? 'if (o < N) { v += bf16_at(bias[o / 2u], (o & 1u) == 1u); }' : ''}
    if (o < N) { ${p.accumulate ? 'out[OFFSET + o] += v;' : 'out[OFFSET + o] = v;'} }
    ${p.candidates ? `var score = v;
    if (prm.temperature != 0.0 && prm.top_k != 1u) { score = gumbel_score(v, o); }
    best_v[r] = score;` : ''}`;
  return /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32${sg ? `, ${SUBGROUP_ARGS}` : ''}) {
  let group = wg.x + wg.y * nwg.x;
  if (group * ROWS >= N) { return; }
  ${sg ? 'let taken = sg_take();' : ''}
  var ss = 0.0;
  for (var i = lid; i < K4; i += ${WG}u) {
    let v = x[i];
    ${norm && !sg ? 'ss += dot(v, v);' : ''}
    ${p.stageX ? 'xs[i] = v * gain4(i);' : ''}
  }
  ${sg ? normSg : normWg}

  let r = ${sg ? 't' : 'lid'} / LANES;
  let lane = ${sg ? 't' : 'lid'} % LANES;
  let o = group * ROWS + r;
  var acc = 0.0;
  if (o < N) { ${rowDot} }
  ${sg ? `let rs = sg_run_sum(acc, t, sz, LANES);
  if (lane == 0u) {${epilogue}
  }` : `rowsum[lid] = acc;
  workgroupBarrier();
  if (lane == 0u) {
    var rs = 0.0;
    for (var j = 0u; j < LANES; j++) { rs += rowsum[lid + j]; }${epilogue}
  }`}
  ${p.candidates ? `workgroupBarrier();
  if (lid == 0u) {
    // Best of this workgroup's rows; ties go to the lower row (rows ascend with r).
    var bv = best_v[0];
    var bi = 0u;
    for (var j = 1u; j < ROWS; j++) {
      if (group * ROWS + j < N && best_v[j] > bv) { bv = best_v[j]; bi = j; }
    }
    cand[2u * group] = bitcast<u32>(bv);
    cand[2u * group + 1u] = group * ROWS + bi;
  }` : ''}
}`;
}

export interface MatvecBuffers {
  x: GPUBuffer | GPUBufferBinding;
  out: GPUBuffer | GPUBufferBinding;
  /** One per chunk. */
  weights: (GPUBuffer | GPUBufferBinding)[];
  bias?: GPUBuffer | GPUBufferBinding;
  norm?: GPUBuffer | GPUBufferBinding;
  cand?: GPUBuffer | GPUBufferBinding;
  sampleParams?: GPUBuffer | GPUBufferBinding;
}

export class MatvecKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  readonly rows: number;

  constructor(cache: PipelineCache, readonly p: MatvecParams) {
    if (p.inDim % 8 !== 0 || p.inDim <= 0) throw new Error(`f32_bf16w_matvec: inDim ${p.inDim} must be a positive multiple of 8`);
    if (p.weights === 'q8' && p.inDim % 32 !== 0) throw new Error(`f32_q8w_matvec: inDim ${p.inDim} must be a multiple of 32`);
    const rpg = p.rowsPerGroup ?? MATVEC_ROWS;
    if (!Number.isInteger(Math.log2(rpg)) || rpg < 1 || rpg > WG) throw new Error(`f32_bf16w_matvec: rowsPerGroup ${rpg} must be a power of two from 1 to ${WG}`);
    if (p.chunkRows.length < 1 || p.chunkRows.some((r) => !(r >= 1))) throw new Error(`f32_bf16w_matvec: bad chunk rows ${p.chunkRows}`);
    if (p.subgroups && p.variant === 'simple') throw new Error(`f32_bf16w_matvec: subgroups apply to the 'tiled' variant only`);
    if (p.subgroups) requireSubgroups(cache.device, 'f32_bf16w_matvec');
    this.rows = p.chunkRows.reduce((a, b) => a + b, 0);
    this.key = kernelKey(p.weights === 'q8' ? 'f32_q8w_matvec' : 'f32_bf16w_matvec', {
      k: p.inDim, n: p.chunkRows.join('+'), bias: p.bias, acc: p.accumulate, norm: p.normEps, o: p.outOffset || undefined, cand: p.candidates,
      stage: p.stageX && p.variant !== 'simple', simple: p.variant === 'simple',
      rows: p.variant !== 'simple' && p.rowsPerGroup !== undefined && p.rowsPerGroup !== MATVEC_ROWS ? p.rowsPerGroup : undefined,
      sg: p.subgroups,
    });
    this.pipeline = cache.get(this.key, () => matvecSource(p));
  }

  bind(device: GPUDevice, b: MatvecBuffers): GPUBindGroup {
    const p = this.p;
    if (b.weights.length !== p.chunkRows.length) throw new Error(`${this.key}: ${b.weights.length} weight buffers for ${p.chunkRows.length} chunks`);
    const need = (v: unknown, what: string, on: boolean | undefined) => {
      if ((v !== undefined) !== !!on) throw new Error(`${this.key}: ${what} buffer ${on ? 'missing' : 'not expected'}`);
    };
    need(b.bias, 'bias', p.bias);
    need(b.norm, 'norm', p.normEps !== undefined);
    need(b.cand, 'candidates', p.candidates);
    need(b.sampleParams, 'sample params', p.candidates);
    const list = [b.x, b.out, ...b.weights, b.bias, b.norm, b.cand, b.sampleParams].filter((v): v is GPUBuffer | GPUBufferBinding => v !== undefined);
    return bindBuffers(device, this.pipeline, list, this.key);
  }

  /** Candidates written per draw (with `candidates`). */
  get candidateCount(): number {
    return matvecCandidates(this.rows, this.p.variant, this.p.rowsPerGroup);
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup): void {
    const [gx, gy] = grid2d(this.p.variant === 'simple' ? Math.ceil(this.rows / (SIMPLE_WG * SIMPLE_RR)) : Math.ceil(this.rows / (this.p.rowsPerGroup ?? MATVEC_ROWS)));
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(gx, gy);
  }
}
