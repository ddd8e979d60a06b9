/**
 * 8-bit KV rows written by a kernel against the reference quantizeQ8 (engine/reference/ops.ts).
 * WGSL's division is accurate to 2.5 ulp, not correctly rounded, so the scale (max|x| / 127) may
 * be a few ulp off, and an int8 value one step off where x * 127 / max|x| lies within a few ulp
 * of a rounding boundary (a half-integer); everything else must be identical.
 */
import { quantizeQ8 } from '../../engine/reference/ops.ts';
import { checkClose, type CaseResult } from '../gpu/check.ts';

const ULP = 2 ** -23;

export function checkQ8Rows(kernel: string, shape: string, x: Float32Array, headDim: number, q: Int8Array, scales: Float32Array): CaseResult[] {
  const want = quantizeQ8(x, headDim);
  const qTol = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += headDim) {
    let max = 0;
    for (let i = 0; i < headDim; i++) max = Math.max(max, Math.abs(x[r + i]!));
    for (let i = 0; i < headDim && max > 0; i++) {
      const t = Math.abs(x[r + i]! * (127 / max));
      if (Math.abs(t - Math.floor(t) - 0.5) <= 4 * ULP * t) qTol[r + i] = 1;
    }
  }
  return [
    checkClose(kernel, `${shape} int8 vs quantizeQ8`, want.q, q, qTol),
    checkClose(kernel, `${shape} scales vs quantizeQ8`, want.scales, scales, 0, 3 * ULP),
  ];
}
