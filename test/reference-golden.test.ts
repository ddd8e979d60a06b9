import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { loadReferenceModel, type ReferenceModel } from '../engine/reference/model.ts';
import { readLogitsF32 } from '../engine/reference/logits-file.ts';
import { assertLogitsClose } from './helpers/compare.ts';

const GOLDEN = new URL('../../shared/golden/', import.meta.url);
const TOL = 1e-3;

interface Golden {
  tokens: number[];
  shape: [number, number];
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

for (const name of ['tiny', 'sharded']) {
  describe(`reference forward vs golden/${name}`, () => {
    const dir = new URL(`${name}/`, GOLDEN);
    let ck: Checkpoint;
    let model: ReferenceModel;
    let golden: Golden;
    let expected: Float32Array;
    let vocab: number;
    const maxDiffs: Record<string, number> = {};

    beforeAll(async () => {
      golden = JSON.parse(await readFile(new URL('expected.json', dir), 'utf8')) as Golden;
      expected = readLogitsF32(new Uint8Array(await readFile(new URL('logits.f32', dir))));
      ck = await Checkpoint.open(await directorySource(fileURLToPath(new URL('model/', dir))));
      model = await loadReferenceModel(ck);
      vocab = golden.shape[1];
      expect(model.config.vocabSize).toBe(vocab);
      expect(golden.tokens.length).toBe(golden.shape[0]);
      expect(expected.length).toBe(golden.shape[0] * vocab);
    });

    afterAll(async () => {
      await ck?.close();
      console.log(`golden/${name} max |Δlogit|: ${JSON.stringify(maxDiffs)}`);
    });

    it('whole sequence in one forward call', () => {
      const s = model.newSession();
      const got = s.forward(golden.tokens);
      expect(s.position).toBe(golden.tokens.length);
      maxDiffs.whole = assertLogitsClose(`${name}/whole`, expected, got, vocab, TOL);
    });

    it('one token at a time through the KV cache', () => {
      const s = model.newSession();
      const got = concat(golden.tokens.map((t) => s.forward([t])));
      maxDiffs.incremental = assertLogitsClose(`${name}/one-by-one`, expected, got, vocab, TOL);
    });

    it('first 5 tokens, then the rest', () => {
      const s = model.newSession();
      const a = s.forward(golden.tokens.slice(0, 5));
      expect(s.position).toBe(5);
      const b = s.forward(golden.tokens.slice(5));
      maxDiffs.split5 = assertLogitsClose(`${name}/split-5`, expected, concat([a, b]), vocab, TOL);
    });

    it('reset() starts over at position 0', () => {
      const s = model.newSession();
      s.forward(golden.tokens.slice(0, 3));
      s.reset();
      expect(s.position).toBe(0);
      const got = s.forward(golden.tokens);
      maxDiffs.afterReset = assertLogitsClose(`${name}/after-reset`, expected, got, vocab, TOL);
    });

    it('hooks see the embedding and every layer at every position', () => {
      const s = model.newSession();
      const seen: string[] = [];
      s.forward(golden.tokens.slice(0, 2), {
        onHidden(layer, position, x) {
          expect(x.length).toBe(model.config.hiddenSize);
          seen.push(`${position}:${layer}`);
        },
      });
      const want: string[] = [];
      for (let p = 0; p < 2; p++) for (let l = -1; l < model.config.numLayers; l++) want.push(`${p}:${l}`);
      expect(seen).toEqual(want);
    });
  });
}
