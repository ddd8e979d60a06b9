/** Shared fixtures for the loader tests: golden paths, in-memory sources, temp copies. */
import { mkdtemp, readdir, readFile, rm, writeFile, cp, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Checkpoint } from '../../loader/checkpoint.ts';
import { ModelLoadError, type ModelLoadErrorCode } from '../../loader/errors.ts';
import { checkLength, checkRange, type ByteSource, type ModelSource } from '../../loader/source.ts';

export const GOLDEN_ROOT = new URL('../../../shared/golden/', import.meta.url);
export const TINY_DIR = fileURLToPath(new URL('tiny/model/', GOLDEN_ROOT));
export const SHARDED_DIR = fileURLToPath(new URL('sharded/model/', GOLDEN_ROOT));

/** All files of a directory as name -> bytes. */
export async function readDir(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const name of (await readdir(dir)).sort()) out.set(name, new Uint8Array(await readFile(join(dir, name))));
  return out;
}

/** Copies a golden model directory into a fresh temp dir (writable copies). */
export async function tempCopy(dir: string): Promise<string> {
  const tmp = await mkdtemp(join(tmpdir(), 'gptoss-loader-'));
  await cp(dir, tmp, { recursive: true });
  for (const name of await readdir(tmp)) await chmod(join(tmp, name), 0o644);
  return tmp;
}

export async function removeTemp(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function writeBytes(dir: string, name: string, bytes: Uint8Array | string): Promise<void> {
  await writeFile(join(dir, name), bytes);
}

/** Splits a safetensors file into its parsed header JSON and data area. */
export function splitSafetensors(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array; headerLen: number } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  return { header, data: bytes.subarray(8 + n), headerLen: n };
}

/** Assembles a safetensors file from a header object (serialized as-is) and a data area. */
export function joinSafetensors(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  return joinRaw(json, data);
}

export function joinRaw(json: Uint8Array, data: Uint8Array, declaredLen: bigint = BigInt(json.byteLength)): Uint8Array {
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, declaredLen, true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

export function memoryByteSource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      checkRange(name, bytes.byteLength, offset, length);
      return checkLength(name, offset, length, bytes.slice(offset, offset + length));
    },
    async close() {},
  };
}

/** An in-memory ModelSource that counts open and close calls. */
export interface CountingSource extends ModelSource {
  opened: number;
  closed: number;
}

export function memorySource(files: Map<string, Uint8Array>, description = 'memory'): CountingSource {
  const src: CountingSource = {
    description,
    opened: 0,
    closed: 0,
    async exists(file) {
      return files.has(file);
    },
    async open(file) {
      const bytes = files.get(file);
      if (!bytes) throw new ModelLoadError('missing-file', `no ${file}`, { file });
      src.opened++;
      const inner = memoryByteSource(file, bytes);
      let open = true;
      return {
        name: inner.name,
        size: inner.size,
        read: (o, l) => {
          if (!open) throw new Error(`read of closed ${file}`);
          return inner.read(o, l);
        },
        async close() {
          if (open) src.closed++;
          open = false;
        },
      };
    },
  };
  return src;
}

/** Wraps any ModelSource to count open/close of its byte sources. */
export function countingWrapper(inner: ModelSource): CountingSource {
  const src: CountingSource = {
    description: inner.description,
    opened: 0,
    closed: 0,
    exists: (f) => inner.exists(f),
    async open(file) {
      const bs = await inner.open(file);
      src.opened++;
      let open = true;
      return {
        name: bs.name,
        size: bs.size,
        read: (o, l) => bs.read(o, l),
        async close() {
          if (open) src.closed++;
          open = false;
          await bs.close();
        },
      };
    },
  };
  return src;
}

/** Awaits a promise that must reject with a ModelLoadError; returns it. */
export async function expectLoadError(p: Promise<unknown>, code: ModelLoadErrorCode): Promise<ModelLoadError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ModelLoadError)) {
    throw new Error(`expected ModelLoadError ${code}, got ${err === undefined ? 'success' : String((err as Error)?.stack ?? err)}`);
  }
  if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
  return err;
}

/** Every tensor of a checkpoint, by name, as the loader reads it. */
export async function checkpointTensorBytes(source: ModelSource): Promise<Map<string, Uint8Array>> {
  const ck = await Checkpoint.open(source);
  try {
    const out = new Map<string, Uint8Array>();
    for (const ref of ck.allTensors()) out.set(ref.name, await ck.read(ref));
    return out;
  } finally {
    await ck.close();
  }
}
