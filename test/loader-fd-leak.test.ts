/**
 * No file handle outlives a failed load: every path that opens a model file closes it again,
 * so Node never has to close one on garbage collection ("Closing file descriptor N on garbage
 * collection"). Open descriptors are counted in /proc/self/fd (Linux).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { GpuUnavailableError } from '../engine/gpu/device.ts';
import { loadGpuModel } from '../cli/gpu.ts';
import { expectLoadError, TINY_DIR } from './helpers/loader-fixtures.ts';

const linux = existsSync('/proc/self/fd');
let tmp = '';

/** Descriptors of this process open on files under `dir`. */
function openUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed while listing
    }
  }
  return out;
}

/** A GPU without adapters, as on a machine without a WebGPU driver. */
const NO_GPU = { requestAdapter: async () => null } as unknown as GPU;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-fd-'));
  await cp(TINY_DIR, join(tmp, 'tiny'), { recursive: true });
  await cp(TINY_DIR, join(tmp, 'truncated'), { recursive: true });
  await truncate(join(tmp, 'truncated', 'model.safetensors'), 1000);
  await mkdir(join(tmp, 'dir-weights'));
  await cp(join(TINY_DIR, 'config.json'), join(tmp, 'dir-weights', 'config.json'));
  await mkdir(join(tmp, 'dir-weights', 'model.safetensors'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!linux)('file handles on failing loads', () => {
  it('opening a directory as a model file fails at open and keeps no descriptor', async () => {
    const src = await directorySource(join(tmp, 'dir-weights'));
    const err = await expectLoadError(src.open('model.safetensors'), 'io');
    expect(err.message).toBe(`${join(tmp, 'dir-weights', 'model.safetensors')}: is a directory`);
    expect(openUnder(tmp)).toEqual([]);
  });

  it('a checkpoint whose shard is truncated closes what it opened', async () => {
    await expectLoadError(Checkpoint.open(await directorySource(join(tmp, 'truncated'))), 'truncated');
    expect(openUnder(tmp)).toEqual([]);
  });

  it('no GPU: loadGpuModel fails before opening the checkpoint', async () => {
    await expect(loadGpuModel(join(tmp, 'tiny'), {}, true, { gpu: NO_GPU })).rejects.toBeInstanceOf(GpuUnavailableError);
    expect(openUnder(tmp)).toEqual([]);
  });

  it('a GPU load that fails after opening the checkpoint closes it', async () => {
    await expect(loadGpuModel(join(tmp, 'tiny'), { contextLimit: 10 ** 9 }, true)).rejects.toThrow(/contextLimit 1000000000/);
    expect(openUnder(tmp)).toEqual([]);
  });

  it('`gptoss generate` without a GPU: no "Closing file descriptor ... on garbage collection"', async () => {
    const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const script = [
      `const { main } = await import(${JSON.stringify(main)});`,
      `process.exitCode = await main(['generate', '--model', ${JSON.stringify(join(tmp, 'tiny'))}, '--prompt', 'hi']);`,
      'for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); }',
    ].join('\n');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', script],
        { env: { ...process.env, VK_ICD_FILENAMES: join(tmp, 'no-such-icd.json'), VK_DRIVER_FILES: '' }, timeout: 60_000 },
        (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }));
    });
    expect(r.stderr).toContain('gptoss generate: no WebGPU adapter found');
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('on garbage collection');
  });
});
