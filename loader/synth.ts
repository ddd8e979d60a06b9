/**
 * Synthetic gpt-oss checkpoints: random weights in exactly the published Hugging Face layout
 * (hub config.json, MXFP4 experts, bf16 everything else, tensor order of the real shards).
 *
 * Environment-agnostic: this module describes the checkpoint; synth-gen.ts generates any byte
 * range of a tensor, source-synthetic.ts serves the files on demand, synth-writer-node.ts writes
 * them to disk. Every tensor is an independent random stream keyed by (seed, tensor name), so
 * its bytes depend neither on the shard layout nor on how they are read.
 *
 * Scaling keeps activations in a realistic range through all layers: with rms-normalised
 * inputs, q/k/v, router, gate_up and lm_head outputs are ~N(0, 1); o_proj and down_proj add
 * ~1/sqrt(2 * layers) each to a residual stream that starts at rms 1, so it ends near rms sqrt(2).
 */
import { parseConfig, type GptOssConfig } from './config.ts';
import { SynthTensorGenerator } from './synth-gen.ts';
import { buildSafetensorsHeader, DTYPE_BYTES, numel, type DType } from './safetensors.ts';
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

export { E2M1_UNIFORM_RMS, e8m0Mixture, synthDist, type SynthDist } from './synth-gen.ts';

export const DEFAULT_SYNTH_CHUNK_BYTES = 16 << 20;
/** Like transformers' save_pretrained default ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/**
 * The bytes of one tensor, as chunks of at most `chunkBytes` (rounded down to a multiple of 16,
 * at least 16). The concatenation depends only on (seed, tensor name, shape): not on chunkBytes.
 * Each yielded chunk is a fresh array. For any byte range, see SynthTensorGenerator.
 */
export function* synthTensorChunks(
  tensor: SynthTensor,
  config: GptOssConfig,
  seed: number,
  chunkBytes = DEFAULT_SYNTH_CHUNK_BYTES,
): Generator<Uint8Array> {
  const step = Math.max(16, chunkBytes - (chunkBytes % 16));
  const gen = new SynthTensorGenerator(tensor, config, seed);
  for (let at = 0; at < tensor.bytes; at += step) {
    const out = new Uint8Array(Math.min(step, tensor.bytes - at));
    gen.read(at, out);
    yield out;
  }
}

/** Convenience: the whole tensor in one array (small tensors and tests only). */
export function synthTensorBytes(tensor: SynthTensor, config: GptOssConfig, seed: number): Uint8Array {
  const out = new Uint8Array(tensor.bytes);
  new SynthTensorGenerator(tensor, config, seed).read(0, out);
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

/** One safetensors shard of a synthetic checkpoint, as laid out in its file. */
export interface SynthShard {
  file: string;
  header: Uint8Array;
  tensors: SynthTensor[];
  /** File offset of each tensor's first byte (same order as `tensors`). */
  starts: number[];
  /** File size: header plus data. */
  size: number;
}

/** Every file of a synthetic checkpoint except the tokenizer's, byte-exact: shared by the writer and the on-demand source. */
export interface SynthLayout {
  shape: SynthShape;
  config: GptOssConfig;
  /** config.json and generation_config.json. */
  configFiles: { name: string; bytes: Uint8Array }[];
  shards: SynthShard[];
  /** model.safetensors.index.json, when there is more than one shard. */
  index?: { name: string; bytes: Uint8Array };
  /** Bytes of all tensors (the index's metadata.total_size). */
  totalBytes: number;
}

export function synthLayout(preset: SynthPreset, overrides: SynthOverrides = {}, maxShardBytes = DEFAULT_MAX_SHARD_BYTES): SynthLayout {
  const shape = synthShape(preset, overrides);
  const config = synthConfig(shape);
  const tensors = synthTensors(config);
  const json = (obj: unknown) => new TextEncoder().encode(JSON.stringify(obj, null, 2) + '\n');
  const shards = planShards(tensors, maxShardBytes).map(({ file, tensors: ts }): SynthShard => {
    const { header } = buildSafetensorsHeader(ts.map(({ name, dtype, shape: s }) => ({ name, dtype, shape: s })), { format: 'pt' });
    const starts: number[] = [];
    let at = header.length;
    for (const t of ts) {
      starts.push(at);
      at += t.bytes;
    }
    return { file, header, tensors: ts, starts, size: at };
  });
  const totalBytes = tensors.reduce((a, t) => a + t.bytes, 0);
  let index: SynthLayout['index'];
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    for (const s of shards) for (const t of s.tensors) weightMap[t.name] = s.file;
    index = { name: 'model.safetensors.index.json', bytes: json({ metadata: { total_size: totalBytes }, weight_map: weightMap }) };
  }
  return {
    shape,
    config,
    configFiles: [
      { name: 'config.json', bytes: json(hubConfigJson(shape)) },
      { name: 'generation_config.json', bytes: json(generationConfigJson()) },
    ],
    shards,
    index,
    totalBytes,
  };
}
