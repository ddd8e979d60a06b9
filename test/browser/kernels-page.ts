/**
 * The kernel case tables (test/kernels/index.ts) run in the page on navigator.gpu; the results go
 * to window.__results, and the adapter and what the device was granted (which decides the
 * feature-dependent kernel paths, see KERNEL_PATHS) to window.__adapter and window.__device, for
 * test/kernels.browser.test.ts to check in Node.
 */
import { createGpuContext, type AdapterSummary } from '../../engine/gpu/device.ts';
import type { CaseResult } from '../gpu/check.ts';
import { KERNEL_FAMILIES } from '../kernels/index.ts';

/** Per family its results, or the error it threw; a string when the page could not run at all. */
export type PageResults = Record<string, CaseResult[] | string> | string;

/** The device the cases ran on. */
export interface DeviceSummary {
  /** Features granted to the device (what the kernels may use), sorted. */
  features: string[];
  /** shader-f16 was granted. */
  f16: boolean;
  /** A CPU adapter: the engine picks the barrier-free kernel variants. */
  fallback: boolean;
}

declare global {
  interface Window {
    __results?: PageResults;
    __adapter?: AdapterSummary;
    __device?: DeviceSummary;
  }
}

const log = (line: string) => {
  document.getElementById('log')!.textContent += `\n${line}`;
  console.log(line); // echoed to the Node test's output
};

async function run(): Promise<PageResults> {
  const gpu = await createGpuContext();
  window.__adapter = gpu.info;
  window.__device = { features: [...gpu.device.features].sort(), f16: gpu.f16, fallback: gpu.fallback };
  log(`adapter: ${gpu.info.vendor} ${gpu.info.architecture} ${gpu.info.description}; device features ${window.__device.features.join(',')}`);
  const results: Record<string, CaseResult[] | string> = {};
  for (const [family, cases] of Object.entries(KERNEL_FAMILIES)) {
    const t0 = performance.now();
    gpu.device.pushErrorScope('validation');
    try {
      const r = await cases(gpu.device, 'browser');
      const err = await gpu.device.popErrorScope();
      results[family] = err ? `${family}: WebGPU validation error: ${err.message}` : r;
    } catch (e) {
      await gpu.device.popErrorScope();
      results[family] = `${family} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
    }
    log(`${family}: ${typeof results[family] === 'string' ? 'error' : 'done'} in ${(performance.now() - t0).toFixed(0)} ms`);
  }
  gpu.destroy();
  return results;
}

run().then(
  (r) => (window.__results = r),
  (e: unknown) => (window.__results = `kernel page failed: ${e instanceof Error ? e.message : String(e)}`),
);
