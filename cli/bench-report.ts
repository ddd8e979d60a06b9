/** The human-readable report of `gptoss bench` (the default --format text). */
import type { BenchResult, KernelTime, Stats, StepTiming } from '../bench/decode-prefill.ts';
import type { Ceiling } from '../bench/ceiling.ts';

export const gb = (n: number) => (n >= 1e8 ? `${(n / 1e9).toFixed(3)} GB` : n >= 1e5 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`);
const sig = (v: number) => String(Number(v.toPrecision(3)));

/** digits: decimals, or 'sig' for three significant digits (rates span 0.1 to 10^4 across devices). */
function fmtStats(s: Stats, digits: number | 'sig'): string {
  const f = (v: number) => (digits === 'sig' ? sig(v) : v.toFixed(digits));
  return s.runs.length === 1 ? f(s.median) : `mean ${f(s.mean)} ± ${f(s.stddev)} (min ${f(s.min)}, max ${f(s.max)})`;
}

function kernelRows(rows: KernelTime[]): string[] {
  const w = Math.max(6, ...rows.map((r) => r.kernel.length));
  const head = `    ${'kernel'.padEnd(w)} ${'n'.padStart(4)} ${'µs'.padStart(11)} ${'bytes read'.padStart(11)} ${'GB/s'.padStart(8)} ${'share'.padStart(7)}`;
  return [head, ...rows.map((r) =>
    `    ${r.kernel.padEnd(w)} ${String(r.count).padStart(4)} ${r.us.toFixed(1).padStart(11)} ${(r.bytesRead === undefined ? '-' : gb(r.bytesRead)).padStart(11)} ` +
    `${(r.gbps === undefined ? '-' : sig(r.gbps)).padStart(8)} ${`${r.percent.toFixed(1)} %`.padStart(7)}`)];
}

function stepLine(s: StepTiming): string[] {
  const lines = [`    kernels sum ${s.gpuUs.toFixed(0)} µs over ${s.ops} dispatches; GPU clock first start to last end ${s.spanUs.toFixed(0)} µs; ` +
    `profiled submission ${s.profiledWallUs.toFixed(0)} µs wall`];
  if (s.wallUs !== undefined) {
    lines.push(`    the same step run normally: ${s.wallUs.toFixed(0)} µs wall, so ${s.overheadUs!.toFixed(0)} µs (${(100 * s.overheadUs! / s.wallUs).toFixed(0)} %) ` +
      `is outside the kernels (~${(s.overheadUs! / s.ops).toFixed(1)} µs per dispatch: launch and pass overhead, gaps, the read-back)`);
  }
  if (s.nonPositive > 0) lines.push(`    note: ${s.nonPositive} of ${s.ops} kernels got no positive duration from the timestamps (quantised or missing)`);
  return lines;
}

export function report(r: BenchResult, ceiling?: Ceiling): string {
  const d = r.decode;
  const lines = [
    `prefill:  ${fmtStats(r.prefill.tokensPerSecond, 'sig')} tokens/s  [${fmtStats(r.prefill.ms, 1)} ms for ${r.promptLen} tokens]`,
    `decode:   ${fmtStats(d.tokensPerSecond, 'sig')} tokens/s  [${fmtStats(d.ms, 1)} ms for ${r.gen} tokens at depth ${d.depth}]`,
    `          ${fmtStats(d.gbps, 'sig')} GB/s read (${gb(d.bytesPerToken)}/token: weights ${gb(d.weightBytesPerToken)}, KV cache ${gb(d.kvBytesPerToken)}; ` +
      `weights alone ${sig(d.weightGBps.mean)} GB/s)`,
  ];
  if (ceiling) {
    lines.push(`ceiling:  ${sig(ceiling.gbps)} GB/s read bandwidth of this device (best of ${ceiling.runs.length}, ` +
      `${gb(ceiling.bytes)} streamed, ${ceiling.method === 'timestamp' ? 'GPU timestamps' : 'host clock'})`);
  }
  if (d.efficiency !== undefined) lines.push(`          decode efficiency ${(100 * d.efficiency).toFixed(1)} % of the ceiling`);
  for (const s of r.skipped) lines.push(`skipped:  ${s.test} (${s.reason})`);
  if (r.profile) {
    const p = r.profile;
    lines.push(`per-kernel GPU time (timestamps around each kernel's pass, one command buffer per step):`,
      `  prefill batch of ${p.prefillTokens} tokens at position 0:`, ...kernelRows(p.prefill), ...stepLine(p.prefillStep));
    for (const a of p.atDepth) {
      lines.push(`  one decode token at position ${a.step.position}:`, ...kernelRows(a.kernels), ...stepLine(a.step));
    }
  }
  return lines.join('\n');
}
