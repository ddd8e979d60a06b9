/**
 * WGSL snippets shared by kernels: the per-forward Step uniform and bf16 decoding.
 *
 * bf16 weights are uploaded as their raw bytes and read as array<u32>: element i lives in word
 * i / 2, low half for even i. Shifting a bf16 into the high half of a u32 gives its f32 bits.
 */
export const STEP_STRUCT = /* wgsl */ `
struct Step {
  n_tokens: u32,   // tokens in this forward batch
  pos0: u32,       // absolute position of the batch's first token
  _pad0: u32,
  _pad1: u32,
}`;

/** Byte size of the Step uniform. */
export const STEP_BYTES = 16;

export const BF16_FNS = /* wgsl */ `
fn bf16_lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }
fn bf16_hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }
fn bf16_at(buf_word: u32, odd: bool) -> f32 { return select(bf16_lo(buf_word), bf16_hi(buf_word), odd); }`;

export function writeStep(device: GPUDevice, buf: GPUBuffer, nTokens: number, pos0: number): void {
  device.queue.writeBuffer(buf, 0, new Uint32Array([nTokens, pos0, 0, 0]));
}
