/**
 * Every kernel family's case table in headless Chromium: Vite builds test/browser/kernels.html,
 * a local server serves it, the page runs the cases on navigator.gpu and Node checks the results
 * the same way as the Node runner. No adapter in the browser is a failure, not a skip.
 */
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterSummary } from '../engine/gpu/device.ts';
import type { PageResults } from './browser/kernels-page.ts';
import viteConfig, { KERNELS_PAGE_OUT } from './browser/vite.config.ts';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';
import { KERNEL_FAMILIES } from './kernels/index.ts';

// Every family in one page: ~5 min on a loaded 2-core machine with SwiftShader (pipelines
// compile slowly there), so the page gets twice that.
const PAGE_TIMEOUT_MS = 600_000;

describe('kernels (headless Chromium)', () => {
  let browser: TestBrowser | undefined;
  let server: TestServer | undefined;
  let results: PageResults = 'the page did not run';
  let adapter: AdapterSummary | undefined;
  let seconds = 0;

  beforeAll(async () => {
    const t0 = performance.now();
    await build({ ...viteConfig, configFile: false });
    server = await startTestServer(KERNELS_PAGE_OUT);
    browser = await launchChromium();
    const page = await browser.newPage('[chromium]');
    await page.goto(`${server.baseUrl}kernels.html`);
    await page.waitForFunction(() => window.__results !== undefined, { timeout: PAGE_TIMEOUT_MS, polling: 250 });
    results = (await page.evaluate(() => window.__results))!;
    adapter = await page.evaluate(() => window.__adapter);
    seconds = (performance.now() - t0) / 1000;
  }, PAGE_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('has a WebGPU adapter', () => {
    expect(typeof results === 'string' ? results : null, 'the kernel page could not start').toBeNull();
    expect(adapter, 'no WebGPU adapter in Chromium').toBeDefined();
    console.log(`browser adapter: ${adapter!.vendor} ${adapter!.architecture} ${adapter!.description}; ` +
      `features ${adapter!.features.join(',')}; maxStorageBufferBindingSize ${adapter!.maxStorageBufferBindingSize}; ` +
      `build + load + all families ${seconds.toFixed(1)} s`);
  });

  for (const family of Object.keys(KERNEL_FAMILIES)) {
    it(family, () => {
      expect(typeof results === 'string' ? results : null, 'the kernel page could not start').toBeNull();
      const r = (results as Exclude<PageResults, string>)[family];
      expect(r, `${family}: no result from the page`).toBeDefined();
      expect(typeof r === 'string' ? r : null, `${family} failed in the browser`).toBeNull();
      const list = r as Exclude<typeof r, string | undefined>;
      for (const c of list) console.log(`[chromium] ${c.message}`);
      const failures = list.filter((c) => !c.ok).map((c) => c.message);
      expect(failures, failures.join('\n')).toEqual([]);
      expect(list.length).toBeGreaterThan(0);
    });
  }
});
