/**
 * The whole engine in each browser of BROWSERS (headless Chromium on Dawn, headless Firefox on
 * wgpu), from the same source as in Node: Vite builds test/browser/engine.html once, one local
 * server serves the page and (through symlinks in the build directory, so page and model share
 * an origin) the checkpoints, and the page opens them over HTTP Range requests, uploads them and
 * runs them on navigator.gpu. Checked in Node, per browser: golden tiny logits (f32 cache) and
 * greedy tokens of a synthetic tiny model with the real vocabulary against the CPU reference,
 * the golden model again from OPFS, and the matmul variant the engine chose for the adapter.
 * No adapter in a browser is a failure, not a skip.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { loadReferenceModel } from '../engine/reference/model.ts';
import type { EngineResult } from './browser/engine-page.ts';
import { engineViteConfig, ENGINE_PAGE_OUT } from './browser/vite.config.ts';
import { BROWSER_CASES, launchBrowser, type BrowserName, type TestBrowser } from './helpers/browser.ts';
import { compareLogits } from './helpers/compare.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';
import { referenceGreedy } from './helpers/reference-greedy.ts';

const GOLDEN = fileURLToPath(new URL('../../shared/golden/tiny/', import.meta.url));
const GOLDEN_MODEL = fileURLToPath(new URL('../../shared/golden/tiny/model/', import.meta.url));
const resultsFile = (name: BrowserName) => fileURLToPath(new URL(`../test-artifacts/engine-browser-results-${name}.json`, import.meta.url));
const PROMPT = [200006, 17360, 200008, 3575, 553, 17554, 162016, 11];
const N = 16;
const TOL = 2e-3;
const PAGE_TIMEOUT_MS = 240_000;
let GOLDEN_FILES: string[] = [];

let server: TestServer | undefined;
let tmp = '';
let golden: { tokens: number[]; vocab: number; logits: Float32Array };
let wantTokens: number[] = [];
let buildSeconds = 0;

beforeAll(async () => {
  const t0 = performance.now();
  await build({ ...engineViteConfig, configFile: false });
  buildSeconds = (performance.now() - t0) / 1000;

  const expected = JSON.parse(await readFile(join(GOLDEN, 'expected.json'), 'utf8')) as { tokens: number[]; shape: [number, number] };
  golden = {
    tokens: expected.tokens,
    vocab: expected.shape[1],
    logits: new Float32Array(new Uint8Array(await readFile(join(GOLDEN, 'logits.f32'))).buffer),
  };

  GOLDEN_FILES = (await readdir(GOLDEN_MODEL)).sort();
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-engine-browser-'));
  const synth = join(tmp, 'tiny');
  await writeSyntheticCheckpoint({ preset: 'tiny', seed: 21, outDir: synth });
  const ck = await Checkpoint.open(await directorySource(synth));
  try {
    wantTokens = referenceGreedy(await loadReferenceModel(ck), PROMPT, N, 'f32');
  } finally {
    await ck.close();
  }

  // Same origin for page and models: the build directory links to both checkpoints.
  await mkdir(join(ENGINE_PAGE_OUT, 'models'), { recursive: true });
  await symlink(GOLDEN_MODEL, join(ENGINE_PAGE_OUT, 'models', 'golden-tiny'), 'dir');
  await symlink(synth, join(ENGINE_PAGE_OUT, 'models', 'synth-tiny'), 'dir');
  server = await startTestServer(ENGINE_PAGE_OUT);
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The matmul shader variant of the model's matmul kernels: 'simple' (with _simple) or 'tiled'. */
function matmulVariant(r: EngineResult): string {
  const variants = new Set(r.kernelKeys.filter((k) => k.startsWith('f32_bf16w_matmul')).map((k) => (k.endsWith('_simple') ? 'simple' : 'tiled')));
  return [...variants].sort().join('+') || 'none';
}

