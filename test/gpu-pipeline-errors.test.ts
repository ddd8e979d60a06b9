/**
 * A kernel the device refuses (WGSL that does not compile, a pipeline that does not validate)
 * fails the model load with a PipelineError naming the kernel, instead of the runtime printing
 * validation errors while the program goes on with garbage.
 */
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { PipelineCache } from '../kernels/pipeline-cache.ts';
import { TINY_DIR } from './helpers/loader-fixtures.ts';
import { createGpuContext } from '../engine/gpu/device.ts';
import { meterBuffers } from '../engine/gpu/buffer-meter.ts';
import { testGpu } from './gpu/node-device.ts';

/** PipelineError, checked by name and fields (what a caller sees). */
interface PipelineError extends Error {
  key: string;
}

function expectPipelineError(e: unknown, label?: string): asserts e is PipelineError {
  expect(e, label).toBeInstanceOf(Error);
  expect((e as Error).name, label).toBe('PipelineError');
}

describe('pipeline errors', () => {
  it('verify() rejects with the key of the kernel that does not compile, and forgets it', async () => {
    const gpu = await testGpu();
    const cache = new PipelineCache(gpu.device);
    cache.get('good_kernel', () => '@compute @workgroup_size(1) fn main() {}');
    cache.get('bad_kernel', () => 'const X: u32 = 1099511627776u;\n@compute @workgroup_size(1) fn main() {}');
    const err = await cache.verify?.().then(() => undefined, (e: unknown) => e);
    expectPipelineError(err);
    expect(err.key).toBe('bad_kernel');
    expect(err.message).toMatch(/^the GPU refused kernel bad_kernel: .*error/);
    expect(err.message).not.toContain('\n');
    expect(cache.size).toBe(1);
    await expect(cache.verify()).resolves.toBeUndefined();
  });

  it('GpuModel.load rejects a kernel the device refuses, naming it, before uploading any weight', async () => {
    // A fresh device: its pipeline cache holds nothing, so the load compiles every kernel.
    const gpu = await createGpuContext();
    const ck = await Checkpoint.open(await directorySource(TINY_DIR));
    const meter = meterBuffers(gpu.device);
    const get = PipelineCache.prototype.get;
    // The RoPE kernel's WGSL as a device would refuse it: a literal that does not fit a u32.
    PipelineCache.prototype.get = function (this: PipelineCache, key: string, source: () => string) {
      return get.call(this, key, key.startsWith('f32_rope') ? () => `const X: u32 = 1099511627776u;\n${source()}` : source);
    };
    try {
      for (const kvFormat of ['f32', 'q8'] as const) {
        const err = await GpuModel.load(ck, gpu, { kvFormat, contextLimit: 16 }).then((m) => (m.dispose(), undefined), (e: unknown) => e);
        expectPipelineError(err, kvFormat);
        expect(err.key, kvFormat).toMatch(/^f32_rope_/);
        expect(err.message, kvFormat).toMatch(/^the GPU refused kernel f32_rope_\S+: .*error/);
        expect(meter.liveBytes, `${kvFormat}: GPU bytes left by the failed load`).toBe(0);
      }
    } finally {
      PipelineCache.prototype.get = get;
      await ck.close();
      gpu.destroy();
    }
  });

  it('GpuModel.load rejects a sliding window the attention kernels cannot take (validation bypassed), naming it', async () => {
    const gpu = await testGpu();
    const src = await directorySource(TINY_DIR);
    const good = await Checkpoint.open(src);
    const ck = await Checkpoint.open(src, { config: { ...good.config, slidingWindow: 2 ** 40 } });
    await good.close();
    try {
      const err = await GpuModel.load(ck, gpu, { contextLimit: 16 }).then((m) => (m.dispose(), undefined), (e: unknown) => e);
      expect(err).toBeInstanceOf(RangeError);
      expect((err as Error).message).toBe('attention window 1099511627776 is not a u32 (0 for a full layer)');
    } finally {
      await ck.close();
    }
  });
});
