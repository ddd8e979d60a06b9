/**
 * The attention family: f32_rope, f32_kv_store and f32_{f32|q8}kv_sdpa against the reference's
 * applyRope, quantizeQ8 and attention (engine/reference), the ones ReferenceSession uses. Attention runs as a session: several batches in
 * sequence (prefill, decodes, prefill on top of a cache), each storing its k, v then attending.
 * Runs in Node and in the browser.
 */
import { attention } from '../../engine/reference/ops.ts';
import { applyRope, ropeRow, ropeTableData, yarnParams } from '../../engine/reference/rope.ts';
import { bufferFrom, createBuffer, readBuffer, readF32 } from '../../engine/gpu/buffers.ts';
import type { LayerKind, YarnRope } from '../../loader/config.ts';
import { AttentionKernel } from '../../kernels/attention.ts';
import { STEP_BYTES, writeStep } from '../../kernels/common.ts';
import { createKvCache, dequantizeKv, kvCapacity, KvStoreKernel, type KvFormat } from '../../kernels/kv-cache.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { RopeKernel } from '../../kernels/rope.ts';
import { checkClose, checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';
import { inScope, type CaseScope } from './scope.ts';
import { checkQ8Rows } from './q8.ts';

const REAL_ROPE: YarnRope = { theta: 150000, factor: 32, betaFast: 32, betaSlow: 1, originalMaxPositions: 4096, truncate: false };

function stepBuffer(device: GPUDevice): GPUBuffer {
  return createBuffer(device, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step');
}

function run(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void): void {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  record(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
}

/** Raw bf16 bytes of values already representable in bf16 (truncation otherwise). */
function bf16Bytes(values: number[]): { bytes: Uint8Array; values: Float32Array } {
  const f = new Float32Array(values);
  const u = new Uint32Array(f.buffer);
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    bits[i] = u[i]! >>> 16;
    u[i] = bits[i]! << 16;
  }
  return { bytes: new Uint8Array(bits.buffer), values: f };
}

// ---------------------------------------------------------------- RoPE

async function ropeCases(device: GPUDevice, cache: PipelineCache): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const configs = [
    { rope: REAL_ROPE, headDim: 64, heads: [4, 2], batches: [[0, 2], [5000, 1], [100000, 3]] },
    { rope: { ...REAL_ROPE, theta: 10000, factor: 8 }, headDim: 16, heads: [3], batches: [[0, 2], [4095, 2], [100000, 1]] },
  ];
  for (const cfg of configs) {
    const maxPos = Math.max(...cfg.batches.map(([p0, T]) => p0! + T!));
    const table = bufferFrom(device, ropeTableData(cfg, maxPos));
    const yp = yarnParams(cfg.rope, cfg.headDim);
    const half = cfg.headDim / 2;
    const step = stepBuffer(device);
    for (const heads of cfg.heads) {
      const kernel = new RopeKernel(cache, { heads, headDim: cfg.headDim });
      for (const [pos0, T] of cfg.batches as [number, number][]) {
        const rng = new TestRng(pos0 * 7 + heads + T);
        const x = rng.f32(T * heads * cfg.headDim, 2);
        const xb = bufferFrom(device, x);
        writeStep(device, step, T, pos0);
        run(device, (pass) => kernel.encode(pass, kernel.bind(device, step, xb, table), T));
        const got = await readF32(device, xb, x.length);
        const want = x.slice();
        const cos = new Float64Array(half), sin = new Float64Array(half);
        for (let t = 0; t < T; t++) {
          ropeRow(yp, pos0 + t, cos, sin);
          applyRope(want.subarray(t * heads * cfg.headDim, (t + 1) * heads * cfg.headDim), heads, cfg.headDim, cos, sin);
        }
        results.push(checkClose(kernel.key, `T=${T} pos0=${pos0} theta=${cfg.rope.theta}`, want, got, 2e-6, 1e-6));
        xb.destroy();
      }
    }
    table.destroy();
    step.destroy();
  }
  return results;
}

// ---------------------------------------------------------------- KV store

async function kvStoreCases(device: GPUDevice, cache: PipelineCache): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const nKv = 3, D = 16, C = 6, T = 5;
  const step = stepBuffer(device);
  for (const fmt of ['f32', 'q8'] as KvFormat[]) {
    const kv = createKvCache(device, fmt, C, nKv, D);
    const kernel = new KvStoreKernel(cache, { kvHeads: nKv, headDim: D, fmt });
    const rng = new TestRng(17);
    // Two batches, positions 0..4 then 5..9: the second wraps around the 6 slots.
    for (const pos0 of [0, T]) {
      const k = rng.f32(T * nKv * D, 1.5);
      const v = rng.f32(T * nKv * D, 0.5);
      k.fill(0, D, 2 * D); // an all-zero row: scale 0, no NaN
      v[3] = 40; // one outlier in a row
      const kb = bufferFrom(device, k), vb = bufferFrom(device, v);
      writeStep(device, step, T, pos0);
      run(device, (pass) => kernel.encode(pass, kernel.bind(device, step, kb, vb, kv), T));
      for (const [name, src, buf] of [['k', k, kv.k], ['v', v, kv.v]] as const) {
        const raw = await readBuffer(device, buf);
        const all = dequantizeKv(fmt, raw, C, nKv, D);
        const got = new Float32Array(T * nKv * D);
        for (let t = 0; t < T; t++) got.set(all.subarray(((pos0 + t) % C) * nKv * D, (((pos0 + t) % C) + 1) * nKv * D), t * nKv * D);
        const shape = `${name} T=${T} pos0=${pos0} C=${C} nKv=${nKv} D=${D}`;
        if (fmt === 'f32') {
          results.push(checkEqual(kernel.key, shape, src, got));
          continue;
        }
        // q8: the int8 values and the scales as the reference quantizeQ8 rounds them.
        const bytes = new Int8Array(raw, 0, C * nKv * D);
        const scales = new Float32Array(raw, C * nKv * D, C * nKv);
        const gotQ = new Int8Array(T * nKv * D), gotScale = new Float32Array(T * nKv);
        for (let t = 0; t < T; t++) {
          const slot = (pos0 + t) % C;
          gotQ.set(bytes.subarray(slot * nKv * D, (slot + 1) * nKv * D), t * nKv * D);
          gotScale.set(scales.subarray(slot * nKv, (slot + 1) * nKv), t * nKv);
        }
        results.push(...checkQ8Rows(kernel.key, shape, src, D, gotQ, gotScale));
      }
      kb.destroy();
      vb.destroy();
    }
    kv.k.destroy();
    kv.v.destroy();
  }
  step.destroy();
  return results;
}

