/**
 * The browser demo: `npm run demo` serves it, `npm run build:demo` builds a static site (relative
 * paths) with two pages: the chat (index.html) and the benchmark (bench.html).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export const DEMO_ROOT = fileURLToPath(new URL('.', import.meta.url));
export const DEMO_OUT = fileURLToPath(new URL('./dist/', import.meta.url));

export default defineConfig({
  root: DEMO_ROOT,
  base: './',
  worker: { format: 'es' },
  build: {
    outDir: DEMO_OUT,
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: {
        index: fileURLToPath(new URL('./index.html', import.meta.url)),
        bench: fileURLToPath(new URL('./bench.html', import.meta.url)),
      },
    },
  },
});
