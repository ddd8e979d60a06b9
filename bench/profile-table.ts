/**
 * A step's per-op GPU times (GpuSession.profile) summed per kernel name: the per-kernel table
 * of `gptoss bench --profile` and the bench page. Environment-agnostic.
 */
import type { StepProfile } from '../engine/gpu-profiler.ts';

export interface KernelTime {
  kernel: string;
  /** Dispatches (passes) of this kernel in the step. */
  count: number;
  /** GPU microseconds, summed over the dispatches. */
  us: number;
  /** Estimated bytes read, summed (absent when the ops carry no estimate). */
  bytesRead?: number;
  /** bytesRead / us, in GB/s (1e9 bytes). */
  gbps?: number;
  /** Share of the step's summed kernel time. */
  percent: number;
}

export interface StepTiming {
  tokens: number;
  /** Position of the step's first token (the context depth). */
  position: number;
  /** Dispatches timed. */
  ops: number;
  /** Sum of the kernels' GPU times (µs). */
  gpuUs: number;
  /** GPU clock from the first kernel's start to the last one's end (µs). */
  spanUs: number;
  /** Host clock around the profiled submission, timestamps and one pass per kernel included (µs). */
  profiledWallUs: number;
  /** Host clock of the same step run normally (one pass, one submit), when measured (µs). */
  wallUs?: number;
  /** wallUs - gpuUs: what the step costs beyond its kernels (dispatch and pass overhead, gaps, the read-back). */
  overheadUs?: number;
  /** Kernels whose timestamps gave no positive duration (quantised or missing timestamps). */
  nonPositive: number;
}

export function kernelTable(p: StepProfile): KernelTime[] {
  const by = new Map<string, KernelTime>();
  for (const op of p.ops) {
    let r = by.get(op.name);
    if (!r) by.set(op.name, (r = { kernel: op.name, count: 0, us: 0, percent: 0 }));
    r.count++;
    r.us += op.us;
    if (op.bytesRead !== undefined) r.bytesRead = (r.bytesRead ?? 0) + op.bytesRead;
  }
  const rows = [...by.values()];
  for (const r of rows) {
    r.percent = p.gpuUs > 0 ? (100 * r.us) / p.gpuUs : 0;
    if (r.bytesRead !== undefined && r.us > 0) r.gbps = r.bytesRead / (r.us * 1000);
  }
  return rows.sort((a, b) => b.us - a.us);
}

export function stepTiming(p: StepProfile, wallUs?: number): StepTiming {
  const t: StepTiming = {
    tokens: p.tokens, position: p.position, ops: p.ops.length, gpuUs: p.gpuUs, spanUs: p.spanUs,
    profiledWallUs: p.wallUs, nonPositive: p.nonPositive,
  };
  if (wallUs !== undefined) {
    t.wallUs = wallUs;
    t.overheadUs = wallUs - p.gpuUs;
  }
  return t;
}
