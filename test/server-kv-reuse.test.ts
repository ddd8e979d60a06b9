/**
 * Conversations that reuse their KV cache, through `gptoss serve`'s serve() with the official
 * `openai` client: the second turn of a conversation reports cached_tokens covering the first
 * turn's prompt (less the few tokens where the rendered history departs from what was
 * generated), prompt_tokens - cached_tokens is all it processed, and a second conversation in
 * between does not evict the first while the pool has room for both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

type Msg = OpenAI.Chat.Completions.ChatCompletionMessageParam;

describe('KV reuse across the turns of a conversation (gptoss serve)', () => {
  let tmp = '';
  let engine: Engine;
  let server: RunningServer;
  let client: OpenAI;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-serve-reuse-'));
    const tok = await realTokenizer();
    await writeScriptedCheckpoint(join(tmp, 'chat'), [tok.encode(ANSWER_SCRIPT)]);
    engine = await createEngine({ model: join(tmp, 'chat'), contextLimit: 512, modelId: 'scripted-chat', conversations: 2 });
    server = await serve(engine, { port: 0 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await engine?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const ask = (messages: Msg[]) => client.chat.completions.create({ model: 'scripted-chat', messages, temperature: 0 });
  const cached = (r: OpenAI.Chat.Completions.ChatCompletion) => r.usage?.prompt_tokens_details?.cached_tokens;

  it('the next turn prefills only what is new; another conversation in between keeps its own cache', async () => {
    const a1: Msg[] = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hello, please, in a few words.' }];
    const r1 = await ask(a1);
    expect(r1.choices[0]!.message.content).toBe(ANSWER_TEXT);
    expect(cached(r1), 'nothing to reuse on the first request').toBe(0);

    // A different conversation in between: it takes the pool's second session.
    const b1 = await ask([{ role: 'user', content: 'Something else entirely, a different opening.' }]);
    expect(cached(b1), 'the other conversation shares only the rendered preamble').toBeLessThan(r1.usage!.prompt_tokens);

    const a2: Msg[] = [...a1, { role: 'assistant', content: r1.choices[0]!.message.content! }, { role: 'user', content: 'And again, once more.' }];
    const r2 = await ask(a2);
    expect(r2.choices[0]!.message.content).toBe(ANSWER_TEXT);
    const p1 = r1.usage!.prompt_tokens;
    console.log(`turn 1: ${p1} prompt tokens; turn 2: ${r2.usage!.prompt_tokens} prompt tokens, ${cached(r2)} cached`);
    // The rendered history repeats turn 1's prompt; it departs from the generated tokens where the
    // model's answer began (harmony drops earlier turns' reasoning), a few tokens at most.
    expect(cached(r2), 'cached tokens of turn 2').toBeGreaterThanOrEqual(p1 - 3);
    expect(cached(r2)).toBeLessThan(r2.usage!.prompt_tokens);

    // Streamed, with usage: the same figure.
    const a3: Msg[] = [...a2, { role: 'assistant', content: r2.choices[0]!.message.content! }, { role: 'user', content: 'Last one.' }];
    const stream = await client.chat.completions.create({ model: 'scripted-chat', messages: a3, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let usage: OpenAI.CompletionUsage | undefined;
    let text = '';
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(ANSWER_TEXT);
    expect(usage?.prompt_tokens_details?.cached_tokens, 'cached tokens of turn 3 (streamed)').toBeGreaterThanOrEqual(r2.usage!.prompt_tokens - 3);
  });

  it('an edited earlier message reuses only the part before the edit', async () => {
    const base: Msg[] = [{ role: 'user', content: 'First question about the weather in Paris.' }];
    const r1 = await ask(base);
    const edited: Msg[] = [{ role: 'user', content: 'First question about the weather in Rome.' }];
    const r2 = await ask(edited);
    expect(r2.choices[0]!.message.content).toBe(ANSWER_TEXT);
    expect(cached(r2)!, 'the common start of both prompts').toBeGreaterThan(0);
    expect(cached(r2)!, 'nothing after the edit').toBeLessThan(r1.usage!.prompt_tokens - 2);
  });
});
