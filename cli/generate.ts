/** `gptoss generate`: raw completion of a prompt, streamed to stdout. */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { decodeShape, GpuCallTrace } from '../engine/gpu/call-trace.ts';
import { GptOssTokenizer } from '../loader/tokenizer.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { generate } from '../engine/generate.ts';
import { validateSampling, type SamplingParams } from '../engine/sampling.ts';
import { intFlag, requireFlag, UsageError, weightsFlag } from './args.ts';
import { checkGpu, loadGpuModel, unload } from './gpu.ts';

export const command = {
  summary: 'generate a raw completion of a prompt on the GPU, streamed to stdout',
  usage: [
    'Usage: gptoss generate --model DIR|URL --prompt "..." [--max-tokens N] [--temperature T] [--top-p P]',
    '                       [--top-k K] [--seed S] [--context N] [--kv q8|f32] [--weights bf16|q8] [--gpu-trace FILE]',
    '',
    '--gpu-trace FILE  records the WebGPU calls of the generation and writes, as JSON, the shape of a',
    '                  decode step: submits, dispatches, objects created, bytes written and read back per',
    '                  token, and how many steps were submitted before the previous id was read back.',
    'No chat template is applied: the prompt is tokenized as is (special tokens such as <|start|> allowed).',
    'Defaults: --max-tokens 64, --temperature 0 (greedy), --top-p 1, --top-k 0 (off), --seed 0.',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, prompt: { type: 'string' },
        'max-tokens': { type: 'string', default: '64' }, temperature: { type: 'string', default: '0' },
        'top-p': { type: 'string', default: '1' }, 'top-k': { type: 'string', default: '0' }, seed: { type: 'string', default: '0' },
        context: { type: 'string' }, kv: { type: 'string', default: 'q8' }, weights: { type: 'string' }, 'gpu-trace': { type: 'string' },
      },
    });
    const prompt = requireFlag(values.prompt, 'prompt');
    const maxTokens = intFlag(values['max-tokens'], 'max-tokens', 1)!;
    const sampling: SamplingParams = {
      temperature: Number(values.temperature),
      topP: Number(values['top-p']),
      topK: intFlag(values['top-k'], 'top-k', 0)!,
      seed: intFlag(values.seed, 'seed', 0)!,
    };
    try {
      validateSampling(sampling);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    const loaded = await loadGpuModel(requireFlag(values.model, 'model'), { contextLimit: intFlag(values.context, 'context', 1), kvFormat: values.kv, weights: weightsFlag(values.weights) });
    try {
      const tok = await GptOssTokenizer.load(loaded.ck.source);
      const ids = tok.encode(prompt);
      if (ids.length + 1 > loaded.model.contextLimit) {
        throw new UsageError(`the prompt is ${ids.length} tokens; the context limit is ${loaded.model.contextLimit} (raise it with --context)`);
      }
      const session = new GpuSession(loaded.model);
      const trace = values['gpu-trace'] !== undefined ? new GpuCallTrace(loaded.gpu.device) : undefined;
      const dec = tok.streamDecoder();
      const res = await generate(session, ids, {
        maxTokens,
        sampling,
        stopTokens: loaded.model.config.eosTokenIds,
        onToken: (id) => process.stdout.write(dec.push(id)),
      });
      trace?.stop();
      process.stdout.write(dec.flush() + '\n');
      await checkGpu(loaded);
      if (trace) {
        const shape = decodeShape(trace.events);
        const c = loaded.model.config;
        await writeFile(values['gpu-trace']!, JSON.stringify({ layers: c.numLayers, generated: res.tokens.length, decode: shape }, null, 2) + '\n');
        process.stderr.write(
          `[gpu trace: ${shape.steps} decode steps; per step ${shape.submitsPerStep} submit, ${shape.dispatchesPerStep.max} dispatches ` +
            `for ${c.numLayers} layers (limit 8 per layer + 4: ${8 * c.numLayers + 4}), ${shape.createdPerStep} objects created, ${shape.mapsPerStep} read-back of ` +
            `${shape.bytesReadPerStep} bytes; ${shape.pipelined} of ${shape.steps} steps had the next one submitted before their id came back` +
            `${shape.overtaken ? ` (${shape.overtaken} came back with the previous one)` : ''}]\n`,
        );
      }
      const decodeTps = res.tokens.length > 1 ? ((res.tokens.length - 1) / res.decodeMs) * 1000 : 0;
      process.stderr.write(
        `[${res.promptTokens} prompt tokens in ${res.prefillMs.toFixed(0)} ms (${((res.promptTokens / res.prefillMs) * 1000).toFixed(1)} tok/s); ` +
          `${res.tokens.length} generated, ${decodeTps.toFixed(2)} tok/s; finish: ${res.finishReason}]\n`,
      );
      session.dispose();
    } finally {
      await unload(loaded);
    }
  },
};
