import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { parseConfig } from '../loader/config.ts';
import { bf16ToF32, decodeMxfp4Rows, f32ToBf16 } from '../loader/numeric.ts';
import { Rng } from '../loader/rng.ts';
import { directorySource } from '../loader/source-node.ts';
import {
  E2M1_UNIFORM_RMS, e8m0Mixture, hubConfigJson, planShards, synthConfig, synthShape, synthTensorBytes, synthTensorChunks,
  synthTensors, type SynthOverrides,
} from '../loader/synth.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { allParams, tensorName } from '../loader/weight-map.ts';
import { checkpointTensorBytes, SHARDED_DIR, TINY_DIR } from './helpers/loader-fixtures.ts';

const SMALL: SynthOverrides = { vocab: 512, hidden: 64, intermediate: 64, layers: 3, experts: 8 };

let root: string | undefined;
async function tempDir(name: string): Promise<string> {
  root ??= await mkdtemp(join(tmpdir(), 'gptoss-synth-'));
  return join(root, name);
}
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function headerNames(bytes: Uint8Array): string[] {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const obj = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  return Object.keys(obj).filter((k) => k !== '__metadata__');
}

async function shardOrder(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
  const out: string[] = [];
  for (const f of names) out.push(...headerNames(new Uint8Array(await readFile(join(dir, f)))));
  return out;
}


