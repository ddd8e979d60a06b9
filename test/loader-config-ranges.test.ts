/**
 * Every number of config.json is checked against what the kernels can represent (u32 literals
 * and indices, finite normal f32 values, the attention kernel's head limits), with one exact
 * message naming the field: a value that passes must never reach WGSL and fail there.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../loader/config.ts';
import { ModelLoadError } from '../loader/errors.ts';

const U32_MAX = 4294967295;
/** Largest finite f32, and the smallest normal one (2^-126). */
const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 2 ** -126;

/** The hub config.json of openai/gpt-oss-20b, numbers only where they matter here. */
const HUB = {
  model_type: 'gpt_oss',
  eos_token_id: 200002,
  head_dim: 64,
  hidden_size: 2880,
  intermediate_size: 2880,
  max_position_embeddings: 131072,
  num_attention_heads: 64,
  num_experts_per_tok: 4,
  num_hidden_layers: 24,
  num_key_value_heads: 8,
  num_local_experts: 32,
  quantization_config: { quant_method: 'mxfp4' },
  rms_norm_eps: 1e-5,
  rope_scaling: { beta_fast: 32.0, beta_slow: 1.0, factor: 32.0, original_max_position_embeddings: 4096, rope_type: 'yarn', truncate: false },
  rope_theta: 150000,
  sliding_window: 128,
  swiglu_limit: 7.0,
  vocab_size: 201088,
};

const ORIGINAL = {
  num_hidden_layers: 24, num_experts: 32, experts_per_token: 4, vocab_size: 201088, hidden_size: 2880,
  intermediate_size: 2880, swiglu_limit: 7.0, head_dim: 64, num_attention_heads: 64, num_key_value_heads: 8,
  sliding_window: 128, initial_context_length: 4096, rope_theta: 150000, rope_scaling_factor: 32.0,
  rope_ntk_alpha: 1.0, rope_ntk_beta: 32.0,
};

const F32 = `(a finite f32)`;
const POS_F32 = `between ${F32_MIN_NORMAL} and ${F32_MAX} ${F32}`;
const int = (field: string, min: number, max: number, got: string) =>
  `config.json: ${field} must be an integer between ${min} and ${max}, got ${got}`;

type Case = [label: string, json: Record<string, unknown>, field: string, message: string];

const rs = (patch: Record<string, unknown>) => ({ ...HUB, rope_scaling: { ...HUB.rope_scaling, ...patch } });

