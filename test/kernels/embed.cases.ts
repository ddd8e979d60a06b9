/**
 * f32_bf16w_embed against a CPU row gather: whole tables, a token offset, one chunk that must
 * leave other tokens alone, and a table split by planRowChunks. bf16 -> f32 is exact, so the
 * comparison is exact. Runs in Node and in the browser.
 */
import { bufferFrom, createBuffer, readF32 } from '../../engine/gpu/buffers.ts';
import { STEP_BYTES, writeStep } from '../../kernels/common.ts';
import { EmbedKernel } from '../../kernels/embed.ts';
import { planRowChunks } from '../../kernels/matmul-bf16.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';

interface Case {
  name: string;
  vocab: number;
  hidden: number;
  ids: number[];
  /** Junk ids placed before the real ones (the kernel's tokenOffset). */
  tokenOffset?: number;
  /** Split the table: at most this many rows per chunk (all chunks dispatched). */
  maxRows?: number;
  /** Dispatch only this one chunk; other tokens must keep the sentinel. */
  only?: { rowStart: number; rows: number };
}

const CASES: Case[] = [
  { name: 'whole table', vocab: 50, hidden: 64, ids: [3, 0, 49, 17, 3] },
  { name: 'real hidden', vocab: 10, hidden: 2880, ids: [9, 0, 4] },
  { name: 'token offset', vocab: 50, hidden: 96, ids: [1, 48, 7], tokenOffset: 3 },
  { name: 'one token', vocab: 50, hidden: 96, ids: [42] },
  { name: 'single chunk', vocab: 100, hidden: 64, ids: [0, 40, 99, 34, 67, 33, 68], only: { rowStart: 34, rows: 34 } },
  { name: '3 chunks', vocab: 100, hidden: 96, ids: [0, 33, 34, 67, 68, 99, 50, 12, 0], maxRows: 40 },
  { name: '3 chunks + offset', vocab: 100, hidden: 64, ids: [99, 68, 67, 2], maxRows: 40, tokenOffset: 5 },
];

const SENTINEL = -777;

export async function embedCases(device: GPUDevice): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  for (const c of CASES) {
    const { vocab, hidden: h, ids } = c;
    const tokens = ids.length;
    const off = c.tokenOffset ?? 0;
    const rng = new TestRng(vocab * 13 + h + tokens);
    const table = rng.bf16(vocab * h);
    const chunks = c.only ? [c.only] : c.maxRows ? planRowChunks(vocab, h * 2, c.maxRows * h * 2) : [{ rowStart: 0, rows: vocab }];
    const tokenData = new Uint32Array(off + tokens).fill(0xdeadbeef);
    tokenData.set(ids, off);
    const tokBuf = bufferFrom(device, tokenData);
    const x = bufferFrom(device, new Float32Array(tokens * h).fill(SENTINEL));
    const step = createBuffer(device, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    writeStep(device, step, tokens, 0);
    const parts = chunks.map((ch) => {
      const kern = new EmbedKernel(cache, { hidden: h, rows: ch.rows, rowStart: ch.rowStart, tokenOffset: off });
      const weight = bufferFrom(device, table.bytes.subarray(ch.rowStart * h * 2, (ch.rowStart + ch.rows) * h * 2));
      return { kern, weight, bg: kern.bind(device, { tokens: tokBuf, weight, x, step }) };
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const p of parts) p.kern.encode(pass, p.bg, tokens);
    pass.end();
    device.queue.submit([enc.finish()]);
    const got = await readF32(device, x, tokens * h);

    const want = new Float32Array(tokens * h).fill(SENTINEL);
    ids.forEach((id, t) => {
      if (chunks.some((ch) => id >= ch.rowStart && id < ch.rowStart + ch.rows)) want.set(table.values.subarray(id * h, (id + 1) * h), t * h);
    });
    const split = chunks.length > 1 ? ` chunks=${chunks.map((ch) => `${ch.rowStart}+${ch.rows}`).join(',')}` : '';
    const shape = `${c.name}: T=${tokens} V=${vocab} H=${h} tokenOffset=${off}${split}${c.only ? ` only ${c.only.rowStart}+${c.only.rows}` : ''}`;
    const r = checkEqual(parts[0]!.kern.key, shape, want, got);
    results.push(c.maxRows && chunks.length !== 3 ? { ...r, ok: false, message: `${shape}: expected 3 chunks, got ${chunks.length}` } : r);
    for (const b of [tokBuf, x, step, ...parts.map((p) => p.weight)]) b.destroy();
  }
  return results;
}
