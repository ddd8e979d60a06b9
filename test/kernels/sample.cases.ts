/**
 * f32_sample against engine/sampling.ts: greedy = argmax, top-k 1 = greedy, determinism, draw-by-draw
 * agreement with sampleCpu, and empirical frequencies against the exact restricted softmax.
 * Runs in Node and in the browser. Many draws share one dispatch (one workgroup per row).
 */
import { bufferFrom, createBuffer, readU32 } from '../../engine/gpu/buffers.ts';
import { GREEDY, sampleCpu, samplingProbabilities, type SamplingParams } from '../../engine/sampling.ts';
import { PipelineCache } from '../../kernels/pipeline-cache.ts';
import { SampleKernel, sampleParamsData } from '../../kernels/sample.ts';
import { checkEqual, TestRng, type CaseResult } from '../gpu/check.ts';

interface Job {
  params: SamplingParams;
  rows: number;
  step?: number;
  /** Row offset into the logits. */
  row?: number;
}

/** Runs every job (one dispatch each, one command buffer) over `logits` [rows, vocab]. */
async function draw(device: GPUDevice, cache: PipelineCache, vocab: number, logits: GPUBuffer, jobs: Job[]): Promise<Uint32Array[]> {
  const k = new SampleKernel(cache, { vocab });
  const total = jobs.reduce((a, j) => a + j.rows, 0);
  const out = createBuffer(device, total * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const uniforms: GPUBuffer[] = [];
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  let outIndex = 0;
  for (const j of jobs) {
    const u = bufferFrom(device, new Uint8Array(sampleParamsData(j.params, { step: j.step ?? 0, outIndex, offset: (j.row ?? 0) * vocab })), GPUBufferUsage.UNIFORM);
    uniforms.push(u);
    k.encode(pass, k.bind(device, logits, u, out), j.rows);
    outIndex += j.rows;
  }
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readU32(device, out, total);
  for (const b of [out, ...uniforms]) b.destroy();
  let at = 0;
  return jobs.map((j) => got.slice(at, (at += j.rows)));
}

function rows(logits: Float32Array, vocab: number, first: number, count: number): Float32Array[] {
  return Array.from({ length: count }, (_, r) => logits.subarray((first + r) * vocab, (first + r + 1) * vocab));
}

const describe = (p: SamplingParams) => `T=${p.temperature} top_k=${p.topK} top_p=${p.topP}`;

/** Greedy and top-k 1 against argmax, on awkward rows (ties, -inf, the max last). */
async function greedyCases(device: GPUDevice, cache: PipelineCache): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const shapes: { vocab: number; make: (rng: TestRng) => Float32Array[] }[] = [
    { vocab: 1, make: (rng) => [rng.f32(1)] },
    { vocab: 7, make: () => [new Float32Array(7).fill(0.25)] }, // all tied -> 0
    {
      vocab: 1000,
      make: (rng) => {
        const r = Array.from({ length: 6 }, () => rng.f32(1000, 2));
        r[1]![3] = r[1]![700] = 50; // tie -> 3
        r[2]!.fill(-Infinity, 0, 990); // masked tokens
        r[3]![999] = 40; // last
        r[4]![0] = 40; // first
        return r;
      },
    },
    {
      vocab: 201088, // gpt-oss vocab
      make: (rng) => {
        const last = rng.f32(201088, 3);
        last[201087] = 30;
        const tie = rng.f32(201088, 3);
        tie[5] = tie[201087] = 30;
        return [last, tie];
      },
    },
  ];
  for (const { vocab, make } of shapes) {
    const list = make(new TestRng(vocab));
    const flat = new Float32Array(list.length * vocab);
    list.forEach((r, i) => flat.set(r, i * vocab));
    const buf = bufferFrom(device, flat);
    const want = list.map((row) => sampleCpu(row, GREEDY, 0)); // the reference's argmax, ties to the lower index
    const configs: SamplingParams[] = [
      GREEDY,
      { temperature: 0, topK: 5, topP: 0.5, seed: 3 }, // temperature 0 ignores the rest
      { temperature: 0.5, topK: 1, topP: 1, seed: 1 },
      { temperature: 1, topK: 1, topP: 0.9, seed: 2 },
      { temperature: 3, topK: 1, topP: 1, seed: 3 },
    ];
    const got = await draw(device, cache, vocab, buf, [
      ...configs.map((params, c) => ({ params, rows: list.length, step: c * 100 })),
      { params: GREEDY, rows: 1, row: list.length - 1 }, // the offset field
    ]);
    const key = new SampleKernel(cache, { vocab }).key;
    configs.forEach((p, c) => results.push(checkEqual(key, `${describe(p)} rows=${list.length} (want argmax)`, want, got[c]!)));
    results.push(checkEqual(key, `greedy at row offset ${list.length - 1}`, [want[list.length - 1]!], got[configs.length]!));
    buf.destroy();
  }
  return results;
}

