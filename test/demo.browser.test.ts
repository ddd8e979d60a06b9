/**
 * The browser demo (demo/) in headless Chromium: Vite builds it, one local server serves the
 * static site and (through symlinks, same origin) two scripted tiny checkpoints. The test loads a
 * model by URL and watches the progress bar reach 100%, sends a message and sees the known answer
 * stream in, stops an endless generation, then reloads the page and loads the model again from
 * the browser cache with no model request reaching the server. Screenshot: test-artifacts/demo-chat.png.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, LOOP_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const DEMO_CONFIG = fileURLToPath(new URL('../demo/vite.config.ts', import.meta.url));
const OUT = fileURLToPath(new URL('../test-artifacts/browser-demo/', import.meta.url));
const SCREENSHOT = fileURLToPath(new URL('../test-artifacts/demo-chat.png', import.meta.url));
const T = 240_000;

describe('browser demo (headless Chromium)', () => {
  let browser: TestBrowser | undefined;
  let server: TestServer | undefined;
  let page: Page;
  let tmp = '';

  beforeAll(async () => {
    await build({ configFile: DEMO_CONFIG, logLevel: 'warn', build: { outDir: OUT, emptyOutDir: true } });
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-demo-'));
    const tok = await realTokenizer();
    await writeScriptedCheckpoint(join(tmp, 'answer'), [tok.encode(ANSWER_SCRIPT)]);
    await writeScriptedCheckpoint(join(tmp, 'loop'), [tok.encode(LOOP_SCRIPT)]);
    await mkdir(join(OUT, 'models'), { recursive: true });
    await symlink(join(tmp, 'answer'), join(OUT, 'models', 'answer'), 'dir');
    await symlink(join(tmp, 'loop'), join(OUT, 'models', 'loop'), 'dir');
    server = await startTestServer(OUT);
    browser = await launchChromium();
    page = await browser.newPage('[demo]');
    await page.setViewport({ width: 1000, height: 900 });
  }, T);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function loadModel(path: string) {
    await page.$eval('#model', (el, v) => ((el as HTMLInputElement).value = v), path);
    await page.click('#load');
    await page.waitForFunction(() => window.__demo.loaded !== undefined || window.__demo.loadError !== undefined, { timeout: T, polling: 250 });
    const state = await page.evaluate(() => window.__demo);
    if (state.loadError) throw new Error(state.loadError);
    return state;
  }

  async function send(text: string) {
    await page.type('#prompt', text);
    await page.click('#send');
    await page.waitForFunction(() => window.__demo.generating, { timeout: 10_000, polling: 50 });
  }

  it('loads a model by URL with a progress bar reaching 100%', async () => {
    await page.goto(`${server!.baseUrl}index.html`);
    const s = await loadModel('models/answer/');
    expect(s.progressEvents).toBeGreaterThan(0);
    expect(s.loaded!.networkBytes, 'the first load downloads').toBeGreaterThan(0);
    expect(s.loaded!.networkBytes, 'most bytes came from the network').toBeGreaterThan(s.loaded!.cachedBytes);
    const bar = await page.$eval('#progress', (el) => [(el as HTMLProgressElement).value, (el as HTMLProgressElement).max]);
    expect(bar[0]).toBe(bar[1]);
    expect(await page.$eval('#progress-text', (el) => el.textContent)).toContain('100%');
    expect(await page.$eval('#adapter', (el) => el.textContent)).toMatch(/Adapter: .*features/);
    // The page refreshes the cache size after the load resolves: wait for it rather than race it.
    await page.waitForFunction(() => document.querySelector('#cache-size')?.textContent !== '0.0 kB', { timeout: 30_000 });
    expect(await page.$eval('#cache-size', (el) => el.textContent)).toMatch(/\d+(\.\d+)? (kB|MB)/);
  }, T);

  it('streams the answer into the chat', async () => {
    await send('Say hello');
    await page.waitForFunction(() => !window.__demo.generating, { timeout: T, polling: 100 });
    const s = await page.evaluate(() => window.__demo);
    expect(s.lastAnswer).toBe(ANSWER_TEXT);
    expect(s.chunks, 'several chunks streamed').toBeGreaterThan(1);
    expect(await page.$eval('#log .assistant:last-child .answer', (el) => el.textContent)).toBe(ANSWER_TEXT);
    expect(await page.$eval('#stats', (el) => el.textContent)).toMatch(/TTFT \d+ ms/);
    await mkdir(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT as `${string}.png`, fullPage: true });
  }, T);

  it('stops an endless generation', async () => {
    await loadModel('models/loop/');
    await send('Go on forever');
    await page.waitForFunction(() => window.__demo.lastAnswer.length > 12, { timeout: T, polling: 100 });
    await page.click('#stop');
    await page.waitForFunction(() => !window.__demo.generating, { timeout: 60_000, polling: 100 });
    const answer = await page.$eval('#log .assistant:last-child .answer', (el) => el.textContent ?? '');
    expect(answer).toMatch(/la li lo.*\[stopped\]$/s);
  }, T);

  it('after a reload, loads from the cache without downloading', async () => {
    const mark = server!.log.length;
    await page.reload();
    const s = await loadModel('models/answer/');
    const modelRequests = server!.log.slice(mark).filter((r) => r.path.startsWith('/models/'));
    expect(modelRequests, 'model requests after the reload').toEqual([]);
    expect(s.loaded!.networkBytes).toBe(0);
    expect(s.loaded!.cachedBytes).toBeGreaterThan(0);
    await send('Say hello');
    await page.waitForFunction(() => !window.__demo.generating, { timeout: T, polling: 100 });
    expect(await page.evaluate(() => window.__demo.lastAnswer)).toBe(ANSWER_TEXT);
  }, T);
});
