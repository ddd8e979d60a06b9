/**
 * The browser demo (demo/) when the model cannot run in the browser, in each browser of BROWSERS:
 * - the browser with WebGPU switched off (Chromium: an adapter-less navigator.gpu; Firefox: no
 *   navigator.gpu, as Firefox ESR on Linux by default): the page says so as it opens, offers the
 *   fallback endpoint, and once one is set (a real `serve()` of a scripted model, over HTTP with
 *   CORS for the page's origin) answers through it without downloading anything of the model;
 * - the browser with WebGPU, a 13 GB gpt-oss-20b-shaped checkpoint (headers written, weights left
 *   as sparse-file holes) and a GPU memory limit of 8 GB: the page first says the browser's
 *   storage quota is too small for the download, then that the GPU lacks memory, having read no
 *   weights; the fallback endpoint then answers;
 * - the benchmark page (demo/bench.html) in the browser without WebGPU: it says so.
 * Before the 13.8 GB download the page asks (confirm()); the test says yes and checks the question.
 * Before the 13.8 GB download the page asks (confirm()): the test says yes and checks the question.
 * The demo, the checkpoints and the endpoint are set up once for both browsers.
 * Screenshots: test-artifacts/demo-no-webgpu-<browser>.png.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { BROWSER_CASES, launchBrowser, type BrowserName, type TestBrowser } from './helpers/browser.ts';
import { startDemoSite, type DemoSite } from './helpers/demo-site.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const screenshot = (name: BrowserName) => fileURLToPath(new URL(`../test-artifacts/demo-no-webgpu-${name}.png`, import.meta.url)) as `${string}.png`;
const T = 240_000;
const KEY = 'demo-fallback-key';
const API_MODEL = 'scripted-chat';

let demo: DemoSite | undefined;
let apiEngine: Engine | undefined;
let api: RunningServer | undefined;
let bigBytes = 0;

beforeAll(async () => {
  const tok = await realTokenizer();
  demo = await startDemoSite('browser-demo-fallback', ['big20b'], async (dirOf) => {
    await writeScriptedCheckpoint(dirOf('answer'), [tok.encode(ANSWER_SCRIPT)]);
    bigBytes = (await writeSyntheticCheckpoint({ preset: '20b', seed: 0, outDir: dirOf('big20b'), sparse: true })).totalBytes;
  });
  apiEngine = await createEngine({ model: demo.modelDir('answer'), contextLimit: 256, modelId: API_MODEL });
  // The page calls the API from another origin (another port): the server must list it.
  api = await serve(apiEngine, { port: 0, apiKey: KEY, cors: new URL(demo.server.baseUrl).origin });
}, T);

afterAll(async () => {
  await api?.close();
  await apiEngine?.dispose();
  await demo?.close();
});

describe.each(BROWSER_CASES)('browser demo without a usable GPU (%s)', (_label, name) => {
  let noGpu: TestBrowser | undefined;
  let withGpu: TestBrowser | undefined;
  /** What the page and the engine say of this browser without WebGPU. */
  const noWebGpu = name === 'chromium' ? /no WebGPU adapter/ : /no navigator\.gpu/;

  beforeAll(async () => {
    [noGpu, withGpu] = await Promise.all([launchBrowser(name, { webgpu: false }), launchBrowser(name)]);
  }, T);

  afterAll(async () => {
    await noGpu?.close();
    await withGpu?.close();
  });

  const noticeText = (page: Page) => page.$eval('#notice', (el) => ((el as HTMLElement).hidden ? '' : el.textContent ?? ''));
  const visible = (page: Page, sel: string) => page.$eval(sel, (el) => !(el as HTMLElement).hidden);

  /** Types into a settings field the way a user does (the page saves it on change). */
  async function setField(page: Page, sel: string, value: string) {
    await page.$eval(sel, (el, v) => {
      (el as HTMLInputElement).value = v;
      el.dispatchEvent(new Event('change'));
    }, value);
  }

  async function fillFallback(page: Page) {
    await setField(page, '#fallback-url', `${api!.url}/v1`);
    await setField(page, '#fallback-model', API_MODEL);
    await setField(page, '#fallback-key', KEY);
  }

  async function waitLoad(page: Page) {
    await page.waitForFunction(() => window.__demo.loaded !== undefined || window.__demo.loadError !== undefined, { timeout: T, polling: 250 });
    return page.evaluate(() => window.__demo);
  }

  async function ask(page: Page, text: string) {
    await page.type('#prompt', text);
    await page.click('#send');
    await page.waitForFunction(() => window.__demo.generating, { timeout: 10_000, polling: 50 });
    await page.waitForFunction(() => !window.__demo.generating, { timeout: T, polling: 100 });
    return page.evaluate(() => window.__demo.lastAnswer);
  }

  const modelRequests = (from: number) => demo!.server.log.slice(from).filter((r) => r.path.startsWith('/models/'));

  it('without WebGPU: says so at once, and answers through the fallback endpoint once one is set', async () => {
    const page = await noGpu!.newPage(`[${name} no-webgpu]`);
    await page.goto(`${demo!.server.baseUrl}index.html`);
    await page.waitForFunction(() => window.__demo.webgpu !== undefined, { timeout: 30_000 });
    expect(await page.evaluate(() => window.__demo.webgpu), 'the page found a WebGPU adapter').toBe(false);
    const said = await noticeText(page);
    expect(said).toMatch(/^WebGPU is not available here: /);
    expect(said).toMatch(noWebGpu);
    expect(said).toMatch(/browser with WebGPU .* fallback endpoint/s);
    expect(said, 'a browser is not told to install Vulkan drivers').not.toMatch(/VK_ICD_FILENAMES/);
    expect(await visible(page, '#use-fallback'), 'the fallback button is offered').toBe(true);
    await mkdir(join(screenshot(name), '..'), { recursive: true });
    await page.screenshot({ path: screenshot(name), fullPage: true });

    // With no endpoint set, the button opens the settings and asks for one.
    await page.click('#use-fallback');
    expect(await page.$eval('#settings', (el) => (el as HTMLDetailsElement).open)).toBe(true);
    expect(await noticeText(page)).toMatch(/Enter the fallback endpoint's base URL/);

    await fillFallback(page);
    const mark = demo!.server.log.length;
    await page.click('#use-fallback');
    const s = await waitLoad(page);
    expect(s.loadError).toBeUndefined();
    expect(s.loaded!.backend).toBe('fallback');
    expect(s.loaded!.fallbackReason).toMatch(noWebGpu);
    expect(await noticeText(page)).toMatch(new RegExp(`^Answering through the fallback endpoint ${api!.url}/v1 \\(model ${API_MODEL}\\)`));
    expect(await ask(page, 'Say hello')).toBe(ANSWER_TEXT);
    expect(modelRequests(mark), 'requests for model files').toEqual([]);

    // The endpoint is remembered for the next visit.
    await page.reload();
    expect(await page.$eval('#fallback-url', (el) => (el as HTMLInputElement).value)).toBe(`${api!.url}/v1`);
    expect(await page.$eval('#fallback-model', (el) => (el as HTMLInputElement).value)).toBe(API_MODEL);
    await page.close();
  }, T);

  it('the benchmark page without WebGPU says so plainly', async () => {
    const p = await noGpu!.newPage(`[${name} bench no-webgpu]`);
    await p.goto(`${demo!.server.baseUrl}bench.html`);
    await p.waitForFunction(() => window.__bench.adapterError !== undefined || window.__bench.adapter !== undefined, { timeout: 60_000, polling: 100 });
    const s = await p.evaluate(() => window.__bench);
    expect(s.adapter, 'an adapter where WebGPU is turned off').toBeUndefined();
    expect(s.adapterError).toMatch(name === 'chromium' ? /no WebGPU adapter/ : /navigator\.gpu is missing/);
    expect(await p.$eval('#notice', (el) => el.textContent ?? '')).toMatch(/WebGPU is not available/);
    expect(await p.$eval('#adapter-summary', (el) => el.textContent)).toMatch(/^none: /);
    await p.close();
  }, T);

  it('a 13 GB model: says the storage quota is too small, then that the GPU lacks memory, having read no weights', async () => {
    const page = await withGpu!.newPage(`[${name} too-big]`);
    await page.goto(`${demo!.server.baseUrl}index.html`);
    await page.waitForFunction(() => window.__demo.webgpu !== undefined, { timeout: 30_000 });
    expect(await page.evaluate(() => window.__demo.webgpu), `${name} with SwiftShader has WebGPU`).toBe(true);
    const est = await page.evaluate(async () => navigator.storage.estimate());
    console.log(`[${name}] storage estimate: quota ${est.quota}, usage ${est.usage}; the 20b checkpoint: ${bigBytes} bytes`);
    expect((est.quota ?? 0) - (est.usage ?? 0), `headless ${name}'s free quota must be below the 20b checkpoint's size for this test`)
      .toBeLessThan(bigBytes);

    // The page asks before a download over 1 GB: say yes, and check what it asked.
    const asked: string[] = [];
    page.on('dialog', (d) => {
      asked.push(d.message());
      void d.accept();
    });
    await setField(page, '#memory-limit', '8 GB');
    await page.$eval('#model', (el) => ((el as HTMLInputElement).value = 'models/big20b/'));
    const mark = demo!.server.log.length;
    await page.click('#load');
    const s = await waitLoad(page);
    expect(s.loaded).toBeUndefined();
    expect(asked, 'the question before the download').toEqual([expect.stringMatching(/^Download 13\.8 GB for big20b\?/)]);
    expect(s.notices[0], 'the first thing said').toMatch(/^The browser's storage quota \(.* GB free of .* GB\) is too small to keep this 13\.8 GB model/);
    expect(s.loadError).toMatch(/^ModelTooLargeError: the model needs .* of GPU memory .* but only 8\.00 GB is available/);
    expect(await noticeText(page)).toMatch(/^This GPU does not have enough memory for the model: .*shorter context .*fallback endpoint/s);
    expect(await visible(page, '#use-fallback')).toBe(true);
    // Headers, config and tokenizer only: no Range request reaches past the first MB of a shard.
    const shardReads = modelRequests(mark).filter((r) => r.path.endsWith('.safetensors') && r.range);
    expect(shardReads.length, 'header reads of the shards').toBeGreaterThan(0);
    const far = shardReads.filter((r) => Number(/bytes=\d+-(\d+)/.exec(r.range!)?.[1] ?? Infinity) > 1_000_000);
    expect(far, 'shard reads past the headers').toEqual([]);

    await fillFallback(page);
    await page.click('#use-fallback');
    const f = await waitLoad(page);
    expect(f.loadError).toBeUndefined();
    expect(f.loaded!.backend).toBe('fallback');
    expect(f.loaded!.fallbackReason).toMatch(/GPU memory/);
    expect(await ask(page, 'Say hello')).toBe(ANSWER_TEXT);
    await page.close();
  }, T);
});
