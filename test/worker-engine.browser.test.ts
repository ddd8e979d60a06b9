/**
 * The worker engine in headless Chromium: test/browser/worker-engine.html creates a real Web
 * Worker running serveEngineInWorker and drives it through createWorkerEngine on the scripted
 * checkpoint (served over HTTP, same origin): load progress, a streamed and a plain answer, an
 * abort mid-stream (then a normal answer), and errors that arrive as the library's own classes
 * (ApiError, ContextLimitError, ModelLoadError) with their fields.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerEngineResult } from './browser/worker-engine-page.ts';
import { workerEngineViteConfig, WORKER_ENGINE_PAGE_OUT } from './browser/vite.config.ts';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const T = 360_000;

describe('createWorkerEngine with a Web Worker (headless Chromium)', () => {
  let browser: TestBrowser | undefined;
  let server: TestServer | undefined;
  let tmp = '';
  let result: WorkerEngineResult;

  beforeAll(async () => {
    await build({ ...workerEngineViteConfig, configFile: false });
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-worker-engine-browser-'));
    await writeScriptedCheckpoint(join(tmp, 'answer'), [(await realTokenizer()).encode(ANSWER_SCRIPT)]);
    await mkdir(join(WORKER_ENGINE_PAGE_OUT, 'models'), { recursive: true });
    await symlink(join(tmp, 'answer'), join(WORKER_ENGINE_PAGE_OUT, 'models', 'answer'), 'dir');
    server = await startTestServer(WORKER_ENGINE_PAGE_OUT);
    browser = await launchChromium();
    const page = await browser.newPage('[worker-engine]');
    await page.goto(`${server.baseUrl}worker-engine.html?model=models/answer/`);
    await page.waitForFunction(() => window.__workerResult !== undefined, { timeout: T, polling: 250 });
    const r = (await page.evaluate(() => window.__workerResult))!;
    if (typeof r === 'string') throw new Error(`the page failed: ${r}`);
    result = r;
  }, T + 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('loads with progress and streams the answer', () => {
    expect(result.backend).toBe('local');
    expect(result.progress.calls, 'progress events').toBeGreaterThan(0);
    expect(result.progress.done).toBe(result.progress.total);
    expect(result.streamed.text).toBe(ANSWER_TEXT);
    expect(result.streamed.chunks, 'chunks').toBeGreaterThan(3);
    expect(result.streamed.finish).toEqual(['stop']);
    expect(result.plain).toBe(ANSWER_TEXT);
    console.log(`worker engine: longest gap between the page's 20 ms timer beats ${result.longestBeatGapMs.toFixed(0)} ms`);
  });

  it('aborts a stream with an AbortError and answers again', () => {
    expect(result.aborted.name).toBe('AbortError');
    expect(result.aborted.partial.length).toBeGreaterThan(0);
    expect(ANSWER_TEXT.startsWith(result.aborted.partial) && result.aborted.partial !== ANSWER_TEXT, result.aborted.partial).toBe(true);
    expect(result.aborted.answerAfter).toBe(ANSWER_TEXT);
  });

  it('rethrows errors as the library\'s classes', () => {
    const [notFound, tooLong, missing] = result.errors;
    expect(notFound).toMatchObject({ name: 'ApiError', instance: true, status: 404, code: 'model_not_found' });
    expect(tooLong).toMatchObject({ name: 'ContextLimitError', instance: true });
    expect(tooLong!.message).toMatch(/context limit of 256/);
    expect(missing).toMatchObject({ name: 'ModelLoadError', instance: true });
  });
});
