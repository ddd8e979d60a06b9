/**
 * u32_stream_read: reads a whole buffer once, as fast as the device can, to measure its read
 * bandwidth ceiling (what a memory-bound decode could reach at best).
 *
 * Bindings: 0 src: array<vec4<u32>> (the buffer streamed); 1 out: array<u32> (>= 1 word).
 * Grid-stride loop over vec4 loads, four independent loads in flight per thread per iteration;
 * the XOR of everything a thread read is compared with a constant and written to out[0] only
 * on a match, so the loads cannot be optimised away and the output stays a few bytes. A zeroed
 * source (WebGPU clears new buffers) never matches. Workgroups of 256; any count up to the
 * per-dimension limit (gridStride threads in all).
 */
import { bindBuffers, type PipelineCache } from './pipeline-cache.ts';

export const STREAM_WG = 256;

export const streamReadSource = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(${STREAM_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = arrayLength(&src);
  let stride = nwg.x * ${STREAM_WG}u;
  var a0 = vec4<u32>(0u);
  var a1 = vec4<u32>(0u);
  var a2 = vec4<u32>(0u);
  var a3 = vec4<u32>(0u);
  var i = gid.x;
  // Four loads per iteration while all four are in range, then the tail one at a time.
  loop {
    if (i + 3u * stride >= n || i + 3u * stride < i) { break; }
    a0 ^= src[i];
    a1 ^= src[i + stride];
    a2 ^= src[i + 2u * stride];
    a3 ^= src[i + 3u * stride];
    i += 4u * stride;
  }
  for (; i < n; i += stride) { a0 ^= src[i]; }
  let r = a0 ^ a1 ^ a2 ^ a3;
  if ((r.x ^ r.y ^ r.z ^ r.w) == 0x9e3779b9u) { out[0] = gid.x + 1u; }
}`;

export class StreamReadKernel {
  readonly key = 'u32_stream_read';
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache) {
    this.pipeline = cache.get(this.key, () => streamReadSource);
  }

  /** src: a multiple of 16 bytes; out: at least 4 bytes. */
  bind(device: GPUDevice, src: GPUBuffer, out: GPUBuffer): GPUBindGroup {
    if (src.size % 16 !== 0) throw new Error(`${this.key}: source size ${src.size} is not a multiple of 16`);
    return bindBuffers(device, this.pipeline, [src, out], this.key);
  }

  /** Workgroups for a source of `bytes`: four vec4 loads per thread, capped at `maxWorkgroups` (then more per thread). */
  static workgroups(bytes: number, maxWorkgroups: number): number {
    return Math.max(1, Math.min(maxWorkgroups, Math.ceil(bytes / 16 / 4 / STREAM_WG)));
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, workgroups: number): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups);
  }
}