// ---------------------------------------------------------------- attention

interface Session {
  name: string;
  H: number;
  nKv: number;
  D: number;
  kind: LayerKind;
  window: number;
  /** Batch sizes, in order: the first starts at position 0. */
  steps: number[];
  /** Sinks per head (bf16-exact), else random. */
  sinks?: number[];
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

const SESSIONS: Session[] = [
  // GQA 1, full, >64 keys (several online-softmax tiles), prefill then decode then prefill on a cache.
  { name: 'full gqa1', H: 4, nKv: 4, D: 16, kind: 'full', window: 0, steps: [70, 1, 1, 3] },
  // GQA 2, sliding W=4: batch of 13 > window, ring wrap-around, decodes, a prefill on a cache.
  { name: 'sliding gqa2 W=4 T>W', H: 4, nKv: 2, D: 16, kind: 'sliding', window: 4, steps: [13, 1, 1, 5, 1] },
  // GQA 8, D=64, sliding W=8: decode after N < W, then N > W with wrap; extreme sinks.
  {
    name: 'sliding gqa8 D64 sinks', H: 8, nKv: 1, D: 64, kind: 'sliding', window: 8, steps: [5, 1, 6, 1, 1],
    sinks: [30, -30, 0.5, -2, 8, -100, 1, 3],
  },
  // GQA 4, D=64, full layer; decodes from one cached key.
  { name: 'full gqa4 D64 sinks', H: 8, nKv: 2, D: 64, kind: 'full', window: 0, steps: [1, 1, 9, 1], sinks: [-30, 30, 0, 0, 2, -3, 5, -1] },
  // Sliding window wider than a 64-key tile: the window bound inside the second tile.
  { name: 'sliding gqa2 W=70', H: 2, nKv: 1, D: 32, kind: 'sliding', window: 70, steps: [90, 1, 2] },
];

/** out [T, H*D] for queries at positions pos0..pos0+T-1 over keys/values by position: the reference attention per token. */
function attentionRef(
  s: Session, q: Float32Array, T: number, pos0: number, keys: Float32Array[], vals: Float32Array[], sinks: Float32Array,
): Float32Array {
  const { H, nKv, D } = s;
  const shape = { heads: H, kvHeads: nKv, headDim: D, window: s.kind === 'sliding' ? s.window : 0 };
  const k = concat(keys.slice(0, pos0 + T)), v = concat(vals.slice(0, pos0 + T));
  const out = new Float32Array(T * H * D);
  for (let t = 0; t < T; t++) attention(q.subarray(t * H * D, (t + 1) * H * D), k, v, pos0 + t, shape, sinks, out.subarray(t * H * D, (t + 1) * H * D));
  return out;
}

function concat(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

async function attentionSessionCases(device: GPUDevice, cache: PipelineCache, s: Session, fmt: KvFormat): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const { H, nKv, D } = s;
  const maxBatch = Math.max(...s.steps);
  const total = s.steps.reduce((a, b) => a + b, 0);
  const C = kvCapacity(s.kind, s.window, total, maxBatch);
  const kv = createKvCache(device, fmt, C, nKv, D, s.name);
  const store = new KvStoreKernel(cache, { kvHeads: nKv, headDim: D, fmt });
  const attn = new AttentionKernel(cache, { heads: H, kvHeads: nKv, headDim: D, window: s.kind === 'sliding' ? s.window : 0, fmt });
  const rng = new TestRng(H * 131 + nKv * 17 + D + s.window);
  const sinks = s.sinks ? bf16Bytes(s.sinks) : rng.bf16(H, 1);
  const sinkBuf = bufferFrom(device, sinks.bytes); // padded to a whole word
  const step = stepBuffer(device);
  const keys: Float32Array[] = [], vals: Float32Array[] = []; // exact, by position
  const keysDq: Float32Array[] = [], valsDq: Float32Array[] = []; // as cached (q8: dequantized)
  let pos0 = 0;
  let worstQuantRel = 0;
  for (const T of s.steps) {
    const q = rng.f32(T * H * D, 1);
    const k = rng.f32(T * nKv * D, 1);
    const v = rng.f32(T * nKv * D, 1);
    const qb = bufferFrom(device, q), kb = bufferFrom(device, k), vb = bufferFrom(device, v);
    const ob = createBuffer(device, T * H * D * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    writeStep(device, step, T, pos0, s.kind === 'sliding' ? s.window : 0);
    run(device, (pass) => {
      store.encode(pass, store.bind(device, step, kb, vb, kv), T);
      attn.encode(pass, attn.bind(device, step, qb, kv, sinkBuf, ob), T);
    });
    const got = await readF32(device, ob, T * H * D);
    const cachedK = dequantizeKv(fmt, await readBuffer(device, kv.k), C, nKv, D);
    const cachedV = dequantizeKv(fmt, await readBuffer(device, kv.v), C, nKv, D);
    for (let t = 0; t < T; t++) {
      const slot = (pos0 + t) % C;
      keys.push(k.slice(t * nKv * D, (t + 1) * nKv * D));
      vals.push(v.slice(t * nKv * D, (t + 1) * nKv * D));
      keysDq.push(cachedK.slice(slot * nKv * D, (slot + 1) * nKv * D));
      valsDq.push(cachedV.slice(slot * nKv * D, (slot + 1) * nKv * D));
    }
    const shape = `${s.name} T=${T} pos0=${pos0} C=${C}`;
    const want = attentionRef(s, q, T, pos0, keysDq, valsDq, sinks.values);
    results.push(checkClose(attn.key, shape, want, got, 1e-5, 1e-5));
    if (fmt === 'q8') {
      const exact = attentionRef(s, q, T, pos0, keys, vals, sinks.values);
      let maxErr = 0, maxRef = 0;
      for (let i = 0; i < exact.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got[i]! - exact[i]!));
        maxRef = Math.max(maxRef, Math.abs(exact[i]!));
      }
      worstQuantRel = Math.max(worstQuantRel, maxErr / Math.max(maxRef, 1e-30));
    }
    for (const b of [qb, kb, vb, ob]) b.destroy();
    pos0 += T;
  }
  if (fmt === 'q8') {
    const ok = worstQuantRel < 0.05;
    results.push({
      kernel: attn.key, shape: `${s.name} vs unquantized`, ok, maxErr: worstQuantRel,
      message: `${attn.key} ${s.name} vs unquantized k/v: max |err| / max |out| = ${worstQuantRel.toExponential(2)}${ok ? '' : ' (over 5e-2)'}`,
    });
  }
  for (const b of [kv.k, kv.v, sinkBuf, step]) b.destroy();
  return results;
}

/**
 * RoPE and the KV store everywhere; the attention sessions (the tiled kernel, prefill then decode
 * on one cache) in Node only: each browser runs the same kernel in flash_attention_tiled.
 */
export async function attentionCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results = [...(await ropeCases(device, cache)), ...(await kvStoreCases(device, cache))];
  for (const fmt of ['f32', 'q8'] as KvFormat[]) {
    for (const s of inScope(SESSIONS, scope)) results.push(...(await attentionSessionCases(device, cache, s, fmt)));
  }
  return results;
}
