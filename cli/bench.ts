/**
 * `gptoss bench`: prefill and decode throughput of a checkpoint (or a synthetic one, generated
 * while it loads, or written to a directory first) on this machine's WebGPU adapter. The
 * measuring is bench/decode-prefill.ts.
 */
import { parseArgs } from 'node:util';
import { describeConfig } from '../loader/config.ts';
import type { ModelLocation } from '../loader/resolve.ts';
import { nodeSyntheticSource } from '../loader/source-synthetic-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { synthShape } from '../loader/synth.ts';
import { decodeWeightBytes, runBench, type BenchResult, type KernelTime, type Stats } from '../bench/decode-prefill.ts';
import { formatBytes, intFlag, UsageError } from './args.ts';
import { checkOutputFile, writeOutputFile } from './files.ts';
import { checkGpu, loadGpuModel, unload } from './gpu.ts';
import type { MemoryPlan } from '../engine/memory-plan.ts';
import { parseShapeFlags, SHAPE_OPTIONS, SHAPE_USAGE } from './synth.ts';

/** Seed of the synthetic checkpoints and prompts, fixed so runs are comparable across machines. */
const SEED = 0;

export const command = {
  summary: 'measure prefill and decode tokens/s on this machine\'s GPU',
  usage: [
    'Usage: gptoss bench --model DIR|URL | --synthetic tiny|20b|120b [shape overrides]',
    '                    [--prompt-len N] [--gen N] [--repeat R] [--kv q8|f32] [--context N] [--profile] [--json FILE]',
    '',
    'Defaults: --prompt-len 128, --gen 32, --repeat 3, --kv q8, --context min(4096, max positions).',
    'With --synthetic a random checkpoint (seed 0) is generated while it loads: nothing goes to disk.',
    '  --write-synthetic DIR  instead write it to DIR (kept; reuse it with --model DIR) and load it from there',
    ...SHAPE_USAGE,
    '  --profile    also time every kernel (own submission each) for one prefill batch and one decode token',
    '  --json FILE  write the adapter, model and every measured number as JSON',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, synthetic: { type: 'string' }, 'write-synthetic': { type: 'string' }, ...SHAPE_OPTIONS,
        'prompt-len': { type: 'string', default: '128' }, gen: { type: 'string', default: '32' }, repeat: { type: 'string', default: '3' },
        kv: { type: 'string', default: 'q8' }, context: { type: 'string' }, profile: { type: 'boolean' }, json: { type: 'string' },
      },
    });
    if ((values.model === undefined) === (values.synthetic === undefined)) throw new UsageError('give exactly one of --model and --synthetic');
    const shapeFlags = Object.keys(SHAPE_OPTIONS).filter((k) => values[k as keyof typeof SHAPE_OPTIONS] !== undefined);
    if (values.model !== undefined && shapeFlags.length > 0) throw new UsageError(`--${shapeFlags[0]} only applies with --synthetic`);
    if (values.model !== undefined && values['write-synthetic'] !== undefined) throw new UsageError('--write-synthetic only applies with --synthetic');
    const promptLen = intFlag(values['prompt-len'], 'prompt-len', 1)!;
    const gen = intFlag(values.gen, 'gen', 1)!;
    const repeat = intFlag(values.repeat, 'repeat', 1)!;
    const context = intFlag(values.context, 'context', 1);
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    if (context !== undefined && promptLen + gen > context) throw new UsageError(`--prompt-len ${promptLen} + --gen ${gen} exceed --context ${context}`);
    const kvFormat = values.kv;
    if (values.json !== undefined) await checkOutputFile(values.json, 'json');

    let modelArg: ModelLocation | undefined = values.model;
    let synthetic: { preset: string; overrides: Record<string, number>; seed: number; dir?: string } | undefined;
    if (values.synthetic !== undefined) {
      const { preset, overrides } = parseShapeFlags(values.synthetic, 'synthetic', values);
      const shape = synthShape(preset, overrides);
      const dir = values['write-synthetic'];
      if (dir !== undefined) {
        process.stderr.write(`writing synthetic ${preset} checkpoint (seed ${SEED}) to ${dir}\n`);
        const w = await writeSyntheticCheckpoint({ preset, overrides, seed: SEED, outDir: dir });
        process.stderr.write(`  ${formatBytes(w.totalBytes)} of weights in ${w.seconds.toFixed(1)} s\n`);
        modelArg = dir;
      } else {
        process.stderr.write(`synthetic ${preset} checkpoint (seed ${SEED}) generated on demand while loading: nothing is written to disk\n`);
        modelArg = nodeSyntheticSource({ preset, overrides, seed: SEED });
      }
      synthetic = { preset, overrides: { ...shape }, seed: SEED, dir };
    }
    const loaded = await loadGpuModel(modelArg!, { contextLimit: context, kvFormat });
    try {
      const m = loaded.model;
      if (promptLen + gen > m.contextLimit) throw new UsageError(`--prompt-len ${promptLen} + --gen ${gen} exceed the context limit ${m.contextLimit} (raise it with --context)`);
      const i = loaded.gpu.info;
      const adapter = { vendor: i.vendor, architecture: i.architecture, description: i.description, f16: loaded.gpu.f16, fallback: loaded.gpu.fallback, features: i.features };
      const bytes = decodeWeightBytes(m.config);
      const header = [
        `gptoss bench: measured on THIS machine, in this run (${new Date().toISOString()}; node ${process.version} ${process.platform}-${process.arch})`,
        `adapter:  vendor ${show(i.vendor)}, architecture ${show(i.architecture)}, description ${show(i.description)}; ` +
          `shader-f16 ${yes(loaded.gpu.f16)}, fallback (CPU) adapter ${yes(loaded.gpu.fallback)}`,
        `model:    ${synthetic ? `synthetic ${synthetic.preset}, seed ${SEED}, ${synthetic.dir ? `written to ${synthetic.dir}` : 'generated on demand (not on disk)'}` : loaded.ck.source.description}`,
        `shape:    ${describeConfig(m.config)}`,
        `weights:  ${formatBytes(m.plan.weightBytes)} (${m.plan.weightBytes} bytes); KV cache ${m.kvFormat}, context ${m.contextLimit}, prefill batch ${m.maxBatch}`,
        `decode reads ~${gb(bytes.total)} of weights per token (attention ${gb(bytes.attention)}, router ${gb(bytes.router)}, norms ${gb(bytes.norms)}, ` +
          `experts ${m.config.expertsPerToken}/${m.config.numExperts} ${gb(bytes.experts)}, embed row ${gb(bytes.embed)}, lm_head ${gb(bytes.lmHead)})`,
        `workload: prompt ${promptLen} random token ids, ${gen} greedy decode steps, ${repeat} timed run(s) after 1 warm-up`,
      ];
      console.log(header.join('\n'));
      const res = await runBench(m, { promptLen, gen, repeat, seed: SEED, profile: values.profile, onProgress: (msg) => process.stderr.write(`  ${msg}\n`) });
      await checkGpu(loaded);
      console.log(report(res));
      process.stderr.write(`GPU buffers at peak ${formatBytes(loaded.buffers.peakBytes)}; memory plan ${formatBytes(m.plan.totalBytes)} (weights, KV cache, scratch)\n`);
      if (values.json !== undefined) {
        const json = {
          kind: 'gptoss-bench', version: 1, date: new Date().toISOString(),
          runtime: { node: process.version, platform: process.platform, arch: process.arch },
          adapter,
          model: {
            source: synthetic ? `synthetic:${synthetic.preset}` : loaded.ck.source.description,
            synthetic: synthetic && { preset: synthetic.preset, shape: synthetic.overrides, seed: synthetic.seed, onDisk: synthetic.dir !== undefined },
            description: describeConfig(m.config),
            config: m.config,
            weightBytes: m.plan.weightBytes,
          },
          kvFormat: m.kvFormat, context: m.contextLimit, maxBatch: m.maxBatch,
          gpuMemory: gpuMemory(m.plan, m.weightBufferBytes, loaded.buffers.peakBytes),
          decodeWeightBytes: bytes,
          result: res,
        };
        await writeOutputFile(values.json, JSON.stringify(json, null, 2) + '\n', 'json');
        process.stderr.write(`wrote ${values.json}\n`);
      }
    } finally {
      await unload(loaded);
    }
  },
};

