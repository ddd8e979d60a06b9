/**
 * Flash-decoding attention for one token (f32_{f32|q8}kv_sdpa_decode + f32_sdpa_decode_combine)
 * against the reference applyRope, quantizeQ8 and attention (engine/reference): GQA ratios 1, 2,
 * 3, 4 and 8, head dims 16, 32 and 64, f32 and 8-bit caches, full and sliding layers, positions 0
 * and 1, inside and past the window (the ring wrapped), and enough keys for several splits.
 *
 * Each step fills the cache as a session would have left it (visible rows, stale rows of a
 * sliding ring, junk in never-written slots), runs the token at `pos` and checks the output and
 * the row the kernel stored: f32, the new key after RoPE and the value as given; q8, for that
 * f32 key and the value, the same int8 values and scales as f32_kv_store writes and the
 * reference quantizeQ8's (up to WGSL's division accuracy, see q8.ts). Runs in Node and in the
 * browser.
 */
import { bufferFrom, createBuffer, readBuffer, readF32 } from '../../engine/gpu/buffers.ts';
import { attention, firstVisibleKey, quantizeQ8 } from '../../engine/reference/ops.ts';
import { applyRope, ropeRow, ropeTableData, yarnParams } from '../../engine/reference/rope.ts';
import type { YarnRope } from '../../loader/config.ts';
import { decodePartBytes, decodeSplits, DecodeAttentionKernel, visibleKeys } from '../../kernels/attention-decode.ts';
import { writeStep } from '../../kernels/common.ts';
import { createKvCache, dequantizeKv, kvBufferBytes, KvStoreKernel, type KvCache, type KvFormat } from '../../kernels/kv-cache.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { checkClose, checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';
import { inScope, type CaseScope } from './scope.ts';
import { runPass, rwStorage, stepBuffer } from '../gpu/dispatch.ts';
import { checkQ8Rows } from './q8.ts';

const REAL_ROPE: YarnRope = { theta: 150000, factor: 32, betaFast: 32, betaSlow: 1, originalMaxPositions: 4096, truncate: false };
const FORMATS: KvFormat[] = ['f32', 'q8'];
/** A never-written slot: reading it would show in the output. */
const JUNK = 50;

