/**
 * The per-layer kernels of a session, bound to its buffers once: the prefill layer (batched
 * kernels, 13 dispatches: the MoE grouped by expert) and the decode layer (the fused one-token kernels, 7 dispatches:
 * qkv matvec with the RMSNorm folded in, flash-decoding attention split + combine with RoPE and
 * the KV store inside, o matvec into the residual, router + top-k, MoE gate_up with the norm
 * folded in, MoE down into the residual). Each op carries an estimate of the bytes it reads.
 */
import type { KvCache } from '../kernels/kv-cache.ts';
import type { GpuModel } from './gpu-model.ts';
import type { BoundOp, BufferName } from './gpu-session.ts';
import { denseReads, expertReads, kvReads, type ReadEstimate } from './read-bytes.ts';

type Buffers = Record<BufferName, GPUBuffer>;
type Batched = { key: string; encode(p: GPUComputePassEncoder, bg: GPUBindGroup, n: number): void };

function batched(k: Batched, bg: GPUBindGroup, reads: ReadEstimate): BoundOp {
  return { name: k.key, reads, run: (pass, n) => k.encode(pass, bg, n) };
}

function once(k: { key: string; encode(p: GPUComputePassEncoder, bg: GPUBindGroup): void }, bg: GPUBindGroup, reads: ReadEstimate): BoundOp {
  return { name: k.key, reads, run: (pass) => k.encode(pass, bg) };
}

export function bindPrefillLayer(m: GpuModel, B: Buffers, l: number, kv: KvCache): BoundOp[] {
  const dev = m.gpu.device;
  const kn = m.kernels;
  const c = m.config;
  const w = (p: Parameters<GpuModel['weight']>[0]) => m.weight(p, l)[0]!;
  const sliding = c.layerTypes[l] === 'sliding';
  const attn = sliding ? kn.attnSliding : kn.attnFull;
  // Activation bytes per token (f32), for the profile's GB/s.
  const H = c.hiddenSize * 4, Q = c.numHeads * c.headDim * 4, QKV = (c.numHeads + 2 * c.numKvHeads) * c.headDim * 4, K = c.expertsPerToken;
  return [
    batched(kn.rmsnorm, kn.rmsnorm.bind(dev, B.x, w('attn_norm'), B.h), denseReads([w('attn_norm')], H)),
    batched(kn.qkv, kn.qkv.bind(dev, { x: B.h, weight: w('qkv_w'), bias: w('qkv_b'), out: B.qkv, step: B.step }), denseReads([w('qkv_w'), w('qkv_b')], H)),
    batched(kn.rope, kn.rope.bind(dev, B.step, B.qkv, B.rope), denseReads([], QKV + c.headDim * 4)),
    batched(kn.kvStore, kn.kvStore.bind(dev, B.step, B.qkv, B.qkv, kv), denseReads([], QKV)),
    batched(attn, attn.bind(dev, sliding ? B.stepSliding : B.step, B.qkv, kv, w('sinks'), B.attn), kvReads(kv, sliding ? c.slidingWindow : 0, [w('sinks')], Q)),
    batched(kn.o, kn.o.bind(dev, { x: B.attn, weight: w('o_w'), bias: w('o_b'), out: B.x, step: B.step }), denseReads([w('o_w'), w('o_b')], Q + H)),
    batched(kn.rmsnorm, kn.rmsnorm.bind(dev, B.x, w('mlp_norm'), B.h), denseReads([w('mlp_norm')], H)),
    batched(kn.router, kn.router.bind(dev, { x: B.h, weight: w('router_w'), bias: w('router_b'), out: B.routerLogits, step: B.step }), denseReads([w('router_w'), w('router_b')], H)),
    batched(kn.topk, kn.topk.bind(dev, B.step, B.routerLogits, B.ids, B.expertWeights), denseReads([], c.numExperts * 4)),
    ...bindGroupedMoe(m, B, l),
  ];
}

/**
 * The grouped MoE of one prefill layer: route (slots sorted by expert, tile table, indirect
 * args), gate_up + SwiGLU and down over tiles of slots (dispatched indirectly), and the
 * fixed-order combine of each token's k outputs into the residual.
 */
