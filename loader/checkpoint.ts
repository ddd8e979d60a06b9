/**
 * A gpt-oss checkpoint opened from any ModelSource: config, shard headers, and every tensor
 * the model needs located, type-checked and shape-checked against the config before a single
 * weight byte is read. Tensor bytes are then streamed in bounded chunks.
 */
import { parseConfig, type GptOssConfig } from './config.ts';
import { ModelLoadError } from './errors.ts';
import { readSafetensorsHeader, DTYPE_BYTES, type DType, type SafetensorsHeader, type TensorInfo } from './safetensors.ts';
import { readChunks, readJson, type ByteSource, type ModelSource } from './source.ts';
import { allParams, paramSpec, tensorName, type Layout, type ParamName } from './weight-map.ts';

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';
export const DEFAULT_CHUNK_BYTES = 8 << 20;

/**
 * One logical parameter located in a file: absolute byte range [begin, end). `name` is the
 * checkpoint tensor (for original-layout q/k/v: the fused qkv tensor, of which this is a row range).
 */
export interface TensorRef extends TensorInfo {
  param: ParamName;
  layer?: number;
}

export interface OpenOptions {
  /** Overrides the parsed config (e.g. a config object passed by the caller). */
  config?: GptOssConfig;
}

export class Checkpoint {
  private constructor(
    readonly source: ModelSource,
    readonly config: GptOssConfig,
    readonly layout: Layout,
    readonly headers: SafetensorsHeader[],
    private readonly byName: Map<string, TensorInfo>,
    private readonly files: Map<string, ByteSource>,
    private readonly refs: Map<string, TensorRef>,
  ) {}

  static async open(source: ModelSource, options: OpenOptions = {}): Promise<Checkpoint> {
    const config = options.config ?? parseConfig(await readJson(source, 'config.json'));
    const files = new Map<string, ByteSource>();
    try {
      const { headers, byName } = await openShards(source, files);
      const layout: Layout = byName.has('embedding.weight') && !byName.has('model.embed_tokens.weight') ? 'original' : 'hf';
      const refs = locateAll(config, layout, byName);
      return new Checkpoint(source, config, layout, headers, byName, files, refs);
    } catch (e) {
      await Promise.all([...files.values()].map((f) => f.close().catch(() => {})));
      throw e;
    }
  }

  /** The located, validated tensor of a parameter. */
  tensor(param: ParamName, layer?: number): TensorRef {
    const ref = this.refs.get(refKey(param, layer));
    if (!ref) throw new Error(`no parameter ${param}${layer === undefined ? '' : ` in layer ${layer}`}`);
    return ref;
  }

  /** Every parameter of the model, in checkpoint order. */
  allTensors(): TensorRef[] {
    return [...this.refs.values()];
  }

  /** Bytes of all weights the model uses. */
  get totalBytes(): number {
    let n = 0;
    for (const r of this.refs.values()) n += r.end - r.begin;
    return n;
  }

  /** Raw safetensors entry by checkpoint name (for tools; the engine uses `tensor`). */
  info(name: string): TensorInfo | undefined {
    return this.byName.get(name);
  }

  /** The tensor's bytes as chunks of at most `chunkBytes` (rounded down to whole elements). */
  stream(ref: TensorRef, chunkBytes = DEFAULT_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
    const elem = DTYPE_BYTES[ref.dtype];
    const step = Math.max(elem, chunkBytes - (chunkBytes % elem));
    return readChunks(this.file(ref.file), ref.begin, ref.end, step);
  }

  /**
   * The tensor's bytes in chunks of at most `scratch.length` (rounded down to whole elements),
   * each a view of `scratch` that is valid only until the next chunk is requested: no allocation
   * per chunk where the source can read into a buffer. For consumers that copy every chunk at
   * once (the GPU upload: queue.writeBuffer copies).
   */
  async *streamInto(ref: TensorRef, scratch: Uint8Array): AsyncGenerator<Uint8Array> {
    const elem = DTYPE_BYTES[ref.dtype];
    const step = scratch.length - (scratch.length % elem);
    if (step <= 0) throw new RangeError(`scratch of ${scratch.length} bytes cannot hold one ${ref.dtype} element`);
    const f = this.file(ref.file);
    if (!f.readInto) {
      yield* readChunks(f, ref.begin, ref.end, step);
      return;
    }
    for (let at = ref.begin; at < ref.end; at += step) {
      const view = scratch.subarray(0, Math.min(step, ref.end - at));
      await f.readInto(at, view);
      yield view;
    }
  }

  /** The whole tensor in one array: for small tensors (norms, biases, tiny models). */
  async read(ref: TensorRef): Promise<Uint8Array> {
    return this.file(ref.file).read(ref.begin, ref.end - ref.begin);
  }

