import { describe, expect, it } from 'vitest';
import { yarnParams, yarnTables } from '../engine/reference/rope.ts';
import type { GptOssConfig, YarnRope } from '../loader/config.ts';

const REAL: YarnRope = { theta: 150000, factor: 32, betaFast: 32, betaSlow: 1, originalMaxPositions: 4096, truncate: false };

describe('YaRN RoPE parameters', () => {
  it('matches the real gpt-oss config (SPEC §4)', () => {
    const p = yarnParams(REAL, 64);
    expect(p.low.toFixed(4)).toBe('8.0928');
    expect(p.high.toFixed(4)).toBe('17.3980');
    expect(p.concentration.toFixed(4)).toBe('1.3466');
    expect(p.invFreq.length).toBe(32);
    // Below the ramp: unscaled theta^(-2i/d); above it: divided by the factor.
    expect(p.invFreq[0]).toBe(1);
    expect(p.invFreq[3]).toBeCloseTo(150000 ** (-6 / 64), 15);
    expect(p.invFreq[31]).toBeCloseTo(150000 ** (-62 / 64) / 32, 18);
  });

  it('truncate rounds the ramp bounds (floor low, ceil high)', () => {
    const p = yarnParams({ ...REAL, truncate: true }, 64);
    expect(p.low).toBe(8);
    expect(p.high).toBe(18);
  });

  it('tables include the concentration in both cos and sin', () => {
    const cfg = { rope: REAL, headDim: 64 } as GptOssConfig;
    const { cos, sin } = yarnTables(cfg, 1000);
    const c = 0.1 * Math.log(32) + 1;
    expect(cos[0]).toBeCloseTo(c, 15); // position 0: angle 0
    expect(sin[0]).toBe(0);
    const p = yarnParams(REAL, 64);
    const pos = 999, i = 20;
    expect(cos[pos * 32 + i]).toBeCloseTo(Math.cos(pos * p.invFreq[i]!) * c, 14);
    expect(sin[pos * 32 + i]).toBeCloseTo(Math.sin(pos * p.invFreq[i]!) * c, 14);
    let worst = 0;
    for (let k = 0; k < cos.length; k++) worst = Math.max(worst, Math.abs(cos[k]! ** 2 + sin[k]! ** 2 - c * c));
    expect(worst).toBeLessThan(1e-12);
  });
});
