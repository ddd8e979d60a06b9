/**
 * The framing SHA-1 and SHA-256 share (FIPS 180-4): input cut into 64-byte blocks compressed
 * into a state of 32-bit words, the message padded with 0x80, zeros and its length in bits
 * (64-bit big-endian), the digest the final state's words big-endian. Blocks are compressed
 * straight from the caller's array (no copy); only a partial block is buffered.
 */
export abstract class BlockHash {
  private readonly tail = new Uint8Array(64);
  private tailLen = 0;
  private total = 0;
  private done = false;

  /** `name` for error messages; `h` the initial state, updated in place by compress(). */
  protected constructor(private readonly name: string, protected readonly h: Int32Array) {}

  /** Compresses the 64-byte blocks of d[from, to) into `h`. */
  protected abstract compress(d: Uint8Array, from: number, to: number): void;

  /** Bytes hashed so far. */
  get length(): number {
    return this.total;
  }

  update(data: Uint8Array): this {
    if (this.done) throw new Error(`${this.name}: update after digest`);
    this.total += data.length;
    let i = 0;
    if (this.tailLen > 0) {
      i = Math.min(64 - this.tailLen, data.length);
      this.tail.set(data.subarray(0, i), this.tailLen);
      this.tailLen += i;
      if (this.tailLen < 64) return this;
      this.compress(this.tail, 0, 64);
      this.tailLen = 0;
    }
    const whole = i + ((data.length - i) & ~63);
    if (whole > i) this.compress(data, i, whole);
    if (whole < data.length) {
      this.tail.set(data.subarray(whole), 0);
      this.tailLen = data.length - whole;
    }
    return this;
  }

  /** The digest (4 bytes per state word); the hasher cannot be updated afterwards. */
  digest(): Uint8Array {
    if (this.done) throw new Error(`${this.name}: digest called twice`);
    const bits = this.total * 8;
    const pad = new Uint8Array(this.tailLen < 56 ? 64 : 128);
    pad.set(this.tail.subarray(0, this.tailLen));
    pad[this.tailLen] = 0x80;
    const v = new DataView(pad.buffer);
    v.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32));
    v.setUint32(pad.length - 4, bits >>> 0);
    this.compress(pad, 0, pad.length);
    this.done = true;
    const out = new Uint8Array(this.h.length * 4);
    const o = new DataView(out.buffer);
    for (let j = 0; j < this.h.length; j++) o.setInt32(j * 4, this.h[j]!);
    return out;
  }

  hex(): string {
    return toHex(this.digest());
  }
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}