interface Config {
  name: string;
  H: number;
  nKv: number;
  D: number;
  /** Sliding window W, or 0 for a full layer. */
  window: number;
  positions: number[];
  /** Sinks per head (bf16-exact); else random. */
  sinks?: number[];
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

const CONFIGS: Config[] = [
  { name: 'gqa1 full', H: 2, nKv: 2, D: 16, window: 0, positions: [0, 1, 5, 200] },
  { name: 'gqa2 sliding W=4', H: 4, nKv: 2, D: 32, window: 4, positions: [0, 1, 3, 9, 12] },
  { name: 'gqa3 sliding W=70', H: 3, nKv: 1, D: 64, window: 70, positions: [0, 2, 69, 75, 150], browser: true },
  { name: 'gqa8 full sinks', H: 8, nKv: 1, D: 64, window: 0, positions: [0, 1, 64, 250], sinks: [30, -30, 0.5, -2, 8, -100, 1, 3], browser: true },
  { name: 'gqa4 sliding W=200', H: 8, nKv: 2, D: 32, window: 200, positions: [199, 300] },
];

/** Raw bf16 bytes of values already representable in bf16. */
function bf16Of(values: number[]): { bytes: Uint8Array; values: Float32Array } {
  const f = new Float32Array(values);
  return { bytes: new Uint8Array(Uint16Array.from(new Uint32Array(f.buffer), (u) => u >>> 16).buffer), values: f };
}

/** One of k or v as the cache buffer holds it, from rows by position (null: never written). */
function cacheImage(fmt: KvFormat, cap: number, width: number, D: number, slots: (Float32Array | null)[]): ArrayBuffer {
  const data = new ArrayBuffer(kvBufferBytes(fmt, cap, width / D, D));
  if (fmt === 'f32') {
    const f = new Float32Array(data);
    slots.forEach((r, s) => (r ? f.set(r, s * width) : f.fill(JUNK, s * width, (s + 1) * width)));
    return data;
  }
  const q = new Int8Array(data, 0, cap * width);
  const scales = new Float32Array(data, cap * width, (cap * width) / D);
  slots.forEach((r, s) => {
    if (!r) {
      q.fill(127, s * width, (s + 1) * width);
      scales.fill(JUNK, (s * width) / D, ((s + 1) * width) / D);
      return;
    }
    const z = quantizeQ8(r, D);
    q.set(z.q, s * width);
    scales.set(z.scales, (s * width) / D);
  });
  return data;
}

/** int8 values and scales of one slot of a q8 cache buffer. */
function q8Slot(raw: ArrayBuffer, cap: number, width: number, D: number, slot: number): { q: Int8Array; scales: Float32Array } {
  return {
    q: new Int8Array(raw, slot * width, width),
    scales: new Float32Array(raw, cap * width + (slot * width / D) * 4, width / D),
  };
}

async function configCases(device: GPUDevice, cache: PipelineCache, c: Config, results: CaseResult[]): Promise<void> {
  const { H, nKv, D, window } = c;
  const width = nKv * D;
  const maxPos = Math.max(...c.positions);
  const cap = window > 0 ? window + 3 : maxPos + 1;
  const rng = new TestRng(H * 97 + nKv * 13 + D + window);
  const yp = yarnParams(REAL_ROPE, D);
  const cos = new Float64Array(D / 2), sin = new Float64Array(D / 2);
  const table = bufferFrom(device, ropeTableData({ rope: REAL_ROPE, headDim: D }, maxPos + 1));
  const sinks = c.sinks ? bf16Of(c.sinks) : rng.bf16(H, 1);
  const sinkBuf = bufferFrom(device, sinks.bytes);
  // Rows earlier tokens left in the cache (after RoPE), by position.
  const pastK = Array.from({ length: maxPos }, () => rng.f32(width, 1));
  const pastV = Array.from({ length: maxPos }, () => rng.f32(width, 1));
  const step = stepBuffer(device, 1, 0);
  const qkvBuf = createBuffer(device, (H + 2 * nKv) * D * 4, rwStorage());
  const part = createBuffer(device, decodePartBytes(H, D), rwStorage());
  const out = createBuffer(device, H * D * 4, rwStorage());
  const shape = { heads: H, kvHeads: nKv, headDim: D, window };
  const store = new KvStoreKernel(cache, { kvHeads: nKv, headDim: D, fmt: 'q8' });
  const storeStep = stepBuffer(device, 1, 0);
  // Each format in both forms: 'workgroup' (GPUs) and 'simple' (CPU adapters); f32 first (the q8
  // checks quantize the key the f32 kernels stored).
  const kinds = FORMATS.flatMap((fmt) => (['workgroup', 'simple'] as const).map((path) => {
    const kern = new DecodeAttentionKernel(cache, { heads: H, kvHeads: nKv, headDim: D, window, fmt, simple: path === 'simple' });
    const kv: KvCache = createKvCache(device, fmt, cap, nKv, D, `${c.name} ${fmt} ${path}`);
    return { fmt, path, kern, kv, bg: kern.bind(device, step, qkvBuf, table, kv, part, sinkBuf, out) };
  }));

  for (const pos of c.positions) {
    const qkv = rng.f32((H + 2 * nKv) * D, 1);
    device.queue.writeBuffer(qkvBuf, 0, qkv);
    writeStep(device, step, 1, pos, window);
    ropeRow(yp, pos, cos, sin);
    const q = qkv.slice(0, H * D);
    const k = qkv.slice(H * D, (H + nKv) * D);
    const v = qkv.slice((H + nKv) * D);
    applyRope(q, H, D, cos, sin);
    applyRope(k, nKv, D, cos, sin);
    const first = firstVisibleKey(pos, window);
    const splits = decodeSplits(visibleKeys(pos, window));
    const where = `${c.name} pos=${pos} keys=${pos - first + 1} splits=${splits} C=${cap}`;
    // Slot contents before this token: the latest earlier position of each slot, if any.
    const slotsK: (Float32Array | null)[] = new Array<Float32Array | null>(cap).fill(null);
    const slotsV: (Float32Array | null)[] = new Array<Float32Array | null>(cap).fill(null);
    for (let j = Math.max(0, pos - cap); j < pos; j++) {
      slotsK[j % cap] = pastK[j]!;
      slotsV[j % cap] = pastV[j]!;
    }
    let storedK: Float32Array | undefined; // the f32 kernel's new key: what the q8 kernel must quantize
    for (const { fmt, path, kern, kv, bg } of kinds) {
      const before = results.length;
      device.queue.writeBuffer(kv.k, 0, cacheImage(fmt, cap, width, D, slotsK));
      device.queue.writeBuffer(kv.v, 0, cacheImage(fmt, cap, width, D, slotsV));
      await runPass(device, (pass) => kern.encode(pass, bg, pos));
      const got = await readF32(device, out, H * D);
      const rawK = await readBuffer(device, kv.k), rawV = await readBuffer(device, kv.v);
      const slot = pos % cap;
      const cachedK = dequantizeKv(fmt, rawK, cap, nKv, D), cachedV = dequantizeKv(fmt, rawV, cap, nKv, D);
      if (fmt === 'f32') {
        storedK = cachedK.slice(slot * width, (slot + 1) * width);
        results.push(checkClose(kern.key, `${where} stored key vs applyRope`, k, storedK, 2e-6, 1e-6));
        results.push(checkEqual(kern.key, `${where} stored value`, v, cachedV.subarray(slot * width, (slot + 1) * width)));
      } else {
        // The same bytes as f32_kv_store writes for that key and value (prefill and decode share
        // a cache), and the reference quantizeQ8's (up to WGSL's division accuracy).
        const scratch = createKvCache(device, 'q8', 1, nKv, D, 'scratch');
        const kb = bufferFrom(device, storedK!), vb = bufferFrom(device, v);
        await runPass(device, (pass) => store.encode(pass, store.bind(device, storeStep, kb, vb, scratch), 1));
        const storeK = await readBuffer(device, scratch.k), storeV = await readBuffer(device, scratch.v);
        for (const [name, raw, ref, src] of [['key', rawK, storeK, storedK!], ['value', rawV, storeV, v]] as const) {
          const got = q8Slot(raw, cap, width, D, pos % cap), want = q8Slot(ref, 1, width, D, 0);
          results.push(checkEqual(kern.key, `${where} stored ${name} int8 vs ${store.key}`, want.q, got.q));
          results.push(checkEqual(kern.key, `${where} stored ${name} scales vs ${store.key}`, want.scales, got.scales));
          results.push(...checkQ8Rows(kern.key, `${where} stored ${name}${name === 'key' ? ' (the f32 kernel\'s)' : ''}`, src, D, got.q, got.scales));
        }
        for (const b of [scratch.k, scratch.v, kb, vb]) b.destroy();
      }
      // The reference over the visible rows as cached (q8: dequantized), the new one included.
      const keys = new Float32Array((pos + 1) * width), vals = new Float32Array((pos + 1) * width);
      for (let j = first; j <= pos; j++) {
        keys.set(cachedK.subarray((j % cap) * width, ((j % cap) + 1) * width), j * width);
        vals.set(cachedV.subarray((j % cap) * width, ((j % cap) + 1) * width), j * width);
      }
      const want = attention(q, keys, vals, pos, shape, sinks.values);
      results.push(checkClose(`${kern.key} + ${kern.combineKey}`, `${where} out [H*D]`, want, got, 1e-5, 1e-5));
      for (let i = before; i < results.length; i++) results[i] = { ...results[i]!, path };
    }
  }
  for (const b of [table, sinkBuf, step, storeStep, qkvBuf, part, out, ...kinds.flatMap((x) => [x.kv.k, x.kv.v])]) b.destroy();
}

export async function attentionDecodeCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  for (const c of inScope(CONFIGS, scope)) await configCases(device, cache, c, results);
  return results;
}
