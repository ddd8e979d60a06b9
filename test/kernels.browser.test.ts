/**
 * Every kernel family's case table (its browser subset: every variant and path, the shapes marked
 * for the browsers, see kernels/scope.ts) in each browser of BROWSERS (headless Chromium on Dawn and
 * headless Firefox on wgpu, both on SwiftShader here): Vite builds test/browser/kernels.html
 * once, a local server serves it, the page runs the cases on navigator.gpu and Node checks the
 * results the same way as the Node runner. The feature-dependent kernel paths (KERNEL_PATHS) are
 * checked against what each device was granted, and the test output says which ran. No adapter
 * in a browser is a failure, not a skip.
 */
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterSummary } from '../engine/gpu/device.ts';
import type { DeviceSummary, PageResults } from './browser/kernels-page.ts';
import viteConfig, { KERNELS_PAGE_OUT } from './browser/vite.config.ts';
import { BROWSER_CASES, launchBrowser } from './helpers/browser.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';
import { checkPaths, KERNEL_FAMILIES } from './kernels/index.ts';

// Every family in one page: ~5 min on a loaded 2-core machine with SwiftShader (pipelines
// compile slowly there), so the page gets twice that.
const PAGE_TIMEOUT_MS = 600_000;

let server: TestServer | undefined;
let buildSeconds = 0;

beforeAll(async () => {
  const t0 = performance.now();
  await build({ ...viteConfig, configFile: false });
  buildSeconds = (performance.now() - t0) / 1000;
  server = await startTestServer(KERNELS_PAGE_OUT);
}, 120_000);

afterAll(async () => {
  await server?.close();
});

describe.each(BROWSER_CASES)('kernels (%s)', (_label, name) => {
  let results: PageResults = 'the page did not run';
  let adapter: AdapterSummary | undefined;
  let device: DeviceSummary | undefined;
  let seconds = 0;
  const pageResults = () => {
    expect(typeof results === 'string' ? results : null, `the kernel page could not start in ${name}`).toBeNull();
    return results as Exclude<PageResults, string>;
  };

  beforeAll(async () => {
    const t0 = performance.now();
    const browser = await launchBrowser(name);
    try {
      const page = await browser.newPage(`[${name}]`);
      await page.goto(`${server!.baseUrl}kernels.html`);
      await page.waitForFunction(() => window.__results !== undefined, { timeout: PAGE_TIMEOUT_MS, polling: 250 });
      results = (await page.evaluate(() => window.__results))!;
      adapter = await page.evaluate(() => window.__adapter);
      device = await page.evaluate(() => window.__device);
    } finally {
      await browser.close();
    }
    seconds = (performance.now() - t0) / 1000;
  }, PAGE_TIMEOUT_MS + 60_000);

  it('has a WebGPU adapter', () => {
    pageResults();
    expect(adapter, `no WebGPU adapter in ${name}`).toBeDefined();
    expect(device, `no device summary from the page in ${name}`).toBeDefined();
    console.log(`[${name}] adapter: vendor "${adapter!.vendor}" architecture "${adapter!.architecture}" description "${adapter!.description}"; ` +
      `fallback (CPU) adapter ${adapter!.fallback}; maxStorageBufferBindingSize ${adapter!.maxStorageBufferBindingSize}`);
    console.log(`[${name}] adapter features: ${adapter!.features.join(', ')}`);
    console.log(`[${name}] device features: ${device!.features.join(', ')}; shader-f16 ${device!.f16 ? 'granted' : 'not offered'}; ` +
      `subgroups ${adapter!.features.includes('subgroups') ? 'offered' : 'not offered'}; ` +
      `launch + load + all families ${seconds.toFixed(1)} s (page build ${buildSeconds.toFixed(1)} s, shared)`);
  });

  it('feature-dependent kernel paths: each ran where the device has its features, its fallback where not', () => {
    const all = pageResults();
    const lists = Object.fromEntries(Object.entries(all).filter((e): e is [string, Exclude<typeof e[1], string>] => typeof e[1] !== 'string'));
    const report = checkPaths(lists, device?.features ?? []);
    for (const line of report.lines) console.log(`[${name}] path ${line}`);
    expect(report.failures, report.failures.join('\n')).toEqual([]);
    expect(report.lines.length, 'declared kernel paths').toBeGreaterThan(0);
  });

  for (const family of Object.keys(KERNEL_FAMILIES)) {
    it(family, () => {
      const r = pageResults()[family];
      expect(r, `${family}: no result from the page in ${name}`).toBeDefined();
      expect(typeof r === 'string' ? r : null, `${family} failed in ${name}`).toBeNull();
      const list = r as Exclude<typeof r, string | undefined>;
      for (const c of list) console.log(`[${name}] ${c.path ? `(${c.path}) ` : ''}${c.message}`);
      const failures = list.filter((c) => !c.ok).map((c) => c.message);
      expect(failures, failures.join('\n')).toEqual([]);
      expect(list.length).toBeGreaterThan(0);
    });
  }
});
