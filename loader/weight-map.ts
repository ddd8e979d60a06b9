/**
 * The declarative weight map: every logical parameter of gpt-oss, its name in both checkpoint
 * layouts (Hugging Face and openai's 'original'), its dtype and its shape from the config.
 * The loader, the GPU upload, the synthetic writer and the CPU reference all read this table.
 *
 * In the original layout q, k and v are one fused `qkv` tensor (rows q, then k, then v); a
 * row slice of a row-major tensor is one contiguous byte range, so `rows` is all it takes.
 */
import type { GptOssConfig } from './config.ts';
import type { DType } from './safetensors.ts';

export type GlobalParam = 'embed' | 'norm' | 'lm_head';
export type LayerParam =
  | 'attn_norm' | 'q_w' | 'q_b' | 'k_w' | 'k_b' | 'v_w' | 'v_b' | 'o_w' | 'o_b' | 'sinks'
  | 'mlp_norm' | 'router_w' | 'router_b'
  | 'gate_up_blocks' | 'gate_up_scales' | 'gate_up_bias'
  | 'down_blocks' | 'down_scales' | 'down_bias';
export type ParamName = GlobalParam | LayerParam;

export type Layout = 'hf' | 'original';

interface OriginalName {
  name: string;
  /** Which rows of the stored tensor this parameter is: a function of the config. */
  rows?: (c: GptOssConfig) => [number, number];
}

export interface ParamSpec {
  hf: string;
  original: OriginalName;
  /** Accepted dtypes; the first is what our writer produces. */
  dtypes: DType[];
  shape: (c: GptOssConfig) => number[];
}

const qRows = (c: GptOssConfig): [number, number] => [0, c.numHeads * c.headDim];
const kRows = (c: GptOssConfig): [number, number] => [c.numHeads * c.headDim, (c.numHeads + c.numKvHeads) * c.headDim];
const vRows = (c: GptOssConfig): [number, number] => [(c.numHeads + c.numKvHeads) * c.headDim, (c.numHeads + 2 * c.numKvHeads) * c.headDim];

const FLOAT: DType[] = ['BF16', 'F32'];
const BYTES: DType[] = ['U8'];

export const GLOBAL_PARAMS: Record<GlobalParam, ParamSpec> = {
  embed: { hf: 'model.embed_tokens.weight', original: { name: 'embedding.weight' }, dtypes: FLOAT, shape: (c) => [c.vocabSize, c.hiddenSize] },
  norm: { hf: 'model.norm.weight', original: { name: 'norm.scale' }, dtypes: FLOAT, shape: (c) => [c.hiddenSize] },
  lm_head: { hf: 'lm_head.weight', original: { name: 'unembedding.weight' }, dtypes: FLOAT, shape: (c) => [c.vocabSize, c.hiddenSize] },
};

