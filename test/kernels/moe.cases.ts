/**
 * The MoE family against the reference's MoE operations (engine/reference/ops.ts: topkSoftmax,
 * moeGateUp, moeDownSum), the ones ReferenceSession.moe is made of. Runs in Node and in the browser.
 */
import { moeDownSum, moeGateUp, rmsNorm, topkSoftmax } from '../../engine/reference/ops.ts';
import type { Mxfp4Experts } from '../../engine/reference/weights.ts';
import { bufferFrom, createBuffer, readF32, readU32 } from '../../engine/gpu/buffers.ts';
import { MoeDownKernel, MoeGateUpKernel } from '../../kernels/moe.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { TopkSoftmaxKernel } from '../../kernels/router.ts';
import { checkClose, checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';
import { rwStorage, runPass, stepBuffer } from '../gpu/dispatch.ts';
import { inScope, type CaseScope } from './scope.ts';

const LIMIT = 7;
const ALPHA = 1.702;
/** Read-write storage usage (a function: GPUBufferUsage exists only once WebGPU is set up). */

/** Scale bytes: `normal` near 2^(c-127); `wide` mixes rows of tiny (0..3), mid and saturating (250..254) blocks. */
export type ScaleKind = { kind: 'normal'; center: number } | { kind: 'wide'; center: number };

export interface Experts {
  m: Mxfp4Experts;
  blocks: Uint8Array;
  scales: Uint8Array;
  bias: Uint8Array;
}

export function makeExperts(rng: TestRng, E: number, rows: number, cols: number, sk: ScaleKind, biasScale: number): Experts {
  const G = cols / 32;
  const blocks = rng.bytes(E * rows * G * 16);
  const scales = new Uint8Array(E * rows * G);
  for (let r = 0; r < E * rows; r++) {
    const cls = sk.kind === 'wide' ? (r % rows) % 5 : 1; // wide, by row within the expert: 0 tiny, 1-3 mid (some 0/1 blocks), 4 one saturating block
    for (let g = 0; g < G; g++) {
      const i = r * G + g;
      const u = rng.uniform();
      if (cls === 0) scales[i] = Math.floor(u * 4); // 0..3
      else scales[i] = sk.center - 2 + Math.floor(u * 4);
      if (sk.kind === 'wide' && cls !== 0 && rng.uniform() < 0.15) scales[i] = rng.uniform() < 0.5 ? 0 : 1;
      if (cls === 4 && g === r % G) scales[i] = 250 + Math.floor(rng.uniform() * 5); // up to 254
    }
  }
  const b = rng.bf16(E * rows, biasScale);
  const m: Mxfp4Experts = {
    rows, cols, bias: b.values,
    blocks: Array.from({ length: E }, (_, e) => blocks.subarray(e * rows * G * 16, (e + 1) * rows * G * 16)),
    scales: Array.from({ length: E }, (_, e) => scales.subarray(e * rows * G, (e + 1) * rows * G)),
  };
  return { m, blocks, scales, bias: b.bytes };
}

/** k distinct random experts per token and positive weights summing to 1. */
export function randomRouting(rng: TestRng, T: number, E: number, k: number): { ids: Uint32Array; w: Float32Array } {
  const ids = new Uint32Array(T * k);
  const w = new Float32Array(T * k);
  for (let t = 0; t < T; t++) {
    const perm = Array.from({ length: E }, (_, i) => i);
    for (let i = E - 1; i > 0; i--) {
      const j = Math.floor(rng.uniform() * (i + 1));
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    const raw = Array.from({ length: k }, () => 0.1 + rng.uniform());
    const s = raw.reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) {
      ids[t * k + j] = perm[j]!;
      w[t * k + j] = raw[j]! / s;
    }
  }
  return { ids, w };
}

/** act [T, k, I] for the given routing: moeGateUp of each token's experts. */
function refGateUp(gu: Mxfp4Experts, h: Float32Array, ids: ArrayLike<number>, T: number, k: number, H: number, I: number): Float32Array {
  const act = new Float32Array(T * k * I);
  for (let t = 0; t < T; t++) {
    const ht = h.subarray(t * H, (t + 1) * H);
    for (let j = 0; j < k; j++) moeGateUp(gu, ids[t * k + j]!, ht, LIMIT, ALPHA, act.subarray((t * k + j) * I, (t * k + j + 1) * I));
  }
  return act;
}

/** x + sum_j w_j (W2[e_j] act[t, j] + b2[e_j]) per token: moeDownSum on a copy of x. */
function refDown(dn: Mxfp4Experts, act: Float32Array, ids: ArrayLike<number>, w: ArrayLike<number>, x: Float32Array, T: number, k: number, H: number, I: number): Float32Array {
  const out = Float32Array.from(x);
  for (let t = 0; t < T; t++) {
    const acts = Array.from({ length: k }, (_, j) => act.subarray((t * k + j) * I, (t * k + j + 1) * I));
    moeDownSum(dn, Array.from(ids).slice(t * k, (t + 1) * k), Array.from(w).slice(t * k, (t + 1) * k), acts, out.subarray(t * H, (t + 1) * H));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

interface TopkCase { E: number; k: number; T: number; ties: number }
const TOPK: TopkCase[] = [
  { E: 8, k: 2, T: 3, ties: 1 }, // logits rounded to integers: many ties
  { E: 32, k: 4, T: 9, ties: 2 },
  { E: 128, k: 4, T: 1, ties: 0 },
  { E: 5, k: 5, T: 3, ties: 1 }, // k == E
  { E: 256, k: 8, T: 9, ties: 4 },
];

async function topkCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[]): Promise<void> {
  for (const { E, k, T, ties } of TOPK) {
    const rng = new TestRng(E * 100 + k * 10 + T);
    const logits = rng.f32(T * E, 2);
    if (ties) for (let i = 0; i < logits.length; i++) logits[i] = Math.round(logits[i]! * ties) / ties;
    logits.fill(0.5, 0, E); // token 0: all equal -> 0..k-1, uniform weights
    const kern = new TopkSoftmaxKernel(cache, { experts: E, k });
    // one row more than n_tokens, pre-filled: the kernel must leave it alone
    const step = stepBuffer(device, T);
    const lb = bufferFrom(device, logits);
    const ib = bufferFrom(device, new Uint32Array((T + 1) * k).fill(0xdead), rwStorage());
    const wb = bufferFrom(device, new Float32Array((T + 1) * k).fill(-1), rwStorage());
    await runPass(device, (pass) => kern.encode(pass, kern.bind(device, step, lb, ib, wb), T));
    const gotIds = await readU32(device, ib, (T + 1) * k);
    const gotW = await readF32(device, wb, (T + 1) * k);
    const wantIds = new Uint32Array((T + 1) * k).fill(0xdead);
    const wantW = new Float32Array((T + 1) * k).fill(-1);
    for (let t = 0; t < T; t++) {
      const r = topkSoftmax(logits.subarray(t * E, (t + 1) * E), k);
      wantIds.set(r.ids, t * k);
      wantW.set(r.weights, t * k);
    }
    const shape = `E=${E} k=${k} T=${T}${ties ? ' ties' : ''}`;
    out.push(checkEqual(kern.key, `${shape} ids`, wantIds, gotIds));
    out.push(checkClose(kern.key, `${shape} weights`, wantW, gotW, 1e-6, 1e-5));
    for (const b of [step, lb, ib, wb]) b.destroy();
  }
}

interface MoeCase {
  H: number; I: number; E: number; k: number; T: number; scales: ScaleKind; hScale: number; atol: number; rtol: number; note?: string;
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

const GATEUP: MoeCase[] = [
  // scale 2^-3 with h ~ N(0, 1): |u| often beyond the clamp limit 7
  { H: 64, I: 64, E: 4, k: 2, T: 3, scales: { kind: 'normal', center: 125 }, hScale: 1, atol: 1e-5, rtol: 1e-5 },
  { H: 96, I: 64, E: 8, k: 3, T: 9, scales: { kind: 'normal', center: 124 }, hScale: 1.5, atol: 1e-5, rtol: 1e-5, browser: true },
  // wide scale bytes (0, 1, 0..3, ~147, 250..254) with h ~ 2^-20 so 2^127 blocks stay finite
  { H: 128, I: 64, E: 3, k: 2, T: 3, scales: { kind: 'wide', center: 147 }, hScale: 2 ** -20, atol: 1e-5, rtol: 1e-5, note: 'wide scales' },
  { H: 2880, I: 2880, E: 2, k: 2, T: 1, scales: { kind: 'normal', center: 121 }, hScale: 1, atol: 1e-4, rtol: 1e-4, note: 'gpt-oss shape' },
];

async function gateUpCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[], scope?: CaseScope): Promise<void> {
  for (const c of inScope(GATEUP, scope)) {
    const { H, I, E, k, T } = c;
    const rng = new TestRng(H * 7 + I * 3 + E + k + T);
    const ex = makeExperts(rng, E, 2 * I, H, c.scales, 1);
    const h = rng.f32(T * H, c.hScale);
    const { ids } = randomRouting(rng, T, E, k);
    const kern = new MoeGateUpKernel(cache, { hidden: H, intermediate: I, k, limit: LIMIT, alpha: ALPHA });
    const bufs = [stepBuffer(device, T), bufferFrom(device, h), bufferFrom(device, ids), bufferFrom(device, ex.blocks),
      bufferFrom(device, ex.scales), bufferFrom(device, ex.bias), createBuffer(device, T * k * I * 4, rwStorage())] as const;
    await runPass(device, (pass) => kern.encode(pass, kern.bind(device, ...bufs), T));
    const got = await readF32(device, bufs[6], T * k * I);
    const want = refGateUp(ex.m, h, ids, T, k, H, I);
    out.push(checkClose(kern.key, `E=${E} T=${T}${c.note ? ` ${c.note}` : ''}`, want, got, c.atol, c.rtol));
    for (const b of bufs) b.destroy();
  }
}

const DOWN: MoeCase[] = [
  { H: 64, I: 64, E: 4, k: 2, T: 3, scales: { kind: 'normal', center: 125 }, hScale: 3, atol: 1e-5, rtol: 1e-5 },
  { H: 96, I: 64, E: 8, k: 3, T: 9, scales: { kind: 'normal', center: 126 }, hScale: 3, atol: 1e-5, rtol: 1e-5, browser: true },
  { H: 64, I: 96, E: 5, k: 5, T: 1, scales: { kind: 'wide', center: 147 }, hScale: 2 ** -20, atol: 1e-5, rtol: 1e-5, note: 'wide scales' },
  { H: 2880, I: 2880, E: 2, k: 2, T: 1, scales: { kind: 'normal', center: 121 }, hScale: 3, atol: 1e-4, rtol: 1e-4, note: 'gpt-oss shape' },
];

/**
 * Decode's down projection (MoeDownKernel), its rows reduced through workgroup memory ('down'),
 * by subgroups ('down-subgroup'), or one invocation per row with no barriers ('down-simple').
 */
async function downCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[], path: 'down' | 'down-subgroup' | 'down-simple', scope?: CaseScope): Promise<void> {
  const subgroups = path === 'down-subgroup';
  for (const c of inScope(DOWN, scope)) {
    const { H, I, E, k, T } = c;
    const rng = new TestRng(H * 11 + I * 5 + E + k + T);
    const ex = makeExperts(rng, E, H, I, c.scales, 1);
    const act = rng.f32(T * k * I, c.hScale);
    const x = rng.f32(T * H, 2); // non-zero residual
    const { ids, w } = randomRouting(rng, T, E, k);
    const kern = new MoeDownKernel(cache, { hidden: H, intermediate: I, k, subgroups, simple: path === 'down-simple' });
    const bufs = [stepBuffer(device, T), bufferFrom(device, act), bufferFrom(device, ids), bufferFrom(device, w),
      bufferFrom(device, ex.blocks), bufferFrom(device, ex.scales), bufferFrom(device, ex.bias), bufferFrom(device, x, rwStorage())] as const;
    await runPass(device, (pass) => kern.encode(pass, kern.bind(device, ...bufs), T));
    const got = await readF32(device, bufs[7], T * H);
    const want = refDown(ex.m, act, ids, w, x, T, k, H, I);
    out.push({ ...checkClose(kern.key, `H=${H} I=${I} E=${E} k=${k} T=${T}${c.note ? ` ${c.note}` : ''}`, want, got, c.atol, c.rtol), path });
    for (const b of bufs) b.destroy();
  }
}

/** Router logits -> topk -> gate_up -> down into the residual, one pass, routing only on the GPU. */
const BLOCK: MoeCase[] = [
  { H: 64, I: 64, E: 8, k: 2, T: 3, scales: { kind: 'normal', center: 125 }, hScale: 1, atol: 1e-4, rtol: 1e-5, browser: true },
  { H: 96, I: 64, E: 32, k: 4, T: 9, scales: { kind: 'normal', center: 124 }, hScale: 1, atol: 1e-4, rtol: 1e-5 },
  { H: 64, I: 32, E: 128, k: 4, T: 1, scales: { kind: 'normal', center: 125 }, hScale: 1, atol: 1e-4, rtol: 1e-5 },
];

async function blockCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[], scope?: CaseScope): Promise<void> {
  for (const c of inScope(BLOCK, scope)) {
    const { H, I, E, k, T } = c;
    const rng = new TestRng(H + I + E * 13 + k + T);
    const gu = makeExperts(rng, E, 2 * I, H, c.scales, 1);
    const dn = makeExperts(rng, E, H, I, c.scales, 1);
    const h = rng.f32(T * H, c.hScale);
    const x = rng.f32(T * H, 2);
    const logits = rng.f32(T * E, 2);
    for (let i = 0; i < logits.length; i++) logits[i] = Math.round(logits[i]! * 2) / 2; // ties
    const topk = new TopkSoftmaxKernel(cache, { experts: E, k });
    const gk = new MoeGateUpKernel(cache, { hidden: H, intermediate: I, k, limit: LIMIT, alpha: ALPHA });
    const dk = new MoeDownKernel(cache, { hidden: H, intermediate: I, k });
    const step = stepBuffer(device, T);
    const lb = bufferFrom(device, logits);
    const ib = createBuffer(device, T * k * 4, rwStorage());
    const wb = createBuffer(device, T * k * 4, rwStorage());
    const hb = bufferFrom(device, h);
    const ab = createBuffer(device, T * k * I * 4, rwStorage());
    const xb = bufferFrom(device, x, rwStorage());
    const w = [gu.blocks, gu.scales, gu.bias, dn.blocks, dn.scales, dn.bias].map((d) => bufferFrom(device, d));
    await runPass(device, (pass) => {
      topk.encode(pass, topk.bind(device, step, lb, ib, wb), T);
      gk.encode(pass, gk.bind(device, step, hb, ib, w[0]!, w[1]!, w[2]!, ab), T);
      dk.encode(pass, dk.bind(device, step, ab, ib, wb, w[3]!, w[4]!, w[5]!, xb), T);
    });
    const got = await readF32(device, xb, T * H);
    const want = new Float32Array(T * H);
    for (let t = 0; t < T; t++) {
      const r = topkSoftmax(logits.subarray(t * E, (t + 1) * E), k);
      const ht = h.subarray(t * H, (t + 1) * H);
      const acts = r.ids.map((e) => moeGateUp(gu.m, e, ht, LIMIT, ALPHA));
      want.set(moeDownSum(dn.m, r.ids, r.weights, acts, x.slice(t * H, (t + 1) * H)), t * H);
    }
    out.push(checkClose(`${topk.key} + ${gk.key} + ${dk.key}`, `E=${E} T=${T} routed on the GPU`, want, got, c.atol, c.rtol));
    for (const b of [step, lb, ib, wb, hb, ab, xb, ...w]) b.destroy();
  }
}