function bindGroupedMoe(m: GpuModel, B: Buffers, l: number): BoundOp[] {
  const dev = m.gpu.device;
  const c = m.config;
  const { route, gateUp, down, combine } = m.kernels.moe;
  const w = (p: Parameters<GpuModel['weight']>[0]) => m.weight(p, l)[0]!;
  const H = c.hiddenSize * 4, K = c.expertsPerToken, I = c.intermediateSize * 4;
  const tables = { list: B.moeList, tiles: B.moeTiles };
  const gateUpW = [w('gate_up_blocks'), w('gate_up_scales'), w('gate_up_bias')];
  const downW = [w('down_blocks'), w('down_scales'), w('down_bias')];
  const routeBg = route.bind(dev, { step: B.step, ids: B.ids, offsets: B.moeOffsets, ...tables, args: B.moeArgs });
  const gateUpBg = gateUp.bind(dev, { x: B.h, ...tables, blocks: gateUpW[0]!, scales: gateUpW[1]!, bias: gateUpW[2]!, out: B.act });
  const downBg = down.bind(dev, { x: B.act, ...tables, blocks: downW[0]!, scales: downW[1]!, bias: downW[2]!, out: B.moeOut });
  const combineBg = combine.bind(dev, { step: B.step, y: B.moeOut, weights: B.expertWeights, x: B.x });
  // Each expert a batch touches is read once per tile of its slots: about once for the batch.
  return [
    { name: route.key, reads: denseReads([], 4 * K), run: (p) => route.encode(p, routeBg) },
    { name: gateUp.key, reads: expertReads(gateUpW, c.numExperts, K, K * (H + 4)), run: (p) => gateUp.encode(p, gateUpBg, B.moeArgs, 0) },
    { name: down.key, reads: expertReads(downW, c.numExperts, K, K * (I + 4)), run: (p) => down.encode(p, downBg, B.moeArgs, 16) },
    batched(combine, combineBg, denseReads([], K * (H + 4) + H)),
  ];
}

export function bindDecodeLayer(m: GpuModel, B: Buffers, l: number, kv: KvCache): BoundOp[] {
  const dev = m.gpu.device;
  const kd = m.kernels.decode;
  const c = m.config;
  const w = (p: Parameters<GpuModel['weight']>[0]) => m.weight(p, l)[0]!;
  const sliding = c.layerTypes[l] === 'sliding';
  const attn = sliding ? kd.attnSliding : kd.attnFull;
  const attnBg = attn.bind(dev, sliding ? B.stepSliding : B.step, B.qkv, B.rope, kv, B.part, w('sinks'), B.attn);
  const H = c.hiddenSize * 4, Q = c.numHeads * c.headDim * 4, QKV = (c.numHeads + 2 * c.numKvHeads) * c.headDim * 4, K = c.expertsPerToken;
  const down = m.kernels.down;
  return [
    once(kd.qkv, kd.qkv.bind(dev, { x: B.x, out: B.qkv, weights: [w('qkv_w')], bias: w('qkv_b'), norm: w('attn_norm') }),
      denseReads([w('qkv_w'), w('qkv_b'), w('attn_norm')], H)),
    { name: attn.key, reads: kvReads(kv, sliding ? c.slidingWindow : 0, [w('sinks')], QKV), run: (p, _n, pos) => attn.encode(p, attnBg, pos) },
    once(kd.o, kd.o.bind(dev, { x: B.attn, out: B.x, weights: [w('o_w')], bias: w('o_b') }), denseReads([w('o_w'), w('o_b')], Q + H)),
    once(kd.router, kd.router.bind(dev, { x: B.x, gain: w('mlp_norm'), weight: w('router_w'), bias: w('router_b'), ids: B.ids, weights: B.expertWeights }),
      denseReads([w('router_w'), w('router_b'), w('mlp_norm')], H)),
    batched(kd.gateUp, kd.gateUp.bind(dev, B.step, B.x, B.ids, w('gate_up_blocks'), w('gate_up_scales'), w('gate_up_bias'), B.act, w('mlp_norm')),
      expertReads([w('gate_up_blocks'), w('gate_up_scales'), w('gate_up_bias')], c.numExperts, K, H + 4 * K)),
    batched(down, down.bind(dev, B.step, B.act, B.ids, B.expertWeights, w('down_blocks'), w('down_scales'), w('down_bias'), B.x),
      expertReads([w('down_blocks'), w('down_scales'), w('down_bias')], c.numExperts, K, K * c.intermediateSize * 4 + 8 * K + H)),
  ];
}
