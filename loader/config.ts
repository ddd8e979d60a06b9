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

/**
 * What the kernels can represent. Integers are written into WGSL as u32 literals and index
 * buffers with u32 arithmetic; floats are written as f32 literals (kernels/pipeline-cache.ts
 * f32Literal) or feed f64 host code whose results are stored as f32 (the RoPE tables).
 */
export const U32_MAX = 4294967295;
/** Largest finite f32. */
export const F32_MAX = 3.4028234663852886e38;
/** Smallest normal f32 (2^-126): GPUs may flush smaller (subnormal) values to zero. */
export const F32_MIN_NORMAL = 1.1754943508222875e-38;
/** The attention kernel (kernels/attention.ts) covers a head with two dims per thread of its 64. */
export const MAX_HEAD_DIM = 128;
/** The attention grid has one workgroup per head along x (WebGPU guarantees 65535 per dimension). */
export const MAX_HEADS = 65535;
/** 19 tensors and several GPU buffers per layer; more layers than this is no real checkpoint. */
export const MAX_LAYERS = 65535;
/** The router kernel (kernels/router.ts) keeps k logits per thread in a function-scope array. */
export const MAX_EXPERTS_PER_TOKEN = 1024;

type Json = Record<string, unknown>;

/** Where a value lives: the file and, for nested objects, the key path prefix (`rope_scaling.`). */
interface Ctx {
  file: string;
  prefix: string;
}

/** `name` is the full key path the message uses; the error's `field` is the key within its object. */
function fail(ctx: Ctx, name: string, msg: string, code: 'bad-config' | 'unsupported-config' = 'bad-config'): ModelLoadError {
  const field = ctx.prefix && name.startsWith(ctx.prefix) ? name.slice(ctx.prefix.length) : name;
  return new ModelLoadError(code, `${ctx.file}: ${msg}`, { file: ctx.file, field });
}

/** A value as the message shows it: numbers as JavaScript prints them, anything else as JSON. */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** The first present key's [name, value]; undefined when none is present. */
function lookup(obj: Json, keys: string[], ctx: Ctx): [string, unknown] | undefined {
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return [ctx.prefix + k, obj[k]];
  return undefined;
}

function required(obj: Json, keys: string[], ctx: Ctx): [string, unknown] {
  const hit = lookup(obj, keys, ctx);
  if (!hit) {
    throw fail(ctx, keys.map((k) => ctx.prefix + k).join(' or '), `missing required field ${keys.map((k) => ctx.prefix + k).join(' or ')}`);
  }
  return hit;
}

interface IntRange {
  min: number;
  max: number;
  /** The value must also be a multiple of this (and the message says why). */
  multipleOf?: { n: number; why: string };
}

function checkInt(name: string, v: unknown, r: IntRange, ctx: Ctx): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < r.min || v > r.max) {
    throw fail(ctx, name, `${name} must be an integer between ${r.min} and ${r.max}, got ${show(v)}`);
  }
  if (r.multipleOf && v % r.multipleOf.n !== 0) {
    throw fail(ctx, name, `${name} must be a multiple of ${r.multipleOf.n} (${r.multipleOf.why}), got ${v}`);
  }
  return v;
}

function int(obj: Json, keys: string[], r: IntRange, ctx: Ctx): number {
  const [name, v] = required(obj, keys, ctx);
  return checkInt(name, v, r, ctx);
}

interface RealRange {
  min: number;
  max: number;
  /** min itself is not allowed. */
  minExclusive?: boolean;
}

/** A float checked after rounding to f32, the precision the kernels use. */
function real(obj: Json, keys: string[], r: RealRange, ctx: Ctx, fallback?: number): number {
  const hit = lookup(obj, keys, ctx);
  if (!hit) {
    if (fallback !== undefined) return fallback;
    required(obj, keys, ctx);
  }
  const [name, v] = hit!;
  const f = typeof v === 'number' ? Math.fround(v) : NaN;
  const low = r.minExclusive ? f > r.min : f >= r.min;
  if (!(low && f <= r.max)) {
    const range = r.minExclusive ? `greater than ${r.min} and at most ${r.max}` : `between ${r.min} and ${r.max}`;
    throw fail(ctx, name, `${name} must be a number ${range} (a finite f32), got ${show(v)}`);
  }
  return v as number;
}

const U32_POSITIVE: IntRange = { min: 1, max: U32_MAX };
const MXFP4_MULTIPLE = { n: 32, why: 'the MXFP4 block size' };
/** Positive normal f32 values. */
const F32_POSITIVE: RealRange = { min: F32_MIN_NORMAL, max: F32_MAX };