/** `field` is the key within its object (`factor` inside rope_scaling); the message gives the path. */
const HUB_CASES: Case[] = [
  ['layers 0', { ...HUB, num_hidden_layers: 0 }, 'num_hidden_layers', int('num_hidden_layers', 1, 65535, '0')],
  ['layers 65536', { ...HUB, num_hidden_layers: 65536 }, 'num_hidden_layers', int('num_hidden_layers', 1, 65535, '65536')],
  ['experts 2^32', { ...HUB, num_local_experts: 2 ** 32 }, 'num_local_experts', int('num_local_experts', 1, U32_MAX, '4294967296')],
  ['experts 1.5', { ...HUB, num_local_experts: 1.5 }, 'num_local_experts', int('num_local_experts', 1, U32_MAX, '1.5')],
  ['experts per token 1025', { ...HUB, num_experts_per_tok: 1025 }, 'num_experts_per_tok', int('num_experts_per_tok', 1, 1024, '1025')],
  ['experts per token > experts', { ...HUB, num_experts_per_tok: 33 }, 'num_experts_per_tok', 'config.json: num_experts_per_tok 33 exceeds num_local_experts 32'],
  ['hidden 16', { ...HUB, hidden_size: 16 }, 'hidden_size', int('hidden_size', 32, U32_MAX, '16')],
  ['hidden not a block multiple', { ...HUB, hidden_size: 2890 }, 'hidden_size', 'config.json: hidden_size must be a multiple of 32 (the MXFP4 block size), got 2890'],
  ['intermediate 2^32', { ...HUB, intermediate_size: 2 ** 32 }, 'intermediate_size', int('intermediate_size', 32, U32_MAX, '4294967296')],
  ['intermediate not a block multiple', { ...HUB, intermediate_size: 2881 }, 'intermediate_size', 'config.json: intermediate_size must be a multiple of 32 (the MXFP4 block size), got 2881'],
  ['heads 65536', { ...HUB, num_attention_heads: 65536 }, 'num_attention_heads', int('num_attention_heads', 1, 65535, '65536')],
  ['kv heads 0', { ...HUB, num_key_value_heads: 0 }, 'num_key_value_heads', int('num_key_value_heads', 1, 65535, '0')],
  ['kv heads not dividing', { ...HUB, num_key_value_heads: 7 }, 'num_key_value_heads', 'config.json: num_attention_heads 64 is not a multiple of num_key_value_heads 7'],
  ['head dim 256', { ...HUB, head_dim: 256 }, 'head_dim', int('head_dim', 2, 128, '256')],
  ['head dim odd', { ...HUB, head_dim: 63 }, 'head_dim', 'config.json: head_dim must be a multiple of 2 (RoPE rotates pairs), got 63'],
  ['vocab 2^32', { ...HUB, vocab_size: 2 ** 32 }, 'vocab_size', int('vocab_size', 1, U32_MAX, '4294967296')],
  ['sliding window 2^40', { ...HUB, sliding_window: 2 ** 40 }, 'sliding_window', int('sliding_window', 1, U32_MAX, '1099511627776')],
  ['sliding window 0', { ...HUB, sliding_window: 0 }, 'sliding_window', int('sliding_window', 1, U32_MAX, '0')],
  ['max positions 2^32', { ...HUB, max_position_embeddings: 2 ** 32 }, 'max_position_embeddings', int('max_position_embeddings', 1, U32_MAX, '4294967296')],
  ['max positions a string', { ...HUB, max_position_embeddings: '4096' }, 'max_position_embeddings', int('max_position_embeddings', 1, U32_MAX, '"4096"')],
  ['rope theta 1', { ...HUB, rope_theta: 1 }, 'rope_theta', `config.json: rope_theta must be a number greater than 1 and at most ${F32_MAX} ${F32}, got 1`],
  ['rope theta 1e39', { ...HUB, rope_theta: 1e39 }, 'rope_theta', `config.json: rope_theta must be a number greater than 1 and at most ${F32_MAX} ${F32}, got 1e+39`],
  ['rope factor 0.5', rs({ factor: 0.5 }), 'factor', `config.json: rope_scaling.factor must be a number between 1 and ${F32_MAX} ${F32}, got 0.5`],
  ['rope factor 1e39', rs({ factor: 1e39 }), 'factor', `config.json: rope_scaling.factor must be a number between 1 and ${F32_MAX} ${F32}, got 1e+39`],
  ['beta fast 0', rs({ beta_fast: 0 }), 'beta_fast', `config.json: rope_scaling.beta_fast must be a number ${POS_F32}, got 0`],
  ['beta slow subnormal', rs({ beta_slow: 1e-40 }), 'beta_slow', `config.json: rope_scaling.beta_slow must be a number ${POS_F32}, got 1e-40`],
  ['original positions 0', rs({ original_max_position_embeddings: 0 }), 'original_max_position_embeddings', int('rope_scaling.original_max_position_embeddings', 1, U32_MAX, '0')],
  ['rms eps 1e308', { ...HUB, rms_norm_eps: 1e308 }, 'rms_norm_eps', `config.json: rms_norm_eps must be a number between ${F32_MIN_NORMAL} and 1 ${F32}, got 1e+308`],
  ['rms eps 0', { ...HUB, rms_norm_eps: 0 }, 'rms_norm_eps', `config.json: rms_norm_eps must be a number between ${F32_MIN_NORMAL} and 1 ${F32}, got 0`],
  ['rms eps 2', { ...HUB, rms_norm_eps: 2 }, 'rms_norm_eps', `config.json: rms_norm_eps must be a number between ${F32_MIN_NORMAL} and 1 ${F32}, got 2`],
  ['swiglu limit 1e39', { ...HUB, swiglu_limit: 1e39 }, 'swiglu_limit', `config.json: swiglu_limit must be a number ${POS_F32}, got 1e+39`],
  ['swiglu limit -7', { ...HUB, swiglu_limit: -7 }, 'swiglu_limit', `config.json: swiglu_limit must be a number ${POS_F32}, got -7`],
  ['eos 2^32', { ...HUB, eos_token_id: 2 ** 32 }, 'eos_token_id', `config.json: eos_token_id must be a token id or a list of token ids (integers between 0 and ${U32_MAX}), got 4294967296`],
  ['eos empty list', { ...HUB, eos_token_id: [] }, 'eos_token_id', `config.json: eos_token_id must be a token id or a list of token ids (integers between 0 and ${U32_MAX}), got []`],
  ['missing layers', { ...HUB, num_hidden_layers: undefined }, 'num_hidden_layers', 'config.json: missing required field num_hidden_layers'],
  ['missing experts', { ...HUB, num_local_experts: undefined }, 'num_local_experts or num_experts', 'config.json: missing required field num_local_experts or num_experts'],
  ['attention weights past u32', { ...HUB, head_dim: 128, hidden_size: 524320 }, 'num_attention_heads x head_dim x hidden_size',
    'config.json: num_attention_heads x head_dim x hidden_size is 4295229440, more than 4294967295: the elements of q_proj and o_proj, which the kernels index with u32'],
  ['expert weights past u32', { ...HUB, intermediate_size: 46624 }, 'num_local_experts x intermediate_size x hidden_size',
    'config.json: num_local_experts x intermediate_size x hidden_size is 4296867840, more than 4294967295: the bytes of a layer\'s MXFP4 expert blocks, which the kernels index with u32'],
  ['embedding past u32', { ...HUB, vocab_size: 2 ** 31 }, 'vocab_size x hidden_size',
    'config.json: vocab_size x hidden_size is 6184752906240, more than 4294967295: the elements of the embedding and lm_head, which the kernels index with u32'],
];

