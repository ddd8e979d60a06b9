/**
 * GPU device loss in headless Chromium (WebGPU on SwiftShader), from the same engine source as
 * in Node: test/browser/device-loss-page.ts destroys the engine's device during a greedy
 * generation, then checks the errors and recovery that are asserted here: the running
 * generation and every request after the loss reject with DeviceLostError (promptly, not
 * Chromium's AbortError), and after engine.recover() the greedy tokens equal those from before.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import type { DeviceLossResult, SeenError } from './browser/device-loss-page.ts';
import { deviceLossViteConfig, DEVICE_LOSS_PAGE_OUT } from './browser/vite.config.ts';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';

const PROMPT = [200006, 17360, 200008, 3575, 553, 17554, 162016, 11];
const N = 12;
const PAGE_TIMEOUT_MS = 300_000;
const LOSS_BOUND_MS = 10_000;
const AT_ONCE_MS = 500;

describe('GPU device loss (headless Chromium)', () => {
  let browser: TestBrowser | undefined;
  let server: TestServer | undefined;
  let tmp = '';
  let result: DeviceLossResult;

  beforeAll(async () => {
    await build({ ...deviceLossViteConfig, configFile: false });
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-devloss-browser-'));
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 21, outDir: join(tmp, 'tiny') });
    await mkdir(join(DEVICE_LOSS_PAGE_OUT, 'models'), { recursive: true });
    await symlink(join(tmp, 'tiny'), join(DEVICE_LOSS_PAGE_OUT, 'models', 'tiny'), 'dir');
    server = await startTestServer(DEVICE_LOSS_PAGE_OUT);
    browser = await launchChromium();
    const page = await browser.newPage('[chromium device-loss]');
    try {
      await page.goto(`${server.baseUrl}device-loss.html?${new URLSearchParams({ model: 'models/tiny/', tokens: PROMPT.join(','), n: String(N) })}`);
      await page.waitForFunction(() => window.__deviceLossResult !== undefined, { timeout: PAGE_TIMEOUT_MS, polling: 250 });
      const r = (await page.evaluate(() => window.__deviceLossResult))!;
      if (typeof r === 'string') throw new Error(r);
      result = r;
    } finally {
      await page.close();
    }
  }, PAGE_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  function expectDeviceLost(e: SeenError, what: string, boundMs: number): void {
    expect(e.typed, `${what}: instanceof DeviceLostError (got ${e.name}: ${e.message})`).toBe(true);
    expect(e.name, `${what}: error name`).toBe('DeviceLostError');
    expect(e.reason, `${what}: GPUDeviceLostInfo.reason of device.destroy()`).toBe('destroyed');
    expect(e.message, `${what}: message`).toMatch(/^the GPU device was lost \(reason "destroyed"/);
    expect(e.ms, `${what}: ms until the rejection`).toBeLessThan(boundMs);
  }

  it('a generation running when the device is destroyed rejects with DeviceLostError, promptly', () => {
    console.log(`chromium: destroyed after ${result.tokensBeforeLoss} tokens, rejected ${result.running.ms.toFixed(0)} ms later: ${result.running.message}`);
    expectDeviceLost(result.running, 'the running generation', LOSS_BOUND_MS);
    expect(result.tokensBeforeLoss, 'tokens before the loss').toBeGreaterThan(0);
    expect(result.tokensBeforeLoss, 'the generation stopped at the loss').toBeLessThan(50);
    expect(result.stateAfterLoss).toBe('lost');
  });

  it('requests after the loss get the same typed error at once', () => {
    expectDeviceLost(result.chatAfter, 'chat.completions.create after the loss', AT_ONCE_MS);
    expectDeviceLost(result.streamAfter, 'a streamed chat.completions.create after the loss', AT_ONCE_MS);
    expectDeviceLost(result.sessionAfter, 'createSession after the loss', AT_ONCE_MS);
    expect(result.chatAfter.message).toMatch(/call engine\.recover\(\)/);
  });

  it('engine.recover() re-creates the device: the same greedy tokens as before the loss', () => {
    console.log(`chromium: recovered in ${result.recoverMs.toFixed(0)} ms; tokens ${result.after.join(',')}`);
    expect(result.stateAfterRecover).toBe('ready');
    expect(result.devices, 'a second device was created').toBe(2);
    expect(new Set(result.before).size, 'the greedy sequence is not one repeated token').toBeGreaterThan(3);
    expect(result.after, 'greedy tokens after recovery vs before the loss').toEqual(result.before);
  });
});