/** Parses either layout's config JSON into a validated GptOssConfig. */
export function parseConfig(json: unknown, file = FILE): GptOssConfig {
  const ctx: Ctx = { file, prefix: '' };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ModelLoadError('bad-config', `${file}: the config is not a JSON object`, { file });
  }
  const c = json as Json;
  const original = c.num_experts !== undefined && c.num_local_experts === undefined;
  const modelType = c.model_type;
  if (modelType !== undefined && modelType !== 'gpt_oss') {
    throw fail(ctx, 'model_type', `model_type ${JSON.stringify(modelType)} is not gpt_oss`, 'unsupported-config');
  }
  if (c.tie_word_embeddings === true) {
    throw fail(ctx, 'tie_word_embeddings', 'tie_word_embeddings is true, but tied embeddings are not part of gpt-oss', 'unsupported-config');
  }
  const quant = c.quantization_config as Json | null | undefined;
  if (!original && quant?.quant_method !== 'mxfp4') {
    throw fail(ctx, 'quantization_config.quant_method', `only MXFP4 experts are supported, got quantization_config.quant_method ${JSON.stringify(quant?.quant_method)}`, 'unsupported-config');
  }

  const numLayers = int(c, ['num_hidden_layers'], { min: 1, max: MAX_LAYERS }, ctx);
  const numExperts = int(c, ['num_local_experts', 'num_experts'], U32_POSITIVE, ctx);
  const expertsPerToken = int(c, ['num_experts_per_tok', 'experts_per_token'], { min: 1, max: MAX_EXPERTS_PER_TOKEN }, ctx);
  const hiddenSize = int(c, ['hidden_size'], { min: 32, max: U32_MAX, multipleOf: MXFP4_MULTIPLE }, ctx);
  const intermediateSize = int(c, ['intermediate_size'], { min: 32, max: U32_MAX, multipleOf: MXFP4_MULTIPLE }, ctx);
  const numHeads = int(c, ['num_attention_heads'], { min: 1, max: MAX_HEADS }, ctx);
  const numKvHeads = int(c, ['num_key_value_heads'], { min: 1, max: MAX_HEADS }, ctx);
  const headDim = int(c, ['head_dim'], { min: 2, max: MAX_HEAD_DIM, multipleOf: { n: 2, why: 'RoPE rotates pairs' } }, ctx);
  const vocabSize = int(c, ['vocab_size'], U32_POSITIVE, ctx);
  const slidingWindow = int(c, ['sliding_window'], U32_POSITIVE, ctx);

  const rope = parseRope(c, original, ctx);
  const layerTypes = parseLayerTypes(c, numLayers, ctx);
  const eos = c.eos_token_id;
  const eosTokenIds: unknown[] = eos === undefined || eos === null ? [200002, 199999, 200012] : Array.isArray(eos) ? eos : [eos];
  if (eosTokenIds.length === 0 || !eosTokenIds.every((t) => Number.isInteger(t) && (t as number) >= 0 && (t as number) <= U32_MAX)) {
    throw fail(ctx, 'eos_token_id', `eos_token_id must be a token id or a list of token ids (integers between 0 and ${U32_MAX}), got ${show(eos)}`);
  }

  const cfg: GptOssConfig = {
    numLayers, numExperts, expertsPerToken, hiddenSize, intermediateSize, headDim, numHeads, numKvHeads,
    vocabSize, slidingWindow, layerTypes, rope,
    // An eps near 1 or above would swamp the mean square of any normalised activation.
    rmsNormEps: real(c, ['rms_norm_eps'], { min: F32_MIN_NORMAL, max: 1 }, ctx, 1e-5),
    swigluLimit: real(c, ['swiglu_limit'], F32_POSITIVE, ctx),
    swigluAlpha: SWIGLU_ALPHA,
    maxPositions: original
      ? Math.min(U32_MAX, Math.floor(rope.originalMaxPositions * rope.factor))
      : int(c, ['max_position_embeddings'], U32_POSITIVE, ctx),
    eosTokenIds: eosTokenIds as number[],
  };
  checkConsistency(cfg, ctx);
  return cfg;
}

