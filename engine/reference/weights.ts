/**
 * Weights of the CPU reference, held in memory in a form that also fits 20b-shaped checkpoints:
 * - small float tensors (norms, biases, attention and router matrices) decoded to f32;
 * - embedding and lm_head kept as raw bf16/f32 bytes in blocks of whole rows, decoded per row;
 * - MXFP4 expert tensors kept raw, one Uint8Array per expert, decoded row by row when used.
 */
import type { Checkpoint, TensorRef } from '../../loader/checkpoint.ts';
import type { GptOssConfig } from '../../loader/config.ts';
import { floatsToF32 } from '../../loader/numeric.ts';
import { dot } from './ops.ts';

/** Target size of one row block of the embedding / lm_head. */
export const ROW_BLOCK_BYTES = 64 << 20;

/**
 * A float matrix [rows, cols] (BF16 or F32) stored as raw bytes in blocks of whole rows, so no
 * single ArrayBuffer has to hold the whole tensor and nothing is decoded ahead of use.
 */
export class RowBlockMatrix {
  private readonly u16: Uint16Array[] = [];
  private readonly f32: Float32Array[] = [];
  /** f32 scratch with a u32 view, for decoding bf16 rows by bit shifts. */
  private readonly scratch: Float32Array;
  private readonly scratchBits: Uint32Array;

  constructor(
    readonly dtype: 'BF16' | 'F32',
    readonly rows: number,
    readonly cols: number,
    readonly rowsPerBlock: number,
    blocks: Uint8Array[],
  ) {
    for (const b of blocks) {
      if (dtype === 'BF16') this.u16.push(new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1));
      else this.f32.push(new Float32Array(b.buffer, b.byteOffset, b.byteLength >> 2));
    }
    this.scratch = new Float32Array(cols);
    this.scratchBits = new Uint32Array(this.scratch.buffer);
  }

  /** Row r decoded exactly to f32 (into `out`, default a new array). */
  row(r: number, out = new Float32Array(this.cols)): Float32Array {
    const b = Math.floor(r / this.rowsPerBlock);
    const off = (r - b * this.rowsPerBlock) * this.cols;
    if (this.dtype === 'F32') {
      out.set(this.f32[b]!.subarray(off, off + this.cols));
    } else {
      const src = this.u16[b]!;
      const bits = new Uint32Array(out.buffer, out.byteOffset, this.cols);
      for (let i = 0; i < this.cols; i++) bits[i] = src[off + i]! << 16;
    }
    return out;
  }

  /** out[r] = row_r . x for every row, accumulated in f64, rounded to f32 by `out`. */
  matVec(x: Float32Array, out: Float32Array, outOffset = 0): void {
    const cols = this.cols;
    const tmp = this.scratch;
    const bits = this.scratchBits;
    for (let b = 0, r = 0; r < this.rows; b++) {
      const n = Math.min(this.rowsPerBlock, this.rows - r);
      if (this.dtype === 'F32') {
        const src = this.f32[b]!;
        for (let i = 0; i < n; i++, r++) out[outOffset + r] = dot(src, i * cols, x, cols);
      } else {
        const src = this.u16[b]!;
        for (let i = 0; i < n; i++, r++) {
          const off = i * cols;
          for (let k = 0; k < cols; k++) bits[k] = src[off + k]! << 16;
          let s = 0;
          for (let k = 0; k < cols; k++) s += tmp[k]! * x[k]!;
          out[outOffset + r] = s;
        }
      }
    }
  }
}

/**
 * Reads a tensor as consecutive blocks of `rowsPerBlock` whole rows (the last may be shorter),
 * each block its own Uint8Array, whatever chunk size the stream delivers.
 */
export async function readRowBlocks(ck: Checkpoint, ref: TensorRef, rowBytes: number, rowsPerBlock: number): Promise<Uint8Array[]> {
  const total = ref.end - ref.begin;
  const blockBytes = rowBytes * rowsPerBlock;
  const blocks: Uint8Array[] = [];
  let cur: Uint8Array | null = null;
  let fill = 0;
  let done = 0;
  for await (const chunk of ck.stream(ref, blockBytes)) {
    let at = 0;
    while (at < chunk.byteLength) {
      if (cur === null) {
        cur = new Uint8Array(Math.min(blockBytes, total - done));
        fill = 0;
      }
      const n = Math.min(cur.byteLength - fill, chunk.byteLength - at);
      cur.set(chunk.subarray(at, at + n), fill);
      fill += n;
      at += n;
      done += n;
      if (fill === cur.byteLength) {
        blocks.push(cur);
        cur = null;
      }
    }
  }
  if (cur !== null || done !== total) throw new Error(`tensor ${ref.name}: read ${done} of ${total} bytes`);
  return blocks;
}

