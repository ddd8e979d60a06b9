/**
 * `gptoss bench`: prefill and decode throughput of a checkpoint (or a synthetic one, generated
 * while it loads, or written to a directory first) on this machine's WebGPU adapter, llama-bench style (pp/tg tests,
 * KV depth sweeps), with the device's read-bandwidth ceiling and decode efficiency. The
 * measuring is bench/decode-prefill.ts and bench/ceiling.ts; the text report cli/bench-report.ts.
 */
import { parseArgs } from 'node:util';
import { basename } from 'node:path';
import { describeConfig } from '../loader/config.ts';
import type { ModelLocation } from '../loader/resolve.ts';
import { nodeSyntheticSource } from '../loader/source-synthetic-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { synthShape } from '../loader/synth.ts';
import { benchContext, decodeWeightBytes, paramCount, runBench } from '../bench/decode-prefill.ts';
import { DEFAULT_CEILING_BYTES, measureReadCeiling, type Ceiling } from '../bench/ceiling.ts';
import { formatParams, markdownTable, tableRun } from '../bench/markdown.ts';
import { hasTimestamps, TimestampQueryUnavailableError } from '../engine/gpu-profiler.ts';
import { formatBytes, intFlag, intListFlag, parseBytes, UsageError, weightsFlag } from './args.ts';
import { gb, report } from './bench-report.ts';
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
    '                    [--prompt-len N,...] [--gen N,...] [--depth D,...] [--repeat R] [--kv q8|f32] [--weights bf16|q8] [--context N]',
    '                    [--profile] [--ceiling-size SIZE] [--time-limit S] [--format text|md|json] [--json FILE]',
    '',
    'Tests, as llama-bench names them: ppN prefills N random tokens into an empty cache (timed to the first token);',
    'tgN@dD decodes N tokens after D random tokens in the KV cache (filled untimed, at least one; the repeats follow',
    'one another, run r starting at D + (r-1)N). Each test runs --repeat times; t/s is reported as mean ± sample',
    'standard deviation, with min and max.',
    'Defaults: --prompt-len 128, --gen 32, --depth 0, --repeat 3, --kv q8, --context min(4096, max positions),',
    'raised to what the tests need. With --synthetic a random checkpoint (seed 0) is generated while it loads:',
    'nothing goes to disk.',
    '  --write-synthetic DIR  instead write it to DIR (kept; reuse it with --model DIR) and load it from there',
    ...SHAPE_USAGE,
    '  --profile         also time every kernel on the GPU clock (timestamp-query) for one prefill batch and one',
    '                    decode token at each depth: µs, bytes read, GB/s, share, and the overhead outside the kernels',
    '  --ceiling-size S  bytes streamed to measure the read-bandwidth ceiling (default 1GiB, capped by the adapter;',
    '                    0 skips it); decode efficiency = bytes read per token x tokens/s / ceiling',
    '  --time-limit S    skip the tg tests past the first that would end more than S seconds after the start',
    '  --format F        text (default), md (the markdown table alone) or json (the JSON report) on stdout',
    '  --json FILE       also write the adapter, model and every measured number as JSON',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const start = performance.now();
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, synthetic: { type: 'string' }, 'write-synthetic': { type: 'string' }, ...SHAPE_OPTIONS,
        'prompt-len': { type: 'string', default: '128' }, gen: { type: 'string', default: '32' }, depth: { type: 'string', default: '0' },
        repeat: { type: 'string', default: '3' }, kv: { type: 'string', default: 'q8' }, weights: { type: 'string' }, context: { type: 'string' }, profile: { type: 'boolean' },
        'ceiling-size': { type: 'string' }, 'time-limit': { type: 'string' }, format: { type: 'string', default: 'text' }, json: { type: 'string' },
      },
    });
    if ((values.model === undefined) === (values.synthetic === undefined)) throw new UsageError('give exactly one of --model and --synthetic');
    const shapeFlags = Object.keys(SHAPE_OPTIONS).filter((k) => values[k as keyof typeof SHAPE_OPTIONS] !== undefined);
    if (values.model !== undefined && shapeFlags.length > 0) throw new UsageError(`--${shapeFlags[0]} only applies with --synthetic`);
    if (values.model !== undefined && values['write-synthetic'] !== undefined) throw new UsageError('--write-synthetic only applies with --synthetic');
    const promptLen = intListFlag(values['prompt-len'], 'prompt-len', 1);
    const gen = intListFlag(values.gen, 'gen', 1);
    const depth = intListFlag(values.depth, 'depth', 0);
    const repeat = intFlag(values.repeat, 'repeat', 1)!;
    const context = intFlag(values.context, 'context', 1);
    const timeLimit = intFlag(values['time-limit'], 'time-limit', 1);
    const ceilingSize = values['ceiling-size'] === undefined ? DEFAULT_CEILING_BYTES : parseBytes(values['ceiling-size'], 'ceiling-size', { bytes: 0, text: '0' });
    if (ceilingSize !== 0 && ceilingSize < 16) throw new UsageError(`--ceiling-size must be 0 (skip) or at least 16 bytes, got ${values['ceiling-size']}`);
    const format = values.format;
    if (format !== 'text' && format !== 'md' && format !== 'json') throw new UsageError(`--format must be text, md or json, got ${JSON.stringify(format)}`);
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    const workload = { promptLen, gen, depth, repeat, profile: values.profile };
    const need = benchContext(workload);
    if (context !== undefined && need > context) {
      throw new UsageError(`these tests need a context of ${need} tokens (the longest prompt, or the deepest fill + --gen x --repeat), which would exceed --context ${context}`);
    }
    const kvFormat = values.kv;
    const say = (line: string) => process.stderr.write(`${line}\n`);
    if (values.json !== undefined) await checkOutputFile(values.json, 'json');

    {
      let modelArg: ModelLocation | undefined = values.model;
      let synthetic: { preset: string; overrides: Record<string, number>; seed: number; dir?: string } | undefined;
      if (values.synthetic !== undefined) {
        const { preset, overrides } = parseShapeFlags(values.synthetic, 'synthetic', values);
        const shape = synthShape(preset, overrides);
        const dir = values['write-synthetic'];
        if (dir !== undefined) {
          say(`writing synthetic ${preset} checkpoint (seed ${SEED}) to ${dir}`);
          const w = await writeSyntheticCheckpoint({ preset, overrides, seed: SEED, outDir: dir });
          say(`  ${formatBytes(w.totalBytes)} of weights in ${w.seconds.toFixed(1)} s`);
          modelArg = dir;
        } else {
          say(`synthetic ${preset} checkpoint (seed ${SEED}) generated on demand while loading: nothing is written to disk`);
          modelArg = nodeSyntheticSource({ preset, overrides, seed: SEED });
        }
        synthetic = { preset, overrides: { ...shape }, seed: SEED, dir };
      }
      const loaded = await loadGpuModel(modelArg!, { contextLimit: context ?? (need > 4096 ? need : undefined), kvFormat, weights: weightsFlag(values.weights) });
      try {
        const m = loaded.model;
        const g = loaded.gpu;
        if (need > m.contextLimit) throw new UsageError(`these tests need a context of ${need} tokens, over the context limit ${m.contextLimit} (raise it with --context)`);
        if (values.profile && !hasTimestamps(g.device)) throw new TimestampQueryUnavailableError();
        const i = g.info;
        const adapter = { vendor: i.vendor, architecture: i.architecture, description: i.description, f16: g.f16, subgroups: g.subgroups, fallback: g.fallback, features: i.features,
          maxBufferSize: i.maxBufferSize, maxStorageBufferBindingSize: i.maxStorageBufferBindingSize };
        const bytes = decodeWeightBytes(m.config, m.weightFormat);
        const params = paramCount(m.config);
        const header = [
          `gptoss bench: measured on THIS machine, in this run (${new Date().toISOString()}; node ${process.version} ${process.platform}-${process.arch})`,
          `adapter:  vendor ${show(i.vendor)}, architecture ${show(i.architecture)}, description ${show(i.description)}; ` +
            `shader-f16 ${yes(g.f16)}, subgroups ${g.subgroups ? `yes (sizes ${g.subgroupMinSize ?? '?'}-${g.subgroupMaxSize ?? '?'}${g.fallback ? ', not used on a CPU adapter' : ', used by the decode kernels'})` : 'no'}, timestamp-query ${yes(hasTimestamps(g.device))}, fallback (CPU) adapter ${yes(g.fallback)}`,
          `model:    ${synthetic ? `synthetic ${synthetic.preset}, seed ${SEED}, ${synthetic.dir ? `written to ${synthetic.dir}` : 'generated on demand (not on disk)'}` : loaded.ck.source.description}`,
          `shape:    ${describeConfig(m.config)}; ${formatParams(params)} parameters`,
          `weights:  ${formatBytes(m.plan.weightBytes)} (${m.plan.weightBytes} bytes); KV cache ${m.kvFormat}, context ${m.contextLimit}, prefill batch ${m.maxBatch}`,
          `decode reads ~${gb(bytes.total)} of weights per token (attention ${gb(bytes.attention)}, router ${gb(bytes.router)}, norms ${gb(bytes.norms)}, ` +
            `experts ${m.config.expertsPerToken}/${m.config.numExperts} ${gb(bytes.experts)}, embed row ${gb(bytes.embed)}, lm_head ${gb(bytes.lmHead)}) plus the KV cache at its depth`,
          `workload: pp ${promptLen.join(',')}, tg ${gen.join(',')} at depth ${depth.join(',')}, random token ids, ${repeat} timed run(s) each after 1 warm-up`,
        ];
        (format === 'text' ? console.log : say)(header.join('\n'));
        let ceiling: Ceiling | undefined;
        if (ceilingSize > 0) {
          say(`  measuring the read-bandwidth ceiling (${formatBytes(Math.min(ceilingSize, i.maxStorageBufferBindingSize, i.maxBufferSize))} streamed)`);
          ceiling = await measureReadCeiling(g.device, { bytes: ceilingSize });
          // The plan check below is about the model and its session, not the measuring buffer.
          loaded.buffers.resetPeak();
        }
        const res = await runBench(m, {
          ...workload, seed: SEED, ceilingGBps: ceiling?.gbps, deadline: timeLimit === undefined ? undefined : start + timeLimit * 1000,
          onProgress: (msg) => say(`  ${msg}`),
        });
        await checkGpu(loaded);
        say(`GPU buffers at peak ${formatBytes(loaded.buffers.peakBytes)}; memory plan ${formatBytes(m.plan.totalBytes)} (weights, KV cache, scratch)`);
        const json = {
          kind: 'gptoss-bench', version: 1, date: new Date().toISOString(),
          runtime: { node: process.version, platform: process.platform, arch: process.arch },
          adapter,
          model: {
            name: synthetic ? `gpt-oss-${synthetic.preset} synthetic` : modelName(String(modelArg)),
            source: synthetic ? `synthetic:${synthetic.preset}` : loaded.ck.source.description,
            synthetic: synthetic && { preset: synthetic.preset, shape: synthetic.overrides, seed: synthetic.seed, onDisk: synthetic.dir !== undefined },
            description: describeConfig(m.config),
            config: m.config,
            weightBytes: m.plan.weightBytes,
            params,
          },
          kvFormat: m.kvFormat, weights: m.weightFormat, context: m.contextLimit, maxBatch: m.maxBatch,
          gpuMemory: gpuMemory(m.plan, m.weightBufferBytes, loaded.buffers.peakBytes),
          decodeWeightBytes: bytes,
          ceiling,
          result: res,
        };
        const table = markdownTable([tableRun(json)]);
        if (format === 'text') console.log(`${table}\n${report(res, ceiling)}`);
        else if (format === 'md') console.log(table);
        else console.log(JSON.stringify(json, null, 2));
        if (values.json !== undefined) {
          await writeOutputFile(values.json, JSON.stringify(json, null, 2) + '\n', 'json');
          say(`wrote ${values.json}`);
        }
      } finally {
        await unload(loaded);
      }
    }
  },
};

/** The memory plan next to the bytes of the GPU buffers really created. */
function gpuMemory(plan: MemoryPlan, weightBuffers: number, peak: number) {
  return {
    planned: { weights: plan.weightBytes, kvCache: plan.kvBytes, scratch: plan.scratchBytes, total: plan.totalBytes },
    allocated: { weights: weightBuffers, peak },
    peakOverPlan: peak / plan.totalBytes,
  };
}

const show = (s: string) => (s ? JSON.stringify(s) : '(empty)');
const yes = (b: boolean) => (b ? 'yes' : 'no');

/** A short name for a model argument: a repo id as given, else the folder's or URL's last part. */
function modelName(arg: string): string {
  if (/^[\w.-]+\/[\w.-]+$/.test(arg)) return arg;
  return basename(arg.replace(/\/+$/, '')) || arg;
}
