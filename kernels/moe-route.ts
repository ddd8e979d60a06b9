/**
 * u32_moe_route_e{E}_k{k}_tile{TM}: groups a prefill batch's (token, expert) slots by expert, on
 * the GPU, so the grouped MoE kernels (moe-grouped.ts) decode each expert's MXFP4 blocks once
 * per tile of up to TM tokens instead of once per slot. No host round trip: the tile count goes
 * straight into the indirect dispatch arguments of the kernels that follow.
 *
 * For the slots s = t * k + j of the first n = step.n_tokens tokens (expert ids[s]):
 *   offsets[e]  = number of slots routed to experts < e (exclusive prefix sum; offsets[E] = n k)
 *   list[offsets[e] ..]      = the slots routed to e, in increasing slot order (a stable sort)
 *   tiles[i] = (e, first list index, count <= TM, 0): each expert's run cut into TM-slot tiles,
 *              experts in order; experts with no slots get no tile
 *   args[4c .. 4c + 3] = (tile count, ys[c], 1, 0) for each consumer c: the indirect dispatch
 *              arguments (x = tile, y = that kernel's row groups)
 *
 * Bindings: 0 step: Step uniform; 1 ids: array<u32> [T, k]; 2 offsets: array<u32> [E + 1] (out);
 *   3 list: array<u32> [T k] (out); 4 tiles: array<vec4<u32>> [maxTiles] (out);
 *   5 args: array<u32> [4 * consumers] (out; the buffer also has INDIRECT usage).
 * One workgroup of 256 threads and two barriers: thread e counts expert e's slots, one thread
 * prefix-sums and cuts the tiles, then thread e writes expert e's list. Each thread scans all n k
 * ids, which is cheap next to the experts (n k <= 2048 at 512 tokens) and needs no atomics, so
 * the order, and hence every later sum, is deterministic. Assumes ids[s] < E.
 */
import { STEP_STRUCT } from './common.ts';
import { bindBuffers, kernelKey, type PipelineCache } from './pipeline-cache.ts';

const WG = 256;

export interface MoeRouteParams {
  experts: number;
  k: number;
  /** Slots per tile. */
  tile: number;
  /** Row-group counts (grid y) of the kernels dispatched with the args this kernel writes. */
  ys: number[];
}

/** Most tiles `tokens` tokens can need: sum over experts of ceil(count / tile). */
export function maxMoeTiles(tokens: number, k: number, experts: number, tile: number): number {
  const slots = tokens * k;
  return Math.floor((slots + Math.min(experts, slots) * (tile - 1)) / tile);
}

export function moeRouteSource(p: MoeRouteParams): string {
  return /* wgsl */ `
${STEP_STRUCT}
const E: u32 = ${p.experts}u;
const K: u32 = ${p.k}u;
const TM: u32 = ${p.tile}u;
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> list: array<u32>;
@group(0) @binding(4) var<storage, read_write> tiles: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> args: array<u32>;
var<workgroup> counts: array<u32, ${p.experts}>;
var<workgroup> starts: array<u32, ${p.experts}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = step.n_tokens * K;
  for (var e = lid; e < E; e += ${WG}u) {
    var c = 0u;
    for (var s = 0u; s < n; s++) { c += select(0u, 1u, ids[s] == e); }
    counts[e] = c;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var off = 0u;
    var nt = 0u;
    for (var e = 0u; e < E; e++) {
      let c = counts[e];
      starts[e] = off;
      offsets[e] = off;
      for (var i = 0u; i < c; i += TM) {
        tiles[nt] = vec4<u32>(e, off + i, min(TM, c - i), 0u);
        nt++;
      }
      off += c;
    }
    offsets[E] = off;
${p.ys.map((y, c) => `    args[${4 * c}u] = nt; args[${4 * c + 1}u] = ${y}u; args[${4 * c + 2}u] = 1u; args[${4 * c + 3}u] = 0u;`).join('\n')}
  }
  workgroupBarrier();
  for (var e = lid; e < E; e += ${WG}u) {
    var at = starts[e];
    for (var s = 0u; s < n; s++) {
      if (ids[s] == e) {
        list[at] = s;
        at++;
      }
    }
  }
}`;
}

export class MoeRouteKernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;

  constructor(cache: PipelineCache, readonly p: MoeRouteParams) {
    if (!(p.k >= 1 && p.k <= p.experts)) throw new Error(`moe_route: k=${p.k} must be in 1..E=${p.experts}`);
    if (!(p.tile >= 1)) throw new Error(`moe_route: tile ${p.tile} must be >= 1`);
    for (const y of p.ys) if (!(y >= 1 && y <= 65535)) throw new Error(`moe_route: grid y ${y} must be in 1..65535`);
    this.key = kernelKey('u32_moe_route', { e: p.experts, k: p.k, tile: p.tile, ys: p.ys.join('x') });
    this.pipeline = cache.get(this.key, () => moeRouteSource(p));
  }

  /** Bytes of the args buffer (INDIRECT | STORAGE): 16 per consumer. */
  get argsBytes(): number {
    return 16 * this.p.ys.length;
  }

  /** Buffers in binding order; see moeRouteSource for their layouts. */
  bind(device: GPUDevice, b: { step: GPUBuffer; ids: GPUBuffer; offsets: GPUBuffer; list: GPUBuffer; tiles: GPUBuffer; args: GPUBuffer }): GPUBindGroup {
    return bindBuffers(device, this.pipeline, [b.step, b.ids, b.offsets, b.list, b.tiles, b.args], this.key);
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(1);
  }
}
