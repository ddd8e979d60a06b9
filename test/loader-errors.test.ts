import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint } from '../loader/checkpoint.ts';
import { parseConfig } from '../loader/config.ts';
import { ModelLoadError, type ModelLoadErrorCode } from '../loader/errors.ts';
import { readSafetensorsHeader } from '../loader/safetensors.ts';
import { directorySource } from '../loader/source-node.ts';
import {
  countingWrapper, expectLoadError, joinRaw, joinSafetensors, memoryByteSource, readDir, removeTemp,
  SHARDED_DIR, splitSafetensors, TINY_DIR, writeBytes,
} from './helpers/loader-fixtures.ts';

const SHARD0 = 'model-00000-of-00001.safetensors';
const SHARD1 = 'model-00001-of-00001.safetensors';
const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';

let tiny: Map<string, Uint8Array>;
let sharded: Map<string, Uint8Array>;
const temps: string[] = [];

beforeAll(async () => {
  tiny = await readDir(TINY_DIR);
  sharded = await readDir(SHARDED_DIR);
});

afterAll(async () => {
  await Promise.all(temps.map(removeTemp));
});

type Files = Map<string, Uint8Array>;
const enc = (s: string) => new TextEncoder().encode(s);

/** Writes the mutated files to a temp dir, opens them, expects the error, checks no handle leaked. */
async function expectOpenError(
  base: Files,
  mutate: (files: Files) => void,
  code: ModelLoadErrorCode,
  names: { file?: string; tensor?: string; field?: string } = {},
): Promise<ModelLoadError> {
  const files = new Map(base);
  mutate(files);
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-err-'));
  temps.push(dir);
  for (const [name, bytes] of files) await writeBytes(dir, name, bytes);
  const src = countingWrapper(await directorySource(dir));
  const err = await expectLoadError(Checkpoint.open(src), code);
  expect(src.closed, 'every opened file is closed after the failure').toBe(src.opened);
  if (names.file !== undefined) {
    expect(err.file).toBe(names.file);
    expect(err.message).toContain(names.file);
  }
  if (names.tensor !== undefined) {
    expect(err.tensor).toBe(names.tensor);
    expect(err.message).toContain(names.tensor);
  }
  if (names.field !== undefined) {
    expect(err.field).toBe(names.field);
    expect(err.message).toContain(names.field);
  }
  // The temp dir is intact: a good checkpoint opened afterwards still works.
  return err;
}

/** Rewrites a safetensors file's header with `edit` (same data area). */
function editHeader(files: Files, name: string, edit: (h: Record<string, any>) => void): void {
  const { header, data } = splitSafetensors(files.get(name)!);
  edit(header);
  files.set(name, joinSafetensors(header, data));
}

function setConfig(files: Files, edit: (c: Record<string, any>) => void): void {
  const c = JSON.parse(new TextDecoder().decode(files.get('config.json')!));
  edit(c);
  files.set('config.json', enc(JSON.stringify(c)));
}

