/**
 * The WebGPU forward pass against the reference implementation's golden logits (f32 KV cache),
 * and the 8-bit KV cache against the CPU reference that rounds its cache the same way.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { loadReferenceModel } from '../engine/reference/model.ts';
import { compareLogits } from './helpers/compare.ts';
import { testGpu } from './gpu/node-device.ts';

const GOLDEN = fileURLToPath(new URL('../../shared/golden/', import.meta.url));
/** f32 activations and exactly decoded weights match the f32 reference to ~1e-4. */
const TOL = 2e-3;

async function golden(name: string) {
  const dir = join(GOLDEN, name);
  const expected = JSON.parse(await readFile(join(dir, 'expected.json'), 'utf8')) as { tokens: number[]; shape: [number, number] };
  const logits = new Float32Array(new Uint8Array(await readFile(join(dir, 'logits.f32'))).buffer);
  return { dir: join(dir, 'model'), tokens: expected.tokens, vocab: expected.shape[1], logits };
}

function expectClose(label: string, want: Float32Array, got: Float32Array, vocab: number, tol: number): void {
  const r = compareLogits(label, want, got, vocab, tol);
  console.log(`${label}: max |dlogit| ${r.maxDiff.toExponential(2)}`);
  expect(r.failures, r.failures.join('\n')).toEqual([]);
}

for (const name of ['tiny', 'sharded']) {
  describe(`GPU forward pass: golden ${name}`, () => {
    let g: Awaited<ReturnType<typeof golden>>;
    let ck: Checkpoint;
    const models: GpuModel[] = [];
    beforeAll(async () => {
      g = await golden(name);
      ck = await Checkpoint.open(await directorySource(g.dir));
    });
    afterAll(async () => {
      models.forEach((m) => m.dispose());
      await ck.close();
    });

    // Batches of 5: the sequence (14 and 24 tokens, windows 4 and 6) spans several prefill batches.
    it('f32 cache: whole sequence in batches, then one token at a time', async () => {
      const model = await GpuModel.load(ck, await testGpu(), { kvFormat: 'f32', maxBatch: 5, contextLimit: 32 });
      models.push(model);
      const session = new GpuSession(model, { allLogits: true });
      expectClose(`${name} f32 whole`, g.logits, (await session.append(g.tokens, 'all'))!, g.vocab, TOL);
      session.reset();
      const step = new Float32Array(g.logits.length);
      for (let i = 0; i < g.tokens.length; i++) step.set((await session.append([g.tokens[i]!], 'last'))!, i * g.vocab);
      expectClose(`${name} f32 one-by-one`, g.logits, step, g.vocab, TOL);
      session.dispose();
    });

    // The fused one-token kernels generation uses (norm folded into the projections, RoPE and
    // the cache store inside flash-decoding attention, router + top-k in one kernel).
    for (const kvFormat of ['f32', 'q8'] as const) {
      it(`${kvFormat} cache: the decode kernels, one token at a time`, async () => {
        const model = await GpuModel.load(ck, await testGpu(), { kvFormat, maxBatch: 5, contextLimit: 32 });
        models.push(model);
        const want = kvFormat === 'f32' ? g.logits : (await loadReferenceModel(ck)).newSession({ kv: 'q8' }).forward(g.tokens);
        const session = new GpuSession(model);
        const got = new Float32Array(g.logits.length);
        for (let i = 0; i < g.tokens.length; i++) got.set(await session.decodeLogits(g.tokens[i]!), i * g.vocab);
        expectClose(`${name} ${kvFormat} decode kernels vs ${kvFormat === 'f32' ? 'golden' : 'reference-q8'}`, want, got, g.vocab, TOL);
        session.dispose();
      });
    }

    // The GPU decode kernels, forced on this adapter, with the subgroup reductions a GPU that
    // offers `subgroups` runs (SwiftShader grants them, 4 invocations per subgroup). One golden:
    // compiling the GPU variants takes SwiftShader about a minute.
    if (name === 'tiny') it('f32 cache: the GPU decode kernels (subgroup reductions where granted), one token at a time', async () => {
      const gpu = await testGpu();
      const model = await GpuModel.load(ck, { ...gpu, fallback: false }, { kvFormat: 'f32', maxBatch: 5, contextLimit: 32 });
      models.push(model);
      console.log(`${name}: subgroups ${gpu.subgroups ? `granted (sizes ${gpu.subgroupMinSize}-${gpu.subgroupMaxSize})` : 'not offered'}; lm_head ${model.kernels.decode.lmHead.key}`);
      for (const k of [model.kernels.decode.qkv, model.kernels.decode.lmHead, model.kernels.decode.router, model.kernels.decode.gateUp, model.kernels.down]) {
        expect(k.key.endsWith('_sg'), `${k.key}: the subgroup variant exactly when the device has subgroups`).toBe(gpu.subgroups);
      }
      const session = new GpuSession(model);
      const got = new Float32Array(g.logits.length);
      for (let i = 0; i < g.tokens.length; i++) got.set(await session.decodeLogits(g.tokens[i]!), i * g.vocab);
      expectClose(`${name} f32 decode kernels (tiled${gpu.subgroups ? ', subgroups' : ''}) vs golden`, g.logits, got, g.vocab, TOL);
      session.dispose();
    });

    it('q8 cache: matches the reference with the same 8-bit cache rounding', async () => {
      const model = await GpuModel.load(ck, await testGpu(), { kvFormat: 'q8', maxBatch: 5, contextLimit: 32 });
      models.push(model);
      const want = (await loadReferenceModel(ck)).newSession({ kv: 'q8' }).forward(g.tokens);
      const session = new GpuSession(model, { allLogits: true });
      expectClose(`${name} q8 whole vs reference-q8`, want, (await session.append(g.tokens, 'all'))!, g.vocab, TOL);
      session.dispose();
    });
  });
}
