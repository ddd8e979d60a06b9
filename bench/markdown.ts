/**
 * The llama-bench style markdown table of bench results: one row per test, t/s as mean ±
 * sample standard deviation over the repeats, with min and max, and for decode the bytes read
 * per second and the share of the device's read ceiling. Shared by `gptoss bench --format md`
 * and bench/results/table.mjs (which reads saved JSON reports). Environment-agnostic.
 */
import type { TestResult } from './decode-prefill.ts';

export interface TableRun {
  model: string;
  /** Weights, e.g. "12.82 GiB". */
  size: string;
  /** Parameters, e.g. "20.91 B". */
  params: string;
  /** e.g. "WebGPU NVIDIA H200". */
  backend: string;
  kv: string;
  tests: TestResult[];
}

const COLUMNS = ['model', 'size', 'params', 'backend', 'kv', 'test', 't/s', 'min', 'max', 'GB/s', 'eff.'];
const RIGHT = new Set(['size', 'params', 'test', 't/s', 'min', 'max', 'GB/s', 'eff.']);

export function formatParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(2)} K`;
}

export function formatGiB(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

const f2 = (v: number) => v.toFixed(2);

export function markdownTable(runs: TableRun[]): string {
  const rows: string[][] = [];
  for (const r of runs) {
    for (const t of r.tests) {
      const s = t.tokensPerSecond;
      rows.push([
        r.model, r.size, r.params, r.backend, r.kv, t.test, `${f2(s.mean)} ± ${f2(s.stddev)}`, f2(s.min), f2(s.max),
        t.gbps ? f2(t.gbps.mean) : '', t.efficiency !== undefined ? `${(100 * t.efficiency).toFixed(1)} %` : '',
      ]);
    }
  }
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (RIGHT.has(COLUMNS[i]!) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (RIGHT.has(COLUMNS[i]!) ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ')} |`;
  return [line(COLUMNS), rule, ...rows.map(line)].join('\n');
}

/** The fields of a `gptoss bench --json` report that the table shows. */
export interface TableReport {
  model: { name?: string; source: string; weightBytes: number; params?: number };
  adapter: { vendor: string; architecture: string; description: string };
  kvFormat: string;
  result: { tests?: TestResult[] };
}

export function adapterName(a: TableReport['adapter']): string {
  return a.description || [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown adapter';
}

export function tableRun(rep: TableReport): TableRun {
  return {
    model: rep.model.name ?? rep.model.source,
    size: formatGiB(rep.model.weightBytes),
    params: rep.model.params === undefined ? '' : formatParams(rep.model.params),
    backend: `WebGPU ${adapterName(rep.adapter)}`,
    kv: rep.kvFormat,
    tests: rep.result.tests ?? [],
  };
}
