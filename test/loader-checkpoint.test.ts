import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, type TensorRef } from '../loader/checkpoint.ts';
import { buildSafetensorsHeader, DTYPE_BYTES, numel, type DType } from '../loader/safetensors.ts';
import { directorySource } from '../loader/source-node.ts';
import { allParams, paramSpec, tensorName } from '../loader/weight-map.ts';
import { removeTemp, SHARDED_DIR, TINY_DIR, writeBytes } from './helpers/loader-fixtures.ts';

async function openDir(dir: string): Promise<Checkpoint> {
  return Checkpoint.open(await directorySource(dir));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function checkAllLocated(ck: Checkpoint): void {
  const c = ck.config;
  const params = allParams(c);
  expect(ck.allTensors()).toHaveLength(params.length);
  for (const { param, layer } of params) {
    const ref = ck.tensor(param, layer);
    const spec = paramSpec(param);
    expect(ref.param).toBe(param);
    expect(ref.layer).toBe(layer);
    expect(spec.dtypes).toContain(ref.dtype);
    expect(ref.shape).toEqual(spec.shape(c));
    expect(ref.end - ref.begin).toBe(numel(ref.shape) * DTYPE_BYTES[ref.dtype]);
    if (ck.layout === 'hf') {
      expect(ref.name).toBe(tensorName(param, 'hf', layer));
      const info = ck.info(ref.name)!;
      expect(info.dtype).toBe(ref.dtype);
      expect(info.shape).toEqual(ref.shape);
      expect([info.begin, info.end, info.file]).toEqual([ref.begin, ref.end, ref.file]);
    }
  }
}

describe('Checkpoint over golden checkpoints', () => {
  for (const [label, dir, shards] of [['tiny', TINY_DIR, 1], ['sharded', SHARDED_DIR, 2]] as const) {
    it(`opens golden ${label} and locates every parameter`, async () => {
      const ck = await openDir(dir);
      try {
        expect(ck.layout).toBe('hf');
        expect(ck.headers).toHaveLength(shards);
        expect(ck.config.numLayers).toBeGreaterThanOrEqual(2);
        if (label === 'tiny') expect(ck.config.hiddenSize).toBe(64);
        checkAllLocated(ck);
        if (shards === 2) {
          const files = new Set(ck.allTensors().map((r) => r.file));
          expect([...files].sort()).toEqual(['model-00000-of-00001.safetensors', 'model-00001-of-00001.safetensors']);
        }
        // The embedding is BF16 [vocab, hidden]; the expert blocks are U8.
        expect(ck.tensor('embed').dtype).toBe('BF16');
        expect(ck.tensor('gate_up_blocks', 0).dtype).toBe('U8');
        const c = ck.config;
        expect(ck.tensor('gate_up_blocks', 0).shape).toEqual([c.numExperts, 2 * c.intermediateSize, c.hiddenSize / 32, 16]);
        expect(ck.tensor('embed').shape).toEqual([c.vocabSize, c.hiddenSize]);
        expect(ck.totalBytes).toBe(ck.allTensors().reduce((a, r) => a + r.end - r.begin, 0));
      } finally {
        await ck.close();
      }
    });

    it(`streams every ${label} tensor in odd-sized chunks that reassemble to read()`, async () => {
      const ck = await openDir(dir);
      try {
        for (const ref of ck.allTensors()) {
          const whole = await ck.read(ref);
          expect(whole.byteLength).toBe(ref.end - ref.begin);
          for (const chunkBytes of [1000, 7, 1]) {
            if (chunkBytes < 100 && whole.byteLength > 512) continue; // keep the test quick
            const elem = DTYPE_BYTES[ref.dtype];
            const chunks: Uint8Array[] = [];
            for await (const chunk of ck.stream(ref, chunkBytes)) chunks.push(chunk);
            const bound = Math.max(elem, chunkBytes);
            const bad = chunks.filter((ch) => ch.byteLength > bound || ch.byteLength === 0 || ch.byteLength % elem !== 0);
            expect(bad.map((ch) => ch.byteLength), `${ref.name} chunk sizes`).toEqual([]);
            expect(chunks.length).toBe(Math.ceil(whole.byteLength / (chunkBytes - (chunkBytes % elem) || elem)));
            expect(Buffer.from(concat(chunks)).equals(Buffer.from(whole)), ref.name).toBe(true);
          }
          // Default chunk size: a tiny tensor is one chunk.
          const def: Uint8Array[] = [];
          for await (const chunk of ck.stream(ref)) def.push(chunk);
          expect(def).toHaveLength(1);
        }
      } finally {
        await ck.close();
      }
    });
  }

  it('refuses reads after close', async () => {
    const ck = await openDir(TINY_DIR);
    const ref = ck.tensor('norm');
    await ck.close();
    await expect(ck.read(ref)).rejects.toThrow(/closed/);
  });
});

describe('original-layout checkpoint', () => {
  let dir = '';
  let hf: Checkpoint;

  beforeAll(async () => {
    hf = await openDir(TINY_DIR);
    const c = hf.config;
    dir = await mkdtemp(join(tmpdir(), 'gptoss-orig-'));
    const entries: { name: string; dtype: DType; shape: number[]; bytes: Uint8Array }[] = [];
    const seen = new Set<string>();
    for (const { param, layer } of allParams(c)) {
      const name = tensorName(param, 'original', layer);
      if (seen.has(name)) continue;
      seen.add(name);
      const spec = paramSpec(param);
      if (spec.original.rows) {
        // Fused qkv: rows q, then k, then v.
        const isWeight = param.endsWith('_w');
        const parts: TensorRef[] = (isWeight ? (['q_w', 'k_w', 'v_w'] as const) : (['q_b', 'k_b', 'v_b'] as const)).map((p) => hf.tensor(p, layer));
        const bytes = concat(await Promise.all(parts.map((r) => hf.read(r))));
        const rows = parts.reduce((a, r) => a + r.shape[0]!, 0);
        entries.push({ name, dtype: parts[0]!.dtype, shape: isWeight ? [rows, c.hiddenSize] : [rows], bytes });
      } else {
        const ref = hf.tensor(param, layer);
        entries.push({ name, dtype: ref.dtype, shape: ref.shape, bytes: await hf.read(ref) });
      }
    }
    // Write in reverse order so the layout differs from the HF file.
    entries.reverse();
    const { header, offsets, dataSize } = buildSafetensorsHeader(entries);
    const file = new Uint8Array(header.byteLength + dataSize);
    file.set(header);
    for (const e of entries) file.set(e.bytes, header.byteLength + offsets.get(e.name)![0]);
    await writeBytes(dir, 'model.safetensors', file);
    const config = {
      num_hidden_layers: c.numLayers,
      num_experts: c.numExperts,
      experts_per_token: c.expertsPerToken,
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      intermediate_size: c.intermediateSize,
      swiglu_limit: c.swigluLimit,
      head_dim: c.headDim,
      num_attention_heads: c.numHeads,
      num_key_value_heads: c.numKvHeads,
      sliding_window: c.slidingWindow,
      initial_context_length: 4096,
      rope_theta: c.rope.theta,
      rope_scaling_factor: c.rope.factor,
      rope_ntk_alpha: 1,
      rope_ntk_beta: 32,
    };
    await writeBytes(dir, 'config.json', JSON.stringify(config, null, 2));
  });

  afterAll(async () => {
    await hf?.close();
    if (dir) await removeTemp(dir);
  });

  it('parses the original config like the HF one', async () => {
    const ck = await openDir(dir);
    try {
      expect(ck.layout).toBe('original');
      const { config: o } = ck;
      const h = hf.config;
      expect({ ...o, maxPositions: 0, eosTokenIds: [] }).toEqual({ ...h, maxPositions: 0, eosTokenIds: [] });
      expect(o.maxPositions).toBe(4096 * 32);
      expect(o.rope).toEqual({ theta: 150000, factor: 32, betaFast: 32, betaSlow: 1, originalMaxPositions: 4096, truncate: false });
    } finally {
      await ck.close();
    }
  });

  it('every parameter has the same bytes as in the HF layout', async () => {
    const ck = await openDir(dir);
    try {
      checkAllLocated(ck);
      for (const { param, layer } of allParams(ck.config)) {
        const o = ck.tensor(param, layer);
        const h = hf.tensor(param, layer);
        expect(o.name).toBe(tensorName(param, 'original', layer));
        expect(o.shape).toEqual(h.shape);
        expect(o.dtype).toBe(h.dtype);
        const want = Buffer.from(await hf.read(h));
        expect(want.equals(await ck.read(o)), `${param}.${layer}`).toBe(true);
        const chunks: Uint8Array[] = [];
        for await (const chunk of ck.stream(o, 1000)) chunks.push(chunk);
        expect(want.equals(concat(chunks)), `${param}.${layer} streamed`).toBe(true);
      }
    } finally {
      await ck.close();
    }
  });
});