/** `{L}` stands for the layer index. */
export const LAYER_PARAMS: Record<LayerParam, ParamSpec> = {
  attn_norm: { hf: 'model.layers.{L}.input_layernorm.weight', original: { name: 'block.{L}.attn.norm.scale' }, dtypes: FLOAT, shape: (c) => [c.hiddenSize] },
  q_w: { hf: 'model.layers.{L}.self_attn.q_proj.weight', original: { name: 'block.{L}.attn.qkv.weight', rows: qRows }, dtypes: FLOAT, shape: (c) => [c.numHeads * c.headDim, c.hiddenSize] },
  q_b: { hf: 'model.layers.{L}.self_attn.q_proj.bias', original: { name: 'block.{L}.attn.qkv.bias', rows: qRows }, dtypes: FLOAT, shape: (c) => [c.numHeads * c.headDim] },
  k_w: { hf: 'model.layers.{L}.self_attn.k_proj.weight', original: { name: 'block.{L}.attn.qkv.weight', rows: kRows }, dtypes: FLOAT, shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize] },
  k_b: { hf: 'model.layers.{L}.self_attn.k_proj.bias', original: { name: 'block.{L}.attn.qkv.bias', rows: kRows }, dtypes: FLOAT, shape: (c) => [c.numKvHeads * c.headDim] },
  v_w: { hf: 'model.layers.{L}.self_attn.v_proj.weight', original: { name: 'block.{L}.attn.qkv.weight', rows: vRows }, dtypes: FLOAT, shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize] },
  v_b: { hf: 'model.layers.{L}.self_attn.v_proj.bias', original: { name: 'block.{L}.attn.qkv.bias', rows: vRows }, dtypes: FLOAT, shape: (c) => [c.numKvHeads * c.headDim] },
  o_w: { hf: 'model.layers.{L}.self_attn.o_proj.weight', original: { name: 'block.{L}.attn.out.weight' }, dtypes: FLOAT, shape: (c) => [c.hiddenSize, c.numHeads * c.headDim] },
  o_b: { hf: 'model.layers.{L}.self_attn.o_proj.bias', original: { name: 'block.{L}.attn.out.bias' }, dtypes: FLOAT, shape: (c) => [c.hiddenSize] },
  sinks: { hf: 'model.layers.{L}.self_attn.sinks', original: { name: 'block.{L}.attn.sinks' }, dtypes: FLOAT, shape: (c) => [c.numHeads] },
  mlp_norm: { hf: 'model.layers.{L}.post_attention_layernorm.weight', original: { name: 'block.{L}.mlp.norm.scale' }, dtypes: FLOAT, shape: (c) => [c.hiddenSize] },
  router_w: { hf: 'model.layers.{L}.mlp.router.weight', original: { name: 'block.{L}.mlp.gate.weight' }, dtypes: FLOAT, shape: (c) => [c.numExperts, c.hiddenSize] },
  router_b: { hf: 'model.layers.{L}.mlp.router.bias', original: { name: 'block.{L}.mlp.gate.bias' }, dtypes: FLOAT, shape: (c) => [c.numExperts] },
  gate_up_blocks: { hf: 'model.layers.{L}.mlp.experts.gate_up_proj_blocks', original: { name: 'block.{L}.mlp.mlp1_weight.blocks' }, dtypes: BYTES, shape: (c) => [c.numExperts, 2 * c.intermediateSize, c.hiddenSize / 32, 16] },
  gate_up_scales: { hf: 'model.layers.{L}.mlp.experts.gate_up_proj_scales', original: { name: 'block.{L}.mlp.mlp1_weight.scales' }, dtypes: BYTES, shape: (c) => [c.numExperts, 2 * c.intermediateSize, c.hiddenSize / 32] },
  gate_up_bias: { hf: 'model.layers.{L}.mlp.experts.gate_up_proj_bias', original: { name: 'block.{L}.mlp.mlp1_bias' }, dtypes: FLOAT, shape: (c) => [c.numExperts, 2 * c.intermediateSize] },
  down_blocks: { hf: 'model.layers.{L}.mlp.experts.down_proj_blocks', original: { name: 'block.{L}.mlp.mlp2_weight.blocks' }, dtypes: BYTES, shape: (c) => [c.numExperts, c.hiddenSize, c.intermediateSize / 32, 16] },
  down_scales: { hf: 'model.layers.{L}.mlp.experts.down_proj_scales', original: { name: 'block.{L}.mlp.mlp2_weight.scales' }, dtypes: BYTES, shape: (c) => [c.numExperts, c.hiddenSize, c.intermediateSize / 32] },
  down_bias: { hf: 'model.layers.{L}.mlp.experts.down_proj_bias', original: { name: 'block.{L}.mlp.mlp2_bias' }, dtypes: FLOAT, shape: (c) => [c.numExperts, c.hiddenSize] },
};

export const LAYER_PARAM_NAMES = Object.keys(LAYER_PARAMS) as LayerParam[];
export const GLOBAL_PARAM_NAMES = Object.keys(GLOBAL_PARAMS) as GlobalParam[];

export function paramSpec(param: ParamName): ParamSpec {
  return (LAYER_PARAMS as Record<string, ParamSpec>)[param] ?? (GLOBAL_PARAMS as Record<string, ParamSpec>)[param]!;
}

export function isLayerParam(param: ParamName): param is LayerParam {
  return param in LAYER_PARAMS;
}

/** The checkpoint tensor name of a parameter in a layout. */
export function tensorName(param: ParamName, layout: Layout, layer?: number): string {
  const spec = paramSpec(param);
  const pattern = layout === 'hf' ? spec.hf : spec.original.name;
  if (isLayerParam(param)) {
    if (layer === undefined) throw new Error(`parameter ${param} needs a layer index`);
    return pattern.replace('{L}', String(layer));
  }
  return pattern;
}

/** Every (param, layer) pair a model with this config needs, in checkpoint order. */
export function allParams(c: GptOssConfig): { param: ParamName; layer?: number }[] {
  const out: { param: ParamName; layer?: number }[] = [{ param: 'embed' }];
  for (let l = 0; l < c.numLayers; l++) for (const p of LAYER_PARAM_NAMES) out.push({ param: p, layer: l });
  out.push({ param: 'norm' }, { param: 'lm_head' });
  return out;
}
