/**
 * The prefill GEMM paths of f32_bf16w_matmul (kernels/matmul-bf16-prefill.ts), both variants,
 * against f64 CPU math: row, token and K tails of the register tiles (64 x 64 workgroup tiles
 * with a 16-wide K tile; 4 x 4 invocation tiles), several token tiles, K = 2880 and 4096,
 * bias, accumulate, a strided lm_head-style output and K % 8 != 0 (u32 loads). Every shape
 * also runs at T = 1 and T = 2 through the same pipeline (one bind group serves every batch
 * size), and the output has junk around the written rows that must survive. The `q8` shapes
 * run f32_q8w_matmul (8-bit weights, engine/quant-q8.ts) against the dequantised values.
 * Runs in Node and in the browser.
 */
import { bufferFrom, createBuffer, readF32 } from '../../engine/gpu/buffers.ts';
import { STEP_BYTES, writeStep } from '../../kernels/common.ts';
import { Bf16MatmulKernel } from '../../kernels/matmul-bf16.ts';
import { dequantizeQ8, q8Bytes, quantizeBf16Rows } from '../../engine/quant-q8.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { checkClose, TestRng, type CaseResult } from '../gpu/check.ts';
import { inScope, type CaseScope } from './scope.ts';

interface Shape {
  tokens: number;
  rows: number;
  k: number;
  bias?: boolean;
  acc?: boolean;
  outStride?: number;
  outOffset?: number;
  /** 8-bit weights (f32_q8w_matmul); K % 32 == 0. */
  q8?: boolean;
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

const SHAPES: Shape[] = [
  { tokens: 65, rows: 70, k: 2880, bias: true, acc: true, browser: true }, // one token and 6 rows past a 64 x 64 tile; real hidden
  { tokens: 13, rows: 130, k: 4096, bias: true }, // o_proj's K; 13 tokens: not a multiple of 4 or 8
  { tokens: 100, rows: 33, k: 72, acc: true }, // K % 16 == 8: a half-filled last K tile
  { tokens: 9, rows: 9, k: 70, bias: true, outStride: 20, outOffset: 5, browser: true }, // K % 8 != 0, strided rows 5..13 of 20
  { tokens: 128, rows: 64, k: 64 }, // exact tiles, two token tiles
  { tokens: 65, rows: 70, k: 2880, bias: true, acc: true, q8: true, browser: true }, // q8 qkv-like: real hidden, row and token tails
  { tokens: 13, rows: 33, k: 96, q8: true }, // q8, three scale blocks: K not a multiple of the 64 values a simple step pair reads
];

const VARIANTS = ['tiled', 'simple'] as const;

/** f32 accumulation vs f64: error grows like sqrt(K) times the term scale. */
const tol = (k: number) => 2e-5 * Math.sqrt(k);

export async function gemmCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const results: CaseResult[] = [];
  for (const variant of VARIANTS) for (const s of inScope(SHAPES, scope)) {
    const { rows, k } = s;
    const stride = s.outStride ?? rows;
    const offset = s.outOffset ?? 0;
    const kern = new Bf16MatmulKernel(cache, {
      inDim: k, outDim: rows, bias: !!s.bias, accumulate: !!s.acc, outStride: s.outStride, outOffset: s.outOffset, variant, weights: s.q8 ? 'q8' : 'bf16',
    });
    const rng = new TestRng(rows * 31 + k);
    const w = rng.bf16(rows * k, 0.05);
    const b = s.bias ? rng.bf16(rows, 1) : null;
    const weight = bufferFrom(device, s.q8 ? q8Buffer(w.bytes, k, w.values) : w.bytes);
    const bias = b ? bufferFrom(device, b.bytes) : undefined;
    const step = createBuffer(device, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    for (const tokens of [1, 2, s.tokens]) {
      const x = rng.f32(tokens * k);
      // One extra token row of junk: a write past n_tokens would show there.
      const init = rng.f32((tokens + 1) * stride);
      const xb = bufferFrom(device, x);
      const out = bufferFrom(device, init, STORAGE);
      writeStep(device, step, tokens, 0);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      kern.encode(pass, kern.bind(device, { x: xb, weight, bias, out, step }), tokens);
      pass.end();
      device.queue.submit([enc.finish()]);
      const got = await readF32(device, out, (tokens + 1) * stride);
      const want = Float64Array.from(init);
      for (let t = 0; t < tokens; t++) {
        for (let o = 0; o < rows; o++) {
          let acc = b ? b.values[o]! : 0;
          for (let i = 0; i < k; i++) acc += w.values[o * k + i]! * x[t * k + i]!;
          const idx = t * stride + offset + o;
          want[idx] = s.acc ? want[idx]! + acc : acc;
        }
      }
      const shape = `T=${tokens} N=${rows} K=${k}${s.q8 ? ' q8' : ''}${s.bias ? ' bias' : ''}${s.acc ? ' acc' : ''}${s.outStride ? ` rows at ${offset} of ${stride}` : ''}`;
      results.push({ ...checkClose(kern.key, shape, want, got, tol(k), 1e-4), path: s.q8 ? `${variant}-q8` : variant });
      xb.destroy();
      out.destroy();
    }
    for (const buf of [weight, bias, step]) buf?.destroy();
  }
  return results;
}

/** The q8 buffer of bf16 rows (int8 values, the scales, padding); `values` becomes what the GPU reads. */
function q8Buffer(bf16: Uint8Array, k: number, values: Float32Array): Uint8Array {
  const { q, scales } = quantizeBf16Rows(bf16, k);
  values.set(dequantizeQ8(q, scales));
  const out = new Uint8Array(q8Bytes(q.length / k, k));
  out.set(new Uint8Array(q.buffer, q.byteOffset, q.byteLength));
  out.set(new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength), q.byteLength);
  return out;
}
