/**
 * f32_bf16w_router_topk (decode: RMSNorm + router matvec + top-k softmax in one workgroup)
 * against the reference rmsNorm, linear and topkSoftmax (engine/reference/ops.ts): E = 8, 32 and
 * 128 (120b), k = 4 and 1, the real hidden size, and exact ties in the logits (copied weight rows
 * and biases, all-zero rows with equal biases) inside the top k and across its boundary. Runs in
 * Node and in the browser.
 */
import { bufferFrom, readF32, readU32 } from '../../engine/gpu/buffers.ts';
import { linear, rmsNorm, topK, topkSoftmax } from '../../engine/reference/ops.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { RouterDecodeKernel } from '../../kernels/router.ts';
import { checkClose, checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';
import { inScope, type CaseScope } from './scope.ts';
import { runPass, rwStorage } from '../gpu/dispatch.ts';

const EPS = 1e-5;

interface Case {
  E: number;
  k: number;
  H: number;
  /** 'copy': rows copied so logits tie inside the top k and at its boundary; 'flat': zero rows, equal biases. */
  ties?: 'copy' | 'flat';
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

const CASES: Case[] = [
  { E: 8, k: 4, H: 64, browser: true },
  { E: 8, k: 4, H: 64, ties: 'copy', browser: true },
  { E: 8, k: 4, H: 64, ties: 'flat', browser: true },
  { E: 8, k: 1, H: 64, ties: 'copy' },
  { E: 32, k: 4, H: 96, browser: true }, // 20b's E and k
  { E: 32, k: 1, H: 96, ties: 'copy' },
  // 120b: the real hidden size once (SwiftShader takes ~8 s to compile its 11 KiB of staged x).
  { E: 128, k: 4, H: 2880, ties: 'copy' },
];

type Bf16 = { bytes: Uint8Array; values: Float32Array };

/** Row `to` of W (and its bias) := row `from`: the two logits are then equal on the CPU and the GPU. */
function copyRow(w: Bf16, b: Bf16, H: number, from: number, to: number): void {
  new Uint16Array(w.bytes.buffer, w.bytes.byteOffset, w.values.length).copyWithin(to * H, from * H, (from + 1) * H);
  w.values.copyWithin(to * H, from * H, (from + 1) * H);
  new Uint16Array(b.bytes.buffer, b.bytes.byteOffset, b.values.length).copyWithin(to, from, from + 1);
  b.values.copyWithin(to, from, from + 1);
}

export async function routerDecodeCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  for (const c of inScope(CASES, scope)) {
    const { E, k, H } = c;
    const rng = new TestRng(E * 1000 + k * 100 + H + (c.ties ? c.ties.length : 0));
    const x = rng.f32(H, 3);
    const gain = rng.bf16(H, 1);
    const w = rng.bf16(E * H, 0.05);
    const b = rng.bf16(E, 0.5);
    const h = rmsNorm(x, gain.values, EPS);
    let note = '';
    if (c.ties === 'flat') {
      w.values.fill(0);
      w.bytes.fill(0);
      b.values.fill(b.values[0]!);
      new Uint16Array(b.bytes.buffer, b.bytes.byteOffset, E).fill(new Uint16Array(b.bytes.buffer, b.bytes.byteOffset, 1)[0]!);
      note = ' all logits equal';
    } else if (c.ties === 'copy') {
      // The best row copied over a row below the top k (a tie inside it), the k-th best over another
      // (a tie across the boundary: the lower index must be chosen); one copy lands before its source.
      const order = topK(linear(w.values, b.values, h, E, H), E);
      const pairs: [number, number][] = [[order[0]!, order[E - 1]!]];
      if (k > 1) pairs.push([order[k - 1]!, order[E - 2]!]);
      else pairs.push([order[1]!, order[E - 2]!]);
      for (const [from, to] of pairs) copyRow(w, b, H, from, to);
      note = ` ties ${pairs.map(([f, t]) => `${f}=${t}`).join(' ')}`;
    }
    const want = topkSoftmax(linear(w.values, b.values, h, E, H), k);
    const shape = `E=${E} k=${k} H=${H}${note}`;
    for (const path of ['workgroup', 'subgroup', 'simple'] as const) {
      if (path === 'subgroup' && !device.features.has('subgroups')) continue;
      const kern = new RouterDecodeKernel(cache, { hidden: H, experts: E, k, normEps: EPS, subgroups: path === 'subgroup', simple: path === 'simple' });
      const bufs = {
        x: bufferFrom(device, x),
        gain: bufferFrom(device, gain.bytes),
        weight: bufferFrom(device, w.bytes),
        bias: bufferFrom(device, b.bytes),
        ids: bufferFrom(device, new Uint32Array(k + 1).fill(0xdead), rwStorage()),
        weights: bufferFrom(device, new Float32Array(k + 1).fill(-1), rwStorage()),
      };
      await runPass(device, (pass) => kern.encode(pass, kern.bind(device, bufs)));
      const gotIds = await readU32(device, bufs.ids, k + 1);
      const gotW = await readF32(device, bufs.weights, k + 1);
      results.push({ ...checkEqual(kern.key, `${shape}: ids (one slot past k untouched)`, [...want.ids, 0xdead], gotIds), path });
      results.push({ ...checkClose(kern.key, `${shape}: weights`, [...want.weights, -1], gotW, 1e-6, 1e-5), path });
      for (const buf of Object.values(bufs)) buf.destroy();
    }
  }
  return results;
}