/**
 * Decode's gate_up with the MLP's RMSNorm folded in (normEps): the input is the residual x and
 * the norm's gain, against rmsNorm then moeGateUp; the norm staged in workgroup memory (GPUs),
 * the same with subgroup reductions (GPUs with `subgroups`), and computed by every invocation
 * (stageNorm false, CPU adapters).
 */
type GateUpPath = 'staged-norm' | 'staged-norm-subgroup' | 'per-invocation-norm';
const GATEUP_NORM: (MoeCase & { xScale: number; paths: GateUpPath[] })[] = [
  { H: 64, I: 64, E: 4, k: 2, T: 1, scales: { kind: 'normal', center: 125 }, hScale: 1, xScale: 3, atol: 1e-5, rtol: 1e-5, paths: ['staged-norm', 'staged-norm-subgroup', 'per-invocation-norm'] },
  {
    H: 96, I: 32, E: 8, k: 4, T: 2, scales: { kind: 'normal', center: 124 }, hScale: 1, xScale: 40, atol: 1e-5, rtol: 1e-5, paths: ['staged-norm', 'staged-norm-subgroup', 'per-invocation-norm'],
    note: 'two tokens', browser: true,
  },
  // More than 256 vec4s: threads stride over x while staging and summing squares.
  { H: 1056, I: 32, E: 4, k: 4, T: 1, scales: { kind: 'normal', center: 123 }, hScale: 1, xScale: 2, atol: 2e-5, rtol: 1e-4, paths: ['staged-norm', 'staged-norm-subgroup', 'per-invocation-norm'] },
  // Real hidden, not staged in workgroup memory: SwiftShader takes ~9 s to compile 11 KiB of
  // staged x. The subgroup path (the engine's on GPUs with subgroups) is run staged once.
  {
    H: 2880, I: 64, E: 4, k: 4, T: 1, scales: { kind: 'normal', center: 122 }, hScale: 1, xScale: 2, atol: 2e-5, rtol: 1e-4, paths: ['per-invocation-norm', 'staged-norm-subgroup'],
    note: 'real hidden',
  },
];
const EPS = 1e-5;

