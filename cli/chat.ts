/**
 * `gptoss chat`: an interactive chat in the terminal. Keeps the conversation (the assistant's
 * reasoning goes back as reasoning_content, so the harmony renderer drops it from later turns as
 * the format asks), streams each answer, shows the reasoning dimmed (or prefixed with
 * "[reasoning] " when stdout is not a terminal) and reports speed after each answer. Ctrl-C
 * aborts an answer; Ctrl-C at an empty prompt, Ctrl-D, /exit or the end of piped input quits.
 */
import { createInterface, type Interface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import type { ChatCompletionChunk, ChatMessageParam } from '../engine/api/types.ts';
import { describeConfig } from '../loader/config.ts';
import { intFlag, requireFlag, UsageError, weightsFlag } from './args.ts';
import { MODEL_SOURCE_FLAGS, MODEL_SOURCE_USAGE, modelSourceOptions, progressPrinter } from './model-flags.ts';

type Effort = 'low' | 'medium' | 'high';
const EFFORTS: readonly Effort[] = ['low', 'medium', 'high'];
const isEffort = (s: string | undefined): s is Effort => EFFORTS.includes(s as Effort);

const HELP = [
  'Commands:',
  '  /reset                  forget the conversation',
  '  /effort low|medium|high set the reasoning effort',
  '  /help                   this list',
  '  /exit                   quit (also Ctrl-D; Ctrl-C at an empty prompt)',
  'Ctrl-C while an answer streams stops it and returns to the prompt.',
].join('\n');

export const command = {
  summary: 'chat with a model in the terminal (streamed answers, reasoning shown dimmed)',
  usage: [
    'Usage: gptoss chat --model DIR|URL [--effort low|medium|high] [--context N] [--kv q8|f32] [--weights bf16|q8]',
    '                   [--temperature T] [--system TEXT] [--manifest FILE|URL] [--revision REV]',
    '',
    ...MODEL_SOURCE_USAGE,
    'Type a message and press Enter. The conversation is kept until /reset.',
    HELP,
    'Reads lines until end of input when stdin is piped. Defaults: --effort medium, --kv q8,',
    '--temperature 1 (the engine default).',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, effort: { type: 'string', default: 'medium' }, context: { type: 'string' },
        kv: { type: 'string', default: 'q8' }, weights: { type: 'string' }, temperature: { type: 'string' }, system: { type: 'string' },
        ...MODEL_SOURCE_FLAGS,
      },
    });
    const model = requireFlag(values.model, 'model');
    if (!isEffort(values.effort)) throw new UsageError(`--effort must be low, medium or high, got ${JSON.stringify(values.effort)}`);
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    let temperature: number | undefined;
    if (values.temperature !== undefined) {
      temperature = Number(values.temperature);
      if (!Number.isFinite(temperature) || temperature < 0 || temperature > 2) {
        throw new UsageError(`--temperature must be a number between 0 and 2, got ${JSON.stringify(values.temperature)}`);
      }
    }
    const contextLimit = intFlag(values.context, 'context', 1);

    const engine = await createEngine({
      model, contextLimit, kvFormat: values.kv, weights: weightsFlag(values.weights),
      onProgress: progressPrinter(),
      ...modelSourceOptions(values),
    });
    try {
      await chatLoop(engine, { effort: values.effort, temperature, system: values.system });
    } finally {
      await engine.dispose();
    }
  },
};

interface ChatOptions {
  effort: Effort;
  temperature?: number;
  system?: string;
}

/** Writes streamed text to stdout, dimming the reasoning (or prefixing its lines when piped). */
export class AnswerPrinter {
  private mode: 'none' | 'reasoning' | 'content' = 'none';
  private atLineStart = true;
  constructor(
    private readonly tty: boolean,
    private readonly write: (s: string) => void = (s) => void process.stdout.write(s),
  ) {}

  reasoning(text: string): void {
    if (this.mode !== 'reasoning') {
      this.endLine();
      if (this.tty) this.write('\x1b[2m');
      this.mode = 'reasoning';
    }
    if (this.tty) {
      this.write(text);
    } else {
      // Every line of reasoning gets the prefix, however the text was split into chunks.
      let out = '';
      for (const ch of text) {
        if (this.atLineStart) out += '[reasoning] ';
        out += ch;
        this.atLineStart = ch === '\n';
      }
      this.write(out);
      return;
    }
    if (text.length) this.atLineStart = text.endsWith('\n');
  }

  content(text: string): void {
    if (this.mode !== 'content') {
      this.leaveReasoning();
      this.mode = 'content';
    }
    this.write(text);
    if (text.length) this.atLineStart = text.endsWith('\n');
  }

  /** Ends the answer on a fresh line with the terminal's style reset. */
  finish(): void {
    this.leaveReasoning();
    this.mode = 'none';
  }

  private leaveReasoning(): void {
    if (this.mode === 'reasoning' && this.tty) this.write('\x1b[22m');
    this.endLine();
  }

