/**
 * Optional 8-bit weights (`weights: 'q8'`): bf16 rows quantised at load in blocks of 32 values,
 * each block an int8 per value and one f32 scale: x ~ q * scale, scale = max|block| / 127,
 * q = round(x / scale) in [-127, 127]. 1.125 bytes per value instead of 2.
 *
 * A buffer of R rows x K columns holds int8 [R, K] (4 per u32 word, low byte first), then the
 * f32 scales [R, K / 32] (kernels/matvec.ts and matmul-bf16.ts read this layout), padded to a
 * multiple of 16 bytes: the kernels bind it as array<vec4<u32>>, whose length rounds down, so
 * without the padding the last row's last scales could fall outside the binding.
 * K must be a multiple of 32.
 */

export const Q8_BLOCK = 32;

/** Bytes of R rows x K columns in the q8 layout: values and scales, without the padding. */
export function q8RowBytes(cols: number): number {
  return cols + (cols / Q8_BLOCK) * 4;
}

/** Bytes of the q8 buffer of R rows x K columns (padded to 16). */
export function q8Bytes(rows: number, cols: number): number {
  return Math.ceil((rows * q8RowBytes(cols)) / 16) * 16;
}

/** Quantises whole bf16 rows (raw little-endian bytes, `cols` values per row). */
export function quantizeBf16Rows(bf16: Uint8Array, cols: number): { q: Int8Array; scales: Float32Array } {
  if (cols % Q8_BLOCK !== 0) throw new RangeError(`q8 weights need a row length that is a multiple of ${Q8_BLOCK}, got ${cols}`);
  const n = bf16.byteLength / 2;
  if (n % cols !== 0) throw new RangeError(`internal: ${n} values are not whole rows of ${cols}`);
  const bits = new Uint16Array(bf16.buffer, bf16.byteOffset, n);
  const f = new Float32Array(Q8_BLOCK);
  const u = new Uint32Array(f.buffer);
  const q = new Int8Array(n);
  const scales = new Float32Array(n / Q8_BLOCK);
  for (let b = 0; b < scales.length; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_BLOCK; i++) {
      u[i] = bits[b * Q8_BLOCK + i]! << 16;
      const a = Math.abs(f[i]!);
      if (a > amax) amax = a;
    }
    const scale = Math.fround(amax / 127);
    scales[b] = scale;
    const inv = amax > 0 ? 127 / amax : 0;
    for (let i = 0; i < Q8_BLOCK; i++) q[b * Q8_BLOCK + i] = Math.max(-127, Math.min(127, Math.round(f[i]! * inv)));
  }
  return { q, scales };
}

/** The values the GPU reads back from quantised rows (reference math for tests). */
export function dequantizeQ8(q: Int8Array, scales: Float32Array): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * scales[Math.floor(i / Q8_BLOCK)]!;
  return out;
}

/**
 * Takes a stream of bf16 bytes in arbitrary pieces and hands back whole rows, quantised:
 * `push` returns the rows completed by this piece (first row index, values and scales).
 */
export class RowQuantizer {
  private carry: Uint8Array;
  private carried = 0;
  private row = 0;

  constructor(readonly cols: number) {
    this.carry = new Uint8Array(cols * 2);
  }

  push(piece: Uint8Array): { row: number; rows: number; q: Int8Array; scales: Float32Array } | null {
    const rowBytes = this.cols * 2;
    let at = 0;
    const parts: Uint8Array[] = [];
    if (this.carried > 0) {
      const n = Math.min(rowBytes - this.carried, piece.byteLength);
      this.carry.set(piece.subarray(0, n), this.carried);
      this.carried += n;
      at = n;
      if (this.carried < rowBytes) return null;
      parts.push(this.carry.slice());
      this.carried = 0;
    }
    const whole = Math.floor((piece.byteLength - at) / rowBytes) * rowBytes;
    if (whole > 0) parts.push(piece.subarray(at, at + whole));
    const rest = piece.subarray(at + whole);
    this.carry.set(rest, 0);
    this.carried = rest.byteLength;
    if (parts.length === 0) return null;
    const bytes = parts.length === 1 ? parts[0]! : concat(parts);
    // quantizeBf16Rows views the bytes as u16: give it an aligned copy when needed.
    const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
    const { q, scales } = quantizeBf16Rows(aligned, this.cols);
    const rows = bytes.byteLength / rowBytes;
    const first = this.row;
    this.row += rows;
    return { row: first, rows, q, scales };
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