  async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.close()));
    this.files.clear();
  }

  private file(name: string): ByteSource {
    const f = this.files.get(name);
    if (!f) throw new Error(`checkpoint is closed (file ${name})`);
    return f;
  }
}

function refKey(param: ParamName, layer?: number): string {
  return layer === undefined ? param : `${param}.${layer}`;
}

async function openShards(source: ModelSource, files: Map<string, ByteSource>) {
  let shardNames: string[];
  let weightMap: Record<string, string> | undefined;
  if (await source.exists(INDEX_FILE)) {
    weightMap = parseIndex(await readJson(source, INDEX_FILE, 'bad-index'));
    shardNames = [...new Set(Object.values(weightMap))].sort();
    for (const s of shardNames) {
      if (!(await source.exists(s))) {
        throw new ModelLoadError('missing-shard', `${INDEX_FILE} names shard ${s}, which does not exist`, { file: s });
      }
    }
  } else if (await source.exists(SINGLE_FILE)) {
    shardNames = [SINGLE_FILE];
  } else {
    throw new ModelLoadError('missing-file', `no ${INDEX_FILE} or ${SINGLE_FILE} in ${source.description}`, { file: SINGLE_FILE });
  }

  const headers: SafetensorsHeader[] = [];
  const byName = new Map<string, TensorInfo>();
  for (const s of shardNames) {
    const f = await source.open(s);
    files.set(s, f);
    const h = await readSafetensorsHeader(f);
    headers.push(h);
    for (const [name, info] of h.tensors) {
      const prev = byName.get(name);
      if (prev) throw new ModelLoadError('bad-index', `tensor is stored in both ${prev.file} and ${s}`, { file: s, tensor: name });
      byName.set(name, info);
    }
  }
  if (weightMap) {
    for (const [name, shard] of Object.entries(weightMap)) {
      const info = byName.get(name);
      if (!info) throw new ModelLoadError('missing-tensor', `${INDEX_FILE} places the tensor in ${shard}, but no shard holds it`, { file: shard, tensor: name });
      if (info.file !== shard) throw new ModelLoadError('bad-index', `${INDEX_FILE} places the tensor in ${shard}, but it is in ${info.file}`, { file: shard, tensor: name });
    }
  }
  return { headers, byName };
}

function parseIndex(json: unknown): Record<string, string> {
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new ModelLoadError('bad-index', 'weight_map is missing or not an object', { file: INDEX_FILE, field: 'weight_map' });
  }
  for (const [k, v] of Object.entries(wm)) {
    if (typeof v !== 'string' || v.length === 0 || v.includes('..')) {
      throw new ModelLoadError('bad-index', `weight_map entry is ${JSON.stringify(v)}, not a shard file name`, { file: INDEX_FILE, tensor: k });
    }
  }
  return wm as Record<string, string>;
}

function locateAll(c: GptOssConfig, layout: Layout, byName: Map<string, TensorInfo>): Map<string, TensorRef> {
  const refs = new Map<string, TensorRef>();
  for (const { param, layer } of allParams(c)) {
    refs.set(refKey(param, layer), locate(c, layout, byName, param, layer));
  }
  return refs;
}

function locate(c: GptOssConfig, layout: Layout, byName: Map<string, TensorInfo>, param: ParamName, layer?: number): TensorRef {
  const spec = paramSpec(param);
  const name = tensorName(param, layout, layer);
  const info = byName.get(name);
  if (!info) throw new ModelLoadError('missing-tensor', `the model needs this tensor (${param}), but no shard holds it`, { tensor: name });
  if (!spec.dtypes.includes(info.dtype)) {
    throw new ModelLoadError('dtype-mismatch', `dtype ${info.dtype}, expected ${spec.dtypes.join(' or ')}`, { file: info.file, tensor: name });
  }
  const want = spec.shape(c);
  const rows = layout === 'original' ? spec.original.rows?.(c) : undefined;
  if (rows) {
    // Fused qkv: the stored tensor holds all three row ranges.
    const total = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
    const stored = [total, ...want.slice(1)];
    if (!sameShape(info.shape, stored)) throw shapeError(info, stored);
    const rowBytes = (want.slice(1).reduce((a, b) => a * b, 1)) * DTYPE_BYTES[info.dtype];
    return { param, layer, name, file: info.file, dtype: info.dtype, shape: want, begin: info.begin + rows[0] * rowBytes, end: info.begin + rows[1] * rowBytes };
  }
  if (!sameShape(info.shape, want)) throw shapeError(info, want);
  return { param, layer, name, file: info.file, dtype: info.dtype, shape: want, begin: info.begin, end: info.end };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shapeError(info: TensorInfo, want: number[]): ModelLoadError {
  return new ModelLoadError('shape-mismatch', `shape [${info.shape}] contradicts the config, which needs [${want}]`, { file: info.file, tensor: info.name });
}