describe('safetensors errors', () => {
  it('truncated shard', async () => {
    await expectOpenError(sharded, (f) => f.set(SHARD1, f.get(SHARD1)!.subarray(0, f.get(SHARD1)!.byteLength - 100)), 'truncated', { file: SHARD1 });
  });

  it('file shorter than the 8-byte length', async () => {
    await expectOpenError(tiny, (f) => f.set(SINGLE, new Uint8Array(5)), 'truncated', { file: SINGLE });
  });

  it('header length past the end of the file', async () => {
    await expectOpenError(tiny, (f) => {
      const b = f.get(SINGLE)!.slice();
      new DataView(b.buffer).setBigUint64(0, BigInt(b.byteLength), true);
      f.set(SINGLE, b);
    }, 'truncated', { file: SINGLE });
    await expectOpenError(tiny, (f) => {
      const b = f.get(SINGLE)!.slice();
      new DataView(b.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
      f.set(SINGLE, b);
    }, 'truncated', { file: SINGLE });
  });

  it('malformed header JSON', async () => {
    await expectOpenError(tiny, (f) => {
      const { data } = splitSafetensors(f.get(SINGLE)!);
      f.set(SINGLE, joinRaw(enc('{"a": [1, 2'), data));
    }, 'bad-header', { file: SINGLE });
  });

  it('header JSON that is not valid UTF-8', async () => {
    await expectOpenError(tiny, (f) => {
      const { data } = splitSafetensors(f.get(SINGLE)!);
      f.set(SINGLE, joinRaw(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), data));
    }, 'bad-header', { file: SINGLE });
  });

  it('header that is not an object', async () => {
    for (const json of ['[1, 2]', 'null', '42', '"str"']) {
      await expectOpenError(tiny, (f) => f.set(SINGLE, joinRaw(enc(json), splitSafetensors(f.get(SINGLE)!).data)), 'bad-header', { file: SINGLE });
    }
  });

  it('header entry that is not an object, bad shape, bad __metadata__', async () => {
    const t = 'model.norm.weight';
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t] = 7; }), 'bad-header', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].shape = [-64]; }), 'bad-header', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].shape = [64.5]; }), 'bad-header', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h.__metadata__ = { format: 1 }; }), 'bad-header', { file: SINGLE });
  });

  it('overlapping offsets', async () => {
    const t = 'model.layers.0.self_attn.k_proj.weight';
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => {
      const q = h['model.layers.0.self_attn.q_proj.weight'].data_offsets as number[];
      h[t].data_offsets = [q[0]! + 2, q[0]! + 2 + 32 * 64 * 2];
    }), 'bad-offsets', { file: SINGLE });
  });

  it('offsets out of range', async () => {
    const t = 'lm_head.weight';
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => {
      const [b, e] = h[t].data_offsets as number[];
      h[t].data_offsets = [b! + 1_000_000, e! + 1_000_000];
    }), 'truncated', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].data_offsets = [-2, 30]; }), 'bad-offsets', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].data_offsets = [40, 20]; }), 'bad-offsets', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].data_offsets = [0]; }), 'bad-offsets', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].data_offsets = [0, 2 ** 60]; }), 'bad-offsets', { file: SINGLE, tensor: t });
  });

  it('offsets not matching shape x dtype', async () => {
    const t = 'model.norm.weight';
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => {
      const [b, e] = h[t].data_offsets as number[];
      h[t].data_offsets = [b, e! - 2];
    }), 'bad-offsets', { file: SINGLE, tensor: t });
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].shape = [65]; }), 'bad-offsets', { file: SINGLE, tensor: t });
  });

  it('unknown dtype', async () => {
    const t = 'model.layers.1.self_attn.sinks';
    for (const dtype of ['Q4_K', 'toString', 42, undefined]) {
      await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].dtype = dtype; }), 'unknown-dtype', { file: SINGLE, tensor: t });
    }
  });

  it('a known dtype that contradicts the weight map', async () => {
    const t = 'model.layers.0.self_attn.q_proj.weight';
    const err = await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].dtype = 'F16'; }), 'dtype-mismatch', { file: SINGLE, tensor: t });
    expect(err.message).toContain('F16');
    // MXFP4 blocks stored as I8 (same size) are refused too.
    const b = 'model.layers.1.mlp.experts.down_proj_blocks';
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[b].dtype = 'I8'; }), 'dtype-mismatch', { file: SINGLE, tensor: b });
  });

  it('a shape that contradicts the config', async () => {
    const t = 'model.layers.1.self_attn.o_proj.weight';
    // Same element count, transposed-ish shape: offsets agree, the config does not.
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[t].shape = [32, 128]; }), 'shape-mismatch', { file: SINGLE, tensor: t });
    const e = 'model.embed_tokens.weight';
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { h[e].shape = [256 * 64]; }), 'shape-mismatch', { file: SINGLE, tensor: e });
  });

  it('a missing tensor', async () => {
    const t = 'model.layers.1.mlp.router.bias';
    await expectOpenError(tiny, (f) => editHeader(f, SINGLE, (h) => { delete h[t]; }), 'missing-tensor', { tensor: t });
  });

  it('a tensor stored in two shards', async () => {
    const t = 'model.norm.weight';
    await expectOpenError(sharded, (f) => {
      const other = splitSafetensors(f.get(SHARD0)!).header[t] ? SHARD1 : SHARD0;
      const holder = other === SHARD0 ? SHARD1 : SHARD0;
      const info = splitSafetensors(f.get(holder)!).header[t] as { dtype: string; shape: number[] };
      editHeader(f, other, (h) => {
        const { data } = splitSafetensors(f.get(other)!);
        h[t] = { dtype: info.dtype, shape: info.shape, data_offsets: [0, 0] };
        void data;
      });
    }, 'bad-offsets'); // the fake entry holds 0 bytes for a 64-element tensor
  });
});

