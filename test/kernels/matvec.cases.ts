/**
 * f32_bf16w_matvec (the one-token projections of decode) against the reference rmsNorm + linear
 * (engine/reference/ops.ts), in both variants ('tiled' for GPUs, 'simple' for CPU adapters):
 * one row, a partial last workgroup, several weight chunks with a boundary inside a workgroup,
 * K = 2880 (hidden) and K = 4096 (o_proj input) with x staged and not, bias, accumulate into a
 * non-zero out at an offset; and where the device has `subgroups`, 'tiled' with subgroup
 * reductions ('tiled-subgroup', at the adapter's subgroup size: 4 on SwiftShader) on the same
 * cases. Then lm_head's sampling candidates drawn by f32_sample_candidates:
 * greedy draws must be the reference argmax (constructed ties go to the lower row), Gumbel draws
 * sampleCpu's draw for the same seed and step (another draw passes only as a near-tie inside the
 * f32 score error bound, gumbelTolerance, and is named in the message). Runs in Node and in the
 * browser.
 */
import { bufferFrom, createBuffer, readF32, readU32 } from '../../engine/gpu/buffers.ts';
import { linear, rmsNorm } from '../../engine/reference/ops.ts';
import { drawKey, drawUniform, GREEDY, gumbelScore, sampleCpu, type SamplingParams } from '../../engine/sampling.ts';
import { MatvecKernel, matvecStageBytes, MATVEC_ROWS, type MatvecParams } from '../../kernels/matvec.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { SAMPLE_PARAMS_BYTES, SampleCandidatesKernel, writeSampleParams } from '../../kernels/sample.ts';
import { checkClose, checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';
import { inScope, type CaseScope } from './scope.ts';
import { runPass, rwStorage } from '../gpu/dispatch.ts';

const EPS = 1e-5;
/** The code paths (KERNEL_PATHS): 'tiled-subgroup' is 'tiled' with subgroup reductions, where the device has them. */
const PATHS = ['tiled', 'simple', 'tiled-subgroup'] as const;
type Path = (typeof PATHS)[number];
const kernelOf = (path: Path) => ({ variant: path === 'simple' ? 'simple' : 'tiled', subgroups: path === 'tiled-subgroup' }) as const;

interface Case {
  name: string;
  k: number;
  chunks: number[];
  bias?: boolean;
  acc?: boolean;
  norm?: boolean;
  outOffset?: number;
  /** Stage x in workgroup memory ('tiled' only; 'simple' never stages). */
  stage: boolean;
  /** Runs in the browsers too (scope.ts). */
  browser?: boolean;
}

const CASES: Case[] = [
  { name: 'one row', k: 64, chunks: [1], stage: true },
  { name: 'partial workgroup', k: 96, chunks: [13], bias: true, acc: true, norm: true, outOffset: 5, stage: false, browser: true },
  // Chunk boundaries at rows 5 and 17: inside the first and third 8-row workgroups.
  { name: '3 chunks', k: 64, chunks: [5, 12, 6], bias: true, norm: true, stage: true, browser: true },
  // Not staged at K=2880: SwiftShader takes ~20 s to compile a 11-16 KiB staged x (the staged
  // norm path is covered at K=64, the staged K=4096 below).
  { name: 'qkv (hidden)', k: 2880, chunks: [20], bias: true, norm: true, stage: false, browser: true },
  { name: 'o_proj', k: 4096, chunks: [9], bias: true, acc: true, stage: true },
  { name: 'o_proj', k: 4096, chunks: [9], bias: true, acc: true, stage: false },
];

/** f32 accumulation against f64: error grows like sqrt(K) times the term scale (as for f32_bf16w_matmul). */
const tol = (k: number) => 2e-5 * Math.sqrt(k);

interface Data {
  x: Float32Array;
  w: { bytes: Uint8Array; values: Float32Array };
  bias?: { bytes: Uint8Array; values: Float32Array };
  gain?: { bytes: Uint8Array; values: Float32Array };
}

function makeData(rng: TestRng, n: number, k: number, bias: boolean, norm: boolean, wScale = 0.05): Data {
  return {
    x: rng.f32(k, norm ? 3 : 1),
    w: rng.bf16(n * k, wScale),
    bias: bias ? rng.bf16(n, 1) : undefined,
    gain: norm ? rng.bf16(k, 0.5) : undefined,
  };
}

/** What the kernel computes, from the reference: out (= or +=) W rmsnorm(x) * gain + b at the offset. */
function reference(d: Data, n: number, k: number, init: Float32Array, acc: boolean, outOffset: number): Float32Array {
  const h = d.gain ? rmsNorm(d.x, d.gain.values, EPS) : d.x;
  return linear(d.w.values, d.bias?.values ?? null, h, n, k, Float32Array.from(init), { outOffset, accumulate: acc });
}

/** One weight buffer per chunk, cut from the [N, K] bf16 bytes. */
function chunkBuffers(device: GPUDevice, w: Uint8Array, chunks: number[], k: number): GPUBuffer[] {
  let row = 0;
  return chunks.map((rows) => {
    const b = bufferFrom(device, w.subarray(row * k * 2, (row + rows) * k * 2));
    row += rows;
    return b;
  });
}

async function projectionCases(device: GPUDevice, cache: PipelineCache, path: Path, results: CaseResult[], scope?: CaseScope): Promise<void> {
  const seen = new Set<string>();
  for (const c of inScope(CASES, scope)) {
    const n = c.chunks.reduce((a, b) => a + b, 0);
    const p: MatvecParams = {
      inDim: c.k, chunkRows: c.chunks, bias: !!c.bias, accumulate: !!c.acc, normEps: c.norm ? EPS : undefined, outOffset: c.outOffset,
      stageX: c.stage, ...kernelOf(path),
    };
    if (c.stage && matvecStageBytes(c.k) > device.limits.maxComputeWorkgroupStorageSize) continue; // as the engine decides
    const kern = new MatvecKernel(cache, p);
    if (seen.has(kern.key)) continue; // 'simple' ignores stageX
    seen.add(kern.key);
    const rng = new TestRng(c.k * 31 + n * 7 + (c.stage ? 1 : 0));
    const d = makeData(rng, n, c.k, !!c.bias, !!c.norm);
    const off = c.outOffset ?? 0;
    const init = rng.f32(off + n + 3, 2); // non-zero: catches a missing accumulate and stray writes around the rows
    const weights = chunkBuffers(device, d.w.bytes, c.chunks, c.k);
    const bufs = {
      x: bufferFrom(device, d.x),
      out: bufferFrom(device, init, rwStorage()),
      weights,
      bias: d.bias ? bufferFrom(device, d.bias.bytes) : undefined,
      norm: d.gain ? bufferFrom(device, d.gain.bytes) : undefined,
    };
    await runPass(device, (pass) => kern.encode(pass, kern.bind(device, bufs)));
    const got = await readF32(device, bufs.out, init.length);
    const want = reference(d, n, c.k, init, !!c.acc, off);
    const shape = `${c.name}: N=${n} K=${c.k}${c.chunks.length > 1 ? ` chunks=${c.chunks.join('+')}` : ''}${off ? ` offset=${off}` : ''} out[${init.length}]`;
    results.push(checkClose(kern.key, shape, want, got, tol(c.k), 1e-4));
    for (const b of [bufs.x, bufs.out, bufs.bias, bufs.norm, ...weights]) b?.destroy();
  }
}

// ---------------------------------------------------------------- lm_head candidates

/**
 * lm_head-like: two chunks (boundary at row 100, inside the workgroup of rows 96..103), N % 8 = 3.
 * Small: the tiled variant's barriers make each draw slow on SwiftShader.
 */
const LM_CHUNKS = [100, 103];
const LM_K = 64;
/** Rows made equal to the largest logit's row: two in workgroup 0, one past the chunk boundary, one in the partial last workgroup. */
const TIE_ROWS = [3, 6, 101, 202];

const GREEDY_DRAWS: SamplingParams[] = [GREEDY, { temperature: 0.9, topK: 1, topP: 1, seed: 5 }];
const GUMBEL: SamplingParams[] = [
  { temperature: 1, topK: 0, topP: 1, seed: 7 },
  { temperature: 0.6, topK: 0, topP: 1, seed: 4242 },
];
const GUMBEL_STEPS = 10;

const describe = (p: SamplingParams) => `T=${p.temperature} top_k=${p.topK} seed=${p.seed}`;

/**
 * How far the kernel's f32 Gumbel score of token i may be from gumbelScore's (f64 noise), from
 * WGSL's accuracy: log is within 2^-21 absolute on [0.5, 2] and 3 ulp elsewhere, division within
 * 2.5 ulp. With L = -log(u): L's error, divided by L through the second log, plus that log's
 * error and the roundings of x / T and of the sum. Large where u is near 1, i.e. for the tokens
 * with the largest noise, which are the ones that win draws.
 */
function gumbelTolerance(x: number, p: SamplingParams, key: number, i: number): number {
  const logErr = (v: number) => (v >= 0.5 && v <= 2 ? 2 ** -21 : 3 * 2 ** -23 * Math.abs(Math.log(v)));
  const u = drawUniform(key, i);
  const L = -Math.log(u);
  const score = gumbelScore(x, p.temperature, key, i);
  return (logErr(u) + 2 ** -24 * L) / L + logErr(L) + 3 * 2 ** -23 * Math.abs(x / p.temperature) + 2 ** -23 * Math.abs(score);
}

/** The gap between the best and second-best CPU Gumbel scores of a draw. */
function topGap(logits: Float32Array, p: SamplingParams, step: number): number {
  const key = drawKey(p.seed, step);
  let a = -Infinity, b = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const s = gumbelScore(logits[i]!, p.temperature, key, i);
    if (s > a) [a, b] = [s, a];
    else if (s > b) b = s;
  }
  return a - b;
}