/**
 * The memory plan next to the GPU buffers really created: weights, and the peak of everything
 * live (weights plus the bench's session: KV cache, activations, small uniform buffers).
 */
function gpuMemory(plan: MemoryPlan, weightBuffers: number, peak: number) {
  return {
    planned: { weights: plan.weightBytes, kvCache: plan.kvBytes, scratch: plan.scratchBytes, total: plan.totalBytes },
    allocated: { weights: weightBuffers, peak },
    peakOverPlan: peak / plan.totalBytes,
  };
}

const show = (s: string) => (s ? JSON.stringify(s) : '(empty)');
const yes = (b: boolean) => (b ? 'yes' : 'no');
const gb = (n: number) => (n >= 1e8 ? `${(n / 1e9).toFixed(3)} GB` : n >= 1e5 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`);

/** digits: decimals, or 'sig' for three significant digits (rates span 0.1 to 10^4 across devices). */
function fmtStats(s: Stats, digits: number | 'sig'): string {
  const f = (v: number) => (digits === 'sig' ? String(Number(v.toPrecision(3))) : v.toFixed(digits));
  return s.runs.length === 1 ? f(s.median) : `median ${f(s.median)} (min ${f(s.min)}, max ${f(s.max)})`;
}

function kernelRows(rows: KernelTime[]): string[] {
  const w = Math.max(6, ...rows.map((r) => r.kernel.length));
  return rows.map((r) => `    ${r.kernel.padEnd(w)} ${r.ms.toFixed(3).padStart(10)} ms ${r.percent.toFixed(1).padStart(6)} %`);
}

export function report(r: BenchResult): string {
  const lines = [
    `prefill:  ${fmtStats(r.prefill.tokensPerSecond, 'sig')} tokens/s  [${fmtStats(r.prefill.ms, 1)} ms for ${r.promptLen} tokens]`,
    `decode:   ${fmtStats(r.decode.tokensPerSecond, 'sig')} tokens/s  [${fmtStats(r.decode.ms, 1)} ms for ${r.gen} tokens]`,
    `          ${fmtStats(r.decode.weightGBps, 'sig')} GB/s of weights (estimate: ${gb(r.decode.weightBytesPerToken)}/token x tokens/s)`,
  ];
  if (r.profile) {
    lines.push(
      `per-kernel wall time, each kernel its own submission (sums exceed the batched times above):`,
      `  prefill batch of ${r.profile.prefillTokens} tokens:`, ...kernelRows(r.profile.prefill),
      `  one decode token:`, ...kernelRows(r.profile.decode),
    );
  }
  return lines.join('\n');
}
