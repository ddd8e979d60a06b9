/**
 * f32_sample_candidates (the draw from lm_head's per-workgroup candidates) on hand-made
 * candidate lists, against the reference greedy draw (sampleCpu) over a row whose entries are
 * the candidates' scores: ties across candidates (and threads) go to the lower row whatever the
 * candidates' order, -inf scores, and NaN scores, which are never chosen (NaN ranks below
 * everything, -inf included). Runs in Node and in the browser.
 */
import { bufferFrom, createBuffer, readU32 } from '../../engine/gpu/buffers.ts';
import { GREEDY, sampleCpu } from '../../engine/sampling.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { SAMPLE_PARAMS_BYTES, SampleCandidatesKernel, writeSampleParams } from '../../kernels/sample.ts';
import { checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';
import { runPass, rwStorage } from '../gpu/dispatch.ts';

interface Case {
  name: string;
  /** Candidate count; candidate c holds row rows[c] (default: 8c + 3, as lm_head's tiled variant). */
  count: number;
  /** Sets scores (and rows) of the candidate list. */
  make(rng: TestRng, scores: Float32Array, rows: Uint32Array): void;
}

// 256 threads: candidates c and c + 256 are read by the same thread; 300 and 1003 candidates make
// threads hold two to four.
const CASES: Case[] = [
  { name: 'one candidate', count: 1, make: () => {} },
  {
    name: 'ties across candidates and threads', count: 300,
    make: (_, s) => {
      for (const c of [37, 200, 293, 281]) s[c] = 9; // 37 and 293 share a thread
    },
  },
  {
    name: 'ties: the lower row sits in a later candidate', count: 300,
    make: (_, s, r) => {
      r.reverse(); // rows descend with the candidate index
      for (const c of [5, 261, 100, 299]) s[c] = 9; // the answer is candidate 299's row
    },
  },
  { name: 'all tied', count: 1003, make: (_, s) => s.fill(0.5) },
  {
    name: '-inf scores', count: 300,
    make: (_, s) => {
      s.fill(-Infinity);
      s[150] = -1e30;
    },
  },
  { name: 'all -inf', count: 126, make: (_, s) => s.fill(-Infinity) },
  {
    name: 'NaN first in a thread', count: 300,
    make: (_, s) => {
      s[0] = NaN; // thread 0 sees it before candidate 256
      s[7] = NaN;
      s[263] = NaN;
      s[263 - 256] = NaN;
    },
  },
  {
    name: 'NaN everywhere but two', count: 1003,
    make: (_, s) => {
      s.fill(NaN);
      s[500] = -Infinity;
      s[900] = -5;
    },
  },
  { name: 'all NaN', count: 300, make: (_, s) => s.fill(NaN) },
];

export async function sampleCandidateCases(device: GPUDevice): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  const prm = createBuffer(device, SAMPLE_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  writeSampleParams(device, prm, GREEDY, { step: 0, outIndex: 1 });
  for (const path of ['workgroup', 'simple'] as const) for (const c of CASES) {
    const rng = new TestRng(c.count * 17 + c.name.length);
    const scores = rng.f32(c.count, 2);
    const rows = Uint32Array.from({ length: c.count }, (_, i) => 8 * i + 3);
    c.make(rng, scores, rows);
    const data = new Uint32Array(2 * c.count);
    const bits = new Uint32Array(scores.buffer);
    for (let i = 0; i < c.count; i++) {
      data[2 * i] = bits[i]!;
      data[2 * i + 1] = rows[i]!;
    }
    const kern = new SampleCandidatesKernel(cache, c.count, path === 'simple');
    const cand = bufferFrom(device, data);
    const out = bufferFrom(device, new Uint32Array([0xdead, 0xdead, 0xdead]), rwStorage());
    await runPass(device, (pass) => kern.encode(pass, kern.bind(device, cand, prm, out)));
    const got = await readU32(device, out, 3);
    // The reference: the greedy draw over the rows' scores, NaN ranked below -inf (never chosen
    // while anything else is there) and rows no candidate holds at -inf.
    const row = new Float32Array(8 * c.count + 8).fill(-Infinity);
    rows.forEach((r, i) => (row[r] = Number.isNaN(scores[i]) ? -Infinity : scores[i]!));
    let want = sampleCpu(row, GREEDY, 0);
    if (row[want] === -Infinity) want = Math.min(...Array.from(rows).filter((_, i) => !Number.isNaN(scores[i]))); // all -inf: the lowest such row
    if (!Number.isFinite(want)) want = 0; // nothing but NaN: row 0
    const shape = `${c.name}: ${c.count} candidates`;
    results.push({ ...checkEqual(kern.key, `${shape}, out[1] (out_index 1; out[0], out[2] untouched)`, [0xdead, want, 0xdead], got), path });
    cand.destroy();
    out.destroy();
  }
  prm.destroy();
  return results;
}
