/** f32_bf16w_rmsnorm against the reference rmsNorm, both variants. Runs in Node and in the browser. */
import { rmsNorm } from '../../engine/reference/ops.ts';
import { bufferFrom, createBuffer, readF32 } from '../../engine/gpu/buffers.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { RmsNormKernel } from '../../kernels/rmsnorm.ts';
import { checkClose, TestRng, type CaseResult } from '../gpu/check.ts';

const SHAPES: { tokens: number; hidden: number }[] = [
  { tokens: 1, hidden: 64 },
  { tokens: 3, hidden: 96 },
  { tokens: 5, hidden: 2880 }, // gpt-oss hidden: not a multiple of the workgroup size
  { tokens: 2, hidden: 33 }, // odd length: the last bf16 sits alone in its word
];

export async function rmsnormCases(device: GPUDevice): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  for (const variant of ['workgroup', 'simple'] as const) for (const { tokens, hidden } of SHAPES) {
    const rng = new TestRng(tokens * 1000 + hidden);
    const x = rng.f32(tokens * hidden, 3);
    const w = rng.bf16(hidden, 0.5);
    const k = new RmsNormKernel(cache, { hidden, eps: 1e-5, variant });
    const xb = bufferFrom(device, x);
    const wb = bufferFrom(device, w.bytes);
    const ob = createBuffer(device, tokens * hidden * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    k.encode(pass, k.bind(device, xb, wb, ob), tokens);
    pass.end();
    device.queue.submit([enc.finish()]);
    const got = await readF32(device, ob, tokens * hidden);
    const want = new Float32Array(tokens * hidden);
    for (let t = 0; t < tokens; t++) want.set(rmsNorm(x.subarray(t * hidden, (t + 1) * hidden), w.values, 1e-5), t * hidden);
    results.push({ ...checkClose(k.key, `T=${tokens} H=${hidden}`, want, got, 1e-5, 1e-5), path: variant });
    for (const b of [xb, wb, ob]) b.destroy();
  }
  return results;
}
