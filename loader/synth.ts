/**
 * Synthetic gpt-oss checkpoints: random weights in exactly the published Hugging Face layout
 * (hub config.json, MXFP4 experts, bf16 everything else, tensor order of the real shards).
 *
 * Environment-agnostic: this module only describes and generates bytes; see
 * synth-writer-node.ts for the file writer. Every tensor is an independent random stream
 * keyed by (seed, tensor name), generated in bounded chunks whose content does not depend on
 * the chunk size.
 *
 * Scaling keeps activations in a realistic range through all layers: with rms-normalised
 * inputs, q/k/v, router, gate_up and lm_head outputs are ~N(0, 1); o_proj and down_proj add
 * ~1/sqrt(2 * layers) each to a residual stream that starts at rms 1, so it ends near rms sqrt(2).
 */
import { parseConfig, type GptOssConfig } from './config.ts';
import { Rng } from './rng.ts';
import { DTYPE_BYTES, numel, type DType } from './safetensors.ts';
import { LAYER_PARAM_NAMES, paramSpec, tensorName, type LayerParam, type ParamName } from './weight-map.ts';

export type SynthPreset = 'tiny' | '20b' | '120b';

export interface SynthOverrides {
  layers?: number;
  experts?: number;
  expertsPerToken?: number;
  hidden?: number;
  intermediate?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  vocab?: number;
  window?: number;
}

export type SynthShape = Required<SynthOverrides>;

export const REAL_VOCAB = 201088;

export const SYNTH_PRESETS: Record<SynthPreset, SynthShape> = {
  tiny: { layers: 2, experts: 8, expertsPerToken: 4, hidden: 64, intermediate: 64, heads: 4, kvHeads: 2, headDim: 16, vocab: REAL_VOCAB, window: 8 },
  '20b': { layers: 24, experts: 32, expertsPerToken: 4, hidden: 2880, intermediate: 2880, heads: 64, kvHeads: 8, headDim: 64, vocab: REAL_VOCAB, window: 128 },
  '120b': { layers: 36, experts: 128, expertsPerToken: 4, hidden: 2880, intermediate: 2880, heads: 64, kvHeads: 8, headDim: 64, vocab: REAL_VOCAB, window: 128 },
};

export function isSynthPreset(s: string): s is SynthPreset {
  return Object.prototype.hasOwnProperty.call(SYNTH_PRESETS, s);
}

/** The preset with overrides applied (undefined overrides are ignored) and validated. */
export function synthShape(preset: SynthPreset, overrides: SynthOverrides = {}): SynthShape {
  const base = SYNTH_PRESETS[preset];
  if (!base) throw new Error(`unknown preset ${JSON.stringify(preset)}`);
  const shape: SynthShape = { ...base };
  for (const [k, v] of Object.entries(overrides) as [keyof SynthShape, number | undefined][]) {
    if (v === undefined) continue;
    if (!(k in base)) throw new Error(`unknown shape override ${JSON.stringify(k)}`);
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`override ${k} must be a positive integer, got ${v}`);
    shape[k] = v;
  }
  const fail = (msg: string) => new Error(`invalid synthetic shape: ${msg}`);
  if (shape.hidden % 32 !== 0) throw fail(`hidden ${shape.hidden} must be a multiple of 32 (MXFP4 block)`);
  if (shape.intermediate % 32 !== 0) throw fail(`intermediate ${shape.intermediate} must be a multiple of 32 (MXFP4 block)`);
  if (shape.heads % shape.kvHeads !== 0) throw fail(`heads ${shape.heads} must be a multiple of kvHeads ${shape.kvHeads}`);
  if (shape.headDim % 2 !== 0) throw fail(`headDim ${shape.headDim} must be even (RoPE)`);
  if (shape.expertsPerToken > shape.experts) throw fail(`expertsPerToken ${shape.expertsPerToken} exceeds experts ${shape.experts}`);
  // Everything else the engine cannot run (ranges, sizes) is what config.json validation says.
  try {
    parseConfig(hubConfigJson(shape));
  } catch (e) {
    throw fail((e as Error).message);
  }
  return shape;
}

