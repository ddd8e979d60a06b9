/** Every kernel against the CPU reference over its case table, in Node on Dawn. */
import { describe, expect, it } from 'vitest';
import { testGpu } from './gpu/node-device.ts';
import { KERNEL_FAMILIES } from './kernels/index.ts';

describe('kernels (Node + Dawn)', async () => {
  it('has a WebGPU adapter', async () => {
    const gpu = await testGpu();
    console.log(`adapter: ${gpu.info.vendor} ${gpu.info.architecture} ${gpu.info.description}; f16: ${gpu.f16}; subgroups: ${gpu.subgroups ? `sizes ${gpu.subgroupMinSize ?? "?"}-${gpu.subgroupMaxSize ?? "?"}` : "no"}`);
  });
  for (const [family, run] of Object.entries(KERNEL_FAMILIES)) {
    it(family, async () => {
      const { device } = await testGpu();
      device.pushErrorScope('validation');
      const results = await run(device, 'full');
      const err = await device.popErrorScope();
      expect(err?.message ?? null, `${family}: WebGPU validation error`).toBeNull();
      for (const r of results) console.log(r.message);
      const failures = results.filter((r) => !r.ok).map((r) => r.message);
      expect(failures, failures.join('\n')).toEqual([]);
      expect(results.length).toBeGreaterThan(0);
    });
  }
});
