/**
 * Headless browsers for the browser tests, driven by puppeteer-core (no browser download):
 * - Chromium: Debian's /usr/bin/chromium over the DevTools protocol, WebGPU through Dawn on its
 *   bundled SwiftShader (the flags below);
 * - Firefox: Debian's /usr/bin/firefox-esr over WebDriver BiDi, WebGPU through wgpu on the
 *   SwiftShader Vulkan driver that Debian's chromium package installs (VK_ICD_FILENAMES) and the
 *   prefs below. BiDi has no CDP session: `page.createCDPSession()` throws there.
 * Each launch gets a fresh profile, removed on close. A browser that is missing or fails to start
 * is an error, never a skip (see docs/BROWSERS.md and ../shared/ENVIRONMENT.md).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type LaunchOptions as PuppeteerLaunchOptions, type Page } from 'puppeteer-core';
import { SWIFTSHADER_DAWN_FLAG } from '../../engine/gpu/node-vulkan.ts';

export type BrowserName = 'chromium' | 'firefox';

/** The browsers every browser test runs in. */
export const BROWSERS: readonly BrowserName[] = ['chromium', 'firefox'];

/** For test names: the browser and its WebGPU implementation. */
export const BROWSER_LABEL: Record<BrowserName, string> = {
  chromium: 'headless Chromium, Dawn',
  firefox: 'headless Firefox, wgpu',
};

/** `describe.each(BROWSER_CASES)('... (%s)', (label, name) => ...)`: one suite per browser, named by its label. */
export const BROWSER_CASES: readonly (readonly [label: string, name: BrowserName])[] = BROWSERS.map((name) => [BROWSER_LABEL[name], name] as const);

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
/** The Vulkan driver manifest of the SwiftShader that Debian's chromium package installs. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

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
  // Workgroup memory zeroed by Tint's code rather than by SwiftShader's compile of the zero
  // initializers (engine/gpu/node-vulkan.ts, dawnFlags: seconds per kernel): the same zeroing.
  `--${SWIFTSHADER_DAWN_FLAG}`,
];

/** A browser without WebGPU, as on a machine or browser that lacks it. */
export const CHROMIUM_NO_WEBGPU_FLAGS = [...CHROMIUM_BASE_FLAGS, '--disable-gpu', '--disable-features=WebGPU'];

/** WebGPU on, also on a CPU (SwiftShader) adapter that Firefox's blocklist would refuse. */
export const FIREFOX_WEBGPU_PREFS: Record<string, unknown> = {
  'dom.webgpu.enabled': true,
  'gfx.webgpu.ignore-blocklist': true,
  'gfx.webgpu.force-enabled': true,
};

/** WebGPU off: the page sees no navigator.gpu, as in a Firefox that has not shipped it. */
export const FIREFOX_NO_WEBGPU_PREFS: Record<string, unknown> = { 'dom.webgpu.enabled': false };

export interface LaunchOptions {
  /** false: a browser without WebGPU (default true). */
  webgpu?: boolean;
  /** Extra command-line flags for Chromium (an error for Firefox). */
  chromiumArgs?: string[];
  /** Extra preferences for Firefox (an error for Chromium). */
  firefoxPrefs?: Record<string, unknown>;
}

export interface TestBrowser {
  name: BrowserName;
  browser: Browser;
  /** A new page whose console and uncaught errors are echoed with `prefix`. */
  newPage(prefix?: string): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Firefox reads VK_ICD_FILENAMES from its environment: the caller's choice of Vulkan driver is
 * kept, otherwise SwiftShader is used where Debian's chromium installed it (as vitest.config.ts
 * does for Dawn in Node).
 */
function firefoxEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  return env;
}

const INSTALL_HINT: Record<BrowserName, string> = { chromium: 'apt-get install chromium', firefox: 'apt-get install firefox-esr' };

/** Launches `name` headless with a fresh profile (removed by close()). */
export async function launchBrowser(name: BrowserName, options: LaunchOptions = {}): Promise<TestBrowser> {
  const webgpu = options.webgpu !== false;
  if (name === 'firefox' && options.chromiumArgs?.length) throw new Error('chromiumArgs given for Firefox');
  if (name === 'chromium' && options.firefoxPrefs) throw new Error('firefoxPrefs given for Chromium');
  const executablePath = name === 'chromium' ? CHROMIUM_PATH : FIREFOX_PATH;
  const profile = await mkdtemp(join(tmpdir(), `gptoss-${name}-`));
  const common = { executablePath, headless: true, protocolTimeout: 600_000 } satisfies PuppeteerLaunchOptions;
  const launch: PuppeteerLaunchOptions = name === 'chromium'
    ? {
      ...common,
      browser: 'chrome',
      // The flags choose --headless=new explicitly.
      args: [...(webgpu ? CHROMIUM_WEBGPU_FLAGS : CHROMIUM_NO_WEBGPU_FLAGS), `--user-data-dir=${profile}`, ...(options.chromiumArgs ?? [])],
    }
    : {
      ...common,
      browser: 'firefox',
      userDataDir: profile,
      extraPrefsFirefox: { ...(webgpu ? FIREFOX_WEBGPU_PREFS : FIREFOX_NO_WEBGPU_PREFS), ...options.firefoxPrefs },
      env: firefoxEnv(),
    };
  let browser: Browser;
  try {
    browser = await puppeteer.launch(launch);
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`cannot launch ${executablePath} (${INSTALL_HINT[name]}): ${(e as Error).message}`);
  }
  return {
    name,
    browser,
    async newPage(prefix = `[${name}]`) {
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

/** launchBrowser('chromium', ...) with extra flags: kept for tests written before Firefox. */
export function launchChromium(extraArgs: string[] = [], options: { webgpu?: boolean } = {}): Promise<TestBrowser> {
  return launchBrowser('chromium', { ...options, chromiumArgs: extraArgs });
}
