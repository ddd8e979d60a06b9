/** engine/sampling.ts on the CPU: parameter validation and the reference sampler's definition. */
import { describe, expect, it } from 'vitest';
import { sampleCpu, samplingProbabilities, validateSampling, type SamplingParams } from '../engine/sampling.ts';

const ok: SamplingParams = { temperature: 1, topK: 0, topP: 1, seed: 0 };

describe('sampling parameters', () => {
  it.each([
    [{ temperature: -1 }, /temperature/],
    [{ temperature: Infinity }, /temperature/],
    [{ temperature: NaN }, /temperature/],
    [{ topK: 1.5 }, /topK/],
    [{ topK: -1 }, /topK/],
    [{ topP: 0 }, /topP/],
    [{ topP: 1.01 }, /topP/],
    [{ seed: 0.5 }, /seed/],
    [{ seed: -1 }, /seed/],
    [{ seed: 2 ** 32 }, /seed/],
  ] as [Partial<SamplingParams>, RegExp][])('rejects %o', (bad, name) => {
    expect(() => validateSampling({ ...ok, ...bad })).toThrow(RangeError);
    expect(() => validateSampling({ ...ok, ...bad })).toThrow(name);
  });

  it('accepts the edges', () => {
    expect(() => validateSampling({ temperature: 0, topK: 0, topP: 1, seed: 2 ** 32 - 1 })).not.toThrow();
  });
});

describe('sampleCpu', () => {
  const logits = new Float32Array([1, 3, 3, -Infinity, 2, 0]);
  it('greedy and top-k 1 take the first maximum', () => {
    expect(sampleCpu(logits, { ...ok, temperature: 0 }, 0)).toBe(1);
    for (let s = 0; s < 20; s++) expect(sampleCpu(logits, { ...ok, topK: 1 }, s)).toBe(1);
  });
  it('keeps ties at the top-k threshold and renormalises', () => {
    const p = samplingProbabilities(logits, { ...ok, topK: 2 });
    expect(Array.from(p, (x) => +x.toFixed(6))).toEqual([0, 0.5, 0.5, 0, 0, 0]);
  });
  it('never draws masked or cut tokens', () => {
    for (let s = 0; s < 200; s++) expect([1, 2, 4]).toContain(sampleCpu(logits, { ...ok, topK: 3, seed: 5 }, s));
  });
});
