/**
 * f32_{f32|q8}kv_sdpa (prefill flash attention), both variants, against engine/reference/attention-ref.ts
 * over what the KV cache holds. Each session stores batches with f32_kv_store and attends them,
 * like the engine: batches of any size starting at any position, on top of an existing cache,
 * sliding layers' ring buffers (capacity window + maxBatch - 1) wrapping, windows smaller and
 * larger than the tiled variant's query tile and key tile, GQA ratios 1, 2, 3, 5, 8 and head
 * dims 16 .. 128. q is read from qkv-shaped rows (k and v slots filled with junk), and a
 * sentinel row after the output catches stray writes. Runs in Node and in the browser.
 *
 * Two families, so each stays within a test timeout on SwiftShader, where these shaders take
 * seconds each to compile: `flash_attention` (the 'simple' variant the CPU adapters run) and
 * `flash_attention_tiled` (the GPU variant).
 */
import { attentionBatch } from '../../engine/reference/attention-ref.ts';
import { bufferFrom, createBuffer, readBuffer, readF32 } from '../../engine/gpu/buffers.ts';
import { AttentionKernel, attentionTiles } from '../../kernels/attention.ts';
import { STEP_BYTES, writeStep } from '../../kernels/common.ts';
import { createKvCache, dequantizeKv, kvCapacity, KvStoreKernel, type KvFormat } from '../../kernels/kv-cache.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { checkClose, TestRng, type CaseResult } from '../gpu/check.ts';
import { inScope, type CaseScope } from './scope.ts';

type Variant = 'simple' | 'tiled';

