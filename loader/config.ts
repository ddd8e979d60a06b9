/**
 * The model configuration (SPEC §1), parsed from a hub `config.json` (HF layout) or the
 * `original/config.json` of openai's own layout, and validated field by field.
 */
import { ModelLoadError } from './errors.ts';

export type LayerKind = 'sliding' | 'full';

export interface YarnRope {
  theta: number;
  factor: number;
  betaFast: number;
  betaSlow: number;
  originalMaxPositions: number;
  /** When true the YaRN ramp bounds are rounded (floor low, ceil high). gpt-oss uses false. */
  truncate: boolean;
}

export interface GptOssConfig {
  numLayers: number;
  numExperts: number;
  expertsPerToken: number;
  hiddenSize: number;
  intermediateSize: number;
  headDim: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  slidingWindow: number;
  layerTypes: LayerKind[];
  rope: YarnRope;
  rmsNormEps: number;
  swigluLimit: number;
  /** SwiGLU sigmoid slope: a constant of the architecture, not a config key. */
  swigluAlpha: number;
  maxPositions: number;
  eosTokenIds: number[];
}

export const SWIGLU_ALPHA = 1.702;
const FILE = 'config.json';

type Json = Record<string, unknown>;

function field(obj: Json, keys: string[], file: string): unknown {
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return obj[k];
  throw new ModelLoadError('bad-config', `missing required field`, { file, field: keys.join(' or ') });
}

function posInt(obj: Json, keys: string[], file: string): number {
  const v = field(obj, keys, file);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new ModelLoadError('bad-config', `expected a positive integer, got ${JSON.stringify(v)}`, { file, field: keys[0] });
  }
  return v;
}

function posNum(obj: Json, keys: string[], file: string, fallback?: number): number {
  let v: unknown;
  try {
    v = field(obj, keys, file);
  } catch (e) {
    if (fallback === undefined) throw e;
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ModelLoadError('bad-config', `expected a positive number, got ${JSON.stringify(v)}`, { file, field: keys[0] });
  }
  return v;
}

/** Parses either layout's config JSON into a validated GptOssConfig. */
export function parseConfig(json: unknown, file = FILE): GptOssConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ModelLoadError('bad-config', 'config is not a JSON object', { file });
  }
  const c = json as Json;
  const original = c.num_experts !== undefined && c.num_local_experts === undefined;
  const modelType = c.model_type;
  if (modelType !== undefined && modelType !== 'gpt_oss') {
    throw new ModelLoadError('unsupported-config', `model_type ${JSON.stringify(modelType)} is not gpt_oss`, { file, field: 'model_type' });
  }
  if (c.tie_word_embeddings === true) {
    throw new ModelLoadError('unsupported-config', 'tied embeddings are not part of gpt-oss', { file, field: 'tie_word_embeddings' });
  }
  const quant = c.quantization_config as Json | null | undefined;
  if (!original && quant?.quant_method !== 'mxfp4') {
    throw new ModelLoadError('unsupported-config', `only MXFP4 experts are supported, got quant_method ${JSON.stringify(quant?.quant_method)}`, { file, field: 'quantization_config.quant_method' });
  }

  const numLayers = posInt(c, ['num_hidden_layers'], file);
  const numExperts = posInt(c, ['num_local_experts', 'num_experts'], file);
  const expertsPerToken = posInt(c, ['num_experts_per_tok', 'experts_per_token'], file);
  const hiddenSize = posInt(c, ['hidden_size'], file);
  const intermediateSize = posInt(c, ['intermediate_size'], file);
  const numHeads = posInt(c, ['num_attention_heads'], file);
  const numKvHeads = posInt(c, ['num_key_value_heads'], file);
  const headDim = posInt(c, ['head_dim'], file);
  const vocabSize = posInt(c, ['vocab_size'], file);
  const slidingWindow = posInt(c, ['sliding_window'], file);

  const rope = parseRope(c, original, file);
  const layerTypes = parseLayerTypes(c, numLayers, file);
  const eos = c.eos_token_id;
  const eosTokenIds: unknown[] = eos === undefined || eos === null ? [200002, 199999, 200012] : Array.isArray(eos) ? eos : [eos];
  if (!eosTokenIds.every((t) => Number.isSafeInteger(t) && (t as number) >= 0)) {
    throw new ModelLoadError('bad-config', `eos_token_id ${JSON.stringify(eos)} is not a token id or list of ids`, { file, field: 'eos_token_id' });
  }

  const cfg: GptOssConfig = {
    numLayers, numExperts, expertsPerToken, hiddenSize, intermediateSize, headDim, numHeads, numKvHeads,
    vocabSize, slidingWindow, layerTypes, rope,
    rmsNormEps: posNum(c, ['rms_norm_eps'], file, 1e-5),
    swigluLimit: posNum(c, ['swiglu_limit'], file),
    swigluAlpha: SWIGLU_ALPHA,
    maxPositions: original ? rope.originalMaxPositions * rope.factor : posInt(c, ['max_position_embeddings'], file),
    eosTokenIds: eosTokenIds as number[],
  };
  checkConsistency(cfg, file);
  return cfg;
}

