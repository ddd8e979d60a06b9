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
}

export async function readText(source: ModelSource, file: string): Promise<string> {
  const f = await source.open(file);
  try {
    return new TextDecoder('utf-8', { fatal: false }).decode(await f.read(0, f.size));
  } finally {
    await f.close();
  }
}

export async function readJson(
  source: ModelSource,
  file: string,
  code: 'bad-config' | 'bad-index' = 'bad-config',
): Promise<unknown> {
  const text = await readText(source, file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelLoadError(code, `malformed JSON: ${(e as Error).message}`, { file, cause: e });
  }
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
