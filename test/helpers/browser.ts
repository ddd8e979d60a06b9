/**
 * Headless Chromium for browser tests (puppeteer-core driving Debian's /usr/bin/chromium, no
 * browser download), with the flags that give WebGPU on SwiftShader on GPU-less machines
 * (see ../shared/ENVIRONMENT.md). Each launch gets a fresh profile, removed on close.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CHROMIUM_BASE_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const CHROMIUM_WEBGPU_FLAGS = [
  ...CHROMIUM_BASE_FLAGS,
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-vulkan-surface',
];

/** A browser without WebGPU, as on a machine or browser that lacks it. */
export const CHROMIUM_NO_WEBGPU_FLAGS = [...CHROMIUM_BASE_FLAGS, '--disable-gpu', '--disable-features=WebGPU'];

export interface TestBrowser {
  browser: Browser;
  /** A new page whose console and uncaught errors are echoed with `prefix`. */
  newPage(prefix?: string): Promise<Page>;
  close(): Promise<void>;
}

export async function launchChromium(extraArgs: string[] = [], options: { webgpu?: boolean } = {}): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'gptoss-chromium-'));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM_PATH,
      headless: true, // the flags below choose --headless=new explicitly
      args: [...(options.webgpu === false ? CHROMIUM_NO_WEBGPU_FLAGS : CHROMIUM_WEBGPU_FLAGS), `--user-data-dir=${profile}`, ...extraArgs],
      protocolTimeout: 600_000,
    });
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`cannot launch ${CHROMIUM_PATH} (apt-get install chromium): ${(e as Error).message}`);
  }
  return {
    browser,
    async newPage(prefix = '[page]') {
      const page = await browser.newPage();
      page.on('console', (m) => console.log(`${prefix} ${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => console.log(`${prefix} uncaught: ${e instanceof Error ? e.message : String(e)}`));
      return page;
    },
    async close() {
      await browser.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}
