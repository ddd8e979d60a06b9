/**
 * The attention family: f32_rope, f32_kv_store and f32_{f32|q8}kv_sdpa against f64 CPU math
 * that mirrors ReferenceSession.attention. Attention runs as a session: several batches in
 * sequence (prefill, decodes, prefill on top of a cache), each storing its k, v then attending.
 * Runs in Node and in the browser.
 */
import { ropeRow, ropeTableData, yarnParams } from '../../engine/reference/rope.ts';
import { bufferFrom, createBuffer, readBuffer, readF32 } from '../../engine/gpu/buffers.ts';
import type { LayerKind, YarnRope } from '../../loader/config.ts';
import { AttentionKernel } from '../../kernels/attention.ts';
import { STEP_BYTES, writeStep } from '../../kernels/common.ts';
import { createKvCache, dequantizeKv, kvCapacity, KvStoreKernel, type KvFormat } from '../../kernels/kv-cache.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { RopeKernel } from '../../kernels/rope.ts';
import { checkClose, checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';

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
        const want = new Float64Array(x.length);
        const cos = new Float64Array(half), sin = new Float64Array(half);
        for (let t = 0; t < T; t++) {
          ropeRow(yp, pos0 + t, cos, sin);
          for (let h = 0; h < heads; h++) {
            const o = (t * heads + h) * cfg.headDim;
            for (let i = 0; i < half; i++) {
              const x1 = x[o + i]!, x2 = x[o + i + half]!;
              want[o + i] = x1 * cos[i]! - x2 * sin[i]!;
              want[o + i + half] = x2 * cos[i]! + x1 * sin[i]!;
            }
          }
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
        // q8: scale = max|row| / 127 and every value within scale / 2 (as a ratio to scale / 2).
        const scales = new Float32Array(raw, C * nKv * D, C * nKv);
        const wantScale = new Float32Array(T * nKv), gotScale = new Float32Array(T * nKv);
        const ratio = new Float32Array(src.length);
        for (let r = 0; r < T * nKv; r++) {
          let amax = 0;
          for (let d = 0; d < D; d++) amax = Math.max(amax, Math.abs(src[r * D + d]!));
          wantScale[r] = amax / 127;
          const t = Math.floor(r / nKv), g = r % nKv;
          gotScale[r] = scales[((pos0 + t) % C) * nKv + g]!;
          for (let d = 0; d < D; d++) {
            const i = r * D + d;
            ratio[i] = gotScale[r]! > 0 ? Math.abs(got[i]! - src[i]!) / (gotScale[r]! / 2) : Math.abs(got[i]! - src[i]!);
          }
        }
        results.push(checkClose(kernel.key, `${shape} scale`, wantScale, gotScale, 0, 1e-6));
        results.push(checkClose(kernel.key, `${shape} |dequant - x| / (scale/2)`, new Float32Array(src.length), ratio, 1 + 1e-4));
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

/** out [T, H*D] in f64 for queries at positions pos0..pos0+T-1 over keys/values by position. */
function attentionRef(
  s: Session, q: Float32Array, T: number, pos0: number, keys: Float32Array[], vals: Float32Array[], sinks: Float32Array,
): Float64Array {
  const { H, nKv, D } = s;
  const group = H / nKv, scale = 1 / Math.sqrt(D);
  const out = new Float64Array(T * H * D);
  for (let t = 0; t < T; t++) {
    const pos = pos0 + t;
    const first = s.kind === 'sliding' ? Math.max(0, pos - s.window + 1) : 0;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group), qo = (t * H + h) * D;
      const scores: number[] = [];
      let max = sinks[h]!;
      for (let j = first; j <= pos; j++) {
        let dot = 0;
        for (let i = 0; i < D; i++) dot += q[qo + i]! * keys[j]![g * D + i]!;
        scores.push(dot * scale);
        max = Math.max(max, dot * scale);
      }
      let denom = Math.exp(sinks[h]! - max);
      const p = scores.map((x) => Math.exp(x - max));
      for (const x of p) denom += x;
      for (let i = 0; i < D; i++) {
        let acc = 0;
        for (let j = first; j <= pos; j++) acc += p[j - first]! * vals[j]![g * D + i]!;
        out[qo + i] = acc / denom;
      }
    }
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
    writeStep(device, step, T, pos0);
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

export async function attentionCases(device: GPUDevice): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results = [...(await ropeCases(device, cache)), ...(await kvStoreCases(device, cache))];
  for (const fmt of ['f32', 'q8'] as KvFormat[]) {
    for (const s of SESSIONS) results.push(...(await attentionSessionCases(device, cache, s, fmt)));
  }
  return results;
}
