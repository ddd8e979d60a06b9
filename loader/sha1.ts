/**
 * Streaming SHA-1, only for Git blob ids: Hugging Face publishes no sha256 for files kept in
 * Git rather than LFS (config.json, small JSON files), only their Git object id,
 * sha1("blob <size>\0" + content). Block framing: block-hash.ts.
 */
import { BlockHash } from './block-hash.ts';

export class Sha1 extends BlockHash {
  private readonly w = new Int32Array(80);

  constructor() {
    super('Sha1', new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]));
  }

  protected compress(d: Uint8Array, from: number, to: number): void {
    const h = this.h;
    const w = this.w;
    let h0 = h[0]!, h1 = h[1]!, h2 = h[2]!, h3 = h[3]!, h4 = h[4]!;
    for (let off = from; off < to; off += 64) {
      for (let t = 0; t < 16; t++) {
        const j = off + t * 4;
        w[t] = (d[j]! << 24) | (d[j + 1]! << 16) | (d[j + 2]! << 8) | d[j + 3]!;
      }
      for (let t = 16; t < 80; t++) {
        const x = w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!;
        w[t] = (x << 1) | (x >>> 31);
      }
      let a = h0, b = h1, c = h2, dd = h3, e = h4;
      for (let t = 0; t < 80; t++) {
        const f = t < 20 ? ((b & c) | (~b & dd)) + 0x5a827999
          : t < 40 ? (b ^ c ^ dd) + 0x6ed9eba1
          : t < 60 ? ((b & c) | (b & dd) | (c & dd)) + 0x8f1bbcdc
          : (b ^ c ^ dd) + 0xca62c1d6;
        const tmp = (((a << 5) | (a >>> 27)) + f + e + w[t]!) | 0;
        e = dd;
        dd = c;
        c = (b << 30) | (b >>> 2);
        b = a;
        a = tmp;
      }
      h0 = (h0 + a) | 0;
      h1 = (h1 + b) | 0;
      h2 = (h2 + c) | 0;
      h3 = (h3 + dd) | 0;
      h4 = (h4 + e) | 0;
    }
    h[0] = h0; h[1] = h1; h[2] = h2; h[3] = h3; h[4] = h4;
  }
}
