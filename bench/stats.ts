/** Summary statistics of repeated measurements. */

export interface Stats {
  mean: number;
  /** Sample standard deviation (n - 1); 0 for a single value. */
  stddev: number;
  median: number;
  min: number;
  max: number;
  /** Every repeat's value, in run order. */
  runs: number[];
}

export function stats(values: number[]): Stats {
  if (values.length === 0) throw new RangeError('stats of no values');
  const n = values.length;
  const s = [...values].sort((a, b) => a - b);
  const mid = n >> 1;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const stddev = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, stddev, median: n % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[n - 1]!, runs: values };
}
