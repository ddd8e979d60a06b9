/**
 * safetensors header parsing and validation.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON, then the data area.
 * The JSON maps tensor names to {dtype, shape, data_offsets: [begin, end]} relative to the
 * data area, plus an optional "__metadata__" string map. We never trust it: every offset is
 * checked against the shape, the dtype and the real file size before any tensor is read.
 */
import { ModelLoadError } from './errors.ts';
import { checkLength, type ByteSource } from './source.ts';

export const DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;
export type DType = keyof typeof DTYPE_BYTES;

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** A tensor located in a file: absolute byte range [begin, end). */
export interface TensorInfo {
  name: string;
  file: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** Headers above this are refused (the real 20b shards have ~40 KB headers). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export async function readSafetensorsHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const file = src.name;
  if (src.size < 8) {
    throw new ModelLoadError('truncated', `file is ${src.size} bytes, shorter than the 8-byte header length`, { file });
  }
  const lenBytes = checkLength(file, 0, 8, await src.read(0, 8));
  const view = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(src.size - 8)) {
    throw new ModelLoadError('truncated', `header length ${n} runs past the end of the ${src.size}-byte file`, { file });
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new ModelLoadError('bad-header', `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, { file });
  }
  const headerLen = Number(n);
  const json = checkLength(file, 8, headerLen, await src.read(8, headerLen));
  return parseSafetensorsHeader(file, json, src.size);
}

/** Validates a header's JSON bytes against the file size. Pure: no I/O. */
export function parseSafetensorsHeader(file: string, json: Uint8Array, fileSize: number): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new ModelLoadError('bad-header', `header is not valid UTF-8 JSON: ${(e as Error).message}`, { file, cause: e });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ModelLoadError('bad-header', 'header JSON is not an object', { file });
  }
  const dataStart = 8 + json.byteLength;
  const dataSize = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, entry);
      continue;
    }
    tensors.set(name, parseEntry(file, name, entry, dataStart, dataSize));
  }
  checkNoOverlap(file, [...tensors.values()]);
  return { file, fileSize, dataStart, tensors, metadata };
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new ModelLoadError('bad-header', '__metadata__ is not an object', { file });
  }
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw new ModelLoadError('bad-header', `__metadata__.${k} is not a string`, { file });
  }
  return entry as Record<string, string>;
}

function parseEntry(file: string, name: string, entry: unknown, dataStart: number, dataSize: number): TensorInfo {
  const bad = (msg: string, code: 'bad-header' | 'bad-offsets' | 'unknown-dtype' | 'truncated' = 'bad-header') =>
    new ModelLoadError(code, msg, { file, tensor: name });
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw bad('header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDType(dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`, 'unknown-dtype');
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    throw bad(`data_offsets ${JSON.stringify(offsets)} is not a pair [begin <= end] of non-negative integers`, 'bad-offsets');
  }
  const expected = numel(shape) * DTYPE_BYTES[dtype];
  const [b, e] = offsets as [number, number];
  if (e - b !== expected) {
    throw bad(`data_offsets [${b}, ${e}] hold ${e - b} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`, 'bad-offsets');
  }
  if (e > dataSize) {
    throw bad(`data ends at byte ${dataStart + e} but the file has ${dataStart + dataSize} bytes`, 'truncated');
  }
  return { name, file, dtype, shape: shape as number[], begin: dataStart + b, end: dataStart + e };
}

function checkNoOverlap(file: string, list: TensorInfo[]): void {
  const sorted = list.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.begin < prev.end) {
      throw new ModelLoadError('bad-offsets', `data of ${cur.name} overlaps ${prev.name}`, { file, tensor: cur.name });
    }
  }
}

/** Builds a header for writing: tensors laid out in the given order, JSON padded to 8 bytes. */
export function buildSafetensorsHeader(
  entries: { name: string; dtype: DType; shape: number[] }[],
  metadata: Record<string, string> = { format: 'pt' },
): { header: Uint8Array; offsets: Map<string, [number, number]>; dataSize: number } {
  const obj: Record<string, unknown> = { __metadata__: metadata };
  const offsets = new Map<string, [number, number]>();
  let at = 0;
  for (const { name, dtype, shape } of entries) {
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    offsets.set(name, [at, at + bytes]);
    obj[name] = { dtype, shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const enc = new TextEncoder();
  const unpadded = enc.encode(JSON.stringify(obj)).byteLength;
  const body = enc.encode(JSON.stringify(obj) + ' '.repeat((8 - (unpadded % 8)) % 8));
  const header = new Uint8Array(8 + body.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(body.byteLength), true);
  header.set(body, 8);
  return { header, offsets, dataSize: at };
}
