/** Logit comparison with failure messages that say where and by how much. */

export interface CompareResult {
  /** max |expected - got| over all positions. */
  maxDiff: number;
  /** One entry per failed check; empty when everything is within bounds. */
  failures: string[];
}

function argmax(a: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i]! > a[off + best]!) best = i;
  return best;
}

/**
 * Compares [T, vocab] logits row by row: max |Δ| <= tol at every position and identical argmax.
 * `name` names the case and mode in every message.
 */
export function compareLogits(name: string, expected: Float32Array, got: Float32Array, vocab: number, tol: number): CompareResult {
  const failures: string[] = [];
  if (expected.length !== got.length) {
    return { maxDiff: Infinity, failures: [`${name}: expected ${expected.length / vocab} positions x ${vocab} logits, got ${got.length} values`] };
  }
  let maxDiff = 0;
  for (let t = 0; t * vocab < expected.length; t++) {
    const off = t * vocab;
    let worst = 0, at = 0;
    for (let i = 0; i < vocab; i++) {
      const d = Math.abs(expected[off + i]! - got[off + i]!);
      if (!(d <= worst)) { worst = d; at = i; } // NaN counts as worst
    }
    if (!(worst <= maxDiff)) maxDiff = worst;
    if (!(worst <= tol)) {
      failures.push(`${name}: position ${t}, index ${at}: expected ${expected[off + at]}, got ${got[off + at]} (|Δ| ${worst} > ${tol})`);
    }
    const ea = argmax(expected, off, vocab), ga = argmax(got, off, vocab);
    if (ea !== ga) {
      failures.push(`${name}: position ${t}: argmax expected index ${ea} (${expected[off + ea]}), got index ${ga} (${got[off + ga]}; expected there ${expected[off + ga]})`);
    }
  }
  return { maxDiff, failures };
}

/** Throws with every failure message when the logits differ beyond `tol`; returns the max |Δ|. */
export function assertLogitsClose(name: string, expected: Float32Array, got: Float32Array, vocab: number, tol: number): number {
  const r = compareLogits(name, expected, got, vocab, tol);
  if (r.failures.length > 0) throw new Error(`${r.failures.length} logit mismatch(es):\n${r.failures.slice(0, 20).join('\n')}`);
  return r.maxDiff;
}

/** How far `b` drifts from `a` ([T, vocab] logits): for bounds on approximations (8-bit cache, 8-bit weights). */
export interface LogitDrift { maxAbs: number; relRms: number; argmaxAgree: number; positions: number }

/** max |a - b|, the RMS of a - b over the RMS of a, and the positions whose argmax agrees. */
export function logitDrift(a: Float32Array, b: Float32Array, vocab: number): LogitDrift {
  let maxAbs = 0, se = 0, sa = 0, agree = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    maxAbs = Math.max(maxAbs, Math.abs(d));
    se += d * d;
    sa += a[i]! * a[i]!;
  }
  const T = a.length / vocab;
  for (let t = 0; t < T; t++) if (argmax(a, t * vocab, vocab) === argmax(b, t * vocab, vocab)) agree++;
  return { maxAbs, relRms: Math.sqrt(se / sa), argmaxAgree: agree, positions: T };
}
