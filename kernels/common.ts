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
  window: u32,     // the attention layer's sliding window W (0: full), read by the attention kernels
  _pad1: u32,
}`;

/** Byte size of the Step uniform. */
export const STEP_BYTES = 16;

export const BF16_FNS = /* wgsl */ `
fn bf16_lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }
fn bf16_hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }
fn bf16_at(buf_word: u32, odd: bool) -> f32 { return select(bf16_lo(buf_word), bf16_hi(buf_word), odd); }`;

/**
 * Writes a Step. `window` is for the attention kernels, which take it from here rather than baking
 * it in, so sliding and full layers share their pipelines (one compile less each per model load).
 */
export function writeStep(device: GPUDevice, buf: GPUBuffer, nTokens: number, pos0: number, window = 0): void {
  checkWindow(window);
  device.queue.writeBuffer(buf, 0, new Uint32Array([nTokens, pos0, window, 0]));
}

/** A sliding window the attention kernels can take (a u32; 0 = full). */
export function checkWindow(window: number): void {
  if (!Number.isInteger(window) || window < 0 || window > 0xffffffff) throw new RangeError(`attention window ${window} is not a u32 (0 for a full layer)`);
}

/**
 * The subgroup reductions of the kernels' `subgroups` variants (`enable subgroups;` is the first
 * line of such a module; only a device granted the feature may compile one), for a workgroup of
 * `wg` invocations (a multiple of 128, so a whole number of subgroups of any size WebGPU allows,
 * 4 to 128, assumed full).
 *
 * Nothing here assumes how local_invocation_index maps onto subgroups (Vulkan leaves it open):
 * each subgroup takes a slot from a workgroup counter, and t = slot * subgroup_size +
 * subgroup_invocation_id numbers the invocations so that every subgroup holds an aligned run of
 * t. Kernels split work by t, so a row's lanes (an aligned power-of-two run of t) lie in one
 * subgroup or span whole subgroups. Usage: `let taken = sg_take();`, then a workgroupBarrier()
 * (SwiftShader returns stale counter values without one), then `let t = sg_index(taken, sl, sz);`.
 * Sums come out in a fixed order for a given subgroup size (deterministic run to run).
 */
export function subgroupFns(wg: number): string {
  if (wg % 128 !== 0) throw new Error(`subgroup reductions need a workgroup size that is a multiple of 128, got ${wg}`);
  return /* wgsl */ `
var<workgroup> sg_next: atomic<u32>;
var<workgroup> sg_part: array<f32, ${wg / 4}>;
fn sg_take() -> u32 {
  var s = 0u;
  if (subgroupElect()) { s = atomicAdd(&sg_next, 1u); }
  return s;
}
fn sg_index(taken: u32, sl: u32, sz: u32) -> u32 { return subgroupBroadcastFirst(taken) * sz + sl; }
// Sum of v over each aligned run of \`lanes\` consecutive t (a power of two <= ${wg}), returned to
// every invocation of the run. Call in uniform control flow: runs longer than a subgroup meet
// through sg_part between two barriers.
fn sg_run_sum(v: f32, t: u32, sz: u32, lanes: u32) -> f32 {
  var s: f32;
  if (lanes < sz) {
    s = v;
    for (var m = lanes >> 1u; m > 0u; m >>= 1u) { s += subgroupShuffleXor(s, m); }
  } else {
    s = subgroupAdd(v);
  }
  if (lanes > sz) {
    if (t % sz == 0u) { sg_part[t / sz] = s; }
    workgroupBarrier();
    let span = lanes / sz;
    let first = (t / lanes) * span;
    s = 0.0;
    for (var j = 0u; j < span; j++) { s += sg_part[first + j]; }
    workgroupBarrier();
  }
  return s;
}`;
}

/** The builtins a `subgroups` kernel's entry point takes besides its own. */
export const SUBGROUP_ARGS = '@builtin(subgroup_invocation_id) sl: u32, @builtin(subgroup_size) sz: u32';

/** Throws unless `device` was granted `subgroups` (a kernel asked for its subgroup variant). */
export function requireSubgroups(device: GPUDevice, kernel: string): void {
  if (!device.features.has('subgroups')) throw new Error(`${kernel}: the subgroup variant needs a device created with the 'subgroups' feature`);
}
