/** Builds test/browser/kernels.html (and its imports from the engine) for the headless-Chromium tests. */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export const KERNELS_PAGE_OUT = fileURLToPath(new URL('../../test-artifacts/browser-kernels/', import.meta.url));

export default defineConfig({
  root: here,
  logLevel: 'warn',
  build: {
    outDir: KERNELS_PAGE_OUT,
    emptyOutDir: true,
    target: 'es2022',
    minify: false,
    rollupOptions: { input: { kernels: `${here}kernels.html` } },
  },
});
