/**
 * The benchmark page of the browser demo (demo/bench.html) in each browser of BROWSERS (headless
 * Chromium and headless Firefox, both on SwiftShader): the demo is built once, one local server
 * serves it and (through a symlink, same origin) a tiny synthetic checkpoint. The page shows the
 * adapter and the browser, runs prefill and decode in its worker (with per-kernel timestamp
 * profiles) and fills the results table and window.__bench; a second run with the same
 * settings reuses the loaded model; a model URL that 404s names the missing file. (A browser
 * without WebGPU is tested in demo-fallback.browser.test.ts, which has one open already.)
 * No timing is asserted (SwiftShader's speed says nothing).
 * Screenshots: test-artifacts/demo-bench-<browser>.png.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { BROWSER_CASES, launchBrowser, type BrowserName, type TestBrowser } from './helpers/browser.ts';
import { startDemoSite, type DemoSite } from './helpers/demo-site.ts';
import type { TestServer } from './helpers/http-server.ts';

const screenshot = (name: BrowserName) => fileURLToPath(new URL(`../test-artifacts/demo-bench-${name}.png`, import.meta.url)) as `${string}.png`;
/** What each browser's user agent says. */
const UA: Record<BrowserName, string> = { chromium: 'Chrome', firefox: 'Firefox' };
const T = 240_000;
const VOCAB = 2048;

interface Workload {
  model: string;
  promptLen: number;
  gen: number;
  repeat: number;
  context?: number;
  kv?: 'q8' | 'f32';
  profile?: boolean;
}

let site: DemoSite | undefined;
let server: TestServer | undefined;

beforeAll(async () => {
  site = await startDemoSite('browser-bench', ['tiny'], async (dirOf) => {
    await writeSyntheticCheckpoint({ preset: 'tiny', overrides: { vocab: VOCAB }, seed: 0, outDir: dirOf('tiny') });
  });
  server = site.server;
}, T);

afterAll(async () => {
  await site?.close();
});

