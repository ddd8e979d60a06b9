/**
 * Jump-ahead for xoshiro128** (rng.ts): the state after n draws, in O(log n) instead of O(n),
 * so any word of a stream can be produced without drawing everything before it.
 *
 * xoshiro's state update T is linear over GF(2) on the 128 state bits. With P the
 * characteristic polynomial of T (degree 128, found once by Berlekamp-Massey on one state bit)
 * and r(x) = x^n mod P(x), T^n = r(T) = sum of r_i T^i: 128 plain steps, XOR-ing the states
 * where r_i is set. Polynomials over GF(2) are BigInts, bit i the coefficient of x^i.
 */
import type { XoshiroState } from './rng.ts';

/** One xoshiro128** state update (the output function is not needed to jump). */
export function stepState(s: XoshiroState): XoshiroState {
  let [s0, s1, s2, s3] = s;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = (s3 << 11) | (s3 >>> 21);
  return [s0, s1, s2, s3];
}

let charPoly: bigint | undefined;

/** P(x), the characteristic polynomial of the state update (bit 128 set). */
export function xoshiroCharPoly(): bigint {
  if (charPoly !== undefined) return charPoly;
  // 256 bits of one linear functional of the state (bit 0 of s0) from an arbitrary state.
  const bits = new Uint8Array(256);
  let s: XoshiroState = [0x9e3779b9, 0x243f6a88, 0xb7e15162, 0x8aed2a6b];
  for (let i = 0; i < bits.length; i++) {
    bits[i] = s[0] & 1;
    s = stepState(s);
  }
  const { poly, degree } = berlekampMassey(bits);
  // The period of xoshiro128 is 2^128 - 1: P is primitive of degree 128, and the minimal
  // polynomial of any non-zero output sequence is P itself.
  if (degree !== 128) throw new Error(`internal: xoshiro128 characteristic polynomial has degree ${degree}, expected 128`);
  charPoly = poly;
  return poly;
}

/**
 * Shortest linear recurrence of a bit sequence. Returns the characteristic polynomial
 * x^L + c_1 x^(L-1) + ... + c_L for s_j = c_1 s_(j-1) + ... + c_L s_(j-L).
 */
function berlekampMassey(s: Uint8Array): { poly: bigint; degree: number } {
  const n = s.length;
  const c = new Uint8Array(n + 1);
  let b = new Uint8Array(n + 1);
  c[0] = 1;
  b[0] = 1;
  let l = 0;
  let m = 1;
  for (let i = 0; i < n; i++) {
    let d = s[i]!;
    for (let j = 1; j <= l; j++) d ^= c[j]! & s[i - j]!;
    if (d === 0) {
      m++;
    } else if (2 * l <= i) {
      const t = c.slice();
      for (let j = m; j <= n; j++) c[j]! ^= b[j - m]!;
      l = i + 1 - l;
      b = t;
      m = 1;
    } else {
      for (let j = m; j <= n; j++) c[j]! ^= b[j - m]!;
      m++;
    }
  }
  // Connection polynomial C(x) = sum c_j x^j; the characteristic polynomial is x^L C(1/x).
  let poly = 0n;
  for (let j = 0; j <= l; j++) if (c[j]) poly |= 1n << BigInt(l - j);
  return { poly, degree: l };
}

/** a mod p over GF(2), for a of degree < 2 * deg(p). */
function reduce(a: bigint, p: bigint, deg: number): bigint {
  for (let bit = a.toString(2).length - 1; bit >= deg; bit--) {
    if ((a >> BigInt(bit)) & 1n) a ^= p << BigInt(bit - deg);
  }
  return a;
}

/** a^2 over GF(2): bit i moves to bit 2i. */
function square(a: bigint): bigint {
  let out = 0n;
  for (let i = 0n; a !== 0n; i++, a >>= 1n) if (a & 1n) out |= 1n << (2n * i);
  return out;
}

/** x^n mod P(x). */
function xPowMod(n: number, p: bigint, deg: number): bigint {
  let r = 1n;
  for (const bit of n.toString(2)) {
    r = reduce(square(r), p, deg);
    if (bit === '1') r = reduce(r << 1n, p, deg);
  }
  return r;
}

/** The state after n draws from `s` (n a non-negative safe integer). */
export function jumpState(s: XoshiroState, n: number): XoshiroState {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`jump distance must be a non-negative safe integer, got ${n}`);
  if (n < 128) {
    for (let i = 0; i < n; i++) s = stepState(s);
    return s;
  }
  const r = xPowMod(n, xoshiroCharPoly(), 128);
  const acc: XoshiroState = [0, 0, 0, 0];
  for (let i = 0n; i < 128n; i++) {
    if ((r >> i) & 1n) {
      acc[0] ^= s[0];
      acc[1] ^= s[1];
      acc[2] ^= s[2];
      acc[3] ^= s[3];
    }
    s = stepState(s);
  }
  return acc;
}