  private endLine(): void {
    if (!this.atLineStart) this.write('\n');
    this.atLineStart = true;
  }
}

async function chatLoop(engine: Engine, opts: ChatOptions): Promise<void> {
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const dimErr = process.stderr.isTTY === true;
  const note = (line: string) => process.stderr.write(dimErr ? `\x1b[2m${line}\x1b[22m\n` : `${line}\n`);
  const error = (line: string) => process.stderr.write(`error: ${line}\n`);
  let effort = opts.effort;
  let history: ChatMessageParam[] = [];
  let current: AbortController | null = null;

  const rl: Interface = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, historySize: 200 });
  rl.setPrompt('> ');
  const onInterrupt = () => {
    if (current) {
      current.abort(new DOMException('interrupted', 'AbortError'));
    } else if (tty && rl.line.length > 0) {
      // Ctrl-C with text typed clears the line, as in a shell.
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
      process.stdout.write('^C\n');
      rl.prompt();
    } else {
      if (tty) process.stdout.write('\n');
      rl.close();
    }
  };
  rl.on('SIGINT', onInterrupt); // a terminal: readline turns Ctrl-C into this event
  process.on('SIGINT', onInterrupt); // piped stdin: the signal itself

  const a = engine.adapter;
  if (tty) {
    note(`${engine.modelId}${engine.config ? `: ${describeConfig(engine.config)}` : ''}${a ? `\nadapter: ${a.vendor} ${a.architecture} ${a.description}` : ''}`);
    note(`reasoning effort ${effort}; /help for commands, Ctrl-D to quit`);
  }

  try {
    if (tty) rl.prompt();
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '') {
        if (tty) rl.prompt();
        continue;
      }
      if (line.startsWith('/')) {
        const [cmd, ...args] = line.split(/\s+/);
        if (cmd === '/exit' || cmd === '/quit') break;
        switch (cmd) {
          case '/help':
            console.log(HELP);
            break;
          case '/reset':
            history = [];
            note('(conversation cleared)');
            break;
          case '/effort':
            if (args.length === 1 && isEffort(args[0])) {
              effort = args[0];
              note(`(reasoning effort ${effort})`);
            } else if (args.length === 0) {
              note(`(reasoning effort ${effort})`);
            } else {
              error(`/effort takes low, medium or high, got ${JSON.stringify(args.join(' '))}`);
            }
            break;
          default:
            error(`unknown command ${cmd}; /help lists the commands`);
        }
        if (tty) rl.prompt();
        continue;
      }

      const messages: ChatMessageParam[] = [
        ...(opts.system ? [{ role: 'system' as const, content: opts.system }] : []),
        ...history,
        { role: 'user', content: raw },
      ];
      const ac = new AbortController();
      current = ac;
      const printer = new AnswerPrinter(process.stdout.isTTY === true);
      let content = '';
      let reasoning = '';
      let completionTokens = 0;
      let finish: string | null = null;
      const t0 = performance.now();
      let tFirst: number | undefined;
      try {
        const stream = await engine.chat.completions.create(
          { messages, stream: true, reasoning_effort: effort, temperature: opts.temperature, stream_options: { include_usage: true } },
          { signal: ac.signal },
        );
        for await (const c of stream as AsyncIterable<ChatCompletionChunk>) {
          if (c.usage) completionTokens = c.usage.completion_tokens;
          const choice = c.choices[0];
          if (!choice) continue;
          const d = choice.delta;
          if (d.reasoning_content) {
            tFirst ??= performance.now();
            reasoning += d.reasoning_content;
            printer.reasoning(d.reasoning_content);
          }
          if (d.content) {
            tFirst ??= performance.now();
            content += d.content;
            printer.content(d.content);
          }
          for (const call of d.tool_calls ?? []) {
            tFirst ??= performance.now();
            printer.content(call.function.name ? `[tool call ${call.function.name}] ${call.function.arguments ?? ''}` : call.function.arguments ?? '');
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
        printer.finish();
        const t1 = performance.now();
        history.push({ role: 'user', content: raw }, { role: 'assistant', content, ...(reasoning ? { reasoning_content: reasoning } : {}) });
        const secs = (t1 - t0) / 1000;
        const decodeSecs = tFirst !== undefined ? (t1 - tFirst) / 1000 : 0;
        const tps = completionTokens > 1 && decodeSecs > 0 ? (completionTokens - 1) / decodeSecs : completionTokens / Math.max(secs, 1e-9);
        note(`[${completionTokens} tokens in ${secs.toFixed(2)} s, ${tps.toFixed(1)} tokens/s, time to first token ${tFirst !== undefined ? ((tFirst - t0) / 1000).toFixed(2) : '-'} s` +
          `${finish === 'length' ? '; stopped at the context limit' : ''}]`);
      } catch (e) {
        printer.finish();
        if (ac.signal.aborted) {
          note('[aborted; this turn was not kept]');
        } else {
          error((e as Error).message ?? String(e));
        }
      } finally {
        current = null;
      }
      if (tty) rl.prompt();
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
  }
}
