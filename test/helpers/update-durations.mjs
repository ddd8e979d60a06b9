// Writes test/durations.json (seconds per test file, for test/helpers/sequencer.ts) from the
// durations Vitest cached in its last run on this machine. Run after a full, unfiltered `npm test`
// (a run filtered with -t caches the shorter time of the part it ran).
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = 'node_modules/.vite/vitest';
const caches = readdirSync(dir).map((d) => join(dir, d, 'results.json')).filter((f) => statSync(f, { throwIfNoEntry: false }));
if (caches.length === 0) throw new Error(`no Vitest results in ${dir}: run the tests first`);
const newest = caches.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
const { results } = JSON.parse(readFileSync(newest, 'utf8'));
const seconds = Object.fromEntries(
  results
    .map(([key, r]) => [key.slice(key.indexOf(':') + 1), Math.round(r.duration / 100) / 10])
    .filter(([file]) => existsSync(file))
    .sort((a, b) => b[1] - a[1]),
);
writeFileSync('test/durations.json', `${JSON.stringify(seconds, null, 2)}\n`);
console.log(`test/durations.json: ${Object.keys(seconds).length} files from ${newest}`);
