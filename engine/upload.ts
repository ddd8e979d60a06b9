/**
 * Streams checkpoint tensors straight into GPU buffers through bounded staging memory: each
 * chunk read from the source is written with queue.writeBuffer, and every `flushBytes` we wait
 * for the queue so the implementation's staging copies cannot pile up.
 */
import type { Checkpoint, TensorRef } from '../loader/checkpoint.ts';
import { ModelLoadError } from '../loader/errors.ts';
import { align } from './gpu/buffers.ts';
import { gpuWait } from './gpu/device-lost.ts';
import type { RowChunk, WeightEntry } from './memory-plan.ts';

export type ProgressCallback = (bytesDone: number, bytesTotal: number) => void;

export interface UploadedTensor {
  ref: TensorRef;
  /** One buffer, or one per row chunk (embedding, lm_head). */
  buffers: GPUBuffer[];
  chunks?: RowChunk[];
}

export interface UploadOptions {
  onProgress?: ProgressCallback;
  chunkBytes?: number;
  flushBytes?: number;
  signal?: AbortSignal;
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;

/** Allocates every weight buffer first (so an out-of-memory stops before any upload), then streams. */
export async function uploadWeights(
  device: GPUDevice,
  ck: Checkpoint,
  plan: WeightEntry[],
  options: UploadOptions = {},
): Promise<Map<string, UploadedTensor>> {
  const out = new Map<string, UploadedTensor>();
  const all: GPUBuffer[] = [];
  const destroyAll = () => all.forEach((b) => b.destroy());
  try {
    device.pushErrorScope('out-of-memory');
    for (const w of plan) {
      const ref = ck.tensor(w.param, w.layer);
      if (ref.dtype !== 'BF16' && ref.dtype !== 'U8') {
        throw new ModelLoadError('dtype-mismatch', `the GPU path reads ${ref.dtype === 'F32' ? 'bf16' : 'bf16 or u8'} weights directly; this tensor is ${ref.dtype}`, { file: ref.file, tensor: ref.name });
      }
      const sizes = w.chunks ? w.chunks.map((c) => c.bytes) : [ref.end - ref.begin];
      const buffers = sizes.map((s, i) => device.createBuffer({ label: w.chunks ? `${ref.name}[${i}]` : ref.name, size: Math.max(4, align(s, 4)), usage: USAGE() }));
      all.push(...buffers);
      out.set(key(w.param, w.layer), { ref, buffers, chunks: w.chunks });
    }
    const oom = await gpuWait(device, device.popErrorScope());
    if (oom) throw new Error(`GPU out of memory while allocating the weights: ${oom.message}`);

    const total = plan.reduce((a, w) => a + w.bytes, 0);
    let done = 0;
    let sinceFlush = 0;
    const flushBytes = options.flushBytes ?? 64 << 20;
    options.onProgress?.(0, total);
    for (const w of plan) {
      const t = out.get(key(w.param, w.layer))!;
      const bounds = t.chunks ? t.chunks.map((c) => c.bytes) : [t.ref.end - t.ref.begin];
      let bufIdx = 0;
      let bufOff = 0;
      for await (const chunk of ck.stream(t.ref, options.chunkBytes)) {
        options.signal?.throwIfAborted();
        let at = 0;
        while (at < chunk.byteLength) {
          const n = Math.min(chunk.byteLength - at, bounds[bufIdx]! - bufOff);
          writePadded(device, t.buffers[bufIdx]!, bufOff, chunk.subarray(at, at + n));
          at += n;
          bufOff += n;
          if (bufOff === bounds[bufIdx]) {
            bufIdx++;
            bufOff = 0;
          }
        }
        done += chunk.byteLength;
        sinceFlush += chunk.byteLength;
        if (sinceFlush >= flushBytes) {
          sinceFlush = 0;
          await gpuWait(device, device.queue.onSubmittedWorkDone());
        }
        options.onProgress?.(done, total);
      }
    }
    await gpuWait(device, device.queue.onSubmittedWorkDone());
    return out;
  } catch (e) {
    destroyAll();
    throw e;
  }
}

/** writeBuffer needs 4-byte multiples: a chunk boundary inside a u32 only happens at the tensor's end. */
function writePadded(device: GPUDevice, buf: GPUBuffer, offset: number, bytes: Uint8Array): void {
  if (offset % 4 !== 0) throw new Error(`internal: unaligned upload offset ${offset} into ${buf.label}`);
  if (bytes.byteLength % 4 === 0) {
    device.queue.writeBuffer(buf, offset, bytes);
    return;
  }
  const padded = new Uint8Array(align(bytes.byteLength, 4));
  padded.set(bytes);
  device.queue.writeBuffer(buf, offset, padded);
}

export function key(param: string, layer?: number): string {
  return layer === undefined ? param : `${param}.${layer}`;
}
