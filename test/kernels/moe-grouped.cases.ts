/**
 * The grouped MoE of prefill against CPU math (engine/reference/moe-grouped.ts): the route
 * kernel's tables (counts as prefix sums, the sorted slot list, the tile table, the indirect
 * args), the grouped gate_up / down kernels in both variants, and router top-k -> route ->
 * gate_up -> down -> combine in one pass. Awkward shapes: experts with no slots, every token on
 * the same experts, E=128 k=4, slot counts that are not a multiple of the tile, 512 tokens.
 * Runs in Node and in the browser.
 */
import { combineSlots, moeRouteTables, slotDown } from '../../engine/reference/moe-grouped.ts';
import { moeGateUp, topkSoftmax } from '../../engine/reference/ops.ts';
import { bufferFrom, createBuffer, readF32, readU32 } from '../../engine/gpu/buffers.ts';
import { maxMoeTiles, MoeRouteKernel } from '../../kernels/moe-route.ts';
import { MoeCombineKernel, MoeGroupedDownKernel, MoeGroupedGateUpKernel, type MoeGroupedVariant } from '../../kernels/moe-grouped.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { TopkSoftmaxKernel } from '../../kernels/router.ts';
import { checkClose, checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';
import { rwStorage, runPass, stepBuffer } from '../gpu/dispatch.ts';
import { inScope, type CaseScope } from './scope.ts';
import { makeExperts, randomRouting, type ScaleKind } from './moe.cases.ts';

const LIMIT = 7;
const ALPHA = 1.702;
const VARIANTS: MoeGroupedVariant[] = ['tiled', 'simple'];

/** Routing of T tokens: random, or every token on experts 0..k-1 ('same'). */
function routing(rng: TestRng, T: number, E: number, k: number, same: boolean): { ids: Uint32Array; w: Float32Array } {
  const r = randomRouting(rng, T, E, k);
  if (same) for (let s = 0; s < T * k; s++) r.ids[s] = (s % k + Math.floor(s / k)) % k; // rotated, same set
  return r;
}

/** The route kernel's buffers for T tokens, sized for `maxTokens`. */
function routeBuffers(device: GPUDevice, route: MoeRouteKernel, maxTokens: number) {
  const { experts: E, k, tile } = route.p;
  return {
    offsets: createBuffer(device, (E + 1) * 4, rwStorage()),
    list: createBuffer(device, maxTokens * k * 4, rwStorage()),
    tiles: createBuffer(device, maxMoeTiles(maxTokens, k, E, tile) * 16, rwStorage()),
    args: createBuffer(device, route.argsBytes, rwStorage() | GPUBufferUsage.INDIRECT),
  };
}

interface RouteCase { E: number; k: number; T: number; tile: number; same?: boolean; note?: string }
const ROUTE: RouteCase[] = [
  { E: 8, k: 2, T: 5, tile: 4 },
  { E: 16, k: 2, T: 3, tile: 4, note: 'most experts empty' },
  { E: 8, k: 4, T: 13, tile: 4, same: true, note: 'all tokens on experts 0..3' },
  { E: 128, k: 4, T: 37, tile: 16, note: '120b routing' },
  { E: 32, k: 4, T: 512, tile: 16, note: '512 tokens' },
  { E: 4, k: 1, T: 1, tile: 16, note: 'one slot' },
];

async function routeCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[]): Promise<void> {
  for (const c of ROUTE) {
    const { E, k, T, tile } = c;
    const rng = new TestRng(E * 31 + k * 7 + T);
    const { ids } = routing(rng, T, E, k, c.same ?? false);
    const route = new MoeRouteKernel(cache, { experts: E, k, tile, ys: [3, 5] });
    // Room for two more tokens than n_tokens: their ids (expert 0) must be ignored.
    const step = stepBuffer(device, T);
    const ib = bufferFrom(device, Uint32Array.from([...ids, ...new Array<number>(2 * k).fill(0)]));
    const b = routeBuffers(device, route, T + 2);
    await runPass(device, (pass) => route.encode(pass, route.bind(device, { step, ids: ib, ...b })));
    const want = moeRouteTables(ids, T, k, E, tile);
    const shape = `E=${E} k=${k} T=${T} tile=${tile}${c.note ? ` ${c.note}` : ''}`;
    out.push(checkEqual(`${route.key} offsets`, shape, want.offsets, await readU32(device, b.offsets, E + 1)));
    out.push(checkEqual(`${route.key} list`, shape, want.list, await readU32(device, b.list, T * k)));
    out.push(checkEqual(`${route.key} tiles`, shape, want.tiles, await readU32(device, b.tiles, want.tileCount * 4)));
    out.push(checkEqual(`${route.key} args`, shape, [want.tileCount, 3, 1, 0, want.tileCount, 5, 1, 0], await readU32(device, b.args, 8)));
    if (want.tileCount > maxMoeTiles(T, k, E, tile)) out.push({ kernel: route.key, shape, ok: false, maxErr: Infinity, message: `${route.key} ${shape}: ${want.tileCount} tiles, over maxMoeTiles` });
    for (const x of [step, ib, ...Object.values(b)]) x.destroy();
  }
}

