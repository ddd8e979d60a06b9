/**
 * The synthetic weights keep activations in a realistic range: a 20b-shaped checkpoint
 * (hidden 2880, 32 experts, 64/8 heads, intermediate 2880) with fewer layers, written to disk
 * by the real writer, read back by the real loader and run through the CPU reference. The
 * vocabulary is cut to 2048 so the test stays fast; it plays no part in the hidden states.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { loadReferenceModel } from '../engine/reference/model.ts';

const LAYERS = 4;
const TOKENS = [17, 1999, 5, 300, 42];

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / x.length);
}

describe('synthetic 20b-shaped checkpoint activations', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`hidden-state RMS stays in range through ${LAYERS} layers`, async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-synth-rms-'));
    const out = join(dir, 'model');
    await writeSyntheticCheckpoint({ preset: '20b', overrides: { layers: LAYERS, vocab: 2048 }, seed: 7, outDir: out });
    const ck = await Checkpoint.open(await directorySource(out));
    const model = await loadReferenceModel(ck);
    await ck.close();

    const perLayer: number[][] = Array.from({ length: LAYERS + 1 }, () => []);
    const logits = model.newSession().forward(TOKENS, {
      onHidden: (layer, _pos, x) => perLayer[layer + 1]!.push(rms(x)),
    });
    const mean = perLayer.map((v) => v.reduce((a, b) => a + b, 0) / v.length);
    console.log(`hidden-state RMS (20b shape, ${LAYERS} layers, mean over ${TOKENS.length} tokens):`);
    mean.forEach((r, i) => console.log(`  ${i === 0 ? 'embedding' : `after layer ${i - 1}`}: ${r.toFixed(4)}  [${perLayer[i]!.map((v) => v.toFixed(3)).join(', ')}]`));

    for (let i = 0; i < mean.length; i++) {
      for (const r of perLayer[i]!) {
        expect(Number.isFinite(r), `layer ${i - 1}: non-finite RMS`).toBe(true);
        // no collapse and no explosion relative to the embedding
        expect(r, `layer ${i - 1}: RMS ${r} vs embedding ${mean[0]}`).toBeGreaterThan(0.5 * mean[0]!);
        expect(r, `layer ${i - 1}: RMS ${r} vs embedding ${mean[0]}`).toBeLessThan(4 * mean[0]!);
      }
      if (i > 0) {
        // each layer changes the stream, but by a bounded step
        expect(mean[i]! / mean[i - 1]!, `growth at layer ${i - 1}`).toBeLessThan(1.6);
        expect(mean[i]! / mean[i - 1]!, `growth at layer ${i - 1}`).toBeGreaterThan(0.8);
      }
    }
    let maxAbs = 0;
    for (const v of logits) maxAbs = Math.max(maxAbs, Math.abs(v));
    console.log(`  logits: max |logit| ${maxAbs.toFixed(3)}`);
    expect(Number.isFinite(maxAbs)).toBe(true);
    expect(maxAbs).toBeGreaterThan(0.5);
    expect(maxAbs).toBeLessThan(50);
  }, 600_000);
});
