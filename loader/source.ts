import type { DigestSource } from './digests.ts';
import { ModelLoadError } from './errors.ts';

/** Random access to the bytes of one file, wherever it lives. */
export interface ByteSource {
  /** File name relative to the model root, used in error messages. */
  readonly name: string;
  /** Size of the file in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`; a short read is a `short-read` ModelLoadError. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: the `out.length` bytes from `offset` into `out`, without allocating (sources that
   * produce bytes rather than receive them, e.g. the synthetic one). Same errors as `read`.
   */
  readInto?(offset: number, out: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A model folder: local directory, HTTP base URL, or a set of browser Files. */
export interface ModelSource {
  /** Human-readable location, e.g. the directory path or base URL. */
  readonly description: string;
  /** Opens a file; a missing one is a `missing-file` ModelLoadError. */
  open(file: string): Promise<ByteSource>;
  /** Whether the file exists (HEAD request, stat, lookup). */
  exists(file: string): Promise<boolean>;
  /** Hashes the place the files come from publishes for them (the Hugging Face hub). */
  readonly digests?: DigestSource;
  /** Set when the files are read through the browser download cache (loader/source-cache.ts). */
  readonly cache?: SourceCache;
}

/** What the integrity check (loader/integrity.ts) needs of a download cache. */
export interface SourceCache {
  /** The hash (`algorithm:hex`) the cached copy of `file` was verified against, if it carries the mark. */
  verifiedMark(file: string): Promise<string | undefined>;
  /** Marks the cached copy of `file` as verified against `mark` (`algorithm:hex`). */
  markVerified(file: string, mark: string): Promise<void>;
  /** Drops every cached entry of `file` (after a failed check). */
  drop(file: string): Promise<void>;
  /** Answers for `file` that came from the network so far (a read served from the cache adds none). */
  networkReads(file: string): number;
  /** Bytes downloaded so far through this cache (all files). */
  readonly networkBytes: number;
}

/** Reads of whole text files are split into pieces of this size, so their progress can be told. */
export const TEXT_CHUNK_BYTES = 4 << 20;

/** A whole file's bytes; `onBytes(done, total)` after each piece read. */
export async function readBytes(source: ModelSource, file: string, onBytes?: (done: number, total: number) => void): Promise<Uint8Array> {
  const f = await source.open(file);
  try {
    if (f.size <= TEXT_CHUNK_BYTES) {
      const bytes = await f.read(0, f.size);
      onBytes?.(f.size, f.size);
      return bytes;
    }
    const all = new Uint8Array(f.size);
    for (let at = 0; at < f.size; at += TEXT_CHUNK_BYTES) {
      all.set(await f.read(at, Math.min(TEXT_CHUNK_BYTES, f.size - at)), at);
      onBytes?.(Math.min(f.size, at + TEXT_CHUNK_BYTES), f.size);
    }
    return all;
  } finally {
    await f.close();
  }
}

/** A whole text file (UTF-8); `onBytes(done, total)` after each piece read. */
export async function readText(source: ModelSource, file: string, onBytes?: (done: number, total: number) => void): Promise<string> {
  return new TextDecoder('utf-8', { fatal: false }).decode(await readBytes(source, file, onBytes));
}

/** `bytes` as JSON; a parse error is a ModelLoadError naming `file`. */
export function parseJson(bytes: Uint8Array, file: string, code: 'bad-config' | 'bad-index' = 'bad-config'): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: false }).decode(bytes));
  } catch (e) {
    throw new ModelLoadError(code, `malformed JSON: ${(e as Error).message}`, { file, cause: e });
  }
}

export async function readJson(
  source: ModelSource,
  file: string,
  code: 'bad-config' | 'bad-index' = 'bad-config',
  onBytes?: (done: number, total: number) => void,
): Promise<unknown> {
  return parseJson(await readBytes(source, file, onBytes), file, code);
}

/** Checks a read's result length; shared by every ByteSource implementation. */
export function checkLength(file: string, offset: number, length: number, got: Uint8Array): Uint8Array {
  if (got.byteLength !== length) {
    throw new ModelLoadError(
      'short-read',
      `read of ${length} bytes at offset ${offset} returned ${got.byteLength}`,
      { file },
    );
  }
  return got;
}

export function checkRange(file: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new ModelLoadError('truncated', `read of ${length} bytes at offset ${offset} is past the end of the ${size}-byte file`, { file });
  }
}

/** Yields [begin, end) of `src` in chunks of at most `chunkBytes`, one read at a time. */
export async function* readChunks(
  src: ByteSource,
  begin: number,
  end: number,
  chunkBytes: number,
): AsyncGenerator<Uint8Array> {
  for (let at = begin; at < end; at += chunkBytes) {
    yield await src.read(at, Math.min(chunkBytes, end - at));
  }
}
