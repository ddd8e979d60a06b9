import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The machines have 2 cores; heavy files (synthetic 20b-shaped runs) must not all run at once.
    maxWorkers: 2,
  },
});
