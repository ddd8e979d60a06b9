/**
 * The WebGPU device for Node tests (Dawn through npm `webgpu`). No adapter is a failure, never
 * a skip: CI machines have SwiftShader (see vitest.config.ts for VK_ICD_FILENAMES).
 */
import { createGpuContext, type GpuContext } from '../../engine/gpu/device.ts';

let ctx: Promise<GpuContext> | undefined;

export function testGpu(): Promise<GpuContext> {
  ctx ??= createGpuContext().catch((e: Error) => {
    throw new Error(`no WebGPU adapter for the GPU tests: ${e.message}. On Linux without a GPU: apt-get install chromium libvulkan1 (SwiftShader).`);
  });
  return ctx;
}
