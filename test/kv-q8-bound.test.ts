/**
 * How much the 8-bit KV cache changes the logits, measured on the GPU against the f32 cache.
 *
 * The bound: every cached element is rounded to int8 with a scale of max|row|/127 per position
 * and kv head, so its error is at most max|row|/254 (0.39% of the row's largest value, about
 * 0.2% RMS for roughly Gaussian rows). Values enter the output through convex attention
 * weights, and key errors move the scores by at most |q|·|dk|, so on a model whose activations
 * stay in a realistic range (our synthetic weights, see synth-activations.test.ts) the logits
 * move by a few tenths of a percent. We bound the RMS logit error at 1% of the logit RMS and
 * the largest single logit error at 0.1, with the greedy token unchanged at >= 95% of positions.
 *
 * The golden checkpoints are random weights with very peaked attention, where a 0.4% key
 * perturbation can move attention mass between keys: there the 8-bit cache shifts logits by up
 * to ~1.2 (3-8% RMS; measured 0.36 on tiny, 1.20 on sharded). For them the stated bound is that
 * sensitivity with a margin: max |dlogit| <= 2 and RMS <= 15% against the golden logits, the
 * greedy token unchanged at >= 90% of positions. The implementation itself is pinned tighter
 * elsewhere: the f32 path to the golden logits and the q8 path to the reference with the same
 * rounding, both to 2e-3 (engine-gpu-golden.test.ts).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { testGpu } from './gpu/node-device.ts';
import { logitDrift, type LogitDrift } from './helpers/compare.ts';


async function bothCaches(dir: string, tokens: number[]): Promise<{ vocab: number; d: LogitDrift; q8: Float32Array }> {
  const ck = await Checkpoint.open(await directorySource(dir));
  const gpu = await testGpu();
  const out: Float32Array[] = [];
  for (const kvFormat of ['f32', 'q8'] as const) {
    const model = await GpuModel.load(ck, gpu, { kvFormat, maxBatch: 16, contextLimit: 64 });
    const session = new GpuSession(model, { allLogits: true });
    out.push((await session.append(tokens, 'all'))!);
    session.dispose();
    model.dispose();
  }
  await ck.close();
  return { vocab: ck.config.vocabSize, d: logitDrift(out[0]!, out[1]!, ck.config.vocabSize), q8: out[1]! };
}

const fmt = (d: LogitDrift) => `max |dlogit| ${d.maxAbs.toFixed(4)}, RMS ${(100 * d.relRms).toFixed(2)}% of logit RMS, same argmax at ${d.argmaxAgree}/${d.positions}`;

describe('8-bit KV cache vs f32 cache (GPU)', () => {
  let tmp = '';
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('stays within the stated bound on a realistically scaled model', async () => {
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-q8-'));
    const dir = join(tmp, 'model');
    // gpt-oss head geometry (head dim 64, GQA 4) at a small width; 48 tokens cross the window 6 times.
    await writeSyntheticCheckpoint({
      preset: 'tiny', seed: 5, outDir: dir,
      overrides: { layers: 4, hidden: 128, heads: 8, kvHeads: 2, headDim: 64, vocab: 1024, window: 8 },
    });
    const tokens = Array.from({ length: 48 }, (_, i) => (i * 211 + 17) % 1024);
    const { d } = await bothCaches(dir, tokens);
    console.log(`synthetic (4 layers, hidden 128, heads 8/2x64): ${fmt(d)}`);
    expect(d.relRms, 'RMS logit error of the 8-bit cache').toBeLessThan(0.01);
    expect(d.maxAbs, 'largest logit error of the 8-bit cache').toBeLessThan(0.1);
    expect(d.argmaxAgree / d.positions, 'greedy token agreement').toBeGreaterThanOrEqual(0.95);
  });

  it('stays within the golden checkpoints\' bound (random, attention-sensitive weights)', async () => {
    for (const name of ['tiny', 'sharded']) {
      const g = fileURLToPath(new URL(`../../shared/golden/${name}/`, import.meta.url));
      const tokens = (JSON.parse(await readFile(join(g, 'expected.json'), 'utf8')) as { tokens: number[] }).tokens;
      const golden = new Float32Array(new Uint8Array(await readFile(join(g, 'logits.f32'))).buffer);
      const { vocab, q8 } = await bothCaches(join(g, 'model'), tokens);
      const d = logitDrift(golden, q8, vocab);
      console.log(`golden ${name}, q8 cache vs golden logits: ${fmt(d)}`);
      expect(d.maxAbs, `${name}: largest logit error of the 8-bit cache`).toBeLessThan(2);
      expect(d.relRms, `${name}: RMS logit error of the 8-bit cache`).toBeLessThan(0.15);
      expect(d.argmaxAgree / d.positions, `${name}: greedy token agreement`).toBeGreaterThanOrEqual(0.9);
    }
  });
});