async function candidateCases(device: GPUDevice, cache: PipelineCache, path: Path, results: CaseResult[], rowsPerGroup = MATVEC_ROWS): Promise<void> {
  const { variant } = kernelOf(path);
  const n = LM_CHUNKS.reduce((a, b) => a + b, 0);
  const rng = new TestRng(n + LM_K);
  const d = makeData(rng, n, LM_K, false, true, 0.3);
  // Ties at the top: copy the row of the largest logit over TIE_ROWS (bytes and values).
  const first = reference(d, n, LM_K, new Float32Array(n), false, 0);
  const top = sampleCpu(first, GREEDY, 0);
  const wb = new Uint16Array(d.w.bytes.buffer, d.w.bytes.byteOffset, n * LM_K);
  for (const r of TIE_ROWS) {
    wb.copyWithin(r * LM_K, top * LM_K, (top + 1) * LM_K);
    d.w.values.copyWithin(r * LM_K, top * LM_K, (top + 1) * LM_K);
  }
  const ref = reference(d, n, LM_K, new Float32Array(n), false, 0);
  const tieRows = [top, ...TIE_ROWS].sort((a, b) => a - b);

  const kern = new MatvecKernel(cache, {
    inDim: LM_K, chunkRows: LM_CHUNKS, bias: false, accumulate: false, normEps: EPS, candidates: true,
    stageX: matvecStageBytes(LM_K, rowsPerGroup) <= device.limits.maxComputeWorkgroupStorageSize, ...kernelOf(path), rowsPerGroup,
  });
  const pick = new SampleCandidatesKernel(cache, kern.candidateCount);
  const weights = chunkBuffers(device, d.w.bytes, LM_CHUNKS, LM_K);
  const x = bufferFrom(device, d.x);
  const norm = bufferFrom(device, d.gain!.bytes);
  const out = createBuffer(device, n * 4, rwStorage());
  const cand = createBuffer(device, kern.candidateCount * 8, rwStorage());
  const token = bufferFrom(device, new Uint32Array([0xdead]), rwStorage());
  const prm = createBuffer(device, SAMPLE_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  const bg = kern.bind(device, { x, out, weights, norm, cand, sampleParams: prm });
  const pg = pick.bind(device, cand, prm, token);
  const drawOnce = async (p: SamplingParams, step: number): Promise<number> => {
    writeSampleParams(device, prm, p, { step });
    await runPass(device, (pass) => {
      kern.encode(pass, bg);
      pick.encode(pass, pg);
    });
    return (await readU32(device, token, 1))[0]!;
  };
  const keys = `${kern.key} + ${pick.key}`;
  const shape = `N=${n} K=${LM_K} chunks=${LM_CHUNKS.join('+')}${variant === 'tiled' ? ` rows/workgroup=${rowsPerGroup}` : ''}`;

  // Greedy: the logits (exactly tied on the GPU too), the candidates, the draw.
  for (const p of GREEDY_DRAWS) {
    const got = await drawOnce(p, 1);
    const logits = await readF32(device, out, n);
    results.push(checkClose(kern.key, `${shape} logits`, ref, logits, tol(LM_K), 1e-4));
    const tied = tieRows.every((r) => logits[r] === logits[tieRows[0]!]);
    const want = sampleCpu(ref, p, 1);
    results.push({
      ...checkEqual(keys, `${shape} ${describe(p)}: draw = reference argmax (tied rows ${tieRows.join(',')})`, [want], [got]),
      ...(tied ? {} : { ok: false, message: `${keys} ${shape}: rows ${tieRows.join(',')} should have equal logits on the GPU, got ${tieRows.map((r) => logits[r]).join(', ')}` }),
    });
    // Each candidate: (logit bits, row) of its rows' largest logit, ties to the lower row.
    const per = variant === 'simple' ? 1 : rowsPerGroup;
    const wantCand = new Uint32Array(kern.candidateCount * 2);
    const bits = new Uint32Array(logits.buffer);
    for (let c = 0; c < kern.candidateCount; c++) {
      let best = c * per;
      for (let r = best + 1; r < Math.min(n, (c + 1) * per); r++) if (logits[r]! > logits[best]!) best = r;
      wantCand[2 * c] = bits[best]!;
      wantCand[2 * c + 1] = best;
    }
    results.push(checkEqual(kern.key, `${shape} ${describe(p)}: candidates [score bits, row] vs the GPU's logits`, wantCand, await readU32(device, cand, wantCand.length)));
  }

  // Gumbel-max draws over every token: the same draw as sampleCpu on the reference logits.
  const logits = await readF32(device, out, n);
  let logitErr = 0;
  for (let i = 0; i < n; i++) logitErr = Math.max(logitErr, Math.abs(logits[i]! - ref[i]!));
  for (const p of GUMBEL) {
    const want: number[] = [], got: number[] = [];
    let minGap = Infinity;
    const near: string[] = [];
    for (let s = 0; s < GUMBEL_STEPS; s++) {
      const step = 1000 * s + 3;
      const g = await drawOnce(p, step);
      const w = sampleCpu(ref, p, step);
      minGap = Math.min(minGap, topGap(ref, p, step));
      // A different draw is only explainable by a near-tie: the two tokens' CPU scores closer
      // than their f32 score errors plus the logits' error / T.
      let accept = false;
      if (g !== w && g < n) {
        const key = drawKey(p.seed, step);
        const gap = gumbelScore(ref[w]!, p.temperature, key, w) - gumbelScore(ref[g]!, p.temperature, key, g);
        const bound = gumbelTolerance(ref[w]!, p, key, w) + gumbelTolerance(ref[g]!, p, key, g) + 2 * logitErr / p.temperature;
        accept = gap <= bound;
        if (accept) near.push(`step ${step}: got ${g}, sampleCpu ${w}, score gap ${gap.toExponential(2)} <= ${bound.toExponential(2)}`);
      }
      want.push(w);
      got.push(accept ? w : g);
    }
    const r = checkEqual(keys, `${shape} ${describe(p)}: ${GUMBEL_STEPS} draws = sampleCpu (same seed, step)`, want, got);
    results.push({ ...r, message: `${r.message}; smallest top-2 score gap ${minGap.toExponential(2)}${near.length ? `; near-ties accepted: ${near.join('; ')}` : ''}` });
    // The candidates of the last draw: each row's score is gumbelScore of its logit.
    const c = await readU32(device, cand, kern.candidateCount * 2);
    const key = drawKey(p.seed, 1000 * (GUMBEL_STEPS - 1) + 3);
    const gotScore = new Float32Array(c.buffer).filter((_, j) => j % 2 === 0);
    const rows = c.filter((_, j) => j % 2 === 1);
    const wantScore = Float64Array.from(rows, (r) => gumbelScore(logits[r]!, p.temperature, key, r));
    const tols = Float64Array.from(rows, (r) => gumbelTolerance(logits[r]!, p, key, r));
    results.push(checkClose(kern.key, `${shape} ${describe(p)}: candidate scores vs gumbelScore of the GPU logits (WGSL log accuracy)`, wantScore, gotScore, tols));
  }
  for (const b of [x, norm, out, cand, token, prm, ...weights]) b.destroy();
}

export async function matvecCases(device: GPUDevice, scope?: CaseScope): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  const results: CaseResult[] = [];
  for (const path of PATHS) {
    if (path === 'tiled-subgroup' && !device.features.has('subgroups')) continue;
    const mine: CaseResult[] = [];
    await projectionCases(device, cache, path, mine, scope);
    await candidateCases(device, cache, path, mine);
    // lm_head's tiled workgroups take 32 rows each (engine/gpu-model.ts).
    if (path !== 'simple' && scope !== 'browser') await candidateCases(device, cache, path, mine, 32);
    results.push(...mine.map((r) => ({ ...r, path })));
  }
  return results;
}