describe('index errors', () => {
  it('an index naming a missing shard', async () => {
    await expectOpenError(sharded, (f) => f.delete(SHARD1), 'missing-shard', { file: SHARD1 });
    await expectOpenError(sharded, (f) => {
      const idx = JSON.parse(new TextDecoder().decode(f.get(INDEX)!));
      idx.weight_map['model.norm.weight'] = 'model-00009-of-00009.safetensors';
      f.set(INDEX, enc(JSON.stringify(idx)));
    }, 'missing-shard', { file: 'model-00009-of-00009.safetensors' });
  });

  it('malformed index JSON', async () => {
    await expectOpenError(sharded, (f) => f.set(INDEX, enc('{"weight_map": {')), 'bad-index', { file: INDEX });
  });

  it('index without a weight_map object', async () => {
    for (const body of ['{}', '{"weight_map": []}', 'null', '[]', '{"weight_map": null}']) {
      await expectOpenError(sharded, (f) => f.set(INDEX, enc(body)), 'bad-index', { file: INDEX });
    }
  });

  it('index entry that is not a file name', async () => {
    for (const v of [3, '', '../model.safetensors']) {
      await expectOpenError(sharded, (f) => {
        const idx = JSON.parse(new TextDecoder().decode(f.get(INDEX)!));
        idx.weight_map['model.norm.weight'] = v;
        f.set(INDEX, enc(JSON.stringify(idx)));
      }, 'bad-index', { file: INDEX, tensor: 'model.norm.weight' });
    }
  });

  it('index placing a tensor in the wrong shard', async () => {
    await expectOpenError(sharded, (f) => {
      const idx = JSON.parse(new TextDecoder().decode(f.get(INDEX)!));
      const wm = idx.weight_map as Record<string, string>;
      wm['model.embed_tokens.weight'] = wm['model.embed_tokens.weight'] === SHARD0 ? SHARD1 : SHARD0;
      f.set(INDEX, enc(JSON.stringify(idx)));
    }, 'bad-index', { tensor: 'model.embed_tokens.weight' });
  });

  it('index naming a tensor no shard holds', async () => {
    await expectOpenError(sharded, (f) => {
      const idx = JSON.parse(new TextDecoder().decode(f.get(INDEX)!));
      idx.weight_map['model.extra.weight'] = SHARD0;
      f.set(INDEX, enc(JSON.stringify(idx)));
    }, 'missing-tensor', { file: SHARD0, tensor: 'model.extra.weight' });
  });

  it('no model files at all', async () => {
    await expectOpenError(tiny, (f) => f.delete(SINGLE), 'missing-file');
    const dir = await mkdtemp(join(tmpdir(), 'gptoss-empty-'));
    temps.push(dir);
    await expectLoadError(Checkpoint.open(await directorySource(dir)), 'missing-file');
    await expectLoadError(directorySource(join(dir, 'nope')), 'missing-file');
  });
});