interface GroupedCase {
  H: number; I: number; E: number; k: number; T: number; tile: number; scales: ScaleKind; hScale: number; atol: number;
  same?: boolean; note?: string;
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
  /** Default both. SwiftShader compiles the tiled variant slowly: it runs where a shape adds something. */
  variants?: MoeGroupedVariant[];
}
const GROUPED: GroupedCase[] = [
  { H: 64, I: 64, E: 4, k: 2, T: 5, tile: 4, scales: { kind: 'normal', center: 125 }, hScale: 1, atol: 1e-5 },
  // the engine's tile; 3 (gate_up) and 2 (down) blocks per row: a partial round of the tiled
  // variant's 8-block staging; down's 48 row pairs leave a partial workgroup
  { H: 96, I: 64, E: 8, k: 3, T: 9, tile: 16, scales: { kind: 'normal', center: 124 }, hScale: 1.5, atol: 1e-5 },
  // 21 slots per expert: tiles of 16 and 5, the simple variant's 4-slot chunks several times and partly
  { H: 96, I: 64, E: 8, k: 3, T: 21, tile: 16, scales: { kind: 'normal', center: 124 }, hScale: 1, same: true, atol: 1e-5, note: 'all tokens on experts 0..2' },
  { H: 64, I: 64, E: 3, k: 2, T: 3, tile: 4, scales: { kind: 'wide', center: 147 }, hScale: 2 ** -20, atol: 1e-5, note: 'wide scales' },
  { H: 2880, I: 2880, E: 2, k: 2, T: 3, tile: 16, scales: { kind: 'normal', center: 121 }, hScale: 1, atol: 1e-4, note: 'gpt-oss shape', variants: ['simple'] },
];

async function groupedCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[], scope?: CaseScope): Promise<void> {
  for (const c of inScope(GROUPED, scope)) {
    const { H, I, E, k, T, tile } = c;
    const rng = new TestRng(H * 7 + I * 3 + E + k + T);
    const gu = makeExperts(rng, E, 2 * I, H, c.scales, 1);
    const dn = makeExperts(rng, E, H, I, c.scales, 1);
    const h = rng.f32(T * H, c.hScale);
    const { ids } = routing(rng, T, E, k, c.same ?? false);
    const wantAct = new Float32Array(T * k * I);
    for (let s = 0; s < T * k; s++) wantAct.set(moeGateUp(gu.m, ids[s]!, h.subarray(Math.floor(s / k) * H, (Math.floor(s / k) + 1) * H), LIMIT, ALPHA), s * I);
    // down gets its own input (scaled like h, so wide scales stay finite) and is checked alone
    const dIn = rng.f32(T * k * I, 3 * c.hScale);
    const wantY = new Float32Array(T * k * H);
    for (let s = 0; s < T * k; s++) wantY.set(slotDown(dn.m, ids[s]!, dIn.subarray(s * I, (s + 1) * I)), s * H);
    for (const variant of c.variants ?? VARIANTS) {
      const p = { hidden: H, intermediate: I, k, tile, variant };
      const g = new MoeGroupedGateUpKernel(cache, { ...p, limit: LIMIT, alpha: ALPHA });
      const d = new MoeGroupedDownKernel(cache, p);
      const route = new MoeRouteKernel(cache, { experts: E, k, tile, ys: [g.groupsY, d.groupsY] });
      const step = stepBuffer(device, T);
      const rb = routeBuffers(device, route, T);
      const ib = bufferFrom(device, ids);
      const hb = bufferFrom(device, h);
      const act = createBuffer(device, T * k * I * 4, rwStorage());
      const y = createBuffer(device, T * k * H * 4, rwStorage());
      const w = [gu.blocks, gu.scales, gu.bias, dn.blocks, dn.scales, dn.bias].map((x) => bufferFrom(device, x));
      const shape = `E=${E} k=${k} T=${T} tile=${tile}${c.note ? ` ${c.note}` : ''}`;
      await runPass(device, (pass) => {
        route.encode(pass, route.bind(device, { step, ids: ib, ...rb }));
        g.encode(pass, g.bind(device, { x: hb, list: rb.list, tiles: rb.tiles, blocks: w[0]!, scales: w[1]!, bias: w[2]!, out: act }), rb.args, 0);
      });
      out.push({ ...checkClose(g.key, shape, wantAct, await readF32(device, act, T * k * I), c.atol, 1e-5), path: variant });
      device.queue.writeBuffer(act, 0, dIn);
      await runPass(device, (pass) => d.encode(pass, d.bind(device, { x: act, list: rb.list, tiles: rb.tiles, blocks: w[3]!, scales: w[4]!, bias: w[5]!, out: y }), rb.args, 16));
      out.push({ ...checkClose(d.key, shape, wantY, await readF32(device, y, T * k * H), c.atol, 1e-5), path: variant });
      for (const x of [step, ib, hb, act, y, ...Object.values(rb), ...w]) x.destroy();
    }
  }
}

