/**
 * Every prefill batch size against the golden logits: the grouped MoE (route, tiles, combine)
 * and the KV ring buffer must give the same forward pass whether the sequence goes through in
 * one batch or many. On the 'sharded' golden model (24 tokens, sliding window 6, 8 experts,
 * top 4) sliding layers keep window + maxBatch - 1 slots, so batches of 1..13 wrap the ring
 * and every batch size crosses the window.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { compareLogits } from './helpers/compare.ts';
import { testGpu } from './gpu/node-device.ts';

const GOLDEN = fileURLToPath(new URL('../../shared/golden/sharded/', import.meta.url));
const TOL = 2e-3;
const CONTEXT = 32;

describe('GPU prefill at every batch size: golden sharded', () => {
  let ck: Checkpoint;
  let tokens: number[];
  let vocab: number;
  let want: Float32Array;
  beforeAll(async () => {
    const expected = JSON.parse(await readFile(join(GOLDEN, 'expected.json'), 'utf8')) as { tokens: number[]; shape: [number, number] };
    tokens = expected.tokens;
    vocab = expected.shape[1];
    want = new Float32Array(new Uint8Array(await readFile(join(GOLDEN, 'logits.f32'))).buffer);
    ck = await Checkpoint.open(await directorySource(join(GOLDEN, 'model')));
  });
  afterAll(async () => {
    await ck?.close();
  });

  for (const maxBatch of [1, 2, 5, 13, 24]) {
    it(`maxBatch ${maxBatch}`, async () => {
      const model = await GpuModel.load(ck, await testGpu(), { kvFormat: 'f32', maxBatch, contextLimit: CONTEXT, allLogits: true });
      const session = new GpuSession(model, { allLogits: true });
      try {
        const window = model.config.slidingWindow;
        const ring = Math.min(CONTEXT, window + maxBatch - 1);
        const r = compareLogits(`maxBatch ${maxBatch} (sliding ring ${ring} slots)`, want, (await session.append(tokens, 'all'))!, vocab, TOL);
        console.log(`maxBatch ${maxBatch}: ${Math.ceil(tokens.length / maxBatch)} batches, ring ${ring}${ring < tokens.length ? ' (wraps)' : ''}, max |dlogit| ${r.maxDiff.toExponential(2)}`);
        expect(r.failures, r.failures.join('\n')).toEqual([]);
      } finally {
        session.dispose();
        model.dispose();
      }
    });
  }

  it('the default batch is the largest power of two up to 512 the plan allows, at most the context', async () => {
    const model = await GpuModel.load(ck, await testGpu(), { kvFormat: 'f32', contextLimit: 1024 });
    expect(model.maxBatch).toBe(512);
    model.dispose();
    const small = await GpuModel.load(ck, await testGpu(), { kvFormat: 'f32', contextLimit: CONTEXT });
    expect(small.maxBatch).toBe(CONTEXT);
    small.dispose();
  });
});