const orig = (field: string, min: number, max: number, got: string) =>
  `original/config.json: ${field} must be an integer between ${min} and ${max}, got ${got}`;

const ORIGINAL_CASES: Case[] = [
  ['experts 0', { ...ORIGINAL, num_experts: 0 }, 'num_experts', orig('num_experts', 1, U32_MAX, '0')],
  ['experts per token 0', { ...ORIGINAL, experts_per_token: 0 }, 'experts_per_token', orig('experts_per_token', 1, 1024, '0')],
  ['initial context 2^32', { ...ORIGINAL, initial_context_length: 2 ** 32 }, 'initial_context_length', orig('initial_context_length', 1, U32_MAX, '4294967296')],
  ['scaling factor 0.5', { ...ORIGINAL, rope_scaling_factor: 0.5 }, 'rope_scaling_factor', `original/config.json: rope_scaling_factor must be a number between 1 and ${F32_MAX} ${F32}, got 0.5`],
  ['ntk beta 0', { ...ORIGINAL, rope_ntk_beta: 0 }, 'rope_ntk_beta', `original/config.json: rope_ntk_beta must be a number ${POS_F32}, got 0`],
  ['ntk alpha -1', { ...ORIGINAL, rope_ntk_alpha: -1 }, 'rope_ntk_alpha', `original/config.json: rope_ntk_alpha must be a number ${POS_F32}, got -1`],
];

function errorOf(json: unknown, file?: string): ModelLoadError {
  try {
    parseConfig(JSON.parse(JSON.stringify(json)), file);
  } catch (e) {
    expect(e).toBeInstanceOf(ModelLoadError);
    return e as ModelLoadError;
  }
  throw new Error('parseConfig accepted the config');
}

describe('config.json values the kernels cannot represent', () => {
  for (const [label, json, field, message] of HUB_CASES) {
    it(`hub layout: ${label}`, () => {
      const e = errorOf(json);
      expect(e.message).toBe(message);
      expect(e.code).toBe('bad-config');
      expect(e.field).toBe(field);
      expect(e.file).toBe('config.json');
    });
  }
  for (const [label, json, field, message] of ORIGINAL_CASES) {
    it(`original layout: ${label}`, () => {
      const e = errorOf(json, 'original/config.json');
      expect(e.message).toBe(message);
      expect(e.field).toBe(field);
    });
  }

  it('accepts the limits themselves', () => {
    const c = parseConfig({
      ...HUB, sliding_window: U32_MAX, max_position_embeddings: U32_MAX, rms_norm_eps: 1, head_dim: 128, num_hidden_layers: 65535,
      layer_types: undefined, swiglu_limit: F32_MAX, rope_theta: F32_MAX, eos_token_id: [0, U32_MAX],
      rope_scaling: { ...HUB.rope_scaling, factor: 1, beta_slow: F32_MIN_NORMAL },
    });
    expect([c.slidingWindow, c.maxPositions, c.rmsNormEps, c.headDim, c.numLayers]).toEqual([U32_MAX, U32_MAX, 1, 128, 65535]);
  });

  it('the original layout keeps max positions (initial context x factor) within u32', () => {
    expect(parseConfig({ ...ORIGINAL, initial_context_length: U32_MAX }, 'original/config.json').maxPositions).toBe(U32_MAX);
    expect(parseConfig({ ...ORIGINAL, rope_scaling_factor: 1.5 }, 'original/config.json').maxPositions).toBe(6144);
  });
});
