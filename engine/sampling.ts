/**
 * Token sampling: parameter validation and the CPU reference sampler that the GPU kernel
 * (kernels/sample.ts, f32_sample) is tested against.
 *
 * The definition, shared by both:
 *  - temperature 0, or topK 1: argmax, ties to the lower index;
 *  - otherwise keep the topK largest logits (topK 0 = all), then, within those, the smallest set
 *    of largest-probability tokens whose softmax(logits / T) mass, renormalised over the top-k
 *    set, is >= topP (topP 1 = all); sample from softmax(logits / T) renormalised over what is
 *    kept. Sets are cut by value: every token equal to a threshold is kept, so ties at the k-th
 *    largest logit can keep more than k tokens.
 *  - sampling is Gumbel-max: argmax over kept i of x_i / T - log(-log(u_i)), which picks i
 *    with exactly the renormalised softmax probability. u_i comes from a counter-based hash of
 *    (seed, step, i), so a draw depends only on its inputs and needs no RNG state on the GPU.
 *
 * -Infinity logits (masked tokens) are never sampled unless every logit is -Infinity; NaN is
 * not allowed.
 */

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** Keep only the k largest logits; 0 = off. */
  topK: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP: number;
  /** Integer in [0, 2^32). */
  seed: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0 };

export function validateSampling(p: SamplingParams): void {
  if (typeof p.temperature !== 'number' || !Number.isFinite(p.temperature) || p.temperature < 0) {
    throw new RangeError(`sampling: temperature must be a finite number >= 0, got ${p.temperature}`);
  }
  if (!Number.isSafeInteger(p.topK) || p.topK < 0) {
    throw new RangeError(`sampling: topK must be an integer >= 0 (0 = off), got ${p.topK}`);
  }
  if (typeof p.topP !== 'number' || !(p.topP > 0 && p.topP <= 1)) {
    throw new RangeError(`sampling: topP must be in (0, 1] (1 = off), got ${p.topP}`);
  }
  if (!Number.isInteger(p.seed) || p.seed < 0 || p.seed > 0xffffffff) {
    throw new RangeError(`sampling: seed must be an integer in [0, 2^32), got ${p.seed}`);
  }
}

/** PCG-RXS-M-XS 32-bit output permutation (Jarzynski & Olano, "Hash functions for GPU rendering"). */
export function pcgHash(x: number): number {
  const state = (Math.imul(x, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The per-draw hash key: shared by every token of one (seed, step). */
export function drawKey(seed: number, step: number): number {
  return pcgHash((pcgHash(seed >>> 0) ^ (step >>> 0)) >>> 0);
}

/**
 * The uniform u_i in (0, 1) for token i of a draw: 23 hash bits, centred, so that it is exact in
 * f32 and never 0 or 1. Hashing pcg(i) rather than i keeps two draws whose keys differ in a few
 * low bits from reusing each other's noise on permuted tokens.
 */
export function drawUniform(key: number, i: number): number {
  return ((pcgHash((pcgHash(i) ^ key) >>> 0) >>> 9) + 0.5) / 8388608;
}

/**
 * The Gumbel-max score of logit x at vocabulary index i for the draw keyed `key` (drawKey):
 * x / T rounded to f32 as on the GPU, plus Gumbel noise -log(-log u_i) in f64. The kernels
 * (kernels/sample.ts gumbel_score_row, and lm_head's candidates in kernels/matvec.ts) compute
 * the same in f32.
 */
export function gumbelScore(x: number, temperature: number, key: number, i: number): number {
  return Math.fround(x / Math.fround(temperature)) - Math.log(-Math.log(drawUniform(key, i)));
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/**
 * What a draw keeps: `greedy` (the argmax) when the draw is deterministic, otherwise the logit
 * `threshold` (tokens with logit >= threshold are kept) and the `max` logit.
 */
function restrict(logits: ArrayLike<number>, params: SamplingParams): { greedy: number; max: number; threshold: number | null } {
  validateSampling(params);
  if (logits.length === 0) throw new RangeError('sampling: empty logits');
  const greedy = argmax(logits);
  const max = logits[greedy]!;
  if (params.temperature === 0 || params.topK === 1 || max === -Infinity) return { greedy, max, threshold: null };
  const sorted = Array.from(logits).filter((x) => x > -Infinity).sort((a, b) => b - a);
  // top-k: the k-th largest value.
  let threshold = sorted[sorted.length - 1]!;
  if (params.topK > 0 && params.topK < sorted.length) threshold = sorted[params.topK - 1]!;
  // top-p within the top-k set: the value at which the descending cumulative mass reaches topP.
  if (params.topP < 1) {
    const kept = sorted.filter((x) => x >= threshold);
    const w = kept.map((x) => Math.exp((x - max) / params.temperature));
    const target = params.topP * w.reduce((a, b) => a + b, 0);
    let cum = 0;
    for (let j = 0; j < kept.length; j++) {
      cum += w[j]!;
      if (cum >= target) {
        threshold = kept[j]!;
        break;
      }
    }
  }
  return { greedy, max, threshold };
}

/** Samples one token id from `logits` (one row) as the GPU kernel does; `step` varies the noise. */
export function sampleCpu(logits: ArrayLike<number>, params: SamplingParams, step: number): number {
  const { greedy, threshold } = restrict(logits, params);
  if (threshold === null) return greedy;
  const key = drawKey(params.seed, step);
  let best = -1;
  let bestScore = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i]!;
    if (!(x >= threshold)) continue;
    const score = gumbelScore(x, params.temperature, key, i);
    if (best < 0 || score > bestScore) {
      best = i;
      bestScore = score;
    }
  }
  return best;
}

/** The exact probabilities (f64) that sampleCpu and the kernel draw from, for tests; 0 outside the kept set. */
export function samplingProbabilities(logits: ArrayLike<number>, params: SamplingParams): Float64Array {
  const { greedy, max, threshold } = restrict(logits, params);
  const p = new Float64Array(logits.length);
  if (threshold === null) {
    p[greedy] = 1;
    return p;
  }
  let z = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i]! >= threshold) z += p[i] = Math.exp((logits[i]! - max) / params.temperature);
  for (let i = 0; i < p.length; i++) p[i] /= z;
  return p;
}
