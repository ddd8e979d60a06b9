/**
 * The device's read-bandwidth ceiling: the best GB/s of kernels/bandwidth.ts streaming one
 * large buffer (1 GiB by default, or the largest one binding allows), timed by the GPU's
 * timestamps when the device has them, else by the host clock around submit and
 * onSubmittedWorkDone. Decode efficiency is the bytes a token reads x tokens/s over this.
 * Environment-agnostic (no node: imports).
 */
import { hasTimestamps, profileOps } from '../engine/gpu-profiler.ts';
import { StreamReadKernel } from '../kernels/bandwidth.ts';
import { PipelineCache } from '../kernels/pipeline-cache.ts';

export const DEFAULT_CEILING_BYTES = 1 << 30;

export interface CeilingOptions {
  /** Buffer size (default 1 GiB), capped by the device's binding and buffer limits. */
  bytes?: number;
  /** Timed runs after one warm-up (default 8); the best counts. */
  repeat?: number;
  /** Stop after this many seconds of timed runs, once two are done (default 20: CPU adapters are slow). */
  maxSeconds?: number;
}

export interface Ceiling {
  /** Best of the runs, in GB/s (1e9 bytes). */
  gbps: number;
  /** Bytes read per run. */
  bytes: number;
  /** GB/s of each timed run, in order. */
  runs: number[];
  /** 'timestamp': GPU clock; 'wall': host clock around submit (no timestamp-query, or it gave zero). */
  method: 'timestamp' | 'wall';
  workgroups: number;
}

/** The buffer size to stream: `requested` within the device's limits, a multiple of 16 bytes. */
export function ceilingBytes(device: GPUDevice, requested = DEFAULT_CEILING_BYTES): number {
  const cap = Math.min(requested, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return Math.floor(cap / 16) * 16;
}

export async function measureReadCeiling(device: GPUDevice, opts: CeilingOptions = {}): Promise<Ceiling> {
  const repeat = opts.repeat ?? 8;
  if (!Number.isSafeInteger(repeat) || repeat < 1) throw new RangeError(`repeat must be an integer >= 1, got ${repeat}`);
  let bytes = ceilingBytes(device, opts.bytes);
  if (bytes < 16) throw new RangeError(`the bandwidth buffer must be at least 16 bytes, got ${opts.bytes}`);
  const kernel = new StreamReadKernel(PipelineCache.for(device));
  const src = await allocate(device, bytes);
  bytes = src.size;
  const out = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'stream_read_out' });
  try {
    const bg = kernel.bind(device, src, out);
    const workgroups = StreamReadKernel.workgroups(bytes, device.limits.maxComputeWorkgroupsPerDimension);
    const timestamps = hasTimestamps(device);
    let usedWall = false;
    const once = async (): Promise<number> => {
      if (timestamps) {
        const p = await profileOps(device, [{ name: kernel.key, bytesRead: bytes, run: (pass) => kernel.encode(pass, bg, workgroups) }]);
        if (p.gpuUs > 0) return p.gpuUs;
        usedWall = true;
        return p.wallUs;
      }
      usedWall = true;
      const enc = device.createCommandEncoder({ label: 'stream_read' });
      const pass = enc.beginComputePass();
      kernel.encode(pass, bg, workgroups);
      pass.end();
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      return (performance.now() - t0) * 1000;
    };
    await once(); // warm-up: pipeline, first touch (lazy zeroing) of the buffer
    usedWall = false;
    const runs: number[] = [];
    const t0 = performance.now();
    const budgetMs = (opts.maxSeconds ?? 20) * 1000;
    while (runs.length < repeat && (runs.length < 2 || performance.now() - t0 < budgetMs)) {
      const us = await once();
      runs.push(us > 0 ? bytes / (us * 1000) : 0);
    }
    return { gbps: Math.max(...runs), bytes, runs, method: usedWall ? 'wall' : 'timestamp', workgroups };
  } finally {
    src.destroy();
    out.destroy();
  }
}

/** A storage buffer of `bytes`, halved (down to 64 MiB) while the device runs out of memory. */
async function allocate(device: GPUDevice, bytes: number): Promise<GPUBuffer> {
  for (;;) {
    device.pushErrorScope('out-of-memory');
    const b = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE, label: 'stream_read_src' });
    const err = await device.popErrorScope();
    if (!err) return b;
    b.destroy();
    if (bytes <= 64 << 20) throw new Error(`cannot allocate ${bytes} bytes for the bandwidth test: ${err.message}`);
    bytes = Math.floor(bytes / 2 / 16) * 16;
  }
}
