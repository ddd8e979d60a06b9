/**
 * KV reuse across requests (GpuSession.reuse): a session that already holds a conversation
 * continues from the longest common prefix with the next prompt, and gives the same logits and
 * greedy tokens as a fresh session that prefills the whole prompt. Sliding-window layers either
 * keep the whole context (kvReuse) or start over when their ring no longer holds what the kept
 * prefix needs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { generate } from '../engine/generate.ts';
import { GREEDY } from '../engine/sampling.ts';
import { compareLogits } from './helpers/compare.ts';
import { testGpu } from './gpu/node-device.ts';

const V = 1024;
const P1 = Array.from({ length: 20 }, (_, i) => (i * 37 + 11) % V);
const X = [901, 17, 333, 250, 4, 777];

describe('KV reuse across requests', () => {
  let dir = '';
  let ck: Checkpoint;
  const models: Record<'keep' | 'ring', GpuModel> = {} as never;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-reuse-'));
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 13, outDir: join(dir, 'm'), overrides: { vocab: V, window: 8 } });
    ck = await Checkpoint.open(await directorySource(join(dir, 'm')));
    const gpu = await testGpu();
    models.keep = await GpuModel.load(ck, gpu, { kvFormat: 'q8', maxBatch: 4, contextLimit: 96, kvReuse: true });
    models.ring = await GpuModel.load(ck, gpu, { kvFormat: 'q8', maxBatch: 4, contextLimit: 96 });
  });
  afterAll(async () => {
    Object.values(models).forEach((m) => m.dispose());
    await ck?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Logits of the prompt's last token and 6 greedy tokens after it, from a fresh session. */
  async function fresh(model: GpuModel, prompt: number[]) {
    const s = new GpuSession(model);
    const logits = (await s.append(prompt, 'last'))!;
    s.reset();
    const gen = await generate(s, prompt, { maxTokens: 6, sampling: GREEDY });
    s.dispose();
    return { logits, tokens: gen.tokens };
  }

  /** The same through `reuse` on a session holding a conversation; returns the kept count too. */
  async function reused(s: GpuSession, prompt: number[]) {
    const kept = s.reuse(prompt);
    const logits = (await s.append(prompt.slice(kept), 'last'))!;
    const again = s.reuse(prompt); // the whole prompt is cached now: all but its last token kept
    expect(again, 'a prompt already in the cache').toBe(prompt.length - 1);
    const gen = await generate(s, prompt.slice(again), { maxTokens: 6, sampling: GREEDY });
    return { kept, logits, tokens: gen.tokens };
  }

  function expectSame(label: string, want: { logits: Float32Array; tokens: number[] }, got: { logits: Float32Array; tokens: number[] }) {
    const r = compareLogits(label, want.logits, got.logits, V, 2e-3);
    expect(r.failures, r.failures.join('\n')).toEqual([]);
    expect(got.tokens, `${label}: greedy tokens after the prompt`).toEqual(want.tokens);
  }

  for (const kind of ['keep', 'ring'] as const) {
    it(`${kind === 'keep' ? 'sliding layers keep the context' : 'sliding layers keep only their ring'}: next turn, edited turn, and a step back`, async () => {
      const model = models[kind];
      const s = new GpuSession(model);
      const first = await generate(s, P1, { maxTokens: 16, sampling: GREEDY });
      expect(s.tokens, 'the cache holds the prompt and the fed tokens').toEqual([...P1, ...first.tokens.slice(0, -1)]);
      const pos = s.position;

      // The next turn: the prompt repeats 20 + 6 cached tokens, then new ones.
      const next = [...P1, ...first.tokens.slice(0, 6), ...X];
      const a = await reused(s, next);
      // Going back 9 tokens from position 35: sliding layers need positions 19..25, which a ring
      // of window + maxBatch - 1 = 11 no longer has (it holds 24..34).
      expect(a.kept, 'tokens reused on the next turn').toBe(kind === 'keep' ? P1.length + 6 : 0);
      expectSame(`${kind}: next turn`, await fresh(model, next), a);

      // An edited earlier message: only the prefix before the edit is reused.
      const edited = [...next];
      edited[3] = (edited[3]! + 1) % V;
      const b = await reused(s, edited);
      expect(b.kept, 'tokens reused after an edit at index 3').toBe(kind === 'keep' ? 3 : 0);
      expectSame(`${kind}: edited turn`, await fresh(model, edited), b);

      // A step back of two tokens: within the ring either way.
      const hist = s.tokens;
      const back = [...hist.slice(0, hist.length - 2), 5, 6];
      const c = await reused(s, back);
      expect(c.kept, 'tokens reused two steps back').toBe(hist.length - 2);
      expectSame(`${kind}: step back`, await fresh(model, back), c);
      expect(pos).toBe(P1.length + 15);
      s.dispose();
    });
  }

  it('plans the sliding layers at the full context only with kvReuse', () => {
    const sliding = (m: GpuModel) => m.plan.kvBytesPerLayer.filter((l) => l.kind === 'sliding').map((l) => l.capacity);
    expect(sliding(models.keep).every((cap) => cap === 96), `capacities ${sliding(models.keep)}`).toBe(true);
    expect(sliding(models.ring).every((cap) => cap === 8 + 4 - 1), `capacities ${sliding(models.ring)}`).toBe(true);
    expect(models.keep.plan.kvBytes).toBeGreaterThan(models.ring.plan.kvBytes);
  });
});
