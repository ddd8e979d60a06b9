/**
 * The browser download cache with the integrity check, in headless Chromium (test/browser/cache-page.ts
 * built by Vite; one local server serves the page, a synthetic tiny checkpoint with a
 * manifest.sha256 beside it, and a stand-in Hugging Face hub that wants a token):
 * - a cold load verifies every file and lists the model complete and verified; a warm load
 *   downloads and hashes nothing (the verified marks);
 * - a flipped byte in a cached shard fails a `verify: 'always'` load, and a load by default once
 *   the mark is gone, with IntegrityError naming the shard and no GPU buffer left; the shard's
 *   entries are dropped (the listing says incomplete) and the next load fetches it again;
 * - deleteModelFromCache leaves nothing; a repo loaded with a token and revision sends the token
 *   with every hub request and never puts it in a cache key or on the console.
 */
import { cp, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/main.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import type { PageLoad } from './browser/cache-page.ts';
import { cacheViteConfig, CACHE_PAGE_OUT } from './browser/vite.config.ts';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { startHubServer } from './helpers/hub-server.ts';
import type { TestServer } from './helpers/http-server.ts';

const T = 600_000;
const TOKEN = 'hf_browserSecret_8Kd2';
const REPO = 'test-org/tiny-cache';
const REVISION = 'r2';

describe('download cache and integrity (headless Chromium)', () => {
  let tmp = '';
  let browser: TestBrowser | undefined;
  let server: TestServer | undefined;
  let page: Page;
  let url = '';
  let shard = '';
  let files: string[] = [];
  const consoleLines: string[] = [];

  const load = (model: string, opts: Record<string, unknown> = {}) =>
    page.evaluate((m, o) => window.__cache.load(m, o), model, opts) as Promise<PageLoad>;
  const describeLoad = (r: PageLoad) => JSON.stringify({ ...r, files: undefined });
  const modelRequests = (from: number) => server!.log.slice(from).filter((l) => l.path.startsWith('/models/good/'));

  beforeAll(async () => {
    await build({ ...cacheViteConfig, configFile: false });
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-cache-browser-'));
    const good = join(tmp, 'good');
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 9, outDir: good, maxShardBytes: 12 << 20 });
    const hub = join(tmp, 'hub');
    await cp(good, hub, { recursive: true });
    const [log, write] = [console.log, process.stderr.write];
    console.log = () => {};
    process.stderr.write = () => true;
    try {
      expect(await main(['manifest', good])).toBe(0);
    } finally {
      [console.log, process.stderr.write] = [log, write];
    }
    files = (await readdir(good)).filter((f) => f !== 'manifest.sha256' && f !== 'generation_config.json').sort();
    shard = files.find((f) => f.endsWith('.safetensors'))!;
    await mkdir(join(CACHE_PAGE_OUT, 'models'), { recursive: true });
    await symlink(good, join(CACHE_PAGE_OUT, 'models', 'good'), 'dir');
    await symlink(hub, join(CACHE_PAGE_OUT, 'models', 'hub'), 'dir');
    server = await startHubServer(hub, { repo: REPO, revision: REVISION, token: TOKEN, root: CACHE_PAGE_OUT, modelPath: 'models/hub' });
    url = `${server.baseUrl}models/good/`;
    browser = await launchChromium();
    page = await browser.newPage('[cache page]');
    page.on('console', (m) => consoleLines.push(m.text()));
    await page.goto(`${server.baseUrl}cache.html`);
    await page.waitForFunction(() => window.__cache !== undefined, { timeout: 60_000 });
  }, T);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a cold load checks every file; the model is listed complete and verified', async () => {
    const r = await load(url);
    expect(r.ok, describeLoad(r)).toBe(true);
    expect(Object.keys(r.files!).sort()).toEqual(files);
    expect(Object.values(r.files!).every((s) => s === 'verified'), JSON.stringify(r.files)).toBe(true);
    expect(r.phases).toEqual(['tokenizer', 'compile', 'weights', 'verify']);
    expect([r.fromCache.tokenizer, r.fromCache.weights], 'fromCache of the tokenizer and weights phases, cold').toEqual([false, false]);
    const list = await page.evaluate(() => window.__cache.list());
    expect(list.map((m) => [m.model, m.url, m.complete, m.verified])).toEqual([[url, url, true, true]]);
    expect(list[0]!.bytes).toBeGreaterThan(40e6);
    expect(await page.evaluate((u) => window.__cache.has(u), url)).toBe(true);
  }, T);

  it('a warm load downloads nothing and hashes nothing (verified marks)', async () => {
    const mark = server!.log.length;
    const r = await load(url);
    expect(r.ok, describeLoad(r)).toBe(true);
    expect(modelRequests(mark).map((l) => `${l.path} ${l.range ?? ''}`), 'requests of the warm load').toEqual([]);
    expect(Object.values(r.files!).every((s) => s === 'cached'), JSON.stringify(r.files)).toBe(true);
    expect(r.hashedBytes).toBe(0);
    expect(r.fromCache, 'fromCache of every phase, warm').toEqual({ tokenizer: true, compile: true, weights: true, verify: true });
  }, T);

  it("a flipped byte in a cached shard: verify 'always' fails with IntegrityError, nothing on the GPU, the shard dropped", async () => {
    await page.evaluate((f) => window.__cache.tamper(f), shard);
    const r = await load(url, { verify: 'always' });
    expect(r.ok, 'the load with a tampered cache entry succeeded').toBe(false);
    expect(r.error!.name, r.error!.message).toBe('IntegrityError');
    expect(r.error!.file).toBe(shard);
    expect(r.error!.message).toContain(r.error!.expected!);
    expect(r.error!.message).toContain(r.error!.actual!);
    expect(r.error!.message).toMatch(/browser cache was dropped/);
    expect(r.liveBuffers, `GPU buffers alive after the failed load: ${r.liveBuffers.join(', ')}`).toEqual([]);
    expect(r.liveBytes.every((b) => b === 0), `live GPU bytes per device: ${r.liveBytes}`).toBe(true);
    const keys = await page.evaluate(() => window.__cache.keys());
    expect(keys.filter((k) => k.includes(`/${shard}?__gptoss_range`)), 'stored answers of the dropped shard').toEqual([]);
    const m = (await page.evaluate(() => window.__cache.list()))[0]!;
    expect([m.complete, m.verified]).toEqual([false, false]);
    expect(m.files.find((f) => f.file === shard)!.storedBytes).toBe(0);
    // The next load fetches the shard again, checks it and marks it.
    const mark = server!.log.length;
    const again = await load(url);
    expect(again.ok, describeLoad(again)).toBe(true);
    expect(modelRequests(mark).some((l) => l.path.endsWith(`/${shard}`))).toBe(true);
    expect(again.files![shard]).toBe('verified');
  }, T);

  it('a flipped byte in a cached shard without the verified mark fails the default load too', async () => {
    await page.evaluate((f) => window.__cache.tamper(f), shard);
    expect(await page.evaluate((f) => window.__cache.unmark(f), shard)).toBe(1);
    const r = await load(url);
    expect(r.ok).toBe(false);
    expect([r.error!.name, r.error!.file]).toEqual(['IntegrityError', shard]);
    expect(r.liveBuffers).toEqual([]);
  }, T);

  it('deleteModelFromCache leaves nothing of the model', async () => {
    expect(await page.evaluate((u) => window.__cache.del(u), url)).toBe(true);
    expect(await page.evaluate(() => window.__cache.list())).toEqual([]);
    expect(await page.evaluate((u) => window.__cache.has(u), url)).toBe(false);
    expect(await page.evaluate(() => window.__cache.keys())).toEqual([]);
  }, T);

  it('a Hugging Face repo with a token and a revision: the token on every hub request, in no cache key, never logged', async () => {
    const hf = { hubUrl: server!.baseUrl, revision: REVISION, token: TOKEN };
    const mark = server!.log.length;
    const r = await load(REPO, { huggingFace: hf });
    expect(r.ok, describeLoad(r)).toBe(true);
    expect(Object.values(r.files!).every((s) => s === 'verified'), JSON.stringify(r.files)).toBe(true);
    const hubRequests = server!.log.slice(mark).filter((l) => l.path.startsWith('/api/') || l.path.startsWith(`/${REPO}/`));
    expect(hubRequests.length).toBeGreaterThan(5);
    expect(hubRequests.filter((l) => l.auth !== `Bearer ${TOKEN}`).map((l) => l.path), 'hub requests without the token').toEqual([]);
    expect(hubRequests.every((l) => l.path.includes(`/${REVISION}`))).toBe(true);
    const keys = await page.evaluate(() => window.__cache.keys());
    expect(keys.length).toBeGreaterThan(5);
    expect(keys.filter((k) => k.includes(TOKEN)), 'cache keys holding the token').toEqual([]);
    expect(consoleLines.filter((l) => l.includes(TOKEN)), 'console lines holding the token').toEqual([]);
    const list = await page.evaluate(() => window.__cache.list());
    expect(list.map((m) => [m.model, m.complete, m.verified])).toEqual([[`${REPO}@${REVISION}`, true, true]]);
    const noToken = { huggingFace: { hubUrl: hf.hubUrl, revision: REVISION } };
    expect(await page.evaluate((m, o) => window.__cache.has(m, o), REPO, noToken)).toBe(true);
    expect(await page.evaluate((m, o) => window.__cache.del(m, o), REPO, noToken)).toBe(true);
    expect(await page.evaluate(() => window.__cache.keys()), 'entries left after deleting the repo (the tree API answer included)').toEqual([]);
  }, T);
});