/** Router logits -> top-k -> route -> gate_up -> down -> combine into the residual, one pass. */
interface BlockCase { H: number; I: number; E: number; k: number; T: number; tile: number; variants?: MoeGroupedVariant[]; browser?: boolean }
const BLOCK: BlockCase[] = [
  { H: 64, I: 64, E: 8, k: 2, T: 7, tile: 4, browser: true },
  { H: 64, I: 32, E: 128, k: 4, T: 37, tile: 16, variants: ['simple'] },
];

async function blockCases(device: GPUDevice, cache: PipelineCache, out: CaseResult[], scope?: CaseScope): Promise<void> {
  for (const c of inScope(BLOCK, scope)) {
    const { H, I, E, k, T, tile } = c;
    const rng = new TestRng(H + I + E * 13 + k + T);
    const scales: ScaleKind = { kind: 'normal', center: 125 };
    const gu = makeExperts(rng, E, 2 * I, H, scales, 1);
    const dn = makeExperts(rng, E, H, I, scales, 1);
    const h = rng.f32(T * H, 1);
    const x = rng.f32(T * H, 2);
    const logits = rng.f32(T * E, 2);
    for (let i = 0; i < logits.length; i++) logits[i] = Math.round(logits[i]! * 2) / 2; // ties
    const ids: number[] = [];
    const wts: number[] = [];
    for (let t = 0; t < T; t++) {
      const r = topkSoftmax(logits.subarray(t * E, (t + 1) * E), k);
      ids.push(...r.ids);
      wts.push(...r.weights);
    }
    const y = new Float32Array(T * k * H);
    for (let s = 0; s < T * k; s++) {
      const t = Math.floor(s / k);
      y.set(slotDown(dn.m, ids[s]!, moeGateUp(gu.m, ids[s]!, h.subarray(t * H, (t + 1) * H), LIMIT, ALPHA)), s * H);
    }
    const want = combineSlots(x, y, wts, T, k, H);
    for (const variant of c.variants ?? VARIANTS) {
      const p = { hidden: H, intermediate: I, k, tile, variant };
      const topk = new TopkSoftmaxKernel(cache, { experts: E, k });
      const g = new MoeGroupedGateUpKernel(cache, { ...p, limit: LIMIT, alpha: ALPHA });
      const d = new MoeGroupedDownKernel(cache, p);
      const route = new MoeRouteKernel(cache, { experts: E, k, tile, ys: [g.groupsY, d.groupsY] });
      const comb = new MoeCombineKernel(cache, { hidden: H, k });
      const step = stepBuffer(device, T);
      const lb = bufferFrom(device, logits);
      const ib = createBuffer(device, T * k * 4, rwStorage());
      const wb = createBuffer(device, T * k * 4, rwStorage());
      const rb = routeBuffers(device, route, T);
      const hb = bufferFrom(device, h);
      const ab = createBuffer(device, T * k * I * 4, rwStorage());
      const yb = createBuffer(device, T * k * H * 4, rwStorage());
      const xb = bufferFrom(device, x, rwStorage());
      const w = [gu.blocks, gu.scales, gu.bias, dn.blocks, dn.scales, dn.bias].map((v) => bufferFrom(device, v));
      await runPass(device, (pass) => {
        topk.encode(pass, topk.bind(device, step, lb, ib, wb), T);
        route.encode(pass, route.bind(device, { step, ids: ib, ...rb }));
        g.encode(pass, g.bind(device, { x: hb, list: rb.list, tiles: rb.tiles, blocks: w[0]!, scales: w[1]!, bias: w[2]!, out: ab }), rb.args, 0);
        d.encode(pass, d.bind(device, { x: ab, list: rb.list, tiles: rb.tiles, blocks: w[3]!, scales: w[4]!, bias: w[5]!, out: yb }), rb.args, 16);
        comb.encode(pass, comb.bind(device, { step, y: yb, weights: wb, x: xb }), T);
      });
      const got = await readF32(device, xb, T * H);
      out.push({ ...checkClose('moe_grouped_block', `${route.key} ${g.key} ${d.key} ${comb.key} T=${T}`, want, got, 1e-4, 1e-5), path: variant });
      for (const v of [step, lb, ib, wb, hb, ab, yb, xb, ...Object.values(rb), ...w]) v.destroy();
    }
  }
}

export async function moeGroupedCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  await routeCases(device, cache, results);
  await groupedCases(device, cache, results, scope);
  await blockCases(device, cache, results, scope);
  return results;
}
