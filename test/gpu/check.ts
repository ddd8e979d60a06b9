/**
 * Comparison of GPU results with the CPU reference, shared by the Node and browser kernel
 * runners: the message names the kernel, the shape, the first bad index, expected and got.
 */
export interface CaseResult {
  kernel: string;
  shape: string;
  ok: boolean;
  maxErr: number;
  message: string;
  /**
   * The kernel code path the case ran (e.g. matmul 'tiled' or 'simple'), one of KERNEL_PATHS in
   * test/kernels/index.ts; absent where a family has one path only.
   */
  path?: string;
}

/**
 * |got - want| <= atol + rtol * |want| everywhere (atol: one value, or one per index); NaN/Inf in
 * `got` always fails.
 */
export function checkClose(
  kernel: string,
  shape: string,
  want: ArrayLike<number>,
  got: ArrayLike<number>,
  atol: number | ArrayLike<number>,
  rtol = 0,
): CaseResult {
  const tolAt = typeof atol === 'number' ? () => atol : (i: number) => atol[i]!;
  if (want.length !== got.length) {
    return { kernel, shape, ok: false, maxErr: Infinity, message: `${kernel} ${shape}: length ${got.length}, expected ${want.length}` };
  }
  let maxErr = 0;
  let bad = -1;
  let nBad = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    const err = Math.abs(g - w);
    if (!Number.isFinite(g) || !(err <= tolAt(i) + rtol * Math.abs(w))) {
      if (bad < 0) bad = i;
      nBad++;
    }
    if (Number.isFinite(err) && err > maxErr) maxErr = err;
    else if (!Number.isFinite(g)) maxErr = Infinity;
  }
  if (bad < 0) return { kernel, shape, ok: true, maxErr, message: `${kernel} ${shape}: ok, max |err| ${maxErr.toExponential(2)}` };
  return {
    kernel, shape, ok: false, maxErr,
    message: `${kernel} ${shape}: ${nBad} of ${want.length} values off; first at index ${bad}: expected ${want[bad]}, got ${got[bad]} ` +
      `(tolerance ${tolAt(bad)} + ${rtol}*|expected|; max |err| ${maxErr.toExponential(2)})`,
  };
}

export function checkEqual(kernel: string, shape: string, want: ArrayLike<number>, got: ArrayLike<number>): CaseResult {
  return checkClose(kernel, shape, want, got, 0, 0);
}

/** Seeded uniform/normal test data (mulberry32), identical in Node and the browser. */
export class TestRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  uniform(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
  f32(n: number, scale = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.normal() * scale;
    return a;
  }
  /** n random bf16 values as raw little-endian bytes, and their exact f32 values. */
  bf16(n: number, scale = 1): { bytes: Uint8Array; values: Float32Array } {
    const values = new Float32Array(n);
    const bits = new Uint16Array(n);
    const u32 = new Uint32Array(values.buffer);
    for (let i = 0; i < n; i++) {
      values[i] = this.normal() * scale;
      bits[i] = u32[i]! >>> 16; // truncate to bf16 ...
      u32[i] = bits[i]! << 16; // ... and keep the exact value
    }
    return { bytes: new Uint8Array(bits.buffer), values };
  }
  bytes(n: number): Uint8Array {
    const a = new Uint8Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.floor(this.uniform() * 256);
    return a;
  }
}