function parseRope(c: Json, original: boolean, file: string): YarnRope {
  const theta = posNum(c, ['rope_theta'], file);
  if (original) {
    return {
      theta,
      factor: posNum(c, ['rope_scaling_factor'], file),
      betaFast: posNum(c, ['rope_ntk_beta'], file),
      betaSlow: posNum(c, ['rope_ntk_alpha'], file),
      originalMaxPositions: posInt(c, ['initial_context_length'], file),
      truncate: false,
    };
  }
  const rs = c.rope_scaling as Json | undefined;
  if (rs === undefined || rs === null || typeof rs !== 'object') {
    throw new ModelLoadError('bad-config', 'missing required field', { file, field: 'rope_scaling' });
  }
  const type = rs.rope_type ?? rs.type;
  if (type !== 'yarn') {
    throw new ModelLoadError('unsupported-config', `rope_type ${JSON.stringify(type)} is not yarn`, { file, field: 'rope_scaling.rope_type' });
  }
  const sub = `${file} rope_scaling`;
  return {
    theta,
    factor: posNum(rs, ['factor'], sub),
    betaFast: posNum(rs, ['beta_fast'], sub, 32),
    betaSlow: posNum(rs, ['beta_slow'], sub, 1),
    originalMaxPositions: posInt(rs, ['original_max_position_embeddings'], sub),
    truncate: rs.truncate === true,
  };
}

function parseLayerTypes(c: Json, numLayers: number, file: string): LayerKind[] {
  const lt = c.layer_types;
  if (lt === undefined || lt === null) {
    // gpt-oss alternates, starting with a sliding layer.
    return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding' : 'full'));
  }
  if (!Array.isArray(lt) || lt.length !== numLayers) {
    throw new ModelLoadError('bad-config', `layer_types must list ${numLayers} entries (num_hidden_layers)`, { file, field: 'layer_types' });
  }
  return lt.map((t, i) => {
    if (t === 'sliding_attention') return 'sliding';
    if (t === 'full_attention') return 'full';
    throw new ModelLoadError('bad-config', `layer_types[${i}] is ${JSON.stringify(t)}, not sliding_attention or full_attention`, { file, field: 'layer_types' });
  });
}

function checkConsistency(c: GptOssConfig, file: string): void {
  const fail = (fieldName: string, msg: string) => new ModelLoadError('bad-config', msg, { file, field: fieldName });
  if (c.hiddenSize % 32 !== 0) throw fail('hidden_size', `hidden_size ${c.hiddenSize} must be a multiple of the MXFP4 block size 32`);
  if (c.intermediateSize % 32 !== 0) throw fail('intermediate_size', `intermediate_size ${c.intermediateSize} must be a multiple of 32`);
  if (c.numHeads % c.numKvHeads !== 0) throw fail('num_key_value_heads', `num_attention_heads ${c.numHeads} is not a multiple of num_key_value_heads ${c.numKvHeads}`);
  if (c.headDim % 2 !== 0) throw fail('head_dim', `head_dim ${c.headDim} must be even for RoPE`);
  if (c.expertsPerToken > c.numExperts) throw fail('num_experts_per_tok', `num_experts_per_tok ${c.expertsPerToken} exceeds num_local_experts ${c.numExperts}`);
}

/** Short human summary, e.g. for logs and the bench header. */
export function describeConfig(c: GptOssConfig): string {
  return `${c.numLayers} layers, ${c.numExperts} experts (top ${c.expertsPerToken}), hidden ${c.hiddenSize}, ` +
    `intermediate ${c.intermediateSize}, heads ${c.numHeads}/${c.numKvHeads}x${c.headDim}, window ${c.slidingWindow}, vocab ${c.vocabSize}`;
}
