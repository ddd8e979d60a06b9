/**
 * `gptoss bench`: the bytes-per-token estimates against independent computations; on
 * SwiftShader, the GPU-clock profile of a session's step, the read-bandwidth ceiling and the
 * llama-bench style sweep in-process; and the built CLI end to end on a small synthetic model
 * (text, markdown and JSON reports, usage errors).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  benchContext, decodeKvBytes, decodeWeightBytes, paramCount, runBench, stats, type BenchResult, type DecodeBytes, type TestResult,
} from '../bench/decode-prefill.ts';
import { measureReadCeiling } from '../bench/ceiling.ts';
import { markdownTable } from '../bench/markdown.ts';
import { kernelTable } from '../bench/profile-table.ts';
import { profileOps, timesFromStamps, TimestampQueryUnavailableError } from '../engine/gpu-profiler.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { GREEDY } from '../engine/sampling.ts';
import { kvBufferBytes } from '../kernels/kv-cache.ts';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { synthConfig, synthShape, synthTensors } from '../loader/synth.ts';
import type { GptOssConfig } from '../loader/config.ts';
import { testGpu } from './gpu/node-device.ts';
import { main } from '../cli/main.ts';

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

  it("reads 1.125 bytes per value of qkv, o and lm_head with weights 'q8'", () => {
    const c = synthConfig(synthShape('20b'));
    const [b, q] = [decodeWeightBytes(c), decodeWeightBytes(c, 'q8')];
    expect(b.attention - q.attention).toBe(0.875 * 24 * (5120 * 2880 + 2880 * 4096));
    expect(b.lmHead - q.lmHead).toBe(0.875 * 201088 * 2880);
    expect(q.total).toBe(q.attention + q.router + q.norms + q.experts + q.embed + q.lmHead);
    expect([q.router, q.experts], 'router and experts as stored').toEqual([b.router, b.experts]);
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

  it('stats: mean, sample standard deviation, median of odd and even counts, min, max', () => {
    expect(stats([3, 1, 2])).toEqual({ mean: 2, stddev: 1, median: 2, min: 1, max: 3, runs: [3, 1, 2] });
    expect(stats([4, 1, 2, 3]).median).toBe(2.5);
    expect(stats([2, 4, 4, 4, 5, 5, 7, 9]).stddev).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(stats([7])).toMatchObject({ mean: 7, stddev: 0 });
  });

  it('counts 20.91 B parameters for gpt-oss-20b and 116.83 B for 120b (the model cards)', () => {
    expect(paramCount(synthConfig(synthShape('20b'))) / 1e9).toBeCloseTo(20.91, 2);
    expect(paramCount(synthConfig(synthShape('120b'))) / 1e9).toBeCloseTo(116.83, 2);
  });
});

describe('decodeKvBytes', () => {
  it('reads every position of full layers and at most the window of sliding ones, in the cache layout', () => {
    const c = synthConfig(synthShape('20b'));
    // kv-cache.ts: one buffer each for k and v; a position's share of one is kvBufferBytes at capacity 1.
    const perPos = (fmt: 'q8' | 'f32') => 2 * kvBufferBytes(fmt, 1, c.numKvHeads, c.headDim);
    expect(perPos('q8')).toBe(2 * 8 * (64 + 4)); // int8 values and one f32 scale per (position, kv head)
    const full = c.layerTypes.filter((k) => k === 'full').length;
    const sliding = c.numLayers - full;
    expect(full).toBe(12);
    for (const fmt of ['q8', 'f32'] as const) {
      expect(decodeKvBytes(c, fmt, 0)).toBe(c.numLayers * perPos(fmt));
      expect(decodeKvBytes(c, fmt, 4095)).toBe((full * 4096 + sliding * c.slidingWindow) * perPos(fmt));
    }
    // 20b at depth 4096 with the 8-bit cache: ~45 MB per token, next to ~3.7 GB of weights.
    expect(decodeKvBytes(c, 'q8', 4096) / 1e6).toBeCloseTo(((12 * 4097 + 12 * 128) * 1088) / 1e6, 6);
  });
});

describe('GPU timestamps', () => {
  it('turns zero and negative deltas into 0 µs and counts them', () => {
    const ops = [{ name: 'a', bytesRead: 1000 }, { name: 'b' }, { name: 'a', bytesRead: 3000 }, { name: 'c' }];
    const stamps = new BigUint64Array([1000n, 3000n, 3000n, 3000n, 5000n, 4000n, 6000n, 10000n]);
    const t = timesFromStamps(ops, stamps);
    expect(t.ops.map((o) => o.us)).toEqual([2, 0, 0, 4]);
    expect(t.nonPositive).toBe(2);
    expect(t.gpuUs).toBe(6);
    expect(t.spanUs).toBe(9);
    const rows = kernelTable({ ...t, wallUs: 20, tokens: 1, position: 0 });
    expect(rows.map((r) => [r.kernel, r.count, r.us])).toEqual([['c', 1, 4], ['a', 2, 2], ['b', 1, 0]]);
    expect(rows[1]!.bytesRead).toBe(4000);
    expect(rows[1]!.gbps).toBeCloseTo(4000 / 2000, 12); // 4000 bytes in 2 µs = 2 GB/s
    expect(rows[2]!.gbps).toBeUndefined();
    expect(rows.reduce((a, r) => a + r.percent, 0)).toBeCloseTo(100, 9);
    // All-zero timestamps (an implementation that reports none) give zeros, not NaN.
    const zero = timesFromStamps(ops, new BigUint64Array(8));
    expect([zero.gpuUs, zero.spanUs, zero.nonPositive]).toEqual([0, 0, 4]);
  });

  it('refuses to profile without timestamp-query, with a clear error', async () => {
    const device = { features: new Set<string>() } as unknown as GPUDevice;
    await expect(profileOps(device, [{ name: 'x', run: () => {} }])).rejects.toThrow(TimestampQueryUnavailableError);
    await expect(profileOps(device, [{ name: 'x', run: () => {} }])).rejects.toThrow(/timestamp-query/);
  });
});

describe('on SwiftShader: profile, ceiling and sweep', () => {
  let dir = '';
  let ck: Checkpoint;
  let model: GpuModel;
  const c = synthConfig(synthShape('tiny', { vocab: 2048 }));
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-bench-gpu-'));
    await writeSyntheticCheckpoint({ preset: 'tiny', overrides: { vocab: 2048 }, seed: 3, outDir: join(dir, 'tiny') });
    ck = await Checkpoint.open(await directorySource(join(dir, 'tiny')));
    model = await GpuModel.load(ck, await testGpu(), { maxBatch: 8, contextLimit: 64 });
  });
  afterAll(async () => {
    model?.dispose();
    await ck?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('profiles one decode step: one row per kernel, GPU times within the wall time, bytes per op', async () => {
    const session = new GpuSession(model);
    await session.append([1, 2, 3, 4, 5]);
    const p = await session.profile([6]);
    // embed chunks, 6 ops per layer (attention's split + combine share one pass), lm_head with the
    // final norm folded in, the sampler: what a decode step runs.
    const ops = model.kernels.embed.length + 6 * c.numLayers + 2;
    expect(p.ops).toHaveLength(ops);
    expect(p.ops.map((o) => o.name)).toEqual(session.decodeOps(GREEDY).map((o) => o.name));
    expect([p.tokens, p.position, session.position]).toEqual([1, 5, 6]);
    const positive = p.ops.filter((o) => o.us > 0).length;
    console.log(`decode step: ${positive}/${p.ops.length} kernels > 0 µs, sum ${p.gpuUs.toFixed(0)} µs, span ${p.spanUs.toFixed(0)} µs, wall ${p.wallUs.toFixed(0)} µs`);
    expect(positive, 'most kernels get a positive GPU time').toBeGreaterThan(p.ops.length / 2);
    expect(p.nonPositive).toBe(p.ops.length - positive);
    // Timestamps may be quantised (SwiftShader: 2^16 ns): allow one quantum per kernel. (No lower
    // bound against the wall time: on a busy CPU adapter the wall time is mostly waiting.)
    const slack = 65.6 * p.ops.length;
    expect(p.gpuUs).toBeGreaterThan(0);
    expect(p.gpuUs).toBeLessThanOrEqual(p.spanUs + slack);
    expect(p.spanUs).toBeLessThanOrEqual(p.wallUs + slack);
    const rows = kernelTable(p);
    expect(rows.reduce((a, r) => a + r.count, 0)).toBe(ops);
    expect(new Set(rows.map((r) => r.kernel)).size).toBe(rows.length);
    expect(rows.find((r) => r.kernel.startsWith('f32_bf16w_router_topk'))!.count).toBe(c.numLayers);
    for (const r of rows) expect(r.bytesRead, r.kernel).toBeGreaterThan(0);
    // A decode step reads the weights once (decodeWeightBytes), the KV cache at its position, and
    // a little activation traffic on top.
    const total = p.ops.reduce((a, o) => a + o.bytesRead!, 0);
    const over = total - decodeWeightBytes(c).total - decodeKvBytes(c, 'q8', 5);
    expect(over).toBeGreaterThan(0);
    // (The draw reads at most one 8-byte candidate per vocabulary row.)
    expect(over).toBeLessThan(4 * (2 * c.vocabSize + c.numLayers * (16 * c.hiddenSize + 4 * c.numHeads * c.headDim + 2 * c.expertsPerToken * c.intermediateSize)));
    // The attention ops' estimate grows with the position exactly as decodeKvBytes does.
    const attn = (q: typeof p) => q.ops.filter((o) => o.name.includes('_sdpa_')).reduce((a, o) => a + o.bytesRead!, 0);
    await session.append([7, 8, 9, 10, 11, 12, 13, 14, 15, 16]); // position 16: past the window of 8
    const p2 = await session.profile([17]);
    expect(p2.position).toBe(16);
    expect(attn(p2) - attn(p)).toBe(decodeKvBytes(c, 'q8', 16) - decodeKvBytes(c, 'q8', 5));
    // The session goes on: the profiled token counts as appended.
    await session.sample(GREEDY);
    expect(session.position).toBe(17);
    session.dispose();
  });

  it('profiles a prefill batch in one submission', async () => {
    const session = new GpuSession(model);
    const p = await session.profile([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([p.tokens, p.position]).toEqual([8, 0]);
    expect(p.ops.filter((o) => o.us > 0).length).toBeGreaterThan(p.ops.length / 2);
    await expect(session.profile(Array.from({ length: 9 }, (_, i) => i))).rejects.toThrow(/1\.\.8 tokens/);
    session.dispose();
  });

  it('measures the read-bandwidth ceiling with timestamps, and by the host clock without them', async () => {
    const dev = model.gpu.device;
    const ceil = await measureReadCeiling(dev, { bytes: 4 << 20, repeat: 3 });
    console.log(`ceiling: ${ceil.gbps.toFixed(3)} GB/s (${ceil.runs.map((r) => r.toFixed(3)).join(', ')})`);
    expect(ceil.method).toBe('timestamp');
    expect(ceil.bytes).toBe(4 << 20);
    expect(ceil.runs).toHaveLength(3);
    expect(ceil.gbps).toBe(Math.max(...ceil.runs));
    expect(ceil.gbps).toBeGreaterThan(0);
    expect(Number.isFinite(ceil.gbps)).toBe(true);
    // The same device seen without the feature (every method bound to the real device).
    const noTs = new Proxy(dev, {
      get: (t, k) => (k === 'features' ? new Set<string>() : typeof Reflect.get(t, k) === 'function' ? Reflect.get(t, k).bind(t) : Reflect.get(t, k)),
    });
    const wall = await measureReadCeiling(noTs, { bytes: 1 << 20, repeat: 2 });
    expect(wall.method).toBe('wall');
    expect(wall.gbps).toBeGreaterThan(0);
    // Sizes are capped by the binding limit and rounded to whole vec4s.
    const odd = await measureReadCeiling(dev, { bytes: (1 << 20) + 7, repeat: 1 });
    expect(odd.bytes).toBe(1 << 20);
  });

  it('runs the pp/tg sweep at several depths with mean, spread and efficiency', async () => {
    const opts = { promptLen: [4, 8], gen: [3], depth: [0, 12], repeat: 2, profile: true, ceilingGBps: 1000 };
    expect(benchContext(opts)).toBe(12 + 3 * 2 + 1);
    const r = await runBench(model, opts);
    expect(r.tests.map((t) => t.test)).toEqual(['pp4', 'pp8', 'tg3', 'tg3@d12']);
    for (const t of r.tests) {
      for (const s of [t.ms, t.tokensPerSecond]) {
        expect(s.runs).toHaveLength(2);
        expect(s.min).toBeLessThanOrEqual(s.mean);
        expect(s.mean).toBeLessThanOrEqual(s.max);
        expect(s.stddev).toBeGreaterThanOrEqual(0);
      }
    }
    const [tg0, tg12] = r.tests.slice(2) as [TestResult, TestResult];
    expect(tg0.positions).toEqual([1, 7]);
    expect(tg12.positions).toEqual([12, 18]);
    const meanKv = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => decodeKvBytes(c, 'q8', from + i)).reduce((a, b) => a + b) / (to - from);
    expect(tg12.kvBytesPerToken).toBeCloseTo(meanKv(12, 18), 6);
    expect(tg12.bytesPerToken).toBe(decodeWeightBytes(c).total + tg12.kvBytesPerToken!);
    expect(tg12.gbps!.mean).toBeCloseTo((tg12.tokensPerSecond.mean * tg12.bytesPerToken!) / 1e9, 9);
    expect(tg12.efficiency).toBeCloseTo(tg12.gbps!.mean / 1000, 12);
    expect(r.decode.depth).toBe(0);
    expect(r.decode.tokensPerSecond).toEqual(tg0.tokensPerSecond);
    expect(r.decode.efficiency).toBe(tg0.efficiency);
    expect(r.prefill.tokensPerSecond).toEqual(r.tests[0]!.tokensPerSecond);
    expect(r.profile!.atDepth.map((a) => a.step.position)).toEqual([7, 18]);
    expect(r.profile!.prefillTokens).toBe(4);
    expect(r.profile!.prefillStep.wallUs).toBeGreaterThan(0);
    expect(r.profile!.decodeStep.wallUs).toBeCloseTo((tg0.ms.mean * 1000) / 3, 6);
    const md = markdownTable([{ model: 'm', size: '1 MiB', params: '1 K', backend: 'WebGPU x', kv: 'q8', tests: r.tests }]);
    expect(md.split('\n')).toHaveLength(2 + 4);
    // More depth than the context allows is refused before anything runs.
    await expect(runBench(model, { ...opts, depth: [60] })).rejects.toThrow(/context of 67 tokens/);
  });

  it('skips tg tests past the first that would overrun the deadline', async () => {
    const r = await runBench(model, { promptLen: 4, gen: 2, depth: [0, 40], repeat: 1, deadline: performance.now() + 1 });
    expect(r.tests.map((t) => t.test)).toEqual(['pp4', 'tg2']);
    expect(r.skipped.map((s) => s.test)).toEqual(['tg2@d40']);
    expect(r.skipped[0]!.reason).toMatch(/time limit/);
  });
});

interface Run { code: number; stdout: string; stderr: string }

function gptoss(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // Killed before the test's own timeout, so a slow run never outlives the test.
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20, timeout: 240_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
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

  it('measures a synthetic tiny model: text report, profile, ceiling, and the numbers as JSON', async () => {
    const out = join(tmp, 'bench.json');
    const r = await gptoss('bench', '--synthetic', 'tiny', '--vocab', '2048', '--prompt-len', '8', '--gen', '4', '--repeat', '1',
      '--profile', '--ceiling-size', '4MiB', '--json', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr, 'the synthetic model is generated, not written').toContain('nothing is written to disk');
    expect(r.stdout).toContain('measured on THIS machine');
    expect(r.stdout).toMatch(/prefill: .* tokens\/s/);
    expect(r.stdout).toMatch(/decode: .* tokens\/s/);
    expect(r.stdout).toMatch(/ceiling: .* GB\/s read bandwidth/);
    expect(r.stdout).toMatch(/decode efficiency [\d.]+ % of the ceiling/);
    expect(r.stdout).toMatch(/per-kernel GPU time/);
    expect(r.stdout).toMatch(/kernels sum \d+ µs over \d+ dispatches/);
    expect(r.stdout).toMatch(/\| gpt-oss-tiny synthetic \|/);
    const j = JSON.parse(await readFile(out, 'utf8')) as {
      adapter: { vendor: string; architecture: string; description: string; f16: boolean; fallback: boolean };
      model: { weightBytes: number; params: number; synthetic: { preset: string; seed: number } };
      kvFormat: string; context: number;
      gpuMemory: { planned: { weights: number; total: number }; allocated: { weights: number; peak: number } };
      decodeWeightBytes: DecodeBytes;
      ceiling: { gbps: number; bytes: number; method: string };
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
    expect(j.model.params).toBe(paramCount(c));
    expect(j.result.decode.weightBytesPerToken).toBe(bytesFromTensorTable(c));
    expect(j.decodeWeightBytes.total).toBe(bytesFromTensorTable(c));
    expect(j.result.decode.weightGBps.median).toBeCloseTo((j.result.decode.tokensPerSecond.median * bytesFromTensorTable(c)) / 1e9, 9);
    // Decode reads the weights and the KV cache at depth 0 (one token in it, then the 4 decoded).
    expect(j.result.decode.kvBytesPerToken).toBeCloseTo([1, 2, 3, 4].reduce((a, p) => a + decodeKvBytes(c, 'q8', p), 0) / 4, 6);
    expect(j.ceiling.method).toBe('timestamp');
    expect(j.ceiling.bytes).toBe(4 << 20);
    expect(j.result.ceilingGBps).toBe(j.ceiling.gbps);
    expect(j.result.ceilingGBps).toBeGreaterThan(0);
    const eff = j.result.decode.efficiency!;
    expect(eff > 0 && eff <= 1, `efficiency ${eff}`).toBe(true);
    expect(eff).toBeCloseTo(j.result.decode.gbps.mean / j.result.ceilingGBps!, 12);
    const prof = j.result.profile!;
    expect(prof.prefill.length).toBeGreaterThan(5);
    const names = prof.decode.map((k) => k.kernel);
    expect(names.some((n) => n.startsWith('f32_q8kv_sdpa_decode_h4_kv2_d16_w0')), names.join(', ')).toBe(true);
    expect(names.some((n) => n.startsWith('f32_sample')), names.join(', ')).toBe(true);
    expect(prof.decodeStep.gpuUs).toBeGreaterThan(0);
  });

  it('sweeps prompt lengths and depths: a llama-bench markdown table, and the JSON beside it', async () => {
    const out = join(tmp, 'sweep.json');
    const md = await gptoss('bench', '--synthetic', 'tiny', '--vocab', '2048', '--prompt-len', '4,8', '--gen', '3', '--depth', '0,10',
      '--ceiling-size', '1MiB', '--repeat', '2', '--format', 'md', '--json', out);
    expect(md.code, md.stderr).toBe(0);
    const lines = md.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\| model +\| +size \| +params \| backend +\| kv \| +test \| +t\/s \| +min \| +max \| GB\/s \| +eff\. \|$/);
    expect(lines[1]).toMatch(/^\| -+ \| -+: \|/);
    const cells = lines.slice(2).map((l) => l.split('|').slice(1, -1).map((x) => x.trim()));
    expect(cells.map((r) => r[5])).toEqual(['pp4', 'pp8', 'tg3', 'tg3@d10']);
    for (const r of cells) {
      expect(r[0]).toBe('gpt-oss-tiny synthetic');
      expect(r[4]).toBe('q8');
      expect(r[6]).toMatch(/^[\d.]+ ± [\d.]+$/);
      expect(Number(r[7])).toBeLessThanOrEqual(Number(r[8]));
    }
    for (const r of cells.slice(2)) expect(r[10], 'tg rows have an efficiency').toMatch(/^[\d.]+ %$/);
    expect(md.stdout, 'md prints the table alone').not.toContain('measured on THIS machine');
    expect(md.stderr).toContain('measured on THIS machine');
    const rep = JSON.parse(await readFile(out, 'utf8')) as { kind: string; result: BenchResult };
    expect(rep.result.tests.map((t) => [t.test, t.kind, t.tokens, t.depth])).toEqual([
      ['pp4', 'pp', 4, 0], ['pp8', 'pp', 8, 0], ['tg3', 'tg', 3, 0], ['tg3@d10', 'tg', 3, 10],
    ]);
    expect(rep.result.tests[3]!.positions).toEqual([10, 16]);
    const mean = rep.result.tests[0]!.tokensPerSecond.mean;
    expect(cells[0]![6]).toBe(`${mean.toFixed(2)} ± ${rep.result.tests[0]!.tokensPerSecond.stddev.toFixed(2)}`);
  });

  it('prints JSON, raises the context to what --depth needs, and skips what --time-limit leaves no time for', async () => {
    const r = await gptoss('bench', '--synthetic', 'tiny', '--vocab', '2048', '--prompt-len', '4', '--gen', '2', '--depth', '0,4100',
      '--repeat', '1', '--ceiling-size', '0', '--time-limit', '1', '--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { kind: string; context: number; ceiling?: unknown; result: BenchResult };
    expect(rep.kind).toBe('gptoss-bench');
    expect(rep.context).toBe(4102);
    expect(rep.ceiling).toBeUndefined();
    expect(rep.result.ceilingGBps).toBeUndefined();
    expect(rep.result.decode.efficiency).toBeUndefined();
    expect(rep.result.tests.map((t) => t.test)).toEqual(['pp4', 'tg2']);
    expect(rep.result.skipped.map((s) => s.test)).toEqual(['tg2@d4100']);
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
    // The rest in-process (each would fail before touching the GPU; a process each is slow).
    const bad: [string[], RegExp][] = [
      [['--synthetic', 'huge'], /--synthetic must be one of/],
      [['--prompt-len', '10', '--gen', '10', '--context', '16'], /exceed --context 16/],
      [['--format', 'xml'], /--format must be text, md or json/],
      [['--prompt-len', '8,,16'], /--prompt-len must be a comma-separated list of integers >= 1/],
      [['--gen', '0'], /--gen must be a comma-separated list of integers >= 1/],
      [['--depth=-1'], /--depth must be a comma-separated list of integers >= 0/],
      [['--depth', '4k'], /--depth must be a comma-separated list/],
      [['--ceiling-size', '8'], /--ceiling-size must be 0 \(skip\) or at least 16 bytes/],
      [['--ceiling-size', 'lots'], /--ceiling-size must be a size/],
      [['--time-limit', '0'], /--time-limit must be an integer >= 1/],
      [['--depth', '100', '--context', '64'], /need a context of 196 tokens.*exceed --context 64/],
      [['--nonsense'], /unknown option --nonsense/i],
    ];
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
    try {
      for (const [flags, msg] of bad) {
        errors.length = 0;
        const args = flags[0] === '--synthetic' ? flags : ['--synthetic', 'tiny', ...flags];
        expect(await main(['bench', ...args]), flags.join(' ')).toBe(2);
        expect(errors.join('\n'), flags.join(' ')).toMatch(msg);
        expect(errors.join('\n'), 'one line pointing at the usage').toContain('gptoss bench --help');
      }
    } finally {
      spy.mockRestore();
    }
  });
});
