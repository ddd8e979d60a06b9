/**
 * f32_bf16w_matmul against the reference linear (engine/reference/ops.ts): decode (T=1) and prefill (T>1) paths, partial row
 * and K tails, bias, accumulate, a lm_head-style strided output and a row-chunked matrix.
 * Runs in Node and in the browser.
 */
import { bufferFrom, readF32 } from '../../engine/gpu/buffers.ts';
import { linear } from '../../engine/reference/ops.ts';
import { Bf16MatmulKernel, planRowChunks } from '../../kernels/matmul-bf16.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { checkClose, TestRng, type CaseResult } from '../gpu/check.ts';
import { runPass, stepBuffer } from '../gpu/dispatch.ts';
import { inScope, type CaseScope } from './scope.ts';

interface Shape {
  tokens: number;
  rows: number;
  k: number;
  bias?: boolean;
  acc?: boolean;
  /** lm_head chunk emulation: rows land at outOffset within a token's outStride. */
  outStride?: number;
  outOffset?: number;
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

// Each shape runs at T=1 (decode path) and at `tokens` (prefill path) through one pipeline:
// SwiftShader takes seconds to compile each, so the table keeps few distinct keys.
const SHAPES: Shape[] = [
  { tokens: 3, rows: 1, k: 64 }, // one row: a workgroup that is mostly idle
  { tokens: 17, rows: 7, k: 96, bias: true }, // token tail of a 16-token tile
  { tokens: 3, rows: 33, k: 2880, bias: true, acc: true, browser: true }, // real hidden
  { tokens: 2, rows: 5, k: 4096 }, // real q dim (o_proj input)
  { tokens: 17, rows: 513, k: 70, bias: true, browser: true }, // K % 8 != 0 (u32 loads), K not a multiple of the 32-wide K tile
  { tokens: 64, rows: 100, k: 64, bias: true, acc: true },
];

/** Both shader variants run every shape: the engine picks 'simple' on CPU adapters, 'tiled' on GPUs. */
const VARIANTS = ['tiled', 'simple'] as const;

/** out[t*stride + offset + o] (+)= W x_t + b, over a copy of `init`: the reference linear per token. */
function cpuMatmul(
  w: Float32Array, b: Float32Array | null, x: Float32Array, tokens: number, rows: number, k: number,
  init: Float32Array, accumulate: boolean, stride = rows, offset = 0,
): Float32Array {
  const out = Float32Array.from(init);
  for (let t = 0; t < tokens; t++) linear(w, b, x.subarray(t * k, (t + 1) * k), rows, k, out, { outOffset: t * stride + offset, accumulate });
  return out;
}

/** f32 accumulation vs f64: error grows like sqrt(K) times the term scale. */
const tol = (k: number) => 2e-5 * Math.sqrt(k);

export async function matmulCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const results: CaseResult[] = [];

  for (const variant of VARIANTS) for (const s of inScope(SHAPES, scope)) for (const tokens of [1, s.tokens]) {
    const { rows, k } = s;
    const stride = s.outStride ?? rows;
    const offset = s.outOffset ?? 0;
    const rng = new TestRng(tokens * 7919 + rows * 31 + k);
    const x = rng.f32(tokens * k);
    const w = rng.bf16(rows * k, 0.05);
    const b = s.bias ? rng.bf16(rows, 1) : null;
    const init = rng.f32(tokens * stride); // non-zero: catches stray writes and a missing accumulate
    const kern = new Bf16MatmulKernel(cache, {
      inDim: k, outDim: rows, bias: !!s.bias, accumulate: !!s.acc, outStride: s.outStride, outOffset: s.outOffset, variant,
    });
    const bufs = {
      x: bufferFrom(device, x),
      weight: bufferFrom(device, w.bytes),
      bias: b ? bufferFrom(device, b.bytes) : undefined,
      out: bufferFrom(device, init, STORAGE),
      step: stepBuffer(device, tokens),
    };
    await runPass(device, (pass) => kern.encode(pass, kern.bind(device, bufs), tokens));
    const got = await readF32(device, bufs.out, tokens * stride);
    const want = cpuMatmul(w.values, b?.values ?? null, x, tokens, rows, k, init, !!s.acc, stride, offset);
    const shape = `T=${tokens} N=${rows} K=${k}${s.outStride ? ` stride=${stride} offset=${offset}` : ''}`;
    results.push({ ...checkClose(kern.key, shape, want, got, tol(k), 1e-4), path: variant });
    for (const buf of [bufs.x, bufs.weight, bufs.bias, bufs.out, bufs.step]) buf?.destroy();
  }

  // A lm_head split into row chunks (one buffer and one kernel per chunk) equals the unsplit product.
  for (const variant of VARIANTS) for (const tokens of [1, 5]) {
    const vocab = 100;
    const k = 64;
    const chunks = planRowChunks(vocab, k * 2, 40 * k * 2);
    const rng = new TestRng(4242 + tokens);
    const x = rng.f32(tokens * k);
    const w = rng.bf16(vocab * k, 0.05);
    const init = new Float32Array(tokens * vocab).fill(-777);
    const xb = bufferFrom(device, x);
    const out = bufferFrom(device, init, STORAGE);
    const step = stepBuffer(device, tokens);
    const parts = chunks.map((c) => {
      const kern = new Bf16MatmulKernel(cache, { inDim: k, outDim: c.rows, bias: false, accumulate: false, outStride: vocab, outOffset: c.rowStart, variant });
      const weight = bufferFrom(device, w.bytes.subarray(c.rowStart * k * 2, (c.rowStart + c.rows) * k * 2));
      return { kern, weight, bg: kern.bind(device, { x: xb, weight, out, step }) };
    });
    await runPass(device, (pass) => {
      for (const p of parts) p.kern.encode(pass, p.bg, tokens);
    });
    const got = await readF32(device, out, tokens * vocab);
    const want = cpuMatmul(w.values, null, x, tokens, vocab, k, init, false);
    const shape = `lm_head chunks=${chunks.map((c) => `${c.rowStart}+${c.rows}`).join(',')} T=${tokens} V=${vocab} K=${k}`;
    const r = checkClose(parts.map((p) => p.kern.key).join(' + '), shape, want, got, tol(k), 1e-4);
    results.push({ ...(chunks.length === 3 ? r : { ...r, ok: false, message: `${shape}: expected 3 chunks, got ${chunks.length}` }), path: variant });
    for (const buf of [xb, out, step, ...parts.map((p) => p.weight)]) buf.destroy();
  }

  return results;
}
