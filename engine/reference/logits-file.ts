/** The golden logits file format: float32 little-endian, row-major [T, vocab]. */

export function writeLogitsF32(logits: Float32Array): Uint8Array {
  const out = new Uint8Array(logits.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < logits.length; i++) view.setFloat32(i * 4, logits[i]!, true);
  return out;
}

export function readLogitsF32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`logits file has ${bytes.byteLength} bytes, not a multiple of 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
