/**
 * A small, fast, seeded PRNG for synthetic checkpoints: xoshiro128** seeded through splitmix64.
 *
 * Every tensor gets its own stream derived from (seed, tensor name) by hashing, so a tensor's
 * bytes depend only on the seed and its name: not on generation order, shard layout or the
 * chunk size used to stream it. Draws are strictly sequential within a stream.
 */

const MASK64 = (1n << 64n) - 1n;

/** FNV-1a, 64-bit, over the UTF-8 bytes of a string. */
export function fnv1a64(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(s)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & MASK64;
  }
  return h;
}

/** One splitmix64 step: returns [output, next state]. */
function splitmix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [z ^ (z >> 31n), next];
}

/** xoshiro128** state words [s0, s1, s2, s3] of the stream (seed, stream), before any draw. */
export function seedState(seed: number, stream = ''): XoshiroState {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative safe integer, got ${seed}`);
  let state = BigInt(seed) ^ fnv1a64(stream);
  const words: number[] = [];
  for (let i = 0; i < 2; i++) {
    const [out, next] = splitmix64(state);
    state = next;
    words.push(Number(out & 0xffffffffn), Number(out >> 32n));
  }
  // splitmix64 outputs are a bijection of distinct states: never four zero words in practice,
  // but guard anyway (the all-zero state is xoshiro's only fixed point).
  if (!words.some((w) => w !== 0)) words[0] = 1;
  return words as XoshiroState;
}

/** The four 32-bit words of a xoshiro128** state (as signed or unsigned numbers). */
export type XoshiroState = [number, number, number, number];

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = 0;
  private hasSpare = false;

  /** `seed`: a non-negative safe integer; `stream`: any string (e.g. the tensor name). */
  constructor(seed: number, stream = '') {
    [this.s0, this.s1, this.s2, this.s3] = seedState(seed, stream);
  }

  /** Next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() * 2.3283064365386963e-10;
  }

  /** Standard normal (Box-Muller, polar form); the second value of each pair is kept for the next call. */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = this.nextU32() * 4.656612873077393e-10 - 1; // [-1, 1)
      v = this.nextU32() * 4.656612873077393e-10 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * m;
    this.hasSpare = true;
    return u * m;
  }

  /** Fills `out` with random bytes (4 per draw; a trailing partial word is drawn whole). */
  fillBytes(out: Uint8Array): void {
    const n = out.length;
    const n4 = n & ~3;
    let i = 0;
    for (; i < n4; i += 4) {
      const r = this.nextU32();
      out[i] = r & 255;
      out[i + 1] = (r >>> 8) & 255;
      out[i + 2] = (r >>> 16) & 255;
      out[i + 3] = r >>> 24;
    }
    if (i < n) {
      let r = this.nextU32();
      for (; i < n; i++, r >>>= 8) out[i] = r & 255;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