describe.each(BROWSER_CASES)('browser benchmark page (%s)', (_label, name) => {
  let browser: TestBrowser | undefined;
  let page: Page;

  beforeAll(async () => {
    browser = await launchBrowser(name);
    page = await browser.newPage(`[${name} bench]`);
    await page.setViewport({ width: 1000, height: 900 });
  }, T);

  afterAll(async () => {
    await browser?.close();
  });

  /** Fills the form, clicks "Run benchmark" and waits for the run to end; returns window.__bench. */
  async function runBench(w: Workload) {
    await page.evaluate((w) => {
      const set = (id: string, v: string) => ((document.getElementById(id) as HTMLInputElement | HTMLSelectElement).value = v);
      set('model', w.model);
      set('prompt-len', String(w.promptLen));
      set('gen', String(w.gen));
      set('repeat', String(w.repeat));
      set('context', w.context === undefined ? '' : String(w.context));
      set('kv', w.kv ?? 'q8');
      (document.getElementById('profile') as HTMLInputElement).checked = w.profile ?? false;
    }, w);
    await page.click('#run');
    await page.waitForFunction(() => !window.__bench.running && (window.__bench.result !== undefined || window.__bench.error !== undefined),
      { timeout: T, polling: 250 });
    return benchState();
  }

  /**
   * window.__bench, through JSON: the adapter object appears twice in it (state and report), and
   * over WebDriver BiDi puppeteer returns the second reference to an object as undefined.
   */
  async function benchState(): Promise<Window['__bench']> {
    return JSON.parse(await page.evaluate(() => JSON.stringify(window.__bench))) as Window['__bench'];
  }

  /** The results table's rows by data-row: median, min, max as numbers and the per-run values. */
  async function resultRows() {
    const rows = await page.$$eval('#results-table tr[data-row]', (trs) => trs.map((tr) => ({
      key: (tr as HTMLElement).dataset.row!,
      label: tr.querySelector('th')?.textContent ?? '',
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''),
    })));
    return new Map(rows.map((r) => [r.key, {
      label: r.label,
      median: Number(r.cells[0]), min: Number(r.cells[1]), max: Number(r.cells[2]),
      runs: r.cells[3]!.split(',').map((s) => Number(s.trim())),
    }]));
  }

  it('shows the adapter, the browser and the date before any run', async () => {
    await page.goto(`${server!.baseUrl}bench.html`);
    await page.waitForFunction(() => window.__bench.adapter !== undefined || window.__bench.adapterError !== undefined, { timeout: 60_000, polling: 100 });
    const s = await benchState();
    expect(s.adapterError, 'the adapter probe failed').toBeUndefined();
    expect(s.adapter!.fallback, 'SwiftShader is a fallback (CPU) adapter').toBe(true);
    expect(await page.$eval('#adapter-fallback', (el) => el.textContent)).toMatch(/^yes/);
    expect(await page.$eval('#adapter-features', (el) => el.textContent)).toMatch(/shader-f16 (yes|no).*subgroups (yes|no).*timestamp-query (yes|no)/);
    expect(await page.$eval('#adapter-limits', (el) => el.textContent)).toMatch(/maxBufferSize .*maxStorageBufferBindingSize .*maxComputeWorkgroupStorageSize \d+ bytes/);
    expect(await page.$eval('#browser', (el) => el.textContent)).toContain(UA[name]);
    console.log(`[${name}] bench page: adapter ${await page.$eval('#adapter-summary', (el) => el.textContent)}; ` +
      `features ${await page.$eval('#adapter-features', (el) => el.textContent)}`);
    expect(await page.$eval('#date', (el) => el.textContent)).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await page.$eval('#notice', (el) => (el as HTMLElement).hidden), 'no notice on a browser with WebGPU').toBe(true);
    expect(await page.$eval('#chat-link', (el) => (el as HTMLAnchorElement).getAttribute('href'))).toBe('./index.html?model=openai%2Fgpt-oss-20b');
  }, T);

  it('runs prefill and decode and shows the numbers', async () => {
    const s = await runBench({ model: 'models/tiny/', promptLen: 8, gen: 4, repeat: 2, context: 64, profile: true });
    if (s.error) throw new Error(`the benchmark failed: ${s.error}`);
    const rows = await resultRows();
    expect([...rows.keys()]).toEqual(['prefill-tps', 'prefill-ms', 'decode-tps', 'decode-ms', 'weight-gbps']);
    for (const [key, r] of rows) {
      for (const v of [r.median, r.min, r.max, ...r.runs]) expect(Number.isFinite(v) && v > 0, `${key} ${JSON.stringify(r)}`).toBe(true);
      expect(r.min, key).toBeLessThanOrEqual(r.median);
      expect(r.median, key).toBeLessThanOrEqual(r.max);
      expect(r.runs, `${key}: one value per repeat`).toHaveLength(2);
    }
    expect(rows.get('prefill-tps')!.label).toContain('8-token prompt');
    expect(rows.get('decode-tps')!.label).toContain('4 tokens');
    expect(await page.$eval('#results-table caption', (el) => el.textContent)).toContain('2 timed repeats');
    expect(await page.$eval('#adapter-fallback', (el) => el.textContent)).toMatch(/^yes/);
    expect(await page.$eval('#model-info', (el) => el.textContent)).toMatch(/KV cache q8, context 64/);
    expect(await page.$$eval('#profile table', (t) => t.length), 'prefill and decode kernel tables').toBe(2);
    expect(await page.$eval('#progress-text', (el) => el.textContent)).toMatch(/^Done in/);
    expect(await page.$eval('#copy', (el) => (el as HTMLButtonElement).disabled)).toBe(false);

    const rep = s.result!;
    expect(rep.kind).toBe('gptoss-bench');
    expect(rep.version).toBe(1);
    expect(Date.parse(rep.date)).not.toBeNaN();
    expect(rep.runtime.userAgent).toContain(UA[name]);
    for (const f of ['vendor', 'architecture', 'description'] as const) expect(typeof rep.adapter[f], f).toBe('string');
    expect(rep.adapter.fallback).toBe(true);
    expect(typeof rep.adapter.f16).toBe('boolean');
    expect(Array.isArray(rep.adapter.features)).toBe(true);
    for (const f of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize'] as const) expect(rep.adapter[f], f).toBeGreaterThan(0);
    expect(rep.model.config.vocabSize).toBe(VOCAB);
    expect(rep.model.source).toBe(`${server!.baseUrl}models/tiny/`);
    expect(rep.model.weightBytes).toBeGreaterThan(0);
    expect(rep.kvFormat).toBe('q8');
    expect(rep.context).toBe(64);
    expect(rep.load.reused).toBe(false);
    expect(rep.load.networkBytes, 'the first run downloads the model').toBeGreaterThan(0);
    const r = rep.result;
    expect([r.promptLen, r.gen, r.repeat]).toEqual([8, 4, 2]);
    for (const st of [r.prefill.ms, r.prefill.tokensPerSecond, r.decode.ms, r.decode.tokensPerSecond, r.decode.weightGBps]) {
      expect(st.runs).toHaveLength(2);
      expect(Number.isFinite(st.median) && st.median > 0, JSON.stringify(st)).toBe(true);
    }
    expect(r.decode.weightBytesPerToken).toBe(rep.decodeWeightBytes.total);
    expect(r.profile!.prefillTokens).toBe(8);
    expect(r.profile!.prefill.length).toBeGreaterThan(0);
    expect(r.profile!.decode.length).toBeGreaterThan(0);
    // The JSON shown for copying is the same report.
    expect(JSON.parse(await page.$eval('#json', (el) => el.textContent ?? ''))).toEqual(rep);
    await mkdir(join(screenshot(name), '..'), { recursive: true });
    await page.screenshot({ path: screenshot(name), fullPage: true });
  }, T);

  it('runs again with the model still loaded, and reloads it for another KV format', async () => {
    const mark = server!.log.length;
    const again = await runBench({ model: 'models/tiny/', promptLen: 8, gen: 4, repeat: 1, context: 64 });
    if (again.error) throw new Error(`the second run failed: ${again.error}`);
    expect(again.result!.load.reused).toBe(true);
    expect(server!.log.slice(mark).filter((r) => r.path.startsWith('/models/')), 'model requests for the second run').toEqual([]);
    expect((await resultRows()).get('decode-tps')!.runs).toHaveLength(1);
    expect(await page.$eval('#results-table caption', (el) => el.textContent)).toContain('1 timed repeat after');

    const f32 = await runBench({ model: 'models/tiny/', promptLen: 8, gen: 4, repeat: 1, context: 64, kv: 'f32' });
    if (f32.error) throw new Error(`the f32 run failed: ${f32.error}`);
    expect(f32.result!.load.reused).toBe(false);
    expect(f32.result!.kvFormat).toBe('f32');
    expect(f32.result!.result.decode.tokensPerSecond.median).toBeGreaterThan(0);
  }, T);

  it('names the missing file when the model URL 404s', async () => {
    const s = await runBench({ model: 'models/missing/', promptLen: 8, gen: 4, repeat: 1 });
    expect(s.result).toBeUndefined();
    expect(s.error).toMatch(/^ModelLoadError: .*config\.json/);
    const notice = await page.$eval('#notice', (el) => ({ hidden: (el as HTMLElement).hidden, text: el.textContent ?? '', cls: el.className }));
    expect(notice.hidden).toBe(false);
    expect(notice.cls).toContain('error');
    expect(notice.text).toMatch(/Loading the model failed: not found at .*\/models\/missing\/config\.json/);
    expect(await page.$$eval('#results-table', (t) => t.length), 'no results table after a failure').toBe(0);
    expect(await page.$eval('#run', (el) => (el as HTMLButtonElement).disabled), 'the button is usable again').toBe(false);
  }, T);

  it('refuses a workload longer than the context before loading anything', async () => {
    const mark = server!.log.length;
    await page.evaluate(() => (window.__bench.error = undefined));
    const s = await runBench({ model: 'models/tiny/', promptLen: 60, gen: 10, repeat: 1, context: 64 });
    expect(s.error).toMatch(/Prompt tokens 60 \+ generated tokens 10 exceed the context 64/);
    expect(server!.log.length - mark, 'no request').toBe(0);
  }, T);
});
