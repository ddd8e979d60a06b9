/**
 * The streaming hashers (loader/sha256.ts, loader/sha1.ts) against node:crypto: every length
 * around the block and padding boundaries, the input split at random points, and a throughput
 * line (they run on the loading thread, next to the upload).
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha1 } from '../loader/sha1.ts';
import { Sha256, sha256Hex } from '../loader/sha256.ts';

const LENGTHS = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65_536 + 7];

function splitUpdate<T extends { update(b: Uint8Array): T }>(h: T, data: Uint8Array, seed: number): T {
  let x = seed;
  for (let i = 0; i < data.length; ) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = Math.min(data.length - i, 1 + (x % 150));
    h.update(data.subarray(i, i + n));
    i += n;
  }
  return h;
}

describe('streaming hashes', () => {
  it('sha256 equals node:crypto for every length around the block boundaries, whole and in pieces', () => {
    for (const n of LENGTHS) {
      const data = new Uint8Array(randomBytes(n));
      const want = createHash('sha256').update(data).digest('hex');
      expect(sha256Hex(data), `sha256 of ${n} bytes in one update`).toBe(want);
      expect(splitUpdate(new Sha256(), data, n).hex(), `sha256 of ${n} bytes in random pieces`).toBe(want);
    }
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('sha1 equals node:crypto (and gives Git blob ids)', () => {
    for (const n of LENGTHS) {
      const data = new Uint8Array(randomBytes(n));
      expect(splitUpdate(new Sha1(), data, n).hex(), `sha1 of ${n} bytes`).toBe(createHash('sha1').update(data).digest('hex'));
    }
    // `git hash-object` of "hello\n"
    const blob = new Sha1().update(new TextEncoder().encode('blob 6\0hello\n')).hex();
    expect(blob).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
  });

  it('refuses updates after the digest', () => {
    const h = new Sha256();
    h.hex();
    expect(() => h.update(new Uint8Array(1))).toThrow(/after digest/);
  });

  it('hashes at a usable rate', () => {
    const data = new Uint8Array(randomBytes(32 << 20));
    const t0 = performance.now();
    const got = new Sha256().update(data).hex();
    const ms = performance.now() - t0;
    expect(got).toBe(createHash('sha256').update(data).digest('hex'));
    console.log(`sha256: ${((data.length / 1e6 / ms) * 1000).toFixed(0)} MB/s on this machine`);
  });
});