interface Session {
  name: string;
  H: number;
  nKv: number;
  D: number;
  /** Sliding window, or 0 for a full layer. */
  window: number;
  /** Batch sizes in order from position 0; the largest is the cache's maxBatch. */
  steps: number[];
  /** Cache formats each variant runs (one pipeline each: SwiftShader compiles slowly). */
  simple: KvFormat[];
  tiled: KvFormat[];
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

const SESSIONS: Session[] = [
  // The golden 'tiny' shape: W=4 < every tile; capacity 4+24-1 = 27 < 45 tokens (wraps twice).
  { name: 'tiny gqa2 D16 W4', H: 4, nKv: 2, D: 16, window: 4, steps: [5, 1, 13, 2, 24], simple: ['f32', 'q8'], tiled: ['q8'] },
  // The golden 'sharded' shape: GQA 3 (tiled tile of 21 tokens), W=6, batches 1, 2, 5, 13, 24 on top of each other.
  { name: 'sharded gqa3 D32 W6', H: 6, nKv: 2, D: 32, window: 6, steps: [1, 2, 5, 13, 24, 7], simple: ['f32', 'q8'], tiled: ['f32'], browser: true },
  // 20b-like GQA 8 at D=64, full layer: 8-token query tiles, 32-key tiles, a batch on a 70-token cache.
  { name: 'gqa8 D64 full', H: 8, nKv: 1, D: 64, window: 0, steps: [70, 1, 9], simple: ['q8'], tiled: ['q8'], browser: true },
  // GQA 1 at the largest head dim: 16-key tiles, 64-token query tiles, a second batch mid-tile.
  { name: 'gqa1 D128 full', H: 2, nKv: 2, D: 128, window: 0, steps: [40, 3, 30], simple: ['f32'], tiled: ['f32'] },
  // GQA 5, D=20 (not a power of two), W=40 larger than the tiled query tile (12 tokens), smaller than its key tile (64): wraps.
  { name: 'gqa5 D20 W40', H: 5, nKv: 1, D: 20, window: 40, steps: [50, 45, 3], simple: ['q8'], tiled: ['f32'] },
];

/** qkv-like rows: q heads first, then junk where k and v would be. */
const qStride = (s: Session) => (s.H + 2 * s.nKv) * s.D;

async function runSession(device: GPUDevice, cache: PipelineCache, s: Session, fmt: KvFormat, variants: Variant[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const { H, nKv, D } = s;
  const maxBatch = Math.max(...s.steps);
  const total = s.steps.reduce((a, b) => a + b, 0);
  const C = kvCapacity(s.window > 0 ? 'sliding' : 'full', s.window, total, maxBatch);
  const kv = createKvCache(device, fmt, C, nKv, D, s.name);
  const store = new KvStoreKernel(cache, { kvHeads: nKv, headDim: D, fmt });
  const shape = { heads: H, kvHeads: nKv, headDim: D, window: s.window, qStride: qStride(s) };
  const kernels = variants.map((variant) => new AttentionKernel(cache, { ...shape, fmt, variant }));
  const rng = new TestRng(H * 131 + nKv * 17 + D + s.window + (fmt === 'q8' ? 7 : 0));
  const sinkVals = rng.bf16(H, 2);
  const sinkBuf = bufferFrom(device, sinkVals.bytes);
  const step = createBuffer(device, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step');
  const keys: Float32Array[] = [], vals: Float32Array[] = []; // as cached (q8: dequantized), by position
  const rowFloats = H * D;
  const SENTINEL = -12345;
  let pos0 = 0;
  for (const T of s.steps) {
    const q = rng.f32(T * qStride(s), 1.5);
    const k = rng.f32(T * nKv * D, 1.5);
    const v = rng.f32(T * nKv * D, 1);
    const qb = bufferFrom(device, q), kb = bufferFrom(device, k), vb = bufferFrom(device, v);
    const outs = kernels.map(() => bufferFrom(device, new Float32Array((T + 1) * rowFloats).fill(SENTINEL),
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST));
    writeStep(device, step, T, pos0, s.window);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    store.encode(pass, store.bind(device, step, kb, vb, kv), T);
    kernels.forEach((kern, i) => kern.encode(pass, kern.bind(device, step, qb, kv, sinkBuf, outs[i]!), T));
    pass.end();
    device.queue.submit([enc.finish()]);
    const cachedK = dequantizeKv(fmt, await readBuffer(device, kv.k), C, nKv, D);
    const cachedV = dequantizeKv(fmt, await readBuffer(device, kv.v), C, nKv, D);
    for (let t = 0; t < T; t++) {
      const slot = (pos0 + t) % C;
      keys.push(cachedK.slice(slot * nKv * D, (slot + 1) * nKv * D));
      vals.push(cachedV.slice(slot * nKv * D, (slot + 1) * nKv * D));
    }
    const want = attentionBatch(q, T, pos0, keys, vals, sinkVals.values, shape);
    const wantAll = new Float64Array((T + 1) * rowFloats).fill(SENTINEL);
    wantAll.set(want);
    for (const [i, kern] of kernels.entries()) {
      const got = await readF32(device, outs[i]!, (T + 1) * rowFloats);
      const { tokens, keys: kt } = attentionTiles(kern.p);
      results.push(checkClose(kern.key, `${s.name} ${fmt} T=${T} pos0=${pos0} C=${C} (tile ${tokens} tokens x ${kt} keys; last row: sentinel)`, wantAll, got, 2e-5, 2e-5));
      outs[i]!.destroy();
    }
    for (const b of [qb, kb, vb]) b.destroy();
    pos0 += T;
  }
  for (const b of [kv.k, kv.v, sinkBuf, step]) b.destroy();
  return results;
}

async function cases(device: GPUDevice, variant: Variant, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  for (const s of inScope(SESSIONS, scope)) for (const fmt of s[variant]) results.push(...(await runSession(device, cache, s, fmt, [variant])));
  return results;
}

export const flashAttentionCases = (device: GPUDevice, scope?: CaseScope) => cases(device, 'simple', scope);
export const flashAttentionTiledCases = (device: GPUDevice, scope?: CaseScope) => cases(device, 'tiled', scope);
