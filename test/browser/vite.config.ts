/**
 * Builds the headless-Chromium test pages (and their imports from the engine): the default export
 * builds test/browser/kernels.html, `engineViteConfig` builds test/browser/engine.html,
 * `deviceLossViteConfig` test/browser/device-loss.html, `workerEngineViteConfig` test/browser/worker-engine.html,
 * `cacheViteConfig` test/browser/cache.html. Each page has its own output directory
 * so the browser test files can build at the same time.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type UserConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export const KERNELS_PAGE_OUT = fileURLToPath(new URL('../../test-artifacts/browser-kernels/', import.meta.url));
export const ENGINE_PAGE_OUT = fileURLToPath(new URL('../../test-artifacts/browser-engine/', import.meta.url));
export const DEVICE_LOSS_PAGE_OUT = fileURLToPath(new URL('../../test-artifacts/browser-device-loss/', import.meta.url));
export const WORKER_ENGINE_PAGE_OUT = fileURLToPath(new URL('../../test-artifacts/browser-worker-engine/', import.meta.url));
export const CACHE_PAGE_OUT = fileURLToPath(new URL('../../test-artifacts/browser-cache/', import.meta.url));

function pageConfig(page: string, outDir: string): UserConfig {
  return {
    root: here,
    logLevel: 'warn',
    worker: { format: 'es' },
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      minify: false,
      rollupOptions: { input: { [page]: `${here}${page}.html` } },
    },
  };
}

export const engineViteConfig: UserConfig = defineConfig(pageConfig('engine', ENGINE_PAGE_OUT));

export const deviceLossViteConfig: UserConfig = defineConfig(pageConfig('device-loss', DEVICE_LOSS_PAGE_OUT));

export const workerEngineViteConfig: UserConfig = defineConfig(pageConfig('worker-engine', WORKER_ENGINE_PAGE_OUT));
export const cacheViteConfig: UserConfig = defineConfig(pageConfig('cache', CACHE_PAGE_OUT));

export default defineConfig(pageConfig('kernels', KERNELS_PAGE_OUT));
