/**
 * Streams checkpoint tensors straight into GPU buffers through bounded staging memory: each
 * chunk read from the source is written with queue.writeBuffer, and every `flushBytes` we wait
 * for the queue so the implementation's staging copies cannot pile up.
 */
import { DEFAULT_CHUNK_BYTES, type Checkpoint, type TensorRef } from '../loader/checkpoint.ts';
import { ModelLoadError } from '../loader/errors.ts';
import { align } from './gpu/buffers.ts';
import { gpuWait } from './gpu/device-lost.ts';
import type { RowChunk, WeightEntry } from './memory-plan.ts';
import type { ParamName } from '../loader/weight-map.ts';
import { q8Bytes, Q8_BLOCK, RowQuantizer } from './quant-q8.ts';

/** `file`: the checkpoint file the bytes just written came from. */
export type ProgressCallback = (bytesDone: number, bytesTotal: number, file?: string) => void;

export interface UploadedTensor {
  /** The checkpoint tensor(s) in the buffer, in order (several for a fused weight). */
  refs: TensorRef[];
  /** One buffer, or one per row chunk (embedding, lm_head). */
  buffers: GPUBuffer[];
  chunks?: RowChunk[];
}

export interface UploadOptions {
  onProgress?: ProgressCallback;
  chunkBytes?: number;
  flushBytes?: number;
  signal?: AbortSignal;
  /**
   * Called after the last weight byte is written, before the upload returns: throwing (an
   * IntegrityError) destroys every weight buffer, so nothing unchecked stays on the GPU.
   */
  verify?: () => Promise<void>;
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
      const refs = (w.parts ?? [{ param: w.param as ParamName }]).map((p) => ck.tensor(p.param, w.layer));
      for (const ref of refs) {
        if (ref.dtype !== 'BF16' && ref.dtype !== 'U8') {
          throw new ModelLoadError('dtype-mismatch', `the GPU path reads ${ref.dtype === 'F32' ? 'bf16' : 'bf16 or u8'} weights directly; this tensor is ${ref.dtype}`, { file: ref.file, tensor: ref.name });
        }
      }
      const whole = refs.reduce((a, r) => a + r.end - r.begin, 0);
      const sizes = w.chunks ? w.chunks.map((c) => c.bytes) : [w.q8Cols !== undefined ? w.bytes : whole];
      const buffers = sizes.map((s, i) => device.createBuffer({ label: w.chunks ? `${w.name}[${i}]` : w.name, size: Math.max(4, align(s, 4)), usage: USAGE() }));
      all.push(...buffers);
      out.set(key(w.param, w.layer), { refs, buffers, chunks: w.chunks });
    }
    const oom = await gpuWait(device, device.popErrorScope());
    if (oom) throw new Error(`GPU out of memory while allocating the weights: ${oom.message}`);

    const total = plan.reduce((a, w) => a + w.bytes, 0);
    let done = 0;
    let sinceFlush = 0;
    const flushBytes = options.flushBytes ?? 64 << 20;
    options.onProgress?.(0, total);
    // One staging buffer for all chunks: writeBuffer copies, so it is free again at once.
    const largest = plan.reduce((a, w) => Math.max(a, w.bytes), 0);
    const scratch = new Uint8Array(Math.max(16, Math.min(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, largest)));
    const wrote = async (bytes: number, file: string) => {
      options.signal?.throwIfAborted();
      done += bytes;
      sinceFlush += bytes;
      if (sinceFlush >= flushBytes) {
        sinceFlush = 0;
        await gpuWait(device, device.queue.onSubmittedWorkDone());
      }
      options.onProgress?.(done, total, file);
    };
    for (const p of inFileOrder(plan, out)) {
      const t = p.tensor;
      if (p.q8Cols !== undefined) {
        for await (const bytes of uploadQ8(device, ck, p.ref, t, p.q8Cols, p.at / (2 * p.q8Cols), scratch)) await wrote(bytes, p.ref.file);
        continue;
      }
      const bounds = t.chunks ? t.chunks.map((c) => c.bytes) : [t.refs.reduce((a, r) => a + r.end - r.begin, 0)];
      // Where this tensor starts in the weight's buffer(s): after the parts before it.
      let bufIdx = 0;
      let bufOff = p.at;
      while (bufIdx < bounds.length - 1 && bufOff >= bounds[bufIdx]!) bufOff -= bounds[bufIdx++]!;
      for await (const chunk of ck.streamInto(p.ref, scratch)) {
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
        await wrote(chunk.byteLength, p.ref.file);
      }
    }
    // The integrity check's last word (loader/integrity.ts): a mismatch lands in the catch below.
    await options.verify?.();
    await gpuWait(device, device.queue.onSubmittedWorkDone());
    return out;
  } catch (e) {
    destroyAll();
    throw e;
  }
}

