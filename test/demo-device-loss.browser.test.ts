/**
 * The browser demo through a GPU device loss, in headless Chromium: the engine worker's device
 * is destroyed (reached by wrapping the worker's GPU.requestAdapter before the model loads),
 * once while idle and once during an answer (which ends with the error). The page says the
 * device was lost and offers "Reload the model"; the button re-creates the device in the worker
 * and the chat answers again.
 */
import type { Page, WebWorker } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { startDemoSite, type DemoSite } from './helpers/demo-site.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, LOOP_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

// Two loads and two answers per test, on SwiftShader, on machines shared by several test runs.
const T = 360_000;

describe('browser demo through a GPU device loss (headless Chromium)', () => {
  let browser: TestBrowser | undefined;
  let site: DemoSite | undefined;
  let page: Page;
  let worker: WebWorker;

  beforeAll(async () => {
    const tok = await realTokenizer();
    site = await startDemoSite('browser-demo-device-loss', ['answer', 'loop'], async (dirOf) => {
      await writeScriptedCheckpoint(dirOf('answer'), [tok.encode(ANSWER_SCRIPT)]);
      await writeScriptedCheckpoint(dirOf('loop'), [tok.encode(LOOP_SCRIPT)]);
    });
    browser = await launchChromium();
    page = await browser.newPage('[demo]');
    const created = new Promise<WebWorker>((resolve) => page.once('workercreated', resolve));
    await page.goto(`${site.server.baseUrl}index.html`);
    worker = await created;
    // Every device the worker creates is kept in self.__devices, so the test can destroy it.
    await worker.evaluate(() => {
      const proto = Object.getPrototypeOf(navigator.gpu) as GPU;
      const requestAdapter = proto.requestAdapter;
      proto.requestAdapter = async function (this: GPU, o?: GPURequestAdapterOptions) {
        const adapter = await requestAdapter.call(this, o);
        if (!adapter) return adapter;
        const requestDevice = adapter.requestDevice.bind(adapter);
        adapter.requestDevice = async (d?: GPUDeviceDescriptor) => {
          const device = await requestDevice(d);
          const s = self as unknown as { __devices?: GPUDevice[] };
          (s.__devices ??= []).push(device);
          return device;
        };
        return adapter;
      };
    });
  }, T);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
  });

  const destroyDevice = () => worker.evaluate(() => (self as unknown as { __devices: GPUDevice[] }).__devices.at(-1)!.destroy());
  const deviceCount = () => worker.evaluate(() => (self as unknown as { __devices?: GPUDevice[] }).__devices?.length ?? 0);
  const noticeText = () => page.$eval('#notice', (el) => ((el as HTMLElement).hidden ? '' : el.textContent ?? ''));
  const isHidden = (sel: string) => page.$eval(sel, (el) => (el as HTMLElement).hidden);
  const isDisabled = (sel: string) => page.$eval(sel, (el) => (el as HTMLButtonElement).disabled);

  async function loadModel(path: string): Promise<void> {
    await page.$eval('#model', (el, v) => ((el as HTMLInputElement).value = v), path);
    await page.click('#load');
    await page.waitForFunction(() => window.__demo.loaded !== undefined || window.__demo.loadError !== undefined, { timeout: T, polling: 250 });
    const err = await page.evaluate(() => window.__demo.loadError);
    if (err) throw new Error(err);
  }

  async function ask(text: string, wait = true): Promise<string> {
    await page.type('#prompt', text);
    await page.click('#send');
    await page.waitForFunction(() => window.__demo.generating, { timeout: 10_000, polling: 50 });
    if (wait) await page.waitForFunction(() => !window.__demo.generating, { timeout: T, polling: 100 });
    return page.evaluate(() => window.__demo.lastAnswer);
  }

  async function expectLostNotice(what: string): Promise<void> {
    await page.waitForFunction(() => window.__demo.deviceLost !== undefined, { timeout: 30_000, polling: 100 });
    expect(await page.evaluate(() => window.__demo.deviceLost), `${what}: the DeviceLostError's message`).toMatch(/^the GPU device was lost \(reason "destroyed"/);
    expect(await noticeText(), `${what}: the notice`).toMatch(/The GPU device was lost \(destroyed.*Reload the model/s);
    expect(await isHidden('#recover'), `${what}: the reload button is shown`).toBe(false);
    expect(await isDisabled('#send'), `${what}: sending waits for the reload`).toBe(true);
  }

  async function reload(): Promise<void> {
    await page.click('#recover');
    await page.waitForFunction(() => window.__demo.deviceLost === undefined, { timeout: T, polling: 250 });
    expect(await noticeText(), 'the notice is gone after the reload').toBe('');
    expect(await isDisabled('#send')).toBe(false);
  }

  it('a loss while idle: the page says so at once, and "Reload the model" brings the chat back', async () => {
    await loadModel('models/answer/');
    expect(await ask('Say hello')).toBe(ANSWER_TEXT);
    expect(await deviceCount()).toBe(1);
    await destroyDevice();
    await expectLostNotice('idle loss');
    await reload();
    expect(await deviceCount(), 'the worker created a new device').toBe(2);
    expect(await ask('Say hello'), 'the answer after the reload').toBe(ANSWER_TEXT);
  }, T);

  it('a loss during an answer ends it with the error and offers the reload', async () => {
    await loadModel('models/loop/');
    await ask('Go on forever', false);
    await page.waitForFunction(() => window.__demo.lastAnswer.length > 12, { timeout: T, polling: 100 });
    await destroyDevice();
    await page.waitForFunction(() => !window.__demo.generating, { timeout: 30_000, polling: 100 });
    expect(await page.$eval('#log .assistant:last-child .answer', (el) => el.textContent ?? '')).toMatch(/la li lo.*\[error: the GPU device was lost/s);
    await expectLostNotice('loss during an answer');
    await reload();
    expect(await deviceCount(), 'one device per load, one per reload').toBe(4);
  }, T);
});
