import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { decodeMxfp4Rows, floatsToF32 } from '../loader/numeric.ts';
import { loadRowBlockMatrix, loadWeights, type ModelWeights } from '../engine/reference/weights.ts';
import { mxfp4RowDot, topK } from '../engine/reference/ops.ts';
import { readLogitsF32, writeLogitsF32 } from '../engine/reference/logits-file.ts';

const MODEL = new URL('../../shared/golden/sharded/model/', import.meta.url);

describe('reference weights', () => {
  let ck: Checkpoint;
  let w: ModelWeights;
  beforeAll(async () => {
    ck = await Checkpoint.open(await directorySource(fileURLToPath(MODEL)));
    w = await loadWeights(ck);
  });
  afterAll(async () => ck?.close());

  it('row blocks of any size decode the same rows as a whole-tensor decode', async () => {
    for (const param of ['embed', 'lm_head'] as const) {
      const ref = ck.tensor(param);
      const whole = floatsToF32(ref.dtype, await ck.read(ref));
      const [rows, cols] = ref.shape as [number, number];
      // 1000 bytes: 5 rows of 96 bf16 per block, the last block short (512 = 102*5 + 2).
      const m = await loadRowBlockMatrix(ck, ref, 1000);
      expect(m.rowsPerBlock).toBe(5);
      for (const r of [0, 4, 5, 101, rows - 1]) expect(m.row(r)).toEqual(whole.subarray(r * cols, (r + 1) * cols));
      const x = new Float32Array(cols).map((_, i) => Math.sin(i));
      const got = new Float32Array(rows);
      m.matVec(x, got);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let i = 0; i < cols; i++) s += whole[r * cols + i]! * x[i]!;
        expect(got[r]).toBe(Math.fround(s));
      }
    }
  });

  it('on-the-fly MXFP4 row dots equal dots with the decoded matrix', () => {
    const gu = w.layers[1]!.gateUp;
    const x = new Float32Array(gu.cols).map((_, i) => Math.cos(i * 0.3));
    for (const e of [0, 7]) {
      const dec = decodeMxfp4Rows(gu.blocks[e]!, gu.scales[e]!, gu.cols, 0, gu.rows);
      for (const r of [0, 1, gu.rows - 1]) {
        let s = 0;
        for (let i = 0; i < gu.cols; i++) s += dec[r * gu.cols + i]! * x[i]!;
        expect(mxfp4RowDot(gu, e, r, x)).toBeCloseTo(s, 12);
      }
    }
  });

  it('topK prefers the lower index on ties', () => {
    expect(topK(new Float32Array([1, 3, 3, 2, 3]), 2)).toEqual([1, 2]);
    expect(topK(new Float32Array([0, 0, 0, 0]), 3)).toEqual([0, 1, 2]);
  });

  it('logits files round-trip', () => {
    const a = new Float32Array([1.5, -2, 3e-8, 65504]);
    const bytes = writeLogitsF32(a);
    expect(bytes.byteLength).toBe(16);
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0, 0, 0xc0, 0x3f]);
    expect(readLogitsF32(bytes)).toEqual(a);
  });
});