/** The hub-style config.json object, keys and values as in the published checkpoints. */
export function hubConfigJson(shape: SynthShape): Record<string, unknown> {
  return {
    architectures: ['GptOssForCausalLM'],
    attention_bias: true,
    attention_dropout: 0.0,
    eos_token_id: 200002,
    experts_per_token: shape.expertsPerToken,
    head_dim: shape.headDim,
    hidden_act: 'silu',
    hidden_size: shape.hidden,
    initial_context_length: 4096,
    initializer_range: 0.02,
    intermediate_size: shape.intermediate,
    layer_types: Array.from({ length: shape.layers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention')),
    max_position_embeddings: 131072,
    model_type: 'gpt_oss',
    num_attention_heads: shape.heads,
    num_experts_per_tok: shape.expertsPerToken,
    num_hidden_layers: shape.layers,
    num_key_value_heads: shape.kvHeads,
    num_local_experts: shape.experts,
    output_router_logits: false,
    pad_token_id: shape.vocab > 199999 ? 199999 : null,
    quantization_config: {
      modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'],
      quant_method: 'mxfp4',
    },
    rms_norm_eps: 1e-5,
    rope_scaling: {
      beta_fast: 32.0,
      beta_slow: 1.0,
      factor: 32.0,
      original_max_position_embeddings: 4096,
      rope_type: 'yarn',
      truncate: false,
    },
    rope_theta: 150000,
    router_aux_loss_coef: 0.9,
    sliding_window: shape.window,
    swiglu_limit: 7.0,
    tie_word_embeddings: false,
    transformers_version: '4.55.0.dev0',
    use_cache: true,
    vocab_size: shape.vocab,
  };
}

/** generation_config.json as in the published checkpoints. */
export function generationConfigJson(): Record<string, unknown> {
  return {
    bos_token_id: 199998,
    do_sample: true,
    eos_token_id: [200002, 199999, 200012],
    pad_token_id: 199999,
    transformers_version: '4.55.0.dev0',
  };
}

/** Parsed config of a synthetic shape (round-trips through the real config parser). */
export function synthConfig(shape: SynthShape): GptOssConfig {
  return parseConfig(hubConfigJson(shape));
}

/**
 * Per-layer tensor order inside the published shards (and the golden files): weights of
 * attention and router first, then their biases, then sinks, norm and the experts.
 */
export const HF_LAYER_ORDER: readonly LayerParam[] = [
  'attn_norm', 'q_w', 'k_w', 'v_w', 'o_w', 'router_w', 'q_b', 'k_b', 'v_b', 'o_b', 'router_b', 'sinks',
  'mlp_norm', 'gate_up_blocks', 'gate_up_scales', 'down_blocks', 'down_scales', 'gate_up_bias', 'down_bias',
];
if (HF_LAYER_ORDER.length !== LAYER_PARAM_NAMES.length || !LAYER_PARAM_NAMES.every((p) => HF_LAYER_ORDER.includes(p))) {
  throw new Error('HF_LAYER_ORDER is out of date with the weight map');
}

export interface SynthTensor {
  param: ParamName;
  layer?: number;
  /** HF tensor name. */
  name: string;
  dtype: DType;
  shape: number[];
  bytes: number;
}

/** Every tensor of the checkpoint, in the order of the published shards. */
export function synthTensors(config: GptOssConfig): SynthTensor[] {
  const list: { param: ParamName; layer?: number }[] = [{ param: 'embed' }];
  for (let l = 0; l < config.numLayers; l++) for (const p of HF_LAYER_ORDER) list.push({ param: p, layer: l });
  list.push({ param: 'norm' }, { param: 'lm_head' });
  return list.map(({ param, layer }) => {
    const spec = paramSpec(param);
    const dtype = spec.dtypes[0]!;
    const shape = spec.shape(config);
    return { param, layer, name: tensorName(param, 'hf', layer), dtype, shape, bytes: numel(shape) * DTYPE_BYTES[dtype] };
  });
}

/** RMS of a uniformly random e2m1 code: sqrt(mean of squares of the 16 values) = sqrt(8.5625). */
export const E2M1_UNIFORM_RMS = Math.sqrt(8.5625);
/** RMS of a = glu*sigmoid(1.702 glu)*(lin+1) for glu, lin ~ N(0, 1) (approx. 0.92). */
const SWIGLU_OUT_RMS = 0.92;

/** How one tensor's values are drawn. */
export type SynthDist =
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'bytes' }
  | { kind: 'e8m0'; elementStd: number };

/** The distribution of each parameter (see the module comment for the reasoning). */
export function synthDist(param: ParamName, c: GptOssConfig): SynthDist {
  const residual = 1 / Math.sqrt(2 * c.numLayers);
  const normal = (std: number, mean = 0): SynthDist => ({ kind: 'normal', mean, std });
  switch (param) {
    case 'embed': return normal(1);
    case 'attn_norm': case 'mlp_norm': case 'norm': return normal(0.05, 1);
    case 'q_w': case 'k_w': case 'v_w': case 'router_w': case 'lm_head': return normal(1 / Math.sqrt(c.hiddenSize));
    case 'o_w': return normal(residual / Math.sqrt(c.numHeads * c.headDim));
    case 'q_b': case 'k_b': case 'v_b': case 'o_b': case 'router_b': case 'gate_up_bias': case 'down_bias': return normal(0.02);
    case 'sinks': return normal(1);
    case 'gate_up_blocks': case 'down_blocks': return { kind: 'bytes' };
    case 'gate_up_scales': return { kind: 'e8m0', elementStd: 1 / Math.sqrt(c.hiddenSize) };
    case 'down_scales': return { kind: 'e8m0', elementStd: residual / (Math.sqrt(c.intermediateSize) * SWIGLU_OUT_RMS) };
  }
}

/**
 * Scale-byte sampler: a mixture of two adjacent exponents e0, e0 + 1 with P(e0 + 1) = p chosen
 * so that E[4^e] = (elementStd / E2M1_UNIFORM_RMS)^2 exactly: with uniformly random nibbles the
 * decoded elements then have exactly the requested RMS (in expectation).
 */
export function e8m0Mixture(elementStd: number): { s0: number; p: number } {
  const x = Math.log2(elementStd / E2M1_UNIFORM_RMS);
  const e0 = Math.floor(x);
  const p = (4 ** (x - e0) - 1) / 3;
  const s0 = 127 + e0;
  if (s0 < 1 || s0 + 1 > 254) throw new Error(`element std ${elementStd} is outside the E8M0 range`);
  return { s0, p };
}

export const DEFAULT_SYNTH_CHUNK_BYTES = 16 << 20;

/**
 * The bytes of one tensor, as chunks of at most `chunkBytes` (rounded down to a multiple of 16,
 * at least 16). The concatenation depends only on (seed, tensor name, shape): not on chunkBytes.
 * Each yielded chunk is a fresh array.
 */
export function* synthTensorChunks(
  tensor: SynthTensor,
  config: GptOssConfig,
  seed: number,
  chunkBytes = DEFAULT_SYNTH_CHUNK_BYTES,
): Generator<Uint8Array> {
  const step = Math.max(16, chunkBytes - (chunkBytes % 16));
  const rng = new Rng(seed, tensor.name);
  const dist = synthDist(tensor.param, config);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let at = 0; at < tensor.bytes; at += step) {
    const n = Math.min(step, tensor.bytes - at);
    const out = new Uint8Array(n);
    if (dist.kind === 'bytes') {
      rng.fillBytes(out);
    } else if (dist.kind === 'e8m0') {
      const { s0, p } = e8m0Mixture(dist.elementStd);
      for (let i = 0; i < n; i++) out[i] = rng.uniform() < p ? s0 + 1 : s0;
    } else {
      if (tensor.dtype !== 'BF16') throw new Error(`synthetic writer produces BF16 floats, not ${tensor.dtype}`);
      const { mean, std } = dist;
      for (let i = 0; i < n; i += 2) {
        // numeric.ts f32ToBf16, inlined (round to nearest even; values are finite).
        f32[0] = mean + std * rng.normal();
        const b = u32[0]!;
        const h = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
        out[i] = h & 255;
        out[i + 1] = h >>> 8;
      }
    }
    yield out;
  }
}

