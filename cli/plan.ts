/** `gptoss plan`: the GPU memory plan of a model at several context lengths, without a GPU. */
import { parseArgs } from 'node:util';
import { Checkpoint } from '../loader/checkpoint.ts';
import { describeConfig, type GptOssConfig } from '../loader/config.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { synthConfig, synthShape, isSynthPreset } from '../loader/synth.ts';
import { DEFAULT_MAX_BATCH, describePlan, planMemoryAuto, type KvFormat } from '../engine/memory-plan.ts';
import { intFlag, parseBytes, parseIdList, UsageError, weightsFlag } from './args.ts';

export const command = {
  summary: 'print the GPU memory plan (weights, KV cache, scratch) at several context lengths',
  usage: [
    'Usage: gptoss plan (--model DIR|URL | --preset 20b|120b|tiny) [--context 4096,32768,131072]',
    '                   [--kv q8|f32] [--weights bf16|q8] [--batch N] [--binding-limit 1GiB] [--memory 16GB]',
    '                   [--sessions N] [--kv-reuse]',
    '',
    `  --batch          prefill batch (default: the largest of ${DEFAULT_MAX_BATCH}, ${DEFAULT_MAX_BATCH / 2}, ... that fits, as the engine picks)`,
    '  --sessions N     conversations kept at once (gptoss serve --conversations), each with its KV cache and scratch',
    '  --kv-reuse       sliding layers keep the whole context, as the chat engine does to reuse a conversation\'s cache',
    '  --binding-limit  the adapter\'s maxStorageBufferBindingSize, at least 128MiB (tensors above it are split or refused)',
    '  --memory         GPU memory available; the plan fails with the sizes when the model does not fit',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, preset: { type: 'string' },
        context: { type: 'string', default: '4096,32768,131072' },
        kv: { type: 'string', default: 'q8' }, weights: { type: 'string' }, batch: { type: 'string' }, sessions: { type: 'string', default: '1' }, 'kv-reuse': { type: 'boolean' },
        'binding-limit': { type: 'string', default: '1GiB' }, memory: { type: 'string' },
      },
    });
    let config: GptOssConfig;
    let what: string;
    if (values.model !== undefined) {
      const ck = await Checkpoint.open(await resolveModelSource(values.model));
      try {
        config = ck.config;
      } finally {
        await ck.close();
      }
      what = values.model;
    } else if (values.preset !== undefined && isSynthPreset(values.preset)) {
      config = synthConfig(synthShape(values.preset));
      what = `preset ${values.preset}`;
    } else {
      throw new UsageError('give --model DIR|URL or --preset 20b|120b|tiny');
    }
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    // WebGPU guarantees every adapter at least this maxStorageBufferBindingSize.
    const binding = parseBytes(values['binding-limit'], 'binding-limit', { bytes: 128 << 20, text: '128MiB (the WebGPU minimum)' });
    const memoryLimit = values.memory === undefined ? undefined : parseBytes(values.memory, 'memory');
    const contexts = parseIdList(values.context, 'context');
    if (contexts.includes(0)) throw new UsageError(`--context lengths must be at least 1, got ${JSON.stringify(values.context)}`);
    const maxBatch = intFlag(values.batch, 'batch', 1);
    console.log(`${what}: ${describeConfig(config)}`);
    console.log(`adapter limits assumed: maxStorageBufferBindingSize ${binding}${memoryLimit ? `, memory ${memoryLimit}` : ''}`);
    for (const contextLimit of contexts) {
      const plan = planMemoryAuto(
        config,
        { maxBufferSize: binding, maxStorageBufferBindingSize: binding, memoryLimit },
        { contextLimit, maxBatch, kvFormat: values.kv as KvFormat, allLogits: false, weights: weightsFlag(values.weights),
          sessions: intFlag(values.sessions, 'sessions', 1)!, kvReuse: values['kv-reuse'] === true },
      );
      console.log(describePlan(plan));
    }
  },
};
