// Prints the markdown table of every saved run in bench/results/*.json (a `gptoss bench --json`
// report, or the result.json of bench/gpu-kit/run.sh), oldest first, with a line per run saying
// where and when it was measured. Needs the built dist/ (npm install or npm run build).
//   node bench/results/table.mjs [FILE.json ...]
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const { markdownTable, tableRun } = await import(new URL('../../dist/bench/markdown.js', import.meta.url).href);
const here = dirname(fileURLToPath(import.meta.url));
const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync(here).filter((f) => f.endsWith('.json')).sort().map((f) => join(here, f));

const runs = [];
const notes = [];
for (const f of files) {
  const j = JSON.parse(readFileSync(f, 'utf8'));
  const bench = j.kind === 'gptoss-gpukit-run' ? j.bench : j;
  if (!bench || bench.kind !== 'gptoss-bench' || !bench.result?.tests) {
    console.error(`${basename(f)}: no bench result with tests, left out`);
    continue;
  }
  runs.push({ date: bench.date, run: tableRun(bench) });
  const gpu = j.gpu ? `${j.gpu.name}, driver ${j.gpu.driver}` : tableRun(bench).backend;
  const r = bench.result;
  notes.push(`- ${basename(f)}: ${gpu}; ${bench.date.slice(0, 10)}; ` +
    `${j.commit ? `commit ${j.commit.slice(0, 10)}${j.dirty ? ' (uncommitted changes)' : ''}; ` : ''}` +
    `node ${bench.runtime?.node ?? '?'}; KV ${bench.kvFormat}, context ${bench.context}; ` +
    (r.ceilingGBps ? `read ceiling ${Number(r.ceilingGBps.toPrecision(3))} GB/s, decode efficiency ${(100 * (r.decode.efficiency ?? 0)).toFixed(1)} %` : 'no ceiling measured') +
    (r.skipped?.length ? `; skipped ${r.skipped.map((s) => s.test).join(', ')}` : ''));
}
runs.sort((a, b) => a.date.localeCompare(b.date));
console.log(markdownTable(runs.map((r) => r.run)));
console.log('');
console.log(notes.join('\n'));
