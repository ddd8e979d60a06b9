/**
 * The per-layer KV cache and f32_kv_store, which writes a batch's k, v rows (after RoPE) into it.
 *
 * A cache has C slots; position p lives in slot p % C. Each of k and v is ONE buffer:
 *   'f32': array<f32> [C, nKv, D]
 *   'q8' : array<u32> [C, nKv, D/4] of int8 values, 4 per word (element d in byte d % 4, low
 *          byte first), then [C, nKv] f32 scales (as u32 bits). x ~ int8 * scale with
 *          scale = max|row| / 127, int8 = clamp(round(x / scale), -127, 127) per (slot, kv head).
 * Kernels find C from arrayLength, so a cache buffer (or binding range) must be exactly
 * `kvBufferBytes` long.
 *
 * f32_kv_store bindings: 0 step: uniform Step; 1 k: array<f32> [T, STRIDE] with the k heads at
 *   K_OFF of each row; 2 v: likewise at V_OFF (k and v may be the same qkv buffer);
 *   3 kCache, 4 vCache (read_write, layout above). One thread per (t, kv head) row; 64 per
 *   workgroup; rows with t >= step.n_tokens are skipped.
 */
import type { LayerKind } from '../loader/config.ts';
import { STEP_STRUCT } from './common.ts';
import { bindBuffers, kernelKey, type PipelineCache } from './pipeline-cache.ts';

export type KvFormat = 'f32' | 'q8';

const WG = 64;

/**
 * Slots a layer needs. Sliding layers keep window + maxBatch - 1: the first token of a batch
 * still needs the window - 1 keys before it while the batch's own keys are stored. With
 * `keepAll` they keep every position like full layers, so a session can go back to any earlier
 * position and continue from there (KV reuse across requests).
 */
export function kvCapacity(kind: LayerKind, window: number, contextLimit: number, maxBatch: number, keepAll = false): number {
  if (kind === 'full' || keepAll) return contextLimit;
  return Math.min(contextLimit, window + maxBatch - 1);
}

/** Bytes of one of k or v. */
export function kvBufferBytes(fmt: KvFormat, capacity: number, nKv: number, headDim: number): number {
  const rows = capacity * nKv;
  return fmt === 'f32' ? rows * headDim * 4 : rows * headDim + rows * 4;
}

/** Bytes of a layer's whole cache (k and v). */
export function kvCacheBytes(fmt: KvFormat, capacity: number, nKv: number, headDim: number): number {
  return 2 * kvBufferBytes(fmt, capacity, nKv, headDim);
}

export interface KvCache {
  fmt: KvFormat;
  capacity: number;
  nKv: number;
  headDim: number;
  k: GPUBuffer;
  v: GPUBuffer;
}

export function createKvCache(
  device: GPUDevice, fmt: KvFormat, capacity: number, nKv: number, headDim: number, label = 'kv',
): KvCache {
  if (fmt === 'q8' && headDim % 4 !== 0) throw new Error(`q8 KV cache: head dim ${headDim} must be a multiple of 4`);
  const size = kvBufferBytes(fmt, capacity, nKv, headDim);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  return {
    fmt, capacity, nKv, headDim,
    k: device.createBuffer({ label: `${label}.k`, size, usage }),
    v: device.createBuffer({ label: `${label}.v`, size, usage }),
  };
}

/** Host-side decode of one cache buffer's contents (tests, debugging): f32 [C, nKv, D]. */
export function dequantizeKv(fmt: KvFormat, data: ArrayBuffer, capacity: number, nKv: number, headDim: number): Float32Array {
  if (fmt === 'f32') return new Float32Array(data.slice(0, capacity * nKv * headDim * 4));
  const rows = capacity * nKv;
  const q = new Int8Array(data, 0, rows * headDim);
  const scales = new Float32Array(data, rows * headDim, rows);
  const out = new Float32Array(rows * headDim);
  for (let r = 0; r < rows; r++) for (let d = 0; d < headDim; d++) out[r * headDim + d] = q[r * headDim + d]! * scales[r]!;
  return out;
}

