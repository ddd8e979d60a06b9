/**
 * The prefill kernels end to end: the golden sequences fed in uneven batches on top of each
 * other (every batch starts where the last stopped; sliding layers' ring buffers wrap), with
 * the 'simple' kernels SwiftShader gets and with the GPU ('tiled') kernels forced on the same
 * adapter, f32 cache against the golden logits and q8 against the CPU reference with the same
 * cache rounding. Also: prefill records no lm_head; only 'all' and draws run one; the kernels only
 * some sessions use (full-vocabulary draw, every position's lm_head) compile on first use.
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
import { createGpuContext } from '../engine/gpu/device.ts';
import { compareLogits } from './helpers/compare.ts';
import { kernelKey } from '../kernels/pipeline-cache.ts';
import { testGpu } from './gpu/node-device.ts';

const GOLDEN = fileURLToPath(new URL('../../shared/golden/', import.meta.url));
const TOL = 2e-3;

interface Run {
  golden: 'tiny' | 'sharded';
  kvFormat: 'f32' | 'q8';
  /** 'tiled': the GPU kernels, forced on this (fallback) adapter. */
  kernels: 'simple' | 'tiled';
  maxBatch: number;
  /** Batch sizes in order (sum: the golden sequence). */
  chunks: number[];
}

const RUNS: Run[] = [
  // sharded: 24 tokens, window 6, ring 6 + 13 - 1 = 18 slots; batches of 1, 2, 5, 13, 3.
  { golden: 'sharded', kvFormat: 'f32', kernels: 'simple', maxBatch: 13, chunks: [1, 2, 5, 13, 3] },
  { golden: 'sharded', kvFormat: 'q8', kernels: 'simple', maxBatch: 13, chunks: [7, 13, 4] },
  { golden: 'sharded', kvFormat: 'q8', kernels: 'tiled', maxBatch: 13, chunks: [1, 2, 5, 13, 3] },
  // tiny: 14 tokens, window 4, ring 4 + 6 - 1 = 9 slots.
  { golden: 'tiny', kvFormat: 'f32', kernels: 'tiled', maxBatch: 6, chunks: [6, 1, 5, 2] },
];

async function golden(name: string) {
  const dir = join(GOLDEN, name);
  const expected = JSON.parse(await readFile(join(dir, 'expected.json'), 'utf8')) as { tokens: number[]; shape: [number, number] };
  const logits = new Float32Array(new Uint8Array(await readFile(join(dir, 'logits.f32'))).buffer);
  return { tokens: expected.tokens, vocab: expected.shape[1], logits, ck: await Checkpoint.open(await directorySource(join(dir, 'model'))) };
}

