/**
 * Per-kernel GPU time from the GPU's own clock: every op is recorded in ONE command buffer,
 * each in its own compute pass whose beginning and end write timestamps into a query set; one
 * submit, one resolve, one read-back. The durations are the GPU's, not round trips.
 *
 * Needs the device feature 'timestamp-query' (engine/gpu/device.ts asks for it when the adapter
 * offers it). Implementations may quantise timestamps (browsers round to ~100 µs unless their
 * developer features are on) or report zero: a delta that is zero or negative counts as 0 µs
 * and is counted in `nonPositive`, so callers can say the numbers are unreliable.
 */
import { GpuUnavailableError } from './gpu/device.ts';

/** The device cannot time kernels on its own clock (a GpuUnavailableError: the CLI says so and exits 1). */
export class TimestampQueryUnavailableError extends GpuUnavailableError {
  override name = 'TimestampQueryUnavailableError';
  constructor() {
    super("per-kernel GPU timing needs the WebGPU feature 'timestamp-query', which this device does not have " +
      '(the adapter does not offer it, or the browser hides it: Chrome offers it from version 121)');
  }
}

export interface ProfiledOp {
  name: string;
  /** Estimated bytes the op reads from GPU memory (weights, activations, KV rows). */
  bytesRead?: number;
  /** Encoded before the op's pass (e.g. a buffer copy the op depends on); not timed. */
  before?(encoder: GPUCommandEncoder): void;
  /** Records the op's dispatch(es) into its own pass. */
  run(pass: GPUComputePassEncoder): void;
}

export interface OpTime {
  name: string;
  /** GPU time of the op's pass in microseconds (0 when the timestamps gave no positive delta). */
  us: number;
  bytesRead?: number;
}

export interface OpsProfile {
  ops: OpTime[];
  /** Sum of the ops' GPU times (µs). */
  gpuUs: number;
  /** First pass's beginning to the last pass's end on the GPU clock (µs): gpuUs plus the gaps. */
  spanUs: number;
  /** Submit to the read-back of the timestamps, on the host clock (µs). */
  wallUs: number;
  /** Ops whose end timestamp was not after their beginning (quantised or missing timestamps). */
  nonPositive: number;
}

/** The WebGPU limit on one query set's size. */
const MAX_QUERIES = 4096;

export function hasTimestamps(device: GPUDevice): boolean {
  return device.features.has('timestamp-query');
}

/** Runs `ops` once, in order, and returns each one's GPU time. */
export async function profileOps(device: GPUDevice, ops: ProfiledOp[]): Promise<OpsProfile> {
  if (!hasTimestamps(device)) throw new TimestampQueryUnavailableError();
  if (ops.length === 0) return { ops: [], gpuUs: 0, spanUs: 0, wallUs: 0, nonPositive: 0 };
  const queries = 2 * ops.length;
  const sets: GPUQuerySet[] = [];
  for (let at = 0; at < queries; at += MAX_QUERIES) {
    sets.push(device.createQuerySet({ type: 'timestamp', count: Math.min(MAX_QUERIES, queries - at), label: 'profile' }));
  }
  const bytes = queries * 8;
  const resolve = device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'profile_resolve' });
  const readback = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'profile_readback' });
  try {
    const enc = device.createCommandEncoder({ label: `profile ${ops.length} ops` });
    ops.forEach((op, i) => {
      op.before?.(enc);
      const q = 2 * i;
      const querySet = sets[Math.floor(q / MAX_QUERIES)]!;
      const pass = enc.beginComputePass({
        label: op.name,
        timestampWrites: { querySet, beginningOfPassWriteIndex: q % MAX_QUERIES, endOfPassWriteIndex: (q % MAX_QUERIES) + 1 },
      });
      op.run(pass);
      pass.end();
    });
    sets.forEach((s, i) => enc.resolveQuerySet(s, 0, s.count, resolve, i * MAX_QUERIES * 8));
    enc.copyBufferToBuffer(resolve, 0, readback, 0, bytes);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    const wallUs = (performance.now() - t0) * 1000;
    const stamps = new BigUint64Array(readback.getMappedRange().slice(0));
    readback.unmap();
    return { ...timesFromStamps(ops, stamps), wallUs };
  } finally {
    for (const s of sets) s.destroy();
    resolve.destroy();
    readback.destroy();
  }
}

/** Durations from [begin, end] nanosecond pairs, one pair per op (exported for tests). */
export function timesFromStamps(ops: { name: string; bytesRead?: number }[], stamps: BigUint64Array): Omit<OpsProfile, 'wallUs'> {
  let nonPositive = 0;
  let first: bigint | undefined;
  let last: bigint | undefined;
  const out = ops.map((op, i): OpTime => {
    const b = stamps[2 * i]!;
    const e = stamps[2 * i + 1]!;
    if (b > 0n && (first === undefined || b < first)) first = b;
    if (e > 0n && (last === undefined || e > last)) last = e;
    const d = e - b;
    if (d <= 0n) nonPositive++;
    const t: OpTime = { name: op.name, us: d > 0n ? Number(d) / 1000 : 0 };
    if (op.bytesRead !== undefined) t.bytesRead = op.bytesRead;
    return t;
  });
  const spanUs = first !== undefined && last !== undefined && last > first ? Number(last - first) / 1000 : 0;
  return { ops: out, gpuUs: out.reduce((a, o) => a + o.us, 0), spanUs, nonPositive };
}

/** A session's profile of one forward step (GpuSession.profile). */
export interface StepProfile extends OpsProfile {
  /** Tokens in the step (1 for decode). */
  tokens: number;
  /** Position of its first token (the context depth). */
  position: number;
}