async function gateUpNormCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[], scope?: CaseScope): Promise<void> {
  for (const c of inScope(GATEUP_NORM, scope)) {
    const { H, I, E, k, T } = c;
    const rng = new TestRng(H * 13 + I * 3 + E + k + T);
    const ex = makeExperts(rng, E, 2 * I, H, c.scales, 1);
    const x = rng.f32(T * H, c.xScale);
    const gain = rng.bf16(H, 1);
    const { ids } = randomRouting(rng, T, E, k);
    const h = new Float32Array(T * H);
    for (let t = 0; t < T; t++) rmsNorm(x.subarray(t * H, (t + 1) * H), gain.values, EPS, h.subarray(t * H, (t + 1) * H));
    const want = refGateUp(ex.m, h, ids, T, k, H, I);
    for (const path of c.paths) {
      const subgroups = path === 'staged-norm-subgroup';
      if (subgroups && !device.features.has('subgroups')) continue;
      const stageNorm = path !== 'per-invocation-norm';
      const kern = new MoeGateUpKernel(cache, { hidden: H, intermediate: I, k, limit: LIMIT, alpha: ALPHA, normEps: EPS, stageNorm, subgroups });
      const bufs = [stepBuffer(device, T), bufferFrom(device, x), bufferFrom(device, ids), bufferFrom(device, ex.blocks),
        bufferFrom(device, ex.scales), bufferFrom(device, ex.bias), createBuffer(device, T * k * I * 4, rwStorage()), bufferFrom(device, gain.bytes)] as const;
      await runPass(device, (pass) => kern.encode(pass, kern.bind(device, ...bufs), T));
      const got = await readF32(device, bufs[6], T * k * I);
      out.push({ ...checkClose(kern.key, `H=${H} I=${I} E=${E} k=${k} T=${T} ${path}${c.note ? ` ${c.note}` : ''}`, want, got, c.atol, c.rtol), path });
      for (const b of bufs) b.destroy();
    }
  }
}

/** The MoE kernels decode uses: gate_up with the norm folded in, and down (each reduction it has on this device). */
export async function moeDecodeCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  await gateUpNormCases(device, cache, results, scope);
  await downCases(device, cache, results, 'down', scope);
  await downCases(device, cache, results, 'down-simple', scope);
  if (device.features.has('subgroups')) await downCases(device, cache, results, 'down-subgroup', scope);
  return results;
}

export async function moeCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  await topkCases(device, cache, results);
  await gateUpCases(device, cache, results, scope);
  await blockCases(device, cache, results, scope);
  return results;
}
