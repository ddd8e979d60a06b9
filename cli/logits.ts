/**
 * `gptoss logits`: float32 little-endian [T, vocab] logits for every position, the format of
 * the golden `logits.f32` files.
 */
import { parseArgs } from 'node:util';
import { Checkpoint } from '../loader/checkpoint.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { loadReferenceModel } from '../engine/reference/model.ts';
import { writeLogitsF32 } from '../engine/reference/logits-file.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { parseIdList, requireFlag, UsageError } from './args.ts';
import { checkOutputFile, writeOutputFile } from './files.ts';
import { checkGpu, loadGpuModel, unload } from './gpu.ts';

export const command = {
  summary: 'compute the logits of a token sequence at every position',
  usage: [
    'Usage: gptoss logits --model DIR|URL --tokens 5,17,200 --out FILE [--backend cpu|gpu] [--one-by-one] [--kv f32|q8]',
    '',
    '  --tokens       comma-separated token ids',
    '  --out          output file: float32 little-endian, row-major [T, vocab]',
    '  --backend      cpu (the reference forward pass, default) or gpu (WebGPU)',
    '  --kv           GPU KV cache: f32 (default here) or q8 (the 8-bit cache generation uses)',
    '  --one-by-one   feed the tokens one at a time through the KV cache instead of all at once',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        tokens: { type: 'string' },
        out: { type: 'string' },
        backend: { type: 'string', default: 'cpu' },
        'one-by-one': { type: 'boolean', default: false },
        kv: { type: 'string', default: 'f32' },
      },
    });
    const tokens = parseIdList(requireFlag(values.tokens, 'tokens'), 'tokens');
    const out = requireFlag(values.out, 'out');
    if (values.backend !== 'cpu' && values.backend !== 'gpu') throw new UsageError(`--backend must be cpu or gpu, got ${JSON.stringify(values.backend)}`);
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    const model = requireFlag(values.model, 'model');
    await checkOutputFile(out, 'out');
    const logits = values.backend === 'gpu'
      ? await gpuLogits(model, tokens, values['one-by-one'], values.kv)
      : await cpuLogits(model, tokens, values['one-by-one']);
    await writeOutputFile(out, writeLogitsF32(logits), 'out');
    const vocab = logits.length / tokens.length;
    const argmax = tokens.map((_, i) => {
      let best = 0;
      for (let j = 1; j < vocab; j++) if (logits[i * vocab + j]! > logits[i * vocab + best]!) best = j;
      return best;
    });
    console.error(`wrote ${out}: [${tokens.length}, ${vocab}] float32; argmax per position: ${argmax.join(',')}`);
  },
};

function checkVocab(tokens: number[], vocab: number): void {
  const bad = tokens.find((t) => t >= vocab);
  if (bad !== undefined) throw new UsageError(`token id ${bad} is outside the vocabulary (vocab_size ${vocab})`);
}

async function gpuLogits(model: string, tokens: number[], oneByOne: boolean, kvFormat: 'q8' | 'f32'): Promise<Float32Array> {
  const loaded = await loadGpuModel(model, { contextLimit: tokens.length, kvFormat, maxBatch: Math.min(128, tokens.length), allLogits: !oneByOne }, true);
  try {
    const vocab = loaded.model.config.vocabSize;
    checkVocab(tokens, vocab);
    const session = new GpuSession(loaded.model, { allLogits: !oneByOne });
    let logits: Float32Array;
    if (!oneByOne) {
      logits = (await session.append(tokens, 'all'))!;
    } else {
      logits = new Float32Array(tokens.length * vocab);
      for (let i = 0; i < tokens.length; i++) logits.set((await session.append([tokens[i]!], 'last'))!, i * vocab);
    }
    await checkGpu(loaded);
    return logits;
  } finally {
    await unload(loaded);
  }
}

async function cpuLogits(model: string, tokens: number[], oneByOne: boolean): Promise<Float32Array> {
    const ck = await Checkpoint.open(await resolveModelSource(model));
    let logits: Float32Array;
    try {
      const vocab = ck.config.vocabSize;
      checkVocab(tokens, vocab);
      const session = (await loadReferenceModel(ck)).newSession();
      if (oneByOne) {
        logits = new Float32Array(tokens.length * vocab);
        tokens.forEach((t, i) => logits.set(session.forward([t]), i * vocab));
      } else {
        logits = session.forward(tokens);
      }
    } finally {
      await ck.close();
    }
    return logits;
}