export async function loadRowBlockMatrix(ck: Checkpoint, ref: TensorRef, blockBytes = ROW_BLOCK_BYTES): Promise<RowBlockMatrix> {
  if (ref.dtype !== 'BF16' && ref.dtype !== 'F32') throw new Error(`tensor ${ref.name}: dtype ${ref.dtype} is not BF16 or F32`);
  const [rows, cols] = ref.shape as [number, number];
  const rowBytes = cols * (ref.dtype === 'BF16' ? 2 : 4);
  const rowsPerBlock = Math.max(1, Math.floor(blockBytes / rowBytes));
  const blocks = await readRowBlocks(ck, ref, rowBytes, rowsPerBlock);
  return new RowBlockMatrix(ref.dtype, rows, cols, rowsPerBlock, blocks);
}

/** One MXFP4 expert tensor: per expert, blocks [rows, cols/32, 16] and scales [rows, cols/32]. */
export interface Mxfp4Experts {
  rows: number;
  cols: number;
  blocks: Uint8Array[];
  scales: Uint8Array[];
  /** [E, rows] f32. */
  bias: Float32Array;
}

export interface LayerWeights {
  attnNorm: Float32Array;
  qW: Float32Array; qB: Float32Array;
  kW: Float32Array; kB: Float32Array;
  vW: Float32Array; vB: Float32Array;
  oW: Float32Array; oB: Float32Array;
  sinks: Float32Array;
  mlpNorm: Float32Array;
  routerW: Float32Array; routerB: Float32Array;
  gateUp: Mxfp4Experts;
  down: Mxfp4Experts;
}

export interface ModelWeights {
  embed: RowBlockMatrix;
  layers: LayerWeights[];
  norm: Float32Array;
  lmHead: RowBlockMatrix;
}

async function floats(ck: Checkpoint, ref: TensorRef): Promise<Float32Array> {
  return floatsToF32(ref.dtype, await ck.read(ref));
}

async function experts(ck: Checkpoint, c: GptOssConfig, layer: number, which: 'gate_up' | 'down'): Promise<Mxfp4Experts> {
  const rows = which === 'gate_up' ? 2 * c.intermediateSize : c.hiddenSize;
  const cols = which === 'gate_up' ? c.hiddenSize : c.intermediateSize;
  const groups = cols / 32;
  const blocksRef = ck.tensor(`${which}_blocks`, layer);
  const scalesRef = ck.tensor(`${which}_scales`, layer);
  return {
    rows,
    cols,
    blocks: await readRowBlocks(ck, blocksRef, rows * groups * 16, 1),
    scales: await readRowBlocks(ck, scalesRef, rows * groups, 1),
    bias: await floats(ck, ck.tensor(`${which}_bias`, layer)),
  };
}

export async function loadWeights(ck: Checkpoint): Promise<ModelWeights> {
  const c = ck.config;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const f = (p: Parameters<Checkpoint['tensor']>[0]) => floats(ck, ck.tensor(p, l));
    layers.push({
      attnNorm: await f('attn_norm'),
      qW: await f('q_w'), qB: await f('q_b'),
      kW: await f('k_w'), kB: await f('k_b'),
      vW: await f('v_w'), vB: await f('v_b'),
      oW: await f('o_w'), oB: await f('o_b'),
      sinks: await f('sinks'),
      mlpNorm: await f('mlp_norm'),
      routerW: await f('router_w'), routerB: await f('router_b'),
      gateUp: await experts(ck, c, l, 'gate_up'),
      down: await experts(ck, c, l, 'down'),
    });
  }
  return {
    embed: await loadRowBlockMatrix(ck, ck.tensor('embed')),
    layers,
    norm: await floats(ck, ck.tensor('norm')),
    lmHead: await loadRowBlockMatrix(ck, ck.tensor('lm_head')),
  };
}
