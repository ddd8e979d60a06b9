/** `gptoss synth`: writes a random checkpoint in the exact Hugging Face layout. */
import { parseArgs } from 'node:util';
import { synthShape } from '../loader/synth.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { formatBytes, intFlag, parseBytes, requireFlag, UsageError } from './args.ts';

const PRESETS = ['tiny', '20b', '120b'] as const;
type Preset = (typeof PRESETS)[number];

export const command = {
  summary: 'write a random checkpoint (HF layout, MXFP4 experts) for tests and benchmarks',
  usage: [
    'Usage: gptoss synth --preset tiny|20b|120b --seed N --out DIR [shape overrides] [--shard-size 5GB]',
    '',
    'Shape overrides: --layers N --experts N --experts-per-token N --hidden N --intermediate N',
    '                 --heads N --kv-heads N --head-dim N --vocab N --window N',
    'With the real vocabulary (201088) the real tokenizer.json and tokenizer_config.json are written too.',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const int = { type: 'string' } as const;
    const { values } = parseArgs({
      args: argv,
      options: {
        preset: { type: 'string' }, seed: int, out: { type: 'string' }, 'shard-size': { type: 'string' },
        layers: int, experts: int, 'experts-per-token': int, hidden: int, intermediate: int,
        heads: int, 'kv-heads': int, 'head-dim': int, vocab: int, window: int,
      },
    });
    const preset = requireFlag(values.preset, 'preset');
    if (!(PRESETS as readonly string[]).includes(preset)) throw new UsageError(`--preset must be one of ${PRESETS.join(', ')}, got ${JSON.stringify(preset)}`);
    const overrides = {
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
    const shapeOverrides = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
    try {
      synthShape(preset as Preset, shapeOverrides);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const seed = intFlag(requireFlag(values.seed, 'seed'), 'seed')!;
    const outDir = requireFlag(values.out, 'out');
    const maxShardBytes = values['shard-size'] === undefined ? undefined : parseBytes(values['shard-size'], 'shard-size');
    let lastReport = 0;
    const result = await writeSyntheticCheckpoint({
      preset: preset as Preset,
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
