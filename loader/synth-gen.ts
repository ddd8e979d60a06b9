/**
 * The bytes of a synthetic tensor (synth.ts), random access: any byte range is produced
 * directly, without generating what comes before it, so a checkpoint can be served on demand
 * (source-synthetic.ts) instead of written to disk first.
 *
 * Each tensor is one xoshiro128** stream keyed by (seed, tensor name) (rng.ts), one 32-bit
 * word per output unit, so byte offset -> word index is fixed and rng-jump.ts reaches any word:
 * - MXFP4 blocks ('bytes'): 4 bytes per word, little-endian;
 * - E8M0 scales: 1 byte per word, the exponent s0 + 1 with probability p, else s0;
 * - bf16 normals: 2 values per word, each 16-bit half indexing a table of the 65536 quantiles
 *   of N(mean, std) (a discretised normal, tails cut at 4.3 std) already rounded to bf16.
 * Sequential reads continue from a cursor; a jump costs about a millisecond.
 */
import type { GptOssConfig } from './config.ts';
import { jumpState, stepState } from './rng-jump.ts';
import { seedState, type XoshiroState } from './rng.ts';
import type { ParamName } from './weight-map.ts';
import type { SynthTensor } from './synth.ts';

/** RMS of a uniformly random e2m1 code: sqrt(mean of squares of the 16 values) = sqrt(8.5625). */
export const E2M1_UNIFORM_RMS = Math.sqrt(8.5625);
/** RMS of a = glu*sigmoid(1.702 glu)*(lin+1) for glu, lin ~ N(0, 1) (approx. 0.92). */
const SWIGLU_OUT_RMS = 0.92;

/** How one tensor's values are drawn. */
export type SynthDist =
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'bytes' }
  | { kind: 'e8m0'; elementStd: number };

/** The distribution of each parameter (see synth.ts for the reasoning). */
export function synthDist(param: ParamName, c: GptOssConfig): SynthDist {
  const residual = 1 / Math.sqrt(2 * c.numLayers);
  const normal = (std: number, mean = 0): SynthDist => ({ kind: 'normal', mean, std });
  switch (param) {
    case 'embed': return normal(1);
    case 'attn_norm': case 'mlp_norm': case 'norm': return normal(0.05, 1);
    case 'q_w': case 'k_w': case 'v_w': case 'router_w': case 'lm_head': return normal(1 / Math.sqrt(c.hiddenSize));
    case 'o_w': return normal(residual / Math.sqrt(c.numHeads * c.headDim));
    case 'q_b': case 'k_b': case 'v_b': case 'o_b': case 'router_b': case 'gate_up_bias': case 'down_bias': return normal(0.02);
    case 'sinks': return normal(1);
    case 'gate_up_blocks': case 'down_blocks': return { kind: 'bytes' };
    case 'gate_up_scales': return { kind: 'e8m0', elementStd: 1 / Math.sqrt(c.hiddenSize) };
    case 'down_scales': return { kind: 'e8m0', elementStd: residual / (Math.sqrt(c.intermediateSize) * SWIGLU_OUT_RMS) };
  }
}

/**
 * Scale-byte sampler: a mixture of two adjacent exponents e0, e0 + 1 with P(e0 + 1) = p chosen
 * so that E[4^e] = (elementStd / E2M1_UNIFORM_RMS)^2 exactly: with uniformly random nibbles the
 * decoded elements then have exactly the requested RMS (in expectation).
 */
export function e8m0Mixture(elementStd: number): { s0: number; p: number } {
  const x = Math.log2(elementStd / E2M1_UNIFORM_RMS);
  const e0 = Math.floor(x);
  const p = (4 ** (x - e0) - 1) / 3;
  const s0 = 127 + e0;
  if (s0 < 1 || s0 + 1 > 254) throw new Error(`element std ${elementStd} is outside the E8M0 range`);
  return { s0, p };
}

/** Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

let unitQuantiles: Float64Array | undefined;
const tables = new Map<string, Uint16Array>();

/**
 * bf16 bits of mean + std * z_i for the 65536 quantiles z_i = Q((i + 0.5) / 65536), made
 * exactly symmetric and rescaled to unit mean square, so a uniformly random index draws a
 * value of exactly the requested mean and std (before the bf16 rounding).
 */
export function bf16NormalTable(mean: number, std: number): Uint16Array {
  const key = `${mean},${std}`;
  const cached = tables.get(key);
  if (cached) return cached;
  if (!unitQuantiles) {
    const z = new Float64Array(65536);
    for (let i = 0; i < 32768; i++) {
      z[i] = normalQuantile((i + 0.5) / 65536);
      z[65535 - i] = -z[i]!;
    }
    let ms = 0;
    for (const v of z) ms += v * v;
    const scale = 1 / Math.sqrt(ms / z.length);
    for (let i = 0; i < z.length; i++) z[i]! *= scale;
    unitQuantiles = z;
  }
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const t = new Uint16Array(65536);
  for (let i = 0; i < t.length; i++) {
    // f32 first, then bf16 round to nearest even (numeric.ts f32ToBf16; values are finite).
    f32[0] = mean + std * unitQuantiles[i]!;
    const b = u32[0]!;
    t[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  tables.set(key, t);
  return t;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Forward distance up to which stepping is cheaper than a jump. */
const MAX_STEP_FORWARD = 4096;

type Mode = { kind: 'bytes' } | { kind: 'bf16'; table: Uint16Array } | { kind: 'e8m0'; s0: number; threshold: number };

/** Random-access bytes of one synthetic tensor. Not safe for concurrent use (it keeps a cursor). */
export class SynthTensorGenerator {
  readonly bytes: number;
  private readonly mode: Mode;
  /** Bytes per 32-bit draw. */
  private readonly unit: number;
  private readonly start: XoshiroState;
  /** State before drawing word `word`. */
  private cursor: { word: number; state: XoshiroState };

  constructor(readonly tensor: SynthTensor, config: GptOssConfig, seed: number) {
    this.bytes = tensor.bytes;
    const dist = synthDist(tensor.param, config);
    if (dist.kind === 'bytes') {
      this.mode = { kind: 'bytes' };
    } else if (dist.kind === 'e8m0') {
      const { s0, p } = e8m0Mixture(dist.elementStd);
      // A draw u is "uniform() < p" for uniform() = u * 2^-32, i.e. u < p * 2^32 (exact).
      this.mode = { kind: 'e8m0', s0, threshold: p * 2 ** 32 };
    } else {
      if (tensor.dtype !== 'BF16') throw new Error(`synthetic generator produces BF16 floats, not ${tensor.dtype}`);
      this.mode = { kind: 'bf16', table: bf16NormalTable(dist.mean, dist.std) };
    }
    this.unit = this.mode.kind === 'e8m0' ? 1 : 4;
    this.start = seedState(seed, tensor.name);
    this.cursor = { word: 0, state: this.start };
  }

  /** Fills `out` with the tensor's bytes [offset, offset + out.length). */
  read(offset: number, out: Uint8Array): void {
    const n = out.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + n > this.bytes) {
      throw new RangeError(`bytes ${offset}..${offset + n} are outside tensor ${this.tensor.name} (${this.bytes} bytes)`);
    }
    if (n === 0) return;
    const firstWord = Math.floor(offset / this.unit);
    const s = this.seek(firstWord);
    if (this.mode.kind === 'e8m0') {
      fillE8m0(s, out, this.mode.s0, this.mode.threshold);
      this.cursor = { word: firstWord + n, state: s };
      return;
    }
    const table = this.mode.kind === 'bf16' ? this.mode.table : undefined;
    let word = firstWord;
    let at = 0;
    const head = offset % 4;
    if (head !== 0) {
      at = Math.min(n, 4 - head);
      const before = copyState(s);
      writeWordBytes(nextWord(s, table), head, out, 0, at);
      if (head + at < 4) {
        this.cursor = { word, state: before };
        return;
      }
      word++;
    }
    const whole = Math.floor((n - at) / 4);
    if (whole > 0) {
      const byteOffset = out.byteOffset + at;
      if (LITTLE_ENDIAN && byteOffset % 4 === 0) {
        const out32 = new Uint32Array(out.buffer, byteOffset, whole);
        if (table) fillBf16(s, out32, table);
        else fillU32(s, out32);
      } else {
        // Unaligned destination (or a big-endian host): through a scratch block.
        const scratch = new Uint32Array(Math.min(whole, 16384));
        for (let done = 0; done < whole;) {
          const k = Math.min(scratch.length, whole - done);
          const block = scratch.subarray(0, k);
          if (table) fillBf16(s, block, table);
          else fillU32(s, block);
          if (LITTLE_ENDIAN) out.set(new Uint8Array(scratch.buffer, 0, 4 * k), at + 4 * done);
          else for (let i = 0; i < k; i++) writeWordBytes(block[i]!, 0, out, at + 4 * (done + i), 4);
          done += k;
        }
      }
      at += 4 * whole;
      word += whole;
    }
    if (at < n) {
      // A partial last word: keep the cursor before it, where a following read resumes.
      const before = copyState(s);
      writeWordBytes(nextWord(s, table), 0, out, at, n - at);
      this.cursor = { word, state: before };
      return;
    }
    this.cursor = { word, state: s };
  }

  /** A mutable copy of the state before drawing word `word`. */
  private seek(word: number): XoshiroState {
    const c = this.cursor;
    let s: XoshiroState;
    if (word >= c.word && word - c.word <= MAX_STEP_FORWARD) {
      s = c.state;
      for (let i = c.word; i < word; i++) s = stepState(s);
    } else {
      s = jumpState(this.start, word);
    }
    return copyState(s);
  }
}

function copyState(s: XoshiroState): XoshiroState {
  return [s[0], s[1], s[2], s[3]];
}

/** One output word (xoshiro128** output of `s`, then `s` advanced), mapped through the table if any. */
function nextWord(s: XoshiroState, table: Uint16Array | undefined): number {
  const tmp = new Uint32Array(1);
  if (table) fillBf16(s, tmp, table);
  else fillU32(s, tmp);
  return tmp[0]!;
}

function writeWordBytes(w: number, from: number, out: Uint8Array, at: number, count: number): void {
  for (let i = 0; i < count; i++) out[at + i] = (w >>> (8 * (from + i))) & 255;
}

// The three fill loops below inline xoshiro128** (rng.ts nextU32) on local variables: they
// are the whole cost of generation. Each writes the advanced state back into `st`.

function fillU32(st: XoshiroState, out: Uint32Array): void {
  let [s0, s1, s2, s3] = st;
  for (let i = 0; i < out.length; i++) {
    const m = Math.imul(s1, 5);
    out[i] = Math.imul((m << 7) | (m >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
  }
  st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3;
}

function fillBf16(st: XoshiroState, out: Uint32Array, table: Uint16Array): void {
  let [s0, s1, s2, s3] = st;
  for (let i = 0; i < out.length; i++) {
    const m = Math.imul(s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9);
    out[i] = table[r & 0xffff]! | (table[r >>> 16]! << 16);
    const t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
  }
  st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3;
}

function fillE8m0(st: XoshiroState, out: Uint8Array, e0: number, threshold: number): void {
  let [s0, s1, s2, s3] = st;
  // u < T for unsigned 32-bit u and T = ceil(threshold), branch-free: the borrow out of u - T
  // (Hacker's Delight 2-13); the draws are random, so a branch would mispredict half the time.
  const bound = Math.ceil(threshold);
  const T = bound >= 2 ** 32 ? 0 : bound | 0;
  const always = bound >= 2 ** 32 ? 1 : 0;
  for (let i = 0; i < out.length; i++) {
    const m = Math.imul(s1, 5);
    const u = Math.imul((m << 7) | (m >>> 25), 9);
    out[i] = e0 + ((((~u & T) | (~(u ^ T) & (u - T))) >>> 31) | always);
    const t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
  }
  st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3;
}