describe('config.json errors', () => {
  it('missing config.json', async () => {
    await expectOpenError(tiny, (f) => f.delete('config.json'), 'missing-file', { file: 'config.json' });
  });

  it('malformed config JSON', async () => {
    await expectOpenError(tiny, (f) => f.set('config.json', enc('{"hidden_size": ')), 'bad-config', { file: 'config.json' });
    await expectOpenError(tiny, (f) => f.set('config.json', enc('[1]')), 'bad-config', { file: 'config.json' });
  });

  for (const key of ['num_hidden_layers', 'hidden_size', 'intermediate_size', 'head_dim', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'sliding_window', 'rope_theta', 'swiglu_limit', 'max_position_embeddings', 'rope_scaling']) {
    it(`missing field ${key} is named`, async () => {
      const err = await expectOpenError(tiny, (f) => setConfig(f, (c) => { delete c[key]; }), 'bad-config', { file: 'config.json' });
      expect(err.field).toContain(key);
      expect(err.message).toContain(key);
    });
  }

  it('missing expert counts name both spellings', async () => {
    const err = await expectOpenError(tiny, (f) => setConfig(f, (c) => { delete c.num_local_experts; }), 'bad-config');
    expect(err.message).toContain('num_local_experts');
    const err2 = await expectOpenError(tiny, (f) => setConfig(f, (c) => { delete c.num_experts_per_tok; delete c.experts_per_token; }), 'bad-config');
    expect(err2.message).toContain('num_experts_per_tok');
  });

  it('non-integer and non-positive values', async () => {
    for (const v of [2.5, '2', 0, -1, true, [2]]) {
      await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.num_hidden_layers = v; }), 'bad-config', { file: 'config.json', field: 'num_hidden_layers' });
    }
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.rope_theta = 'big'; }), 'bad-config', { field: 'rope_theta' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.rope_scaling.factor = -1; }), 'bad-config', { field: 'factor' });
  });

  it('layer_types of the wrong length or with unknown kinds', async () => {
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.layer_types = ['sliding_attention']; }), 'bad-config', { field: 'layer_types' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.layer_types = 'sliding_attention'; }), 'bad-config', { field: 'layer_types' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.layer_types = ['sliding_attention', 'linear_attention']; }), 'bad-config', { field: 'layer_types' });
  });

  it('unsupported quantization, model type, rope type, tied embeddings', async () => {
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.quantization_config.quant_method = 'gptq'; }), 'unsupported-config', { field: 'quantization_config.quant_method' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { delete c.quantization_config; }), 'unsupported-config', { field: 'quantization_config.quant_method' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.quantization_config = null; }), 'unsupported-config', { field: 'quantization_config.quant_method' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.model_type = 'llama'; }), 'unsupported-config', { field: 'model_type' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.rope_scaling.rope_type = 'linear'; }), 'unsupported-config', { field: 'rope_scaling.rope_type' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.tie_word_embeddings = true; }), 'unsupported-config', { field: 'tie_word_embeddings' });
  });

  it('inconsistent sizes', async () => {
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.hidden_size = 48; }), 'bad-config', { field: 'hidden_size' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.intermediate_size = 40; }), 'bad-config', { field: 'intermediate_size' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.num_key_value_heads = 3; }), 'bad-config', { field: 'num_key_value_heads' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.head_dim = 15; }), 'bad-config', { field: 'head_dim' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.num_experts_per_tok = 9; }), 'bad-config', { field: 'num_experts_per_tok' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.eos_token_id = 'x'; }), 'bad-config', { field: 'eos_token_id' });
  });

  it('a config that disagrees with the tensors', async () => {
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.vocab_size = 512; }), 'shape-mismatch', { file: SINGLE, tensor: 'model.embed_tokens.weight' });
    await expectOpenError(tiny, (f) => setConfig(f, (c) => { c.num_hidden_layers = 3; c.layer_types.push('sliding_attention'); }), 'missing-tensor', { tensor: 'model.layers.2.input_layernorm.weight' });
  });

  it('parseConfig refuses non-objects', () => {
    for (const v of [null, 3, 'x', []]) expect(() => parseConfig(v)).toThrow(ModelLoadError);
  });
});

describe('handles', () => {
  it('closes opened shards when a later shard fails, and a good open still works', async () => {
    const files = new Map(sharded);
    const buf = files.get(SHARD1)!.slice();
    buf.fill(0x20, 8, 20); // clobber the start of the second shard's JSON
    files.set(SHARD1, buf);
    const dir = await mkdtemp(join(tmpdir(), 'gptoss-leak-'));
    temps.push(dir);
    for (const [n, b] of files) await writeBytes(dir, n, b);
    const src = countingWrapper(await directorySource(dir));
    await expectLoadError(Checkpoint.open(src), 'bad-header');
    expect(src.opened).toBeGreaterThanOrEqual(3); // config, shard 0, shard 1 (and the index)
    expect(src.closed).toBe(src.opened);

    const good = countingWrapper(await directorySource(SHARDED_DIR));
    const ck = await Checkpoint.open(good);
    expect(good.opened - good.closed).toBe(2); // the two shards stay open
    await ck.close();
    expect(good.closed).toBe(good.opened);
    expect((await readdir(dir)).sort()).toEqual([...files.keys()].sort());
  });

  it('readSafetensorsHeader works over any ByteSource', async () => {
    const h = await readSafetensorsHeader(memoryByteSource(SINGLE, tiny.get(SINGLE)!));
    expect(h.tensors.size).toBe(Object.keys(splitSafetensors(tiny.get(SINGLE)!).header).filter((k) => k !== '__metadata__').length);
    expect(h.tensors.get('model.norm.weight')?.dtype).toBe('BF16');
    expect(h.metadata).toBeTypeOf('object');
  });
});
