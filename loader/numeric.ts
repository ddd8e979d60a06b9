/**
 * Exact number formats of the checkpoint: bf16, and MXFP4 (e2m1 values with E8M0 block scales).
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits (little-endian u16 pairs in `bytes`) to f32, exactly. */
export function bf16ToF32(bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength >> 1;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = (bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16;
  return out;
}

/** f32 to bf16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decodes a float tensor stored as BF16 or F32 into f32. */
export function floatsToF32(dtype: string, bytes: Uint8Array): Float32Array {
  if (dtype === 'BF16') return bf16ToF32(bytes);
  if (dtype === 'F32') {
    const out = new Float32Array(bytes.byteLength >> 2);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  throw new Error(`cannot decode dtype ${dtype} as floats`);
}

/** e2m1 nibble code -> value (SPEC §3). */
export const FP4_VALUES = new Float32Array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);

/** E8M0 scale byte -> 2^(s-127). */
export function e8m0(s: number): number {
  return 2 ** (s - 127);
}

/**
 * Decodes rows [row0, row0 + nRows) of one MXFP4 matrix [rows, cols] whose blocks are
 * [rows, cols/32, 16] bytes and scales [rows, cols/32] bytes, starting at the given byte offsets.
 */
export function decodeMxfp4Rows(
  blocks: Uint8Array,
  scales: Uint8Array,
  cols: number,
  row0: number,
  nRows: number,
  out = new Float32Array(nRows * cols),
): Float32Array {
  const groups = cols / 32;
  for (let r = 0; r < nRows; r++) {
    for (let g = 0; g < groups; g++) {
      const gi = (row0 + r) * groups + g;
      const scale = e8m0(scales[gi]!);
      const base = gi * 16;
      const o = r * cols + g * 32;
      for (let j = 0; j < 16; j++) {
        const b = blocks[base + j]!;
        out[o + 2 * j] = FP4_VALUES[b & 15]! * scale;
        out[o + 2 * j + 1] = FP4_VALUES[b >> 4]! * scale;
      }
    }
  }
  return out;
}