function parseRope(c: Json, original: boolean, ctx: Ctx): YarnRope {
  // ln(theta) divides the YaRN ramp bounds: theta must exceed 1.
  const theta = real(c, ['rope_theta'], { min: 1, max: F32_MAX, minExclusive: true }, ctx);
  // The YaRN concentration 0.1 ln(factor) + 1 assumes a stretch, never a shrink.
  const factorRange: RealRange = { min: 1, max: F32_MAX };
  if (original) {
    return {
      theta,
      factor: real(c, ['rope_scaling_factor'], factorRange, ctx),
      betaFast: real(c, ['rope_ntk_beta'], F32_POSITIVE, ctx),
      betaSlow: real(c, ['rope_ntk_alpha'], F32_POSITIVE, ctx),
      originalMaxPositions: int(c, ['initial_context_length'], U32_POSITIVE, ctx),
      truncate: false,
    };
  }
  const rs = c.rope_scaling as Json | undefined;
  if (rs === undefined || rs === null || typeof rs !== 'object' || Array.isArray(rs)) {
    throw new ModelLoadError('bad-config', `${ctx.file}: missing required field rope_scaling`, { file: ctx.file, field: 'rope_scaling' });
  }
  const type = rs.rope_type ?? rs.type;
  if (type !== 'yarn') {
    throw fail(ctx, 'rope_scaling.rope_type', `rope_scaling.rope_type ${JSON.stringify(type)} is not yarn`, 'unsupported-config');
  }
  const sub: Ctx = { file: ctx.file, prefix: 'rope_scaling.' };
  return {
    theta,
    factor: real(rs, ['factor'], factorRange, sub),
    betaFast: real(rs, ['beta_fast'], F32_POSITIVE, sub, 32),
    betaSlow: real(rs, ['beta_slow'], F32_POSITIVE, sub, 1),
    originalMaxPositions: int(rs, ['original_max_position_embeddings'], U32_POSITIVE, sub),
    truncate: rs.truncate === true,
  };
}

function parseLayerTypes(c: Json, numLayers: number, ctx: Ctx): LayerKind[] {
  const lt = c.layer_types;
  if (lt === undefined || lt === null) {
    // gpt-oss alternates, starting with a sliding layer.
    return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding' : 'full'));
  }
  if (!Array.isArray(lt) || lt.length !== numLayers) {
    throw fail(ctx, 'layer_types', `layer_types must list ${numLayers} entries (num_hidden_layers)`);
  }
  return lt.map((t, i) => {
    if (t === 'sliding_attention') return 'sliding';
    if (t === 'full_attention') return 'full';
    throw fail(ctx, 'layer_types', `layer_types[${i}] is ${JSON.stringify(t)}, not sliding_attention or full_attention`);
  });
}

/**
 * Cross-field rules. Weight tensors are indexed with u32 in the kernels, so each must have
 * at most U32_MAX elements (bytes, for the MXFP4 blocks).
 */
function checkConsistency(c: GptOssConfig, ctx: Ctx): void {
  if (c.numHeads % c.numKvHeads !== 0) {
    throw fail(ctx, 'num_key_value_heads', `num_attention_heads ${c.numHeads} is not a multiple of num_key_value_heads ${c.numKvHeads}`);
  }
  if (c.expertsPerToken > c.numExperts) {
    throw fail(ctx, 'num_experts_per_tok', `num_experts_per_tok ${c.expertsPerToken} exceeds num_local_experts ${c.numExperts}`);
  }
  const products: [string, number, string][] = [
    ['num_attention_heads x head_dim x hidden_size', c.numHeads * c.headDim * c.hiddenSize, 'the elements of q_proj and o_proj'],
    ['num_local_experts x intermediate_size x hidden_size', c.numExperts * c.intermediateSize * c.hiddenSize, 'the bytes of a layer\'s MXFP4 expert blocks'],
    ['vocab_size x hidden_size', c.vocabSize * c.hiddenSize, 'the elements of the embedding and lm_head'],
  ];
  for (const [name, value, what] of products) {
    if (value > U32_MAX) {
      throw fail(ctx, name, `${name} is ${value}, more than ${U32_MAX}: ${what}, which the kernels index with u32`);
    }
  }
}

/** Short human summary, e.g. for logs and the bench header. */
export function describeConfig(c: GptOssConfig): string {
  return `${c.numLayers} layers, ${c.numExperts} experts (top ${c.expertsPerToken}), hidden ${c.hiddenSize}, ` +
    `intermediate ${c.intermediateSize}, heads ${c.numHeads}/${c.numKvHeads}x${c.headDim}, window ${c.slidingWindow}, vocab ${c.vocabSize}`;
}
