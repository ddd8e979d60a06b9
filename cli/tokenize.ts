/** `gptoss tokenize`: text to token ids, or ids back to text, with a checkpoint's tokenizer. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { blobSource } from '../loader/source-blob.ts';
import { tokenizerFiles } from '../loader/synth-writer-node.ts';
import { GptOssTokenizer } from '../loader/tokenizer.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { parseIdList, UsageError } from './args.ts';

export const command = {
  summary: 'encode text to token ids, or decode ids (--decode) to text',
  usage: [
    'Usage: gptoss tokenize [--model DIR|URL] [--no-special] "text"',
    '       gptoss tokenize [--model DIR|URL] --decode 1,2,3',
    '',
    'Prints the ids comma-separated, or the decoded text. Special-token strings such as <|start|> become',
    'their ids unless --no-special. Without --model the o200k_harmony tokenizer shipped with the package is used.',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { model: { type: 'string' }, decode: { type: 'string' }, 'no-special': { type: 'boolean', default: false } },
    });
    if (values.decode !== undefined && positionals.length > 0) throw new UsageError('give either text or --decode, not both');
    if (values.decode === undefined && positionals.length !== 1) throw new UsageError('give the text to encode as one argument');
    const tok = await loadTokenizer(values.model);
    if (values.decode !== undefined) {
      const ids = parseIdList(values.decode, 'decode');
      const unknown = ids.find((id) => !tok.hasId(id));
      if (unknown !== undefined) throw new UsageError(`--decode: token id ${unknown} is not in the tokenizer's vocabulary`);
      process.stdout.write(tok.decode(ids) + '\n');
    } else {
      process.stdout.write(tok.encode(positionals[0]!, { allowSpecial: !values['no-special'] }).join(',') + '\n');
    }
  },
};

async function loadTokenizer(model: string | undefined): Promise<GptOssTokenizer> {
  if (model !== undefined) return GptOssTokenizer.load(await resolveModelSource(model));
  const files = new Map<string, Blob>();
  for (const f of tokenizerFiles()) files.set(f.name, new Blob([await readFile(f.path)]));
  return GptOssTokenizer.load(blobSource(files));
}