describe.each(BROWSER_CASES)('engine (%s)', (_label, name) => {
  let browser: TestBrowser | undefined;

  /** Opens the engine page with these query parameters and waits for its result. */
  async function runPage(label: string, params: Record<string, string>): Promise<EngineResult> {
    const page = await browser!.newPage(`[${name} ${label}]`);
    try {
      await page.goto(`${server!.baseUrl}engine.html?${new URLSearchParams(params)}`);
      await page.waitForFunction(() => window.__engineResult !== undefined, { timeout: PAGE_TIMEOUT_MS, polling: 250 });
      const r = (await page.evaluate(() => window.__engineResult))!;
      if (typeof r === 'string') throw new Error(`${name} ${label}: ${r}`);
      return r;
    } finally {
      await page.close();
    }
  }

  let goldenRun: Promise<EngineResult>;
  let generateRun: Promise<EngineResult>;
  let opfsRun: Promise<EngineResult>;

  beforeAll(async () => {
    browser = await launchBrowser(name);
    // One browser, one page after the other (SwiftShader on 2 cores: no point in overlapping).
    goldenRun = runPage('golden', { model: 'models/golden-tiny/', tokens: golden.tokens.join(','), mode: 'logits', kv: 'f32', maxBatch: '5', context: '32' });
    goldenRun.catch(() => {});
    generateRun = goldenRun.catch(() => undefined).then(() =>
      runPage('generate', { model: 'models/synth-tiny/', tokens: PROMPT.join(','), mode: 'generate', n: String(N), kv: 'f32', maxBatch: '4', context: '64' }));
    generateRun.catch(() => {});
    // The golden model again, copied into the Origin Private File System and opened through a
    // FileSystemDirectoryHandle (what showDirectoryPicker() returns).
    opfsRun = generateRun.catch(() => undefined).then(() =>
      runPage('opfs', { model: 'models/golden-tiny/', opfs: GOLDEN_FILES.join(','), tokens: golden.tokens.join(','), mode: 'logits', kv: 'f32', maxBatch: '5', context: '32' }));
    opfsRun.catch(() => {});
    await Promise.allSettled([goldenRun, generateRun, opfsRun]);
    await browser.close();
    browser = undefined;
  }, 3 * PAGE_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('golden tiny: logits of every position match the reference (f32 cache)', async () => {
    const r = await goldenRun;
    console.log(`[${name}] adapter: vendor "${r.adapter.vendor}" architecture "${r.adapter.architecture}" description "${r.adapter.description}"; ` +
      `fallback (CPU) adapter ${r.fallback}; page build ${buildSeconds.toFixed(1)} s (shared)`);
    console.log(`[${name}] adapter features: ${r.adapter.features.join(', ')}; device features: ${r.deviceFeatures.join(', ')}`);
    const got = new Float32Array(r.logits!);
    const cmp = compareLogits(`${name} golden tiny f32`, golden.logits, got, golden.vocab, TOL);
    console.log(`[${name}] golden tiny: max |dlogit| ${cmp.maxDiff.toExponential(2)} over ${golden.tokens.length} positions; ` +
      `open ${r.timings.openMs.toFixed(0)} ms, load ${r.timings.loadMs.toFixed(0)} ms, forward ${r.timings.runMs.toFixed(0)} ms`);
    expect(r.vocab).toBe(golden.vocab);
    expect(cmp.failures, cmp.failures.join('\n')).toEqual([]);
    expect(r.progress.calls).toBeGreaterThan(0);
    expect(r.progress.total).toBeGreaterThan(0);
    expect(r.progress.done, 'upload progress reached the total').toBe(r.progress.total);
    await saveResults();
  });

  it('the engine picked the matmul variant of its adapter: simple on a fallback (CPU) adapter, tiled on a GPU', async () => {
    const r = await goldenRun;
    const variant = matmulVariant(r);
    console.log(`[${name}] matmul variant that ran: ${variant} (fallback adapter ${r.fallback}); kernels: ${r.kernelKeys.join(', ')}`);
    expect(variant, `matmul variant on an adapter with fallback=${r.fallback}`).toBe(r.fallback ? 'simple' : 'tiled');
  });

  it(`synthetic tiny (real vocabulary): greedy ${N} tokens equal the CPU reference's`, async () => {
    const r = await generateRun;
    const t = r.timings;
    console.log(`[${name}] generate: ${r.tokens!.join(',')}`);
    console.log(`[${name}] generate: open ${t.openMs.toFixed(0)} ms, load ${t.loadMs.toFixed(0)} ms (${r.progress.calls} progress calls, ` +
      `${(r.progress.total / 1e6).toFixed(1)} MB), prefill ${t.prefillMs!.toFixed(0)} ms, decode ${t.tokensPerSecond!.toFixed(2)} tokens/s`);
    expect(r.vocab).toBe(201088);
    expect(r.tokens, `${name} greedy tokens vs the CPU reference`).toEqual(wantTokens);
    expect(r.finishReason).toBe('length');
    expect(new Set(wantTokens).size, 'the sequence is not one repeated token').toBeGreaterThan(3);
    expect(r.progress.calls).toBeGreaterThan(0);
    expect(r.progress.done, 'upload progress reached the total').toBe(r.progress.total);
    await saveResults();
  });

  it('golden tiny from OPFS (FileSystemDirectoryHandle through resolveModelSource): same logits', async () => {
    const r = await opfsRun;
    const cmp = compareLogits(`${name} golden tiny from OPFS`, golden.logits, new Float32Array(r.logits!), golden.vocab, TOL);
    console.log(`[${name}] golden tiny from OPFS: source ${r.source}; copy ${r.opfs!.copyMs.toFixed(0)} ms, open ${r.timings.openMs.toFixed(0)} ms, ` +
      `load ${r.timings.loadMs.toFixed(0)} ms; max |dlogit| ${cmp.maxDiff.toExponential(2)}`);
    expect(r.source).toMatch(/^folder /);
    expect(r.opfs!.missingIsMissing, 'exists() is false for missing files and folders').toBe(true);
    expect(r.vocab).toBe(golden.vocab);
    expect(cmp.failures, cmp.failures.join('\n')).toEqual([]);
    expect(r.progress.done).toBe(r.progress.total);
    // The bytes are the same as over HTTP, so the logits are bit-identical to the HTTP run's.
    const http = await goldenRun;
    expect(new Float32Array(r.logits!)).toEqual(new Float32Array(http.logits!));
  });

  /** A small summary under test-artifacts/ (logits left out). */
  async function saveResults(): Promise<void> {
    const [g, s, o] = await Promise.allSettled([goldenRun, generateRun, opfsRun]);
    const summary = (x: PromiseSettledResult<EngineResult>) =>
      x.status === 'rejected' ? { error: String(x.reason) } : { ...x.value, logits: x.value.logits ? `${x.value.logits.length} values` : undefined };
    const out: Record<string, unknown> = { browser: name, golden: summary(g), generate: summary(s), opfs: summary(o), referenceTokens: wantTokens };
    if (g.status === 'fulfilled') {
      out.goldenMaxDiff = compareLogits('golden', golden.logits, new Float32Array(g.value.logits!), golden.vocab, TOL).maxDiff;
    }
    const file = resultsFile(name);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, JSON.stringify(out, null, 2));
  }
});