/** Same seed, same draws; and draw-by-draw agreement with sampleCpu. */
async function agreementCases(device: GPUDevice, cache: PipelineCache): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const seed = 1234;
  const configs: SamplingParams[] = [
    { temperature: 1, topK: 0, topP: 1, seed },
    { temperature: 0.7, topK: 40, topP: 1, seed },
    { temperature: 1, topK: 0, topP: 0.9, seed },
    { temperature: 0.8, topK: 50, topP: 0.95, seed },
  ];
  const sets: { vocab: number; rowsPer: number; scale: number }[] = [
    { vocab: 1000, rowsPer: 50, scale: 2 },
    { vocab: 201088, rowsPer: 1, scale: 3 },
  ];
  for (const { vocab, rowsPer, scale } of sets) {
    const n = configs.length * rowsPer;
    const logits = new TestRng(vocab + 7).f32(n * vocab, scale);
    const buf = bufferFrom(device, logits);
    const jobs = configs.map((params, c) => ({ params, rows: rowsPer, row: c * rowsPer, step: 1000 + c * rowsPer }));
    const first = await draw(device, cache, vocab, buf, jobs);
    const again = await draw(device, cache, vocab, buf, jobs);
    const kernel = new SampleKernel(cache, { vocab }).key;
    configs.forEach((p, c) => results.push(checkEqual(kernel, `${describe(p)} ${rowsPer} draws: second run (deterministic)`, first[c]!, again[c]!)));
    let agree = 0;
    const disagreements: string[] = [];
    configs.forEach((p, c) => {
      rows(logits, vocab, c * rowsPer, rowsPer).forEach((row, r) => {
        const want = sampleCpu(row, p, 1000 + c * rowsPer + r);
        const got = first[c]![r]!;
        if (want === got) agree++;
        else if (disagreements.length < 3) disagreements.push(`${describe(p)} row ${c * rowsPer + r}: expected ${want}, got ${got}`);
      });
    });
    const rate = agree / n;
    const need = n >= 100 ? 0.95 : 1;
    results.push({
      kernel,
      shape: `${n} draws vs sampleCpu`,
      ok: rate >= need,
      maxErr: 1 - rate,
      message: `${kernel} ${n} draws vs sampleCpu: ${agree}/${n} agree (${(100 * rate).toFixed(1)}%, need ${100 * need}%)` +
        (disagreements.length ? `; first: ${disagreements.join('; ')}` : ''),
    });
    buf.destroy();
  }
  return results;
}

/** Chi-square critical value at significance 0.001 (Wilson-Hilferty). */
function chi2Critical(df: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + 3.09 * Math.sqrt(a)) ** 3;
}

function chi2(counts: number[], p: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) if (p[i]! > 0) s += (counts[i]! - n * p[i]!) ** 2 / (n * p[i]!);
  return s;
}

/** Empirical frequencies over many steps against the exact restricted softmax. */
async function distributionCases(device: GPUDevice, cache: PipelineCache): Promise<CaseResult[]> {
  const vocab = 16;
  const n = 2000;
  // Distinct values, shuffled so that rank != index.
  const base = new Float32Array([0.3, 2.5, -1, 1.1, -3, 3, 0.5, -0.4, 2.2, -2, 1.6, -1.5, 0, 2, -2.5, 1]);
  const logits = new Float32Array(n * vocab);
  for (let r = 0; r < n; r++) logits.set(base, r * vocab);
  const buf = bufferFrom(device, logits);
  const configs: { params: SamplingParams; alt: SamplingParams; altName: string }[] = [
    { params: { temperature: 1, topK: 0, topP: 1, seed: 7 }, alt: { temperature: 1.25, topK: 0, topP: 1, seed: 7 }, altName: 'T=1.25' },
    { params: { temperature: 0.5, topK: 5, topP: 1, seed: 8 }, alt: { temperature: 1, topK: 5, topP: 1, seed: 8 }, altName: 'T=1' },
    { params: { temperature: 1, topK: 0, topP: 0.8, seed: 9 }, alt: { temperature: 1, topK: 0, topP: 0.9, seed: 9 }, altName: 'top_p=0.9' },
  ];
  const got = await draw(device, cache, vocab, buf, configs.map(({ params }) => ({ params, rows: n, step: 5 })));
  buf.destroy();
  const kernel = new SampleKernel(cache, { vocab }).key;
  return configs.map(({ params, alt, altName }, c) => {
    const p = samplingProbabilities(base, params);
    const counts = new Array<number>(vocab).fill(0);
    for (const t of got[c]!) counts[t] = (counts[t] ?? 0) + 1;
    const outside = got[c]!.filter((t) => !(p[t]! > 0)).length;
    const support = p.filter((x) => x > 0).length;
    const stat = chi2(counts, p, n);
    const crit = chi2Critical(support - 1);
    const dev = Math.max(...counts.map((k, i) => Math.abs(k / n - p[i]!)));
    const altStat = chi2(counts, samplingProbabilities(base, alt), n);
    const ok = outside === 0 && stat < crit && altStat > crit;
    return {
      kernel,
      shape: `${describe(params)} ${n} draws`,
      ok,
      maxErr: dev,
      message: `${kernel} ${describe(params)} ${n} draws: support ${support}, outside ${outside}, ` +
        `chi2 ${stat.toFixed(1)} (limit ${crit.toFixed(1)} at p=0.001), max |freq - p| ${dev.toFixed(4)}; ` +
        `against ${altName}: chi2 ${altStat.toFixed(1)} (must exceed the limit)` +
        (ok ? '' : `; counts ${counts.join(',')} expected ${Array.from(p, (x) => (x * n).toFixed(0)).join(',')}`),
    };
  });
}

export async function sampleCases(device: GPUDevice): Promise<CaseResult[]> {
  const cache = new PipelineCache(device);
  return [...(await greedyCases(device, cache)), ...(await agreementCases(device, cache)), ...(await distributionCases(device, cache))];
}
