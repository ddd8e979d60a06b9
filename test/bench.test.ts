/**
 * `gptoss bench`: the decode bytes-per-token estimate against independent computations, and
 * the built CLI end to end on a small synthetic model (its JSON report).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWeightBytes, stats, type BenchResult, type DecodeBytes } from '../bench/decode-prefill.ts';
import { synthConfig, synthShape, synthTensors } from '../loader/synth.ts';
import type { GptOssConfig } from '../loader/config.ts';

const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));

/** The same estimate from the tensor table: whole non-expert tensors, k/E of each expert tensor, one embedding row. */
function bytesFromTensorTable(c: GptOssConfig): number {
  let total = 0;
  for (const t of synthTensors(c)) {
    if (t.param === 'embed') total += t.bytes / c.vocabSize;
    else if (t.param.startsWith('gate_up_') || t.param.startsWith('down_')) total += (t.bytes * c.expertsPerToken) / c.numExperts;
    else total += t.bytes;
  }
  return total;
}

describe('decodeWeightBytes', () => {
  it('matches the tensor table for the tiny shape and for 20b', () => {
    for (const shape of [synthShape('tiny', { vocab: 2048 }), synthShape('tiny'), synthShape('20b'), synthShape('120b')]) {
      const c = synthConfig(shape);
      const b = decodeWeightBytes(c);
      expect(b.total).toBe(bytesFromTensorTable(c));
      expect(b.total).toBe(b.attention + b.router + b.norms + b.experts + b.embed + b.lmHead);
    }
  });

  it('gives the SPEC §6 sizes for gpt-oss-20b', () => {
    const b = decodeWeightBytes(synthConfig(synthShape('20b')));
    const H = 2880, I = 2880, L = 24, k = 4, V = 201088, q = 64 * 64, kv = 8 * 64;
    // One expert in MXFP4: 4 bits per weight + one E8M0 scale per 32, bf16 biases.
    const expert = 2 * I * (H / 2 + H / 32) + 2 * I * 2 + H * (I / 2 + I / 32) + H * 2;
    expect(expert).toBe(13_236_480);
    expect(b.experts).toBe(L * k * expert);
    expect(b.experts / 1e9).toBeCloseTo(1.27, 2); // SPEC: experts 4 of 32 per layer = 1.27 GB
    const attnParams = L * (H * q + 2 * H * kv + q * H);
    expect(attnParams / 1e9).toBeCloseTo(0.64, 2); // SPEC: 0.64 B params
    expect(b.attention).toBe(2 * (attnParams + L * (q + 2 * kv + H + 64)));
    expect(b.lmHead).toBe(2 * V * H);
    expect(b.lmHead / 1e9).toBeCloseTo(1.16, 2); // SPEC: lm_head 1.16 GB in bf16
    expect(b.router).toBe(2 * L * (32 * H + 32));
    expect(b.norms).toBe(2 * (2 * L + 1) * H);
    expect(b.embed).toBe(2 * H);
    // 1.271 experts + 1.274 attention + 1.158 lm_head + 0.004 router, norms and the rest.
    expect(b.total / 1e9).toBeCloseTo(3.708, 3);
  });

  it('stats: median of odd and even counts, min, max', () => {
    expect(stats([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: [3, 1, 2] });
    expect(stats([4, 1, 2, 3]).median).toBe(2.5);
  });
});

interface Run { code: number; stdout: string; stderr: string }

function gptoss(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('gptoss bench', () => {
  let tmp = '';
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-bench-test-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('measures a synthetic tiny model and writes the numbers as JSON', async () => {
    const out = join(tmp, 'bench.json');
    const r = await gptoss('bench', '--synthetic', 'tiny', '--vocab', '2048', '--prompt-len', '8', '--gen', '4', '--repeat', '1', '--json', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr, 'the synthetic model is generated, not written').toContain('nothing is written to disk');
    expect(r.stdout).toContain('measured on THIS machine');
    expect(r.stdout).toMatch(/prefill: .* tokens\/s/);
    expect(r.stdout).toMatch(/decode: .* tokens\/s/);
    const j = JSON.parse(await readFile(out, 'utf8')) as {
      adapter: { vendor: string; architecture: string; description: string; f16: boolean; fallback: boolean };
      model: { weightBytes: number; synthetic: { preset: string; seed: number } };
      kvFormat: string; context: number;
      gpuMemory: { planned: { weights: number; total: number }; allocated: { weights: number; peak: number } };
      decodeWeightBytes: DecodeBytes;
      result: BenchResult;
    };
    for (const f of ['vendor', 'architecture', 'description'] as const) expect(typeof j.adapter[f]).toBe('string');
    expect(typeof j.adapter.f16).toBe('boolean');
    expect(typeof j.adapter.fallback).toBe('boolean');
    expect(j.model.synthetic).toEqual({ preset: 'tiny', shape: expect.objectContaining({ vocab: 2048 }), seed: 0, onDisk: false });
    // GPU buffers really created vs the memory plan: weights up to 4-byte rounding per buffer,
    // the peak (weights, session, uniforms, read-back staging) within 1% + 64 kB of the plan.
    const mem = j.gpuMemory;
    expect(mem.allocated.weights - mem.planned.weights, 'weight buffers vs plan').toBeGreaterThanOrEqual(0);
    expect(mem.allocated.weights - mem.planned.weights, 'weight buffers vs plan').toBeLessThan(4 * 64);
    expect(Math.abs(mem.allocated.peak - mem.planned.total), `peak GPU buffers ${mem.allocated.peak} vs plan ${mem.planned.total}`)
      .toBeLessThan(0.01 * mem.planned.total + 65536);
    expect(j.kvFormat).toBe('q8');
    expect(j.context).toBeGreaterThanOrEqual(12);
    for (const tps of [j.result.prefill.tokensPerSecond, j.result.decode.tokensPerSecond]) {
      expect(tps.runs).toHaveLength(1);
      expect(Number.isFinite(tps.median) && tps.median > 0, JSON.stringify(tps)).toBe(true);
    }
    const c = synthConfig(synthShape('tiny', { vocab: 2048 }));
    expect(j.model.weightBytes).toBe(synthTensors(c).reduce((a, t) => a + t.bytes, 0));
    expect(j.result.decode.weightBytesPerToken).toBe(bytesFromTensorTable(c));
    expect(j.decodeWeightBytes.total).toBe(bytesFromTensorTable(c));
    expect(j.result.decode.weightGBps.median).toBeCloseTo((j.result.decode.tokensPerSecond.median * bytesFromTensorTable(c)) / 1e9, 9);
  });

  it('--write-synthetic DIR writes the checkpoint, keeps it and loads it from there', async () => {
    const dir = join(tmp, 'written');
    const out = join(tmp, 'bench-written.json');
    const r = await gptoss('bench', '--synthetic', 'tiny', '--vocab', '2048', '--layers', '1', '--prompt-len', '4', '--gen', '2', '--repeat', '1',
      '--write-synthetic', dir, '--json', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`writing synthetic tiny checkpoint (seed 0) to ${dir}`);
    expect(r.stdout).toContain(`written to ${dir}`);
    const j = JSON.parse(await readFile(out, 'utf8')) as { model: { synthetic: { onDisk: boolean } } };
    expect(j.model.synthetic.onDisk).toBe(true);
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).num_hidden_layers, 'the written checkpoint is kept').toBe(1);
    const misuse = await gptoss('bench', '--model', dir, '--write-synthetic', dir);
    expect(misuse.code).toBe(2);
    expect(misuse.stderr).toContain('--write-synthetic only applies with --synthetic');
  });

  it('rejects bad flags with a usage error', async () => {
    const both = await gptoss('bench', '--synthetic', 'tiny', '--model', tmp);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('exactly one of --model and --synthetic');
    const preset = await gptoss('bench', '--synthetic', 'huge');
    expect(preset.code).toBe(2);
    expect(preset.stderr).toContain('--synthetic must be one of');
    const ctx = await gptoss('bench', '--synthetic', 'tiny', '--prompt-len', '10', '--gen', '10', '--context', '16');
    expect(ctx.code).toBe(2);
    expect(ctx.stderr).toContain('exceed --context 16');
  });
});
