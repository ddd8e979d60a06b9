// Gathers one run of bench/gpu-kit/run.sh into $OUT/result.json (GPU, driver, date, commit,
// the bench report, the GPU tests' summary, timings) and $OUT/bench.md (the markdown table).
// Plain Node, no dependencies but the built dist/ (for the table).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string' }, kit: { type: 'string' }, mode: { type: 'string' }, 'gpu-csv': { type: 'string' },
    'tests-rc': { type: 'string' }, 'tests-s': { type: 'string' }, 'bench-rc': { type: 'string' }, 'bench-s': { type: 'string' }, 'total-s': { type: 'string' },
  },
});
const readJson = (p) => {
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return null;
  }
};
const num = (v) => (v === undefined ? null : Number(v));

/** nvidia-smi --query-gpu ... --format=csv: a header line, then one line per GPU. */
function gpus(file) {
  if (!file || !existsSync(file)) return [];
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  if (!head) return [];
  const keys = head.split(',').map((k) => k.trim().replace(/ \[.*\]$/, ''));
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i], v.trim()])));
}

function testSummary(t) {
  if (!t) return null;
  const failures = [];
  const files = (t.testResults ?? []).map((f) => {
    const r = f.assertionResults ?? [];
    for (const x of r) if (x.status === 'failed') failures.push({ test: x.fullName, message: (x.failureMessages ?? []).join('\n').slice(0, 800) });
    return { file: f.name.replace(/^.*\/(test\/)/, '$1'), status: f.status, passed: r.filter((x) => x.status === 'passed').length, failed: r.filter((x) => x.status === 'failed').length, message: f.status === 'failed' && r.length === 0 ? String(f.message ?? '').slice(0, 800) : undefined };
  });
  return { passed: t.numPassedTests, failed: t.numFailedTests, skipped: t.numPendingTests + (t.numTodoTests ?? 0), total: t.numTotalTests, files, failures };
}

const out = a.out;
const manifest = readJson(join(a.kit, 'manifest.json')) ?? {};
const bench = readJson(join(out, 'bench.json'));
const gpu = gpus(a['gpu-csv']);
let table = null;
if (bench) {
  const { markdownTable, tableRun } = await import(new URL('../../dist/bench/markdown.js', import.meta.url).href);
  table = markdownTable([tableRun(bench)]);
  writeFileSync(join(out, 'bench.md'), table + '\n');
}
const result = {
  kind: 'gptoss-gpukit-run',
  version: 1,
  mode: a.mode,
  date: new Date().toISOString(),
  commit: manifest.commit ?? null,
  dirty: manifest.dirty ?? null,
  packed: manifest.packed ?? null,
  gpu: gpu[0] ? { name: gpu[0].name, driver: gpu[0].driver_version, memoryTotal: gpu[0]['memory.total'], maxMemoryClock: gpu[0]['clocks.max.memory'], maxSmClock: gpu[0]['clocks.max.sm'], count: gpu.length } : null,
  adapter: bench?.adapter ?? null,
  node: process.version,
  seconds: { tests: num(a['tests-s']), bench: num(a['bench-s']), total: num(a['total-s']) },
  exitCodes: { tests: num(a['tests-rc']), bench: num(a['bench-rc']) },
  tests: testSummary(readJson(join(out, 'tests.json'))),
  table,
  bench,
};
writeFileSync(join(out, 'result.json'), JSON.stringify(result, null, 2) + '\n');
const r = bench?.result;
console.log(`result.json: ${result.gpu?.name ?? bench?.adapter?.description ?? 'unknown GPU'}, commit ${String(result.commit).slice(0, 10)}${result.dirty ? ' (dirty)' : ''}; ` +
  `tests ${result.tests ? `${result.tests.passed} passed, ${result.tests.failed} failed` : 'missing'}; ` +
  (r ? `decode ${r.decode.tokensPerSecond.mean.toFixed(1)} t/s, ceiling ${r.ceilingGBps === undefined ? '-' : Number(r.ceilingGBps.toPrecision(3))} GB/s, efficiency ${((r.decode.efficiency ?? 0) * 100).toFixed(1)} %` : 'no bench result'));
if (table) console.log(table);
