import { describe, expect, it } from 'vitest';
import { describeConfig, parseConfig, SWIGLU_ALPHA } from '../loader/config.ts';
import { ModelLoadError } from '../loader/errors.ts';
import { allParams, paramSpec } from '../loader/weight-map.ts';

/** The hub config.json of openai/gpt-oss-20b (HF layout), per SPEC §1. */
const HUB_20B = {
  architectures: ['GptOssForCausalLM'],
  attention_bias: true,
  attention_dropout: 0.0,
  eos_token_id: 200002,
  experts_per_token: 4,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2880,
  initial_context_length: 4096,
  initializer_range: 0.02,
  intermediate_size: 2880,
  layer_types: Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention')),
  max_position_embeddings: 131072,
  model_type: 'gpt_oss',
  num_attention_heads: 64,
  num_experts_per_tok: 4,
  num_hidden_layers: 24,
  num_key_value_heads: 8,
  num_local_experts: 32,
  output_router_logits: false,
  pad_token_id: 199999,
  quantization_config: {
    modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'],
    quant_method: 'mxfp4',
  },
  rms_norm_eps: 1e-5,
  rope_scaling: { beta_fast: 32.0, beta_slow: 1.0, factor: 32.0, original_max_position_embeddings: 4096, rope_type: 'yarn', truncate: false },
  rope_theta: 150000,
  router_aux_loss_coef: 0.9,
  sliding_window: 128,
  swiglu_limit: 7.0,
  tie_word_embeddings: false,
  transformers_version: '4.55.0.dev0',
  use_cache: true,
  vocab_size: 201088,
};

/** openai's original/config.json for the same model. */
const ORIGINAL_20B = {
  num_hidden_layers: 24,
  num_experts: 32,
  experts_per_token: 4,
  vocab_size: 201088,
  hidden_size: 2880,
  intermediate_size: 2880,
  swiglu_limit: 7.0,
  head_dim: 64,
  num_attention_heads: 64,
  num_key_value_heads: 8,
  sliding_window: 128,
  initial_context_length: 4096,
  rope_theta: 150000,
  rope_scaling_factor: 32.0,
  rope_ntk_alpha: 1.0,
  rope_ntk_beta: 32.0,
};

describe('parseConfig on the real 20b configs', () => {
  it('parses the hub config.json', () => {
    const c = parseConfig(HUB_20B);
    expect(c).toMatchObject({
      numLayers: 24, numExperts: 32, expertsPerToken: 4, hiddenSize: 2880, intermediateSize: 2880,
      headDim: 64, numHeads: 64, numKvHeads: 8, vocabSize: 201088, slidingWindow: 128,
      rmsNormEps: 1e-5, swigluLimit: 7, swigluAlpha: 1.702, maxPositions: 131072, eosTokenIds: [200002],
    });
    expect(SWIGLU_ALPHA).toBe(1.702);
    expect(c.rope).toEqual({ theta: 150000, factor: 32, betaFast: 32, betaSlow: 1, originalMaxPositions: 4096, truncate: false });
    expect(c.layerTypes).toHaveLength(24);
    c.layerTypes.forEach((t, i) => expect(t).toBe(i % 2 === 0 ? 'sliding' : 'full'));
    expect(describeConfig(c)).toContain('24 layers, 32 experts (top 4)');
  });

  it('parses the original config.json to the same model', () => {
    const o = parseConfig(ORIGINAL_20B, 'original/config.json');
    const h = parseConfig(HUB_20B);
    expect({ ...o, eosTokenIds: [] }).toEqual({ ...h, eosTokenIds: [] });
    expect(o.eosTokenIds).toEqual([200002, 199999, 200012]);
  });

  it('defaults: alternating layers without layer_types, eps 1e-5, eos list', () => {
    const { layer_types: _lt, rms_norm_eps: _eps, eos_token_id: _eos, ...rest } = HUB_20B;
    const c = parseConfig(rest);
    expect(c.layerTypes).toEqual(parseConfig(HUB_20B).layerTypes);
    expect(c.rmsNormEps).toBe(1e-5);
    expect(c.eosTokenIds).toEqual([200002, 199999, 200012]);
    expect(parseConfig({ ...HUB_20B, eos_token_id: [200002, 199999] }).eosTokenIds).toEqual([200002, 199999]);
    // rope_scaling.type is accepted as an alias of rope_type; beta defaults are 32 / 1.
    const { rope_type: _rt, beta_fast: _bf, beta_slow: _bs, ...rs } = HUB_20B.rope_scaling;
    const c2 = parseConfig({ ...HUB_20B, rope_scaling: { ...rs, type: 'yarn' } });
    expect(c2.rope).toEqual(parseConfig(HUB_20B).rope);
  });

  it('the weight map sizes the 20b checkpoint as published (total_size 13,761,264,768 bytes)', () => {
    const c = parseConfig(HUB_20B);
    let bytes = 0;
    for (const { param } of allParams(c)) {
      const spec = paramSpec(param);
      const n = spec.shape(c).reduce((a, b) => a * b, 1);
      bytes += n * (spec.dtypes[0] === 'U8' ? 1 : 2);
    }
    expect(bytes).toBe(13_761_264_768);
    expect(allParams(c)).toHaveLength(3 + 24 * 19);
  });

  it('the 120b config differs only in layers and experts', () => {
    const c = parseConfig({
      ...HUB_20B, num_hidden_layers: 36, num_local_experts: 128,
      layer_types: Array.from({ length: 36 }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention')),
    });
    expect([c.numLayers, c.numExperts, c.expertsPerToken]).toEqual([36, 128, 4]);
  });

  it('errors name the field', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ ...HUB_20B, num_hidden_layers: undefined }, 'bad-config', 'num_hidden_layers'],
      [{ ...HUB_20B, hidden_size: 2880.5 }, 'bad-config', 'hidden_size'],
      [{ ...HUB_20B, hidden_size: 2890 }, 'bad-config', 'hidden_size'],
      [{ ...HUB_20B, layer_types: HUB_20B.layer_types.slice(1) }, 'bad-config', 'layer_types'],
      [{ ...HUB_20B, quantization_config: { quant_method: 'bitsandbytes' } }, 'unsupported-config', 'quantization_config.quant_method'],
      [{ ...HUB_20B, quantization_config: null }, 'unsupported-config', 'quantization_config.quant_method'],
      [{ ...HUB_20B, rope_scaling: null }, 'bad-config', 'rope_scaling'],
      [{ ...HUB_20B, rope_scaling: { ...HUB_20B.rope_scaling, original_max_position_embeddings: undefined } }, 'bad-config', 'original_max_position_embeddings'],
      [{ ...HUB_20B, eos_token_id: '200002' }, 'bad-config', 'eos_token_id'],
      [{ ...HUB_20B, eos_token_id: [200002, -1] }, 'bad-config', 'eos_token_id'],
      [{ ...ORIGINAL_20B, rope_ntk_beta: undefined }, 'bad-config', 'rope_ntk_beta'],
      [{ ...ORIGINAL_20B, initial_context_length: 0 }, 'bad-config', 'initial_context_length'],
    ];
    for (const [json, code, fieldName] of cases) {
      let err: unknown;
      try {
        parseConfig(JSON.parse(JSON.stringify(json)));
      } catch (e) {
        err = e;
      }
      expect(err, fieldName).toBeInstanceOf(ModelLoadError);
      expect((err as ModelLoadError).code, fieldName).toBe(code);
      expect((err as ModelLoadError).message, fieldName).toContain(fieldName);
      expect((err as ModelLoadError).message).toContain('config.json');
    }
  });
});