interface Piece {
  ref: TensorRef;
  tensor: UploadedTensor;
  /** Byte offset of this tensor in its weight's buffers (parts of a fused weight follow each other). */
  at: number;
  q8Cols?: number;
}

/**
 * Every tensor once, in file order (by file, then offset): the integrity check hashes each file
 * as it is read (no read behind its hash, no buffering), and the download cache sees the same
 * ranges on every load.
 */
function inFileOrder(plan: WeightEntry[], out: Map<string, UploadedTensor>): Piece[] {
  const pieces: Piece[] = [];
  for (const w of plan) {
    const tensor = out.get(key(w.param, w.layer))!;
    let at = 0;
    for (const ref of tensor.refs) {
      pieces.push({ ref, tensor, at, q8Cols: w.q8Cols });
      at += ref.end - ref.begin;
    }
  }
  return pieces.sort((a, b) => (a.ref.file < b.ref.file ? -1 : a.ref.file > b.ref.file ? 1 : a.ref.begin - b.ref.begin));
}

/**
 * Streams a bf16 matrix through the row quantiser into its q8 buffer(s) (one per row chunk:
 * int8 rows, then the chunk's scales); yields the q8 bytes written per piece. `ref` is one of
 * the weight's tensors: its rows start at `firstRow` (after the parts before it, for a fused
 * weight, whose rows all share one scale section).
 */
async function* uploadQ8(
  device: GPUDevice, ck: Checkpoint, ref: TensorRef, t: UploadedTensor, cols: number, firstRow: number, scratch: Uint8Array,
): AsyncGenerator<number> {
  const rq = new RowQuantizer(cols);
  const totalRows = t.refs.reduce((a, r) => a + r.end - r.begin, 0) / (2 * cols);
  const chunks = t.chunks ?? [{ rowStart: 0, rows: totalRows, bytes: q8Bytes(totalRows, cols) }];
  for await (const piece of ck.streamInto(ref, scratch)) {
    const got = rq.push(piece);
    if (!got) continue;
    got.row += firstRow;
    let r = got.row;
    while (r < got.row + got.rows) {
      const ci = chunks.findIndex((c) => r >= c.rowStart && r < c.rowStart + c.rows);
      const c = chunks[ci]!;
      const n = Math.min(c.rowStart + c.rows, got.row + got.rows) - r;
      const lr = r - c.rowStart;
      const from = r - got.row;
      const q = got.q.subarray(from * cols, (from + n) * cols);
      const sc = got.scales.subarray((from * cols) / Q8_BLOCK, ((from + n) * cols) / Q8_BLOCK);
      device.queue.writeBuffer(t.buffers[ci]!, lr * cols, q.buffer, q.byteOffset, q.byteLength);
      device.queue.writeBuffer(t.buffers[ci]!, c.rows * cols + (lr * cols / Q8_BLOCK) * 4, sc.buffer, sc.byteOffset, sc.byteLength);
      yield q.byteLength + sc.byteLength;
      r += n;
    }
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