describe('GPU prefill in uneven batches on top of the cache', () => {
  const goldens = new Map<string, Awaited<ReturnType<typeof golden>>>();
  beforeAll(async () => {
    for (const name of ['tiny', 'sharded']) goldens.set(name, await golden(name));
  });
  afterAll(async () => {
    for (const g of goldens.values()) await g.ck.close();
  });

  for (const r of RUNS) {
    it(`${r.golden} ${r.kvFormat} ${r.kernels}: batches ${r.chunks.join(', ')} (maxBatch ${r.maxBatch})`, async () => {
      const g = goldens.get(r.golden)!;
      expect(r.chunks.reduce((a, b) => a + b, 0)).toBe(g.tokens.length);
      const gpu = await testGpu();
      // The kernels are chosen from `fallback` at load time: clearing it selects the GPU variants
      // (here those of a GPU without subgroups; engine-gpu-golden runs the subgroup ones).
      const ctx = r.kernels === 'tiled' ? { ...gpu, fallback: false, subgroups: false } : gpu;
      expect(gpu.fallback || r.kernels === 'tiled').toBe(true);
      const model = await GpuModel.load(g.ck, ctx, { kvFormat: r.kvFormat, maxBatch: r.maxBatch, contextLimit: 32, allLogits: true });
      const session = new GpuSession(model, { allLogits: true });
      try {
        const got = new Float32Array(g.logits.length);
        let at = 0;
        for (const n of r.chunks) {
          got.set((await session.append(g.tokens.slice(at, at + n), 'all'))!, at * g.vocab);
          at += n;
        }
        const want = r.kvFormat === 'f32' ? g.logits : (await loadReferenceModel(g.ck)).newSession({ kv: 'q8' }).forward(g.tokens);
        const cmp = compareLogits(`${r.golden} ${r.kvFormat} ${r.kernels} [${r.chunks}]`, want, got, g.vocab, TOL);
        console.log(`${r.golden} ${r.kvFormat} ${r.kernels} batches [${r.chunks}]: max |dlogit| ${cmp.maxDiff.toExponential(2)}`);
        expect(cmp.failures, cmp.failures.join('\n')).toEqual([]);
      } finally {
        session.dispose();
        model.dispose();
      }
    });
  }

  it('the full-vocabulary draw and every position\'s lm_head compile on first use, and work', async () => {
    const g = goldens.get('tiny')!;
    // Its own device: the pipeline cache is per device, and the other tests fill this file's.
    const gpu = await createGpuContext();
    try {
      const model = await GpuModel.load(g.ck, gpu, { kvFormat: 'q8', maxBatch: 8, contextLimit: 32 });
      const sampleKey = kernelKey('f32_sample', { v: g.vocab });
      const loaded = model.pipelines.size;
      expect(model.pipelines.has(sampleKey), 'f32_sample compiled by the load').toBe(false);
      expect(model.pipelines.has(model.kernels.decode.sampleCandidates.key), 'the candidates draw compiled by the load').toBe(true);
      const s0 = new GpuSession(model);
      await s0.append(g.tokens.slice(0, 5));
      const greedy = await s0.sample({ temperature: 0, topK: 0, topP: 1, seed: 0 });
      await s0.step({ temperature: 0.7, topK: 0, topP: 1, seed: 3 });
      expect(model.pipelines.size, 'pipelines after greedy and plain-temperature draws').toBe(loaded);
      // A top-p draw needs the full-vocabulary kernel: compiled now, and its draw is a token.
      const nucleus = await s0.step({ temperature: 0.7, topK: 0, topP: 0.9, seed: 3 });
      expect(model.pipelines.has(sampleKey), 'f32_sample after a top-p draw').toBe(true);
      expect(model.pipelines.size).toBe(loaded + 1);
      for (const id of [greedy, nucleus]) expect(id >= 0 && id < g.vocab, `drawn id ${id}`).toBe(true);
      s0.dispose();
      // allLogits: every position's lm_head compiles with the session, and its logits hold.
      const all = new GpuSession(model, { allLogits: true });
      const lmKeys = model.kernels.lmHead().map((k) => k.key);
      expect(lmKeys.every((k) => model.pipelines.has(k))).toBe(true);
      expect(model.pipelines.size).toBe(loaded + 1 + lmKeys.length);
      const logits = (await all.append(g.tokens.slice(0, 5), 'all'))!;
      const ref = (await loadReferenceModel(g.ck)).newSession({ kv: 'q8' }).forward(g.tokens.slice(0, 5));
      expect(compareLogits('tiny q8 all of 5 (lm_head compiled on first use)', ref, logits, g.vocab, TOL).failures).toEqual([]);
      all.dispose();
      model.dispose();
    } finally {
      gpu.destroy();
    }
  });

  it('prefill records no lm_head: logits only for the rows asked for', async () => {
    const g = goldens.get('tiny')!;
    const model = await GpuModel.load(g.ck, await testGpu(), { kvFormat: 'q8', maxBatch: 8, contextLimit: 32 });
    const session = new GpuSession(model);
    try {
      const lmHeads = new Set([...model.kernels.lmHead().map((k) => k.key), model.kernels.decode.lmHead.key]);
      const names = session.prefillOps().map((o) => o.name);
      expect(names.filter((n) => lmHeads.has(n))).toEqual([]);
      expect(names.length).toBeGreaterThan(0);
      // 'last' returns one row of logits (lm_head on the last position only).
      const last = (await session.append(g.tokens.slice(0, 5), 'last'))!;
      expect(last.length).toBe(g.vocab);
      const ref = (await loadReferenceModel(g.ck)).newSession({ kv: 'q8' }).forward(g.tokens.slice(0, 5)).subarray(4 * g.vocab);
      expect(compareLogits('tiny q8 last of 5', ref, last, g.vocab, TOL).failures).toEqual([]);
    } finally {
      session.dispose();
      model.dispose();
    }
  });
});