/** WGSL storing row `src` (a k or v input) into cache `dst` at row `drow`. */
function storeRow(fmt: KvFormat, src: string, dst: string, base: string): string {
  if (fmt === 'f32') {
    return `for (var i = 0u; i < D; i++) { ${dst}[drow * D + i] = ${src}[${base} + i]; }`;
  }
  return `{
    var amax = 0.0;
    for (var i = 0u; i < D; i++) { amax = max(amax, abs(${src}[${base} + i])); }
    let inv = select(0.0, 127.0 / amax, amax > 0.0);
    for (var w = 0u; w < D / 4u; w++) {
      var word = 0u;
      for (var c = 0u; c < 4u; c++) {
        let qv = clamp(round(${src}[${base} + 4u * w + c] * inv), -127.0, 127.0);
        word |= (bitcast<u32>(i32(qv)) & 0xffu) << (8u * c);
      }
      ${dst}[drow * (D / 4u) + w] = word;
    }
    ${dst}[sbase + drow] = bitcast<u32>(amax / 127.0);
  }`;
}

export interface KvStoreParams {
  kvHeads: number;
  headDim: number;
  fmt: KvFormat;
  /** Floats between tokens in the k and v inputs (default kvHeads * headDim). */
  stride?: number;
  /** Where k and v start within a token's row (default 0: separate k and v buffers). */
  kOffset?: number;
  vOffset?: number;
}

export function kvStoreSource(p: KvStoreParams): string {
  const elem = p.fmt === 'f32' ? 'f32' : 'u32';
  // Words per row: a row of f32 values, or D/4 packed words plus one scale.
  const rowWords = p.fmt === 'f32' ? 'D' : '(D / 4u + 1u)';
  return /* wgsl */ `
${STEP_STRUCT}
const D: u32 = ${p.headDim}u;
const NKV: u32 = ${p.kvHeads}u;
const STRIDE: u32 = ${p.stride ?? p.kvHeads * p.headDim}u;
const K_OFF: u32 = ${p.kOffset ?? 0}u;
const V_OFF: u32 = ${p.vOffset ?? 0}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> kc: array<${elem}>;
@group(0) @binding(4) var<storage, read_write> vc: array<${elem}>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let srow = gid.x;               // t * NKV + g
  let t = srow / NKV;
  if (t >= step.n_tokens) { return; }
  let cap = arrayLength(&kc) / (NKV * ${rowWords});
  let sbase = cap * NKV * (D / 4u);   // q8: where the scales start
  let drow = ((step.pos0 + t) % cap) * NKV + srow % NKV;
  let kb = t * STRIDE + K_OFF + (srow % NKV) * D;
  let vb = t * STRIDE + V_OFF + (srow % NKV) * D;
  ${storeRow(p.fmt, 'k', 'kc', 'kb')}
  ${storeRow(p.fmt, 'v', 'vc', 'vb')}
}`;
}

export class KvStoreKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: KvStoreParams) {
    if (p.fmt === 'q8' && p.headDim % 4 !== 0) throw new Error(`q8 KV store: head dim ${p.headDim} must be a multiple of 4`);
    this.key = kernelKey(`f32_kv_store_${p.fmt}`, { kv: p.kvHeads, d: p.headDim, s: p.stride, ko: p.kOffset, vo: p.vOffset });
    this.pipeline = cache.get(this.key, () => kvStoreSource(p));
  }

  /** k, v: f32 [T, nKv, D] (after RoPE); `kv` in this kernel's format and shape. */
  bind(device: GPUDevice, step: GPUBuffer | GPUBufferBinding, k: GPUBuffer, v: GPUBuffer, kv: KvCache): GPUBindGroup {
    if (kv.fmt !== this.p.fmt || kv.nKv !== this.p.kvHeads || kv.headDim !== this.p.headDim) {
      throw new Error(`${this.key}: cache is ${kv.fmt} nKv=${kv.nKv} D=${kv.headDim}`);
    }
    return bindBuffers(device, this.pipeline, [step, k, v, kv.k, kv.v], this.key);
  }

  /** Stores `tokens` rows (at most the cache's capacity; sliding layers: see kvCapacity). */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, tokens: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil((tokens * this.p.kvHeads) / WG));
  }
}
