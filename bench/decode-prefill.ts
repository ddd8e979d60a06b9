/**
 * Prefill and decode throughput of a GpuModel on the device it was loaded on, as llama-bench
 * measures it. Environment-agnostic (no node: imports): the `gptoss bench` command and the
 * browser bench page share it.
 *
 * One untimed warm-up (a prefill of the first prompt length and a few decode steps) comes
 * first, so pipeline compilation and first-use allocations stay out of the numbers. Then:
 * - ppN, for each prompt length N: `repeat` times, append N random token ids to an empty
 *   session and sample the first token; timed from the append to the token id read back.
 * - tgN@dD, for each depth D (ascending) and generation length N: the KV cache is filled with
 *   D random tokens (at least 1; untimed, reused by the next depth), then `repeat` runs of N
 *   greedy steps, one after another (run r decodes positions D + (r-1)N .. D + rN - 1), each
 *   timed from its first step to its last token id read back.
 * With `profile`, one decode step at each depth and one prefill batch are also timed kernel
 * by kernel on the GPU clock (GpuSession.profile).
 */
import type { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { decodeSteps } from '../engine/generate.ts';
import { hasTimestamps, TimestampQueryUnavailableError } from '../engine/gpu-profiler.ts';
import { GREEDY } from '../engine/sampling.ts';
import { Rng } from '../loader/rng.ts';
import { decodeWeightBytes, meanDecodeKvBytes } from './bytes.ts';
import { kernelTable, stepTiming, type KernelTime, type StepTiming } from './profile-table.ts';
import { stats, type Stats } from './stats.ts';

export { decodeWeightBytes, decodeKvBytes, paramCount, type DecodeBytes } from './bytes.ts';
export { stats, type Stats } from './stats.ts';
export type { KernelTime, StepTiming } from './profile-table.ts';

export interface BenchOptions {
  /** Prompt lengths of the ppN tests. */
  promptLen: number | number[];
  /** Generation lengths of the tgN tests. */
  gen: number | number[];
  /** KV cache depths of the tg tests (default 0). */
  depth?: number | number[];
  /** Timed repeats of each test. */
  repeat: number;
  /** Seed of the random tokens (default 0). */
  seed?: number;
  /** Also time each kernel on the GPU clock (needs 'timestamp-query'). */
  profile?: boolean;
  /** The device's read-bandwidth ceiling in GB/s (bench/ceiling.ts), for decode efficiency. */
  ceilingGBps?: number;
  /**
   * performance.now() by which the run should end: a tg test past the first is skipped when
   * its fill and steps, estimated from the rates measured so far, would end later.
   */
  deadline?: number;
  /** Progress lines (e.g. to stderr). */
  onProgress?(message: string): void;
}

export interface TestResult {
  /** llama-bench's name: pp128, tg64, tg64@d4096. */
  test: string;
  kind: 'pp' | 'tg';
  /** Prompt tokens (pp) or generated tokens (tg) per run. */
  tokens: number;
  /** Tokens in the KV cache before the first timed step (tg), 0 for pp. */
  depth: number;
  ms: Stats;
  tokensPerSecond: Stats;
  /** tg: the positions decoded over all repeats, [first, last + 1). */
  positions?: [number, number];
  /** tg: weight bytes one token reads (decodeWeightBytes). */
  weightBytesPerToken?: number;
  /** tg: KV cache bytes one token reads, averaged over the positions decoded. */
  kvBytesPerToken?: number;
  bytesPerToken?: number;
  /** tg: bytesPerToken x tokens/s, in GB/s (1e9 bytes). */
  gbps?: Stats;
  /** tg: mean gbps over the device's read ceiling. */
  efficiency?: number;
}

export interface DecodeResult {
  depth: number;
  ms: Stats;
  tokensPerSecond: Stats;
  weightBytesPerToken: number;
  kvBytesPerToken: number;
  bytesPerToken: number;
  /** weightBytesPerToken x tokens/s, in GB/s. */
  weightGBps: Stats;
  /** bytesPerToken (weights and KV cache) x tokens/s, in GB/s. */
  gbps: Stats;
  /** gbps.mean / ceilingGBps, when the ceiling was measured. */
  efficiency?: number;
}

export interface ProfiledStep {
  kernels: KernelTime[];
  step: StepTiming;
}

export interface BenchProfile {
  prefillTokens: number;
  /** Per kernel, one prefill batch from position 0. */
  prefill: KernelTime[];
  prefillStep: StepTiming;
  /** Per kernel, one decode step at the first depth. */
  decode: KernelTime[];
  decodeStep: StepTiming;
  /** One decode step at each depth measured. */
  atDepth: (ProfiledStep & { depth: number })[];
}

export interface BenchResult {
  /** The first prompt length, generation length and the repeats (what prefill and decode below are). */
  promptLen: number;
  gen: number;
  repeat: number;
  /** The first pp test. */
  prefill: { ms: Stats; tokensPerSecond: Stats };
  /** The first tg test. */
  decode: DecodeResult;
  /** Every test in run order. */
  tests: TestResult[];
  /** Tests left out for the deadline. */
  skipped: { test: string; reason: string }[];
  ceilingGBps?: number;
  profile?: BenchProfile;
}

export function testName(kind: 'pp' | 'tg', tokens: number, depth: number): string {
  return `${kind}${tokens}${depth > 0 ? `@d${depth}` : ''}`;
}

const list = (v: number | number[]) => (Array.isArray(v) ? v : [v]);

function checkInts(name: string, vs: number[], min: number): void {
  if (vs.length === 0) throw new RangeError(`${name} needs at least one value`);
  for (const v of vs) if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be integers >= ${min}, got ${v}`);
}

/** The context limit a run of these options needs (the longest prompt, or the deepest fill plus its steps). */
export function benchContext(opts: Pick<BenchOptions, 'promptLen' | 'gen' | 'depth' | 'repeat' | 'profile'>): number {
  const depth = Math.max(1, ...list(opts.depth ?? 0));
  const steps = Math.max(...list(opts.gen)) * opts.repeat + (opts.profile ? 1 : 0);
  // The warm-up: the first prompt and two steps.
  return Math.max(...list(opts.promptLen), list(opts.promptLen)[0]! + 2, depth + steps);
}

/** Tokens appended per call while filling the KV cache (a progress line each). */
const FILL_CHUNK = 2048;

export async function runBench(model: GpuModel, opts: BenchOptions): Promise<BenchResult> {
  const promptLens = list(opts.promptLen);
  const gens = list(opts.gen);
  const depths = [...new Set(list(opts.depth ?? 0))].sort((a, b) => a - b);
  const { repeat } = opts;
  checkInts('promptLen', promptLens, 1);
  checkInts('gen', gens, 1);
  checkInts('depth', depths, 0);
  checkInts('repeat', [repeat], 1);
  if (opts.profile && !hasTimestamps(model.gpu.device)) throw new TimestampQueryUnavailableError();
  const need = benchContext(opts);
  if (need > model.contextLimit) {
    throw new RangeError(`this run needs a context of ${need} tokens (prompts, depth + generated tokens x repeats), over the limit ${model.contextLimit}`);
  }
  const c = model.config;
  const rng = new Rng(opts.seed ?? 0, 'bench-prompt');
  const random = (n: number) => Array.from({ length: n }, () => Math.floor(rng.uniform() * c.vocabSize));
  const prompt = random(Math.max(...promptLens));
  const log = opts.onProgress ?? (() => {});
  const weightBytes = decodeWeightBytes(c, model.weightFormat).total;
  const tests: TestResult[] = [];
  const skipped: BenchResult['skipped'] = [];
  const atDepth: BenchProfile['atDepth'] = [];
  const session = new GpuSession(model);
  try {
    log('warm-up (pipeline compilation, not timed)');
    await session.append(prompt.slice(0, promptLens[0]));
    await session.sample(GREEDY);
    await decodeSteps(session, 2, GREEDY);

    for (const n of promptLens) {
      const ms: number[] = [];
      for (let r = 0; r < repeat; r++) {
        session.reset();
        const t0 = performance.now();
        await session.append(prompt.slice(0, n));
        await session.sample(GREEDY);
        ms.push(performance.now() - t0);
      }
      tests.push({ test: testName('pp', n, 0), kind: 'pp', tokens: n, depth: 0, ms: stats(ms), tokensPerSecond: stats(ms.map((t) => (n * 1000) / t)) });
      log(`${testName('pp', n, 0)}: ${ms.map((t) => t.toFixed(1)).join(', ')} ms`);
    }

    // tg: the session is filled once per depth; `pending` says a sampled token waits to be fed.
    session.reset();
    let pending = false;
    const prefillRate = Math.max(...tests.map((t) => t.tokensPerSecond.mean));
    for (const depth of depths) {
      for (const [gi, n] of gens.entries()) {
        const test = testName('tg', n, depth);
        const target = Math.max(depth, 1);
        if (session.position + (pending ? 1 : 0) > target) {
          session.reset();
          pending = false;
        }
        const todo = target - session.position - (pending ? 1 : 0);
        const firstTg = tests.find((t) => t.kind === 'tg');
        if (opts.deadline !== undefined && firstTg) {
          // Prefill slows down with depth (attention): allow twice the measured time, and 1.5x for the steps.
          const estMs = (2000 * todo) / prefillRate + (1500 * n * repeat) / firstTg.tokensPerSecond.mean;
          if (performance.now() + estMs > opts.deadline) {
            const reason = `estimated ${(estMs / 1000).toFixed(0)} s, past the time limit`;
            skipped.push({ test, reason });
            log(`${test}: skipped (${reason})`);
            continue;
          }
        }
        for (let done = 0; done < todo || pending; ) {
          const k = Math.min(todo - done, FILL_CHUNK);
          if (todo > FILL_CHUNK) log(`filling the KV cache: ${session.position} + ${k} of ${target} tokens`);
          await session.append(random(k));
          pending = false;
          done += k;
        }
        await session.sample(GREEDY);
        pending = true;
        const from = session.position;
        const ms: number[] = [];
        for (let r = 0; r < repeat; r++) {
          const t0 = performance.now();
          await decodeSteps(session, n, GREEDY);
          ms.push(performance.now() - t0);
        }
        const to = session.position;
        const kv = meanDecodeKvBytes(c, model.kvFormat, from, to);
        const tps = ms.map((t) => (n * 1000) / t);
        const gbps = stats(tps.map((t) => (t * (weightBytes + kv)) / 1e9));
        const row: TestResult = {
          test, kind: 'tg', tokens: n, depth, ms: stats(ms), tokensPerSecond: stats(tps), positions: [from, to],
          weightBytesPerToken: weightBytes, kvBytesPerToken: kv, bytesPerToken: weightBytes + kv, gbps,
        };
        if (opts.ceilingGBps) row.efficiency = gbps.mean / opts.ceilingGBps;
        tests.push(row);
        log(`${test}: ${ms.map((t) => t.toFixed(1)).join(', ')} ms`);
        if (opts.profile && gi === 0) {
          const p = await session.profile(random(1));
          pending = false; // profile() leaves no drawn token waiting
          atDepth.push({ depth, kernels: kernelTable(p), step: stepTiming(p, row.ms.mean * 1000 / n) });
        }
      }
    }

    const pp = tests.find((t) => t.kind === 'pp')!;
    const tg = tests.find((t) => t.kind === 'tg')!;
    const decode: DecodeResult = {
      depth: tg.depth, ms: tg.ms, tokensPerSecond: tg.tokensPerSecond,
      weightBytesPerToken: weightBytes, kvBytesPerToken: tg.kvBytesPerToken!, bytesPerToken: tg.bytesPerToken!,
      weightGBps: stats(tg.tokensPerSecond.runs.map((t) => (t * weightBytes) / 1e9)), gbps: tg.gbps!,
    };
    if (tg.efficiency !== undefined) decode.efficiency = tg.efficiency;
    const result: BenchResult = {
      promptLen: promptLens[0]!, gen: gens[0]!, repeat,
      prefill: { ms: pp.ms, tokensPerSecond: pp.tokensPerSecond }, decode, tests, skipped,
    };
    if (opts.ceilingGBps) result.ceilingGBps = opts.ceilingGBps;

    if (opts.profile) {
      log('profiling one prefill batch kernel by kernel');
      const batch = prompt.slice(0, Math.min(promptLens[0]!, model.maxBatch));
      const wall: number[] = [];
      for (let r = 0; r < 3; r++) {
        session.reset();
        const t0 = performance.now();
        await session.append(batch);
        await session.sample(GREEDY);
        wall.push((performance.now() - t0) * 1000);
      }
      session.reset();
      const p = await session.profile(batch);
      result.profile = {
        prefillTokens: batch.length, prefill: kernelTable(p), prefillStep: stepTiming(p, stats(wall).median),
        decode: atDepth[0]!.kernels, decodeStep: atDepth[0]!.step, atDepth,
      };
    }
    return result;
  } finally {
    session.dispose();
  }
}