describe('rng', () => {
  it('is deterministic per (seed, stream) and the normal draws have unit variance', () => {
    const a = new Rng(7, 'x');
    const b = new Rng(7, 'x');
    const c = new Rng(7, 'y');
    const d = new Rng(8, 'x');
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa);
    expect(Array.from({ length: 8 }, () => d.nextU32())).not.toEqual(sa);
    const r = new Rng(1, 'n');
    let s = 0;
    let s2 = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const x = r.normal();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.02);
    const u = new Rng(3);
    for (let i = 0; i < 1000; i++) {
      const x = u.uniform();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});

describe('synthetic checkpoint', () => {
  it('writes a single-file checkpoint that loads and validates', async () => {
    const dir = await tempDir('single');
    const res = await writeSyntheticCheckpoint({ preset: 'tiny', overrides: SMALL, seed: 1, outDir: dir });
    expect(res.files).toContain('model.safetensors');
    expect(existsSync(join(dir, 'model.safetensors.index.json'))).toBe(false);
    const ck = await Checkpoint.open(await directorySource(dir));
    try {
      expect(ck.config.numLayers).toBe(3);
      expect(ck.config.vocabSize).toBe(512);
      expect(ck.totalBytes).toBe(res.totalBytes);
      expect(ck.allTensors().length).toBe(allParams(ck.config).length);
    } finally {
      await ck.close();
    }
    // No tokenizer without the real vocabulary; no partial directories left behind.
    expect(existsSync(join(dir, 'tokenizer.json'))).toBe(false);
    expect((await readdir(root!)).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('writes hub-numbered shards with a complete index', async () => {
    const dir = await tempDir('sharded');
    const res = await writeSyntheticCheckpoint({ preset: 'tiny', overrides: SMALL, seed: 1, outDir: dir, maxShardBytes: 150_000 });
    const shards = res.files.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThanOrEqual(3);
    const last = String(shards.length - 1).padStart(5, '0');
    expect(shards).toEqual(shards.map((_, i) => `model-${String(i).padStart(5, '0')}-of-${last}.safetensors`));
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number }; weight_map: Record<string, string>;
    };
    const config = synthConfig(synthShape('tiny', SMALL));
    const tensors = synthTensors(config);
    expect(Object.keys(index.weight_map)).toEqual(tensors.map((t) => t.name));
    expect(index.metadata.total_size).toBe(tensors.reduce((a, t) => a + t.bytes, 0));
    expect(index.metadata.total_size).toBe(res.totalBytes);
    // Every shard holds what the index says, and the bytes equal the single-file version.
    for (const [name, file] of Object.entries(index.weight_map)) {
      const bytes = new Uint8Array(await readFile(join(dir, file)));
      expect(headerNames(bytes)).toContain(name);
    }
    const a = await checkpointTensorBytes(await directorySource(dir));
    const b = await checkpointTensorBytes(await directorySource(await tempDir('single')));
    expect(a.size).toBe(b.size);
    for (const [k, v] of a) expect(Buffer.compare(v, b.get(k)!)).toBe(0);
  });

  it('orders tensors like the published shards (golden files)', async () => {
    const config = synthConfig(synthShape('tiny', { ...SMALL, layers: 3 }));
    const ours = synthTensors(config).map((t) => t.name);
    expect(await shardOrder(await tempDir('single'))).toEqual(ours);
    expect(new Set(ours)).toEqual(new Set(allParams(config).map(({ param, layer }) => tensorName(param, 'hf', layer))));
    for (const golden of [TINY_DIR, SHARDED_DIR]) {
      if (!existsSync(golden)) continue;
      const gcfg = parseConfig(JSON.parse(await readFile(join(golden, 'config.json'), 'utf8')));
      expect(await shardOrder(golden)).toEqual(synthTensors(gcfg).map((t) => t.name));
    }
  });

  it('config.json has the golden keys and the requested shape', async () => {
    const dir = await tempDir('single');
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    if (existsSync(join(SHARDED_DIR, 'config.json'))) {
      const golden = JSON.parse(await readFile(join(SHARDED_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(json)).toEqual(Object.keys(golden));
      for (const k of ['architectures', 'quantization_config', 'rope_scaling', 'rope_theta', 'eos_token_id', 'swiglu_limit', 'max_position_embeddings', 'model_type']) {
        expect(json[k]).toEqual(golden[k]);
      }
    }
    expect(json.layer_types).toEqual(['sliding_attention', 'full_attention', 'sliding_attention']);
    const c = parseConfig(json);
    expect([c.numLayers, c.numExperts, c.expertsPerToken, c.hiddenSize, c.intermediateSize, c.numHeads, c.numKvHeads, c.headDim, c.vocabSize, c.slidingWindow])
      .toEqual([3, 8, 4, 64, 64, 4, 2, 16, 512, 8]);
    const gen = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8')) as { eos_token_id: number[] };
    expect(gen.eos_token_id).toEqual([200002, 199999, 200012]);
    const c20 = parseConfig(hubConfigJson(synthShape('20b')));
    expect([c20.numLayers, c20.numExperts, c20.hiddenSize, c20.numHeads, c20.numKvHeads, c20.headDim, c20.slidingWindow, c20.vocabSize])
      .toEqual([24, 32, 2880, 64, 8, 64, 128, 201088]);
    expect(synthShape('120b').layers).toBe(36);
    expect(synthShape('120b').experts).toBe(128);
    expect(() => synthShape('tiny', { hidden: 48 })).toThrow();
  });

  it('the 20b shape has the published total size and 3 shards', () => {
    const tensors = synthTensors(synthConfig(synthShape('20b')));
    expect(tensors.reduce((a, t) => a + t.bytes, 0)).toBe(13_761_264_768);
    expect(planShards(tensors, 5_000_000_000).map((s) => s.file)).toEqual([
      'model-00000-of-00002.safetensors', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors',
    ]);
  });

  it('same seed gives identical bytes, another seed different bytes', async () => {
    const dir2 = await tempDir('seed1-again');
    const dir3 = await tempDir('seed2');
    await writeSyntheticCheckpoint({ preset: 'tiny', overrides: SMALL, seed: 1, outDir: dir2, chunkBytes: 4096 });
    await writeSyntheticCheckpoint({ preset: 'tiny', overrides: SMALL, seed: 2, outDir: dir3 });
    const a = await readFile(join(await tempDir('single'), 'model.safetensors'));
    const b = await readFile(join(dir2, 'model.safetensors'));
    const c = await readFile(join(dir3, 'model.safetensors'));
    expect(Buffer.compare(a, b)).toBe(0);
    expect(Buffer.compare(a, c)).not.toBe(0);
    // Every tensor differs between seeds.
    const ta = await checkpointTensorBytes(await directorySource(await tempDir('single')));
    const tc = await checkpointTensorBytes(await directorySource(dir3));
    for (const [k, v] of ta) expect(Buffer.compare(v, tc.get(k)!), k).not.toBe(0);
  });

  it('chunk size does not change the bytes', () => {
    const config = synthConfig(synthShape('tiny', SMALL));
    for (const t of synthTensors(config).filter((x) => x.layer === undefined || x.layer === 0)) {
      const whole = synthTensorBytes(t, config, 5);
      for (const step of [16, 48, 1000, 1 << 20]) {
        const parts = [...synthTensorChunks(t, config, 5, step)];
        expect(parts.every((p) => p.length <= Math.max(16, step))).toBe(true);
        expect(Buffer.compare(Buffer.concat(parts), whole), `${t.name} @ ${step}`).toBe(0);
      }
    }
  });

  it('weights have the intended scale; MXFP4 scales are valid E8M0 bytes', async () => {
    const ck = await Checkpoint.open(await directorySource(await tempDir('single')));
    try {
      const c = ck.config;
      const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
      for (const which of ['gate_up', 'down'] as const) {
        const blocks = await ck.read(ck.tensor(`${which}_blocks`, 1));
        const scales = await ck.read(ck.tensor(`${which}_scales`, 1));
        expect(scales.every((s) => s >= 1 && s <= 254)).toBe(true);
        const rows = c.numExperts * (which === 'gate_up' ? 2 * c.intermediateSize : c.hiddenSize);
        const cols = which === 'gate_up' ? c.hiddenSize : c.intermediateSize;
        const w = decodeMxfp4Rows(blocks, scales, cols, 0, rows);
        const want = which === 'gate_up'
          ? 1 / Math.sqrt(c.hiddenSize)
          : 1 / Math.sqrt(2 * c.numLayers) / (Math.sqrt(c.intermediateSize) * 0.92);
        expect(rms(w) / want).toBeGreaterThan(0.9);
        expect(rms(w) / want).toBeLessThan(1.1);
      }
      const q = bf16ToF32(await ck.read(ck.tensor('q_w', 0)));
      expect(rms(q) * Math.sqrt(c.hiddenSize)).toBeGreaterThan(0.9);
      expect(rms(q) * Math.sqrt(c.hiddenSize)).toBeLessThan(1.1);
      const norm = bf16ToF32(await ck.read(ck.tensor('attn_norm', 2)));
      expect(norm.every((x) => x > 0.7 && x < 1.3)).toBe(true);
      const emb = bf16ToF32(await ck.read(ck.tensor('embed')));
      expect(Math.abs(rms(emb) - 1)).toBeLessThan(0.05);
      // The writer's inlined bf16 rounding agrees with numeric.ts.
      expect(f32ToBf16(1.00390625)).toBe(0x3f80);
    } finally {
      await ck.close();
    }
    for (const std of [E2M1_UNIFORM_RMS / 8, 0.01, 1 / Math.sqrt(2880)]) {
      const { s0, p } = e8m0Mixture(std);
      expect(p >= 0 && p <= 1).toBe(true);
      const meanSquareScale = p * 4 ** (s0 + 1 - 127) + (1 - p) * 4 ** (s0 - 127);
      expect(Math.sqrt(meanSquareScale) * E2M1_UNIFORM_RMS / std).toBeCloseTo(1, 9);
    }
  });

  it('tiny preset with the real vocabulary ships the real tokenizer files', async () => {
    const dir = await tempDir('tiny-real');
    const res = await writeSyntheticCheckpoint({ preset: 'tiny', seed: 3, outDir: dir });
    expect(res.files).toEqual(expect.arrayContaining(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']));
    const tok = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as { added_tokens: { id: number; content: string }[] };
    expect(tok.added_tokens.find((t) => t.id === 200002)?.content).toBe('<|return|>');
    const ck = await Checkpoint.open(await directorySource(dir));
    try {
      expect(ck.config.vocabSize).toBe(201088);
      expect(ck.tensor('lm_head').shape).toEqual([201088, 64]);
    } finally {
      await ck.close();
    }
  });

  it('refuses a non-empty outDir unless overwrite, and then replaces it', async () => {
    const dir = await tempDir('seed2');
    await expect(writeSyntheticCheckpoint({ preset: 'tiny', overrides: SMALL, seed: 9, outDir: dir })).rejects.toThrow(/not empty/);
    await writeSyntheticCheckpoint({ preset: 'tiny', overrides: { ...SMALL, layers: 1 }, seed: 9, outDir: dir, overwrite: true });
    const ck = await Checkpoint.open(await directorySource(dir));
    expect(ck.config.numLayers).toBe(1);
    await ck.close();
    expect((await readdir(root!)).filter((f) => f.includes('partial'))).toEqual([]);
  });
});