/** Convenience: the whole tensor in one array (small tensors and tests only). */
export function synthTensorBytes(tensor: SynthTensor, config: GptOssConfig, seed: number): Uint8Array {
  const out = new Uint8Array(tensor.bytes);
  let at = 0;
  for (const chunk of synthTensorChunks(tensor, config, seed)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Greedy shard plan like transformers' save_pretrained: tensors in order, a new shard when the
 * next tensor would push the current one past maxShardBytes (a tensor never splits; an oversized
 * tensor gets a shard of its own). Names: `model.safetensors` for one shard, else the hub's
 * `model-0000i-of-0000{N-1}.safetensors`.
 */
export function planShards(tensors: SynthTensor[], maxShardBytes: number): { file: string; tensors: SynthTensor[]; dataBytes: number }[] {
  if (!(maxShardBytes > 0)) throw new Error(`maxShardBytes must be positive, got ${maxShardBytes}`);
  const groups: SynthTensor[][] = [];
  let cur: SynthTensor[] = [];
  let size = 0;
  for (const t of tensors) {
    if (cur.length > 0 && size + t.bytes > maxShardBytes) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t);
    size += t.bytes;
  }
  if (cur.length > 0) groups.push(cur);
  const last = groups.length - 1;
  const pad = (i: number) => String(i).padStart(5, '0');
  return groups.map((g, i) => ({
    file: groups.length === 1 ? 'model.safetensors' : `model-${pad(i)}-of-${pad(last)}.safetensors`,
    tensors: g,
    dataBytes: g.reduce((a, t) => a + t.bytes, 0),
  }));
}
