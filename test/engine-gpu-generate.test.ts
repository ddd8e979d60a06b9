/**
 * Generation on the GPU: greedy tokens equal the CPU reference's on a synthetic tiny model
 * with the real vocabulary, and bad input gets clear errors with the engine still usable.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { loadReferenceModel, type ReferenceModel } from '../engine/reference/model.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { ContextLimitError, GpuSession } from '../engine/gpu-session.ts';
import { generate } from '../engine/generate.ts';
import { GREEDY } from '../engine/sampling.ts';
import { ModelTooLargeError } from '../engine/memory-plan.ts';
import { testGpu } from './gpu/node-device.ts';
import { referenceGreedy } from './helpers/reference-greedy.ts';

const PROMPT = [200006, 17360, 200008, 3575, 553, 17554, 162016, 11];
const N = 32;

describe('GPU generation on a synthetic tiny model (real vocabulary)', () => {
  let dir = '';
  let ck: Checkpoint;
  let ref: ReferenceModel;
  const models: GpuModel[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-gen-'));
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 21, outDir: join(dir, 'tiny') });
    ck = await Checkpoint.open(await directorySource(join(dir, 'tiny')));
    ref = await loadReferenceModel(ck);
  });
  afterAll(async () => {
    models.forEach((m) => m.dispose());
    await ck?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const kvFormat of ['f32', 'q8'] as const) {
    it(`greedy ${N} tokens equal the reference's (${kvFormat} cache)`, async () => {
      const model = await GpuModel.load(ck, await testGpu(), { kvFormat, maxBatch: 4, contextLimit: 64 });
      models.push(model);
      const session = new GpuSession(model);
      const streamed: number[] = [];
      const res = await generate(session, PROMPT, { maxTokens: N, sampling: GREEDY, onToken: (id) => streamed.push(id) });
      const want = referenceGreedy(ref, PROMPT, N, kvFormat);
      console.log(`${kvFormat}: ${res.tokens.join(',')}`);
      expect(res.tokens, `GPU greedy tokens vs reference (${kvFormat} cache)`).toEqual(want);
      expect(streamed).toEqual(res.tokens);
      expect(res.finishReason).toBe('length');
      expect(new Set(want).size, 'the sequence is not one repeated token').toBeGreaterThan(3);
      session.dispose();
    });
  }

  it('seeded sampling is reproducible and differs across seeds', async () => {
    const model = models[0]!;
    const run = async (seed: number) => {
      const s = new GpuSession(model);
      const r = await generate(s, PROMPT, { maxTokens: 12, sampling: { temperature: 1, topK: 50, topP: 0.95, seed } });
      s.dispose();
      return r.tokens;
    };
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(await run(8)).not.toEqual(a);
  });

  it('bad input: clear errors, and the engine stays usable', async () => {
    const gpu = await testGpu();
    const model = models[0]!;
    await expect(GpuModel.load(ck, gpu, { memoryLimit: 1_000_000 })).rejects.toThrow(ModelTooLargeError);
    await expect(GpuModel.load(ck, gpu, { memoryLimit: 1_000_000 })).rejects.toThrow(/needs .* of GPU memory .* only 1\.0 MB is available/);
    await expect(GpuModel.load(ck, gpu, { contextLimit: 10 ** 7 })).rejects.toThrow(/contextLimit 10000000 must be between 1 and the model's max_position_embeddings 131072/);

    const session = new GpuSession(model, { contextLimit: 12 });
    await expect(session.append(Array(13).fill(5))).rejects.toThrow(ContextLimitError);
    await expect(session.append(Array(13).fill(5))).rejects.toThrow(/13 tokens long, over this session's context limit of 12/);
    await expect(session.append([201088])).rejects.toThrow(/token id 201088 is outside the vocabulary/);
    await session.append(PROMPT);
    await expect(session.sample({ ...GREEDY, temperature: -1 })).rejects.toThrow(/temperature must be a finite number >= 0/);
    await expect(session.sample({ ...GREEDY, topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\]/);
    await expect(session.sample({ ...GREEDY, topK: 1.5 })).rejects.toThrow(/topK must be an integer/);
    await expect(generate(session, [], { maxTokens: 0, sampling: GREEDY })).rejects.toThrow(/maxTokens must be an integer >= 1/);
    // Still usable: the same session continues, and generation stops at the context limit.
    const first = await session.sample(GREEDY);
    expect(first).toBeGreaterThanOrEqual(0);
    const more = await generate(session, [], { maxTokens: 100, sampling: GREEDY });
    expect(more.finishReason).toBe('length');
    expect(session.position).toBeLessThanOrEqual(12);
    session.reset();
    const again = await generate(session, PROMPT, { maxTokens: 3, sampling: GREEDY });
    expect(again.tokens.length).toBe(3);
    session.dispose();
  });
});
