/**
 * `gptoss logits`: float32 little-endian [T, vocab] logits for every position, the format of
 * the golden `logits.f32` files.
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { Checkpoint } from '../loader/checkpoint.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { loadReferenceModel } from '../engine/reference/model.ts';
import { parseIdList, requireFlag, UsageError } from './args.ts';

export const command = {
  summary: 'compute the logits of a token sequence at every position',
  usage: [
    'Usage: gptoss logits --model DIR|URL --tokens 5,17,200 --out FILE [--backend cpu] [--one-by-one]',
    '',
    '  --tokens       comma-separated token ids',
    '  --out          output file: float32 little-endian, row-major [T, vocab]',
    '  --backend      cpu (the reference forward pass)',
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
      },
    });
    const tokens = parseIdList(requireFlag(values.tokens, 'tokens'), 'tokens');
    const out = requireFlag(values.out, 'out');
    if (values.backend !== 'cpu') throw new UsageError(`--backend must be cpu, got ${JSON.stringify(values.backend)}`);
    const ck = await Checkpoint.open(await resolveModelSource(requireFlag(values.model, 'model')));
    let logits: Float32Array;
    try {
      const vocab = ck.config.vocabSize;
      const bad = tokens.find((t) => t >= vocab);
      if (bad !== undefined) throw new UsageError(`token id ${bad} is outside the vocabulary (vocab_size ${vocab})`);
      const model = await loadReferenceModel(ck);
      const session = model.newSession();
      if (values['one-by-one']) {
        logits = new Float32Array(tokens.length * vocab);
        tokens.forEach((t, i) => logits.set(session.forward([t]), i * vocab));
      } else {
        logits = session.forward(tokens);
      }
    } finally {
      await ck.close();
    }
    await writeFile(out, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
    const vocab = logits.length / tokens.length;
    const argmax = tokens.map((_, i) => {
      let best = 0;
      for (let j = 1; j < vocab; j++) if (logits[i * vocab + j]! > logits[i * vocab + best]!) best = j;
      return best;
    });
    console.error(`wrote ${out}: [${tokens.length}, ${vocab}] float32; argmax per position: ${argmax.join(',')}`);
  },
};
