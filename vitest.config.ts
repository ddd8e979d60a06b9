import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import LongestFirstSequencer from './test/helpers/sequencer.ts';

// On GPU-less Linux machines WebGPU runs on SwiftShader (Debian's chromium ships the driver).
// A machine with a real Vulkan driver, or one where the caller chose a driver, keeps its own.
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const env: Record<string, string> = {};
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER)) env.VK_ICD_FILENAMES = SWIFTSHADER;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A run id for work shared between test files (the demo is built once per run).
    globalSetup: ['test/helpers/global-setup.ts'],
    env,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The machines have 2 cores; heavy files (synthetic 20b-shaped runs) must not all run at once.
    maxWorkers: 2,
    // Longest files first (test/durations.json on a fresh clone), so both workers end together.
    sequence: { sequencer: LongestFirstSequencer },
  },
});
