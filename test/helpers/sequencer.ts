/**
 * The order test files start in: longest first, so that the two workers finish together instead
 * of one running a 2-minute file alone at the end. A file's length is its duration in the last
 * run on this machine (Vitest's cache) or, on a fresh clone such as CI's, the one recorded in
 * test/durations.json (`npm run test:durations` refreshes it from the cache after a full run).
 * Vitest's own order falls back to file size on a fresh clone, which put the Node kernel tables
 * (the smallest file, two minutes) last.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const recorded = JSON.parse(readFileSync(new URL('../durations.json', import.meta.url), 'utf8')) as Record<string, number>;

export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const seconds = (spec: TestSpecification): number => {
      const file = relative(root, spec.moduleId).split('\\').join('/');
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${file}`)?.duration;
      return cached !== undefined ? cached / 1000 : recorded[file] ?? 0;
    };
    return [...files].sort((a, b) => seconds(b) - seconds(a));
  }
}
