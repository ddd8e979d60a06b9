/** `gptoss synth`: writes a random checkpoint in the exact Hugging Face layout. */
import { parseArgs } from 'node:util';
import { isSynthPreset, synthShape, type SynthOverrides, type SynthPreset } from '../loader/synth.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { formatBytes, intFlag, parseBytes, requireFlag, UsageError } from './args.ts';

const PRESETS = ['tiny', '20b', '120b'] as const;

/** parseArgs options of the shape overrides (shared with `gptoss bench --synthetic`). */
export const SHAPE_OPTIONS = {
  layers: { type: 'string' }, experts: { type: 'string' }, 'experts-per-token': { type: 'string' }, hidden: { type: 'string' },
  intermediate: { type: 'string' }, heads: { type: 'string' }, 'kv-heads': { type: 'string' }, 'head-dim': { type: 'string' },
  vocab: { type: 'string' }, window: { type: 'string' },
} as const;

export const SHAPE_USAGE = [
  'Shape overrides: --layers N --experts N --experts-per-token N --hidden N --intermediate N',
  '                 --heads N --kv-heads N --head-dim N --vocab N --window N',
];

/** A preset name and the shape override flags, validated (UsageError on a bad value). */
export function parseShapeFlags(
  presetName: string,
  flag: string,
  values: Partial<Record<keyof typeof SHAPE_OPTIONS, string>>,
): { preset: SynthPreset; overrides: SynthOverrides } {
  if (!isSynthPreset(presetName)) throw new UsageError(`--${flag} must be one of ${PRESETS.join(', ')}, got ${JSON.stringify(presetName)}`);
  const all: SynthOverrides = {
    layers: intFlag(values.layers, 'layers', 1),
    experts: intFlag(values.experts, 'experts', 1),
    expertsPerToken: intFlag(values['experts-per-token'], 'experts-per-token', 1),
    hidden: intFlag(values.hidden, 'hidden', 32),
    intermediate: intFlag(values.intermediate, 'intermediate', 32),
    heads: intFlag(values.heads, 'heads', 1),
    kvHeads: intFlag(values['kv-heads'], 'kv-heads', 1),
    headDim: intFlag(values['head-dim'], 'head-dim', 2),
    vocab: intFlag(values.vocab, 'vocab', 1),
    window: intFlag(values.window, 'window', 1),
  };
  const overrides = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as SynthOverrides;
  try {
    synthShape(presetName, overrides);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { preset: presetName, overrides };
}

export const command = {
  summary: 'write a random checkpoint (HF layout, MXFP4 experts) for tests and benchmarks',
  usage: [
    'Usage: gptoss synth --preset tiny|20b|120b --seed N --out DIR [shape overrides] [--shard-size 5GB]',
    '',
    ...SHAPE_USAGE,
    'With the real vocabulary (201088) the real tokenizer.json and tokenizer_config.json are written too.',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: { preset: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, 'shard-size': { type: 'string' }, ...SHAPE_OPTIONS },
    });
    const { preset, overrides: shapeOverrides } = parseShapeFlags(requireFlag(values.preset, 'preset'), 'preset', values);
    const seed = intFlag(requireFlag(values.seed, 'seed'), 'seed')!;
    const outDir = requireFlag(values.out, 'out');
    const maxShardBytes = values['shard-size'] === undefined ? undefined : parseBytes(values['shard-size'], 'shard-size');
    let lastReport = 0;
    const result = await writeSyntheticCheckpoint({
      preset,
      overrides: shapeOverrides,
      seed,
      outDir,
      maxShardBytes,
      onProgress: (done: number, total: number) => {
        const now = Date.now();
        if (now - lastReport > 2000) {
          lastReport = now;
          process.stderr.write(`  ${formatBytes(done)} / ${formatBytes(total)}\n`);
        }
      },
    });
    console.log(`wrote ${outDir}: ${result.files.length} files, ${formatBytes(result.totalBytes)} of weights in ${result.seconds.toFixed(1)} s`);
  },
};
