/**
 * The library API on real checkpoints: createEngine + chat.completions.create in OpenAI's
 * shapes (JSON and streamed), stop strings, limits, aborts, errors, tool calls, and the
 * token-level session API beneath it. The models are scripted (test/helpers/scripted-model.ts):
 * real weights designed so greedy and sampled output is a known harmony message.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { ApiError, type ChatCompletionChunk } from '../engine/api/types.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, TOOL_ARGS, TOOL_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const ASK = { messages: [{ role: 'user' as const, content: 'Say hello.' }] };
const TOOLS = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];

let tmp = '';
let chat: Engine;
let tools: Engine;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-api-'));
  const tok = await realTokenizer();
  await writeScriptedCheckpoint(join(tmp, 'chat'), [tok.encode(ANSWER_SCRIPT)]);
  await writeScriptedCheckpoint(join(tmp, 'tools'), [tok.encode(TOOL_SCRIPT)]);
  chat = await createEngine({ model: join(tmp, 'chat'), contextLimit: 256, modelId: 'scripted-chat' });
  tools = await createEngine({ model: join(tmp, 'tools'), contextLimit: 256, modelId: 'scripted-tools' });
}, 300_000);

afterAll(async () => {
  await chat?.dispose();
  await tools?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const out: ChatCompletionChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

describe('chat.completions on a local model', () => {
  it('answers in the OpenAI completion shape with usage', async () => {
    const r = await chat.chat.completions.create({ ...ASK, temperature: 0 });
    expect(chat.backend).toBe('local');
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe('scripted-chat');
    expect(r.choices[0]!.message).toEqual({ role: 'assistant', content: ANSWER_TEXT, refusal: null });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    const completion = (await realTokenizer()).encode(ANSWER_SCRIPT).length - 1; // everything after "assistant"
    expect(r.usage.completion_tokens).toBe(completion);
    expect(r.usage.prompt_tokens).toBeGreaterThan(30);
    expect(r.usage.total_tokens).toBe(r.usage.prompt_tokens + completion);
    expect(r.system_fingerprint).toBe('local-webgpu');
  });

  it('streams chunks that add up to the answer (default sampling: temperature 1)', async () => {
    const chunks = await collect(await chat.chat.completions.create({ ...ASK, stream: true, stream_options: { include_usage: true } }));
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(ANSWER_TEXT);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish.map((c) => c.choices[0]!.finish_reason)).toEqual(['stop']);
    expect(chunks.at(-1)!.usage?.completion_tokens).toBeGreaterThan(0);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('applies stop strings and max_tokens', async () => {
    const s = await chat.chat.completions.create({ ...ASK, stop: [' Web'] });
    expect(s.choices[0]!.message.content).toBe('Hello from');
    expect(s.choices[0]!.finish_reason).toBe('stop');
    const l = await chat.chat.completions.create({ ...ASK, max_tokens: 5 });
    expect(l.choices[0]!.finish_reason).toBe('length');
    expect(l.usage.completion_tokens).toBe(5);
  });

  it('aborts a stream promptly and stays usable', async () => {
    const ac = new AbortController();
    const stream = await chat.chat.completions.create({ ...ASK, stream: true }, { signal: ac.signal });
    const seen: string[] = [];
    await expect((async () => {
      for await (const c of stream) {
        seen.push(c.choices[0]?.delta.content ?? '');
        if (seen.length === 3) ac.abort();
      }
    })()).rejects.toThrow(/abort/i);
    expect(seen.join('').length).toBeLessThan(ANSWER_TEXT.length);
    const again = await chat.chat.completions.create(ASK);
    expect(again.choices[0]!.message.content).toBe(ANSWER_TEXT);
  });

  it('rejects bad requests with OpenAI-style errors', async () => {
    const err = async (p: Promise<unknown>) => p.then(() => { throw new Error('expected an error'); }, (e: unknown) => e as ApiError);
    const unknown = await err(chat.chat.completions.create({ ...ASK, model: 'gpt-4' }));
    expect(unknown).toBeInstanceOf(ApiError);
    expect([unknown.status, unknown.code]).toEqual([404, 'model_not_found']);
    const temp = await err(chat.chat.completions.create({ ...ASK, temperature: 5 }));
    expect([temp.status, temp.param]).toEqual([400, 'temperature']);
    const long = await err(chat.chat.completions.create({ messages: [{ role: 'user', content: 'word '.repeat(400) }] }));
    expect([long.status, long.code]).toEqual([400, 'context_length_exceeded']);
    const tooMany = await err(chat.chat.completions.create({ ...ASK, max_tokens: 10_000 }));
    expect([tooMany.status, tooMany.param]).toEqual([400, 'max_tokens']);
    const role = await err(chat.chat.completions.create({ messages: [{ role: 'robot', content: 'x' } as never] }));
    expect(role.status).toBe(400);
    expect(role.message).toMatch(/messages\[0\]\.role/);
    expect((await chat.chat.completions.create(ASK)).choices[0]!.message.content).toBe(ANSWER_TEXT);
  });

  it('returns tool calls, then accepts the tool result', async () => {
    const r = await tools.chat.completions.create({ messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: TOOLS });
    const msg = r.choices[0]!.message;
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(msg.content).toBeNull();
    expect(msg.tool_calls).toHaveLength(1);
    expect(msg.tool_calls![0]!.function).toEqual({ name: 'get_weather', arguments: TOOL_ARGS });
    expect(msg.tool_calls![0]!.id).toMatch(/^call_/);
    const second = await tools.chat.completions.create({
      tools: TOOLS,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: msg.tool_calls },
        { role: 'tool', tool_call_id: msg.tool_calls![0]!.id, content: '{"temperature": 21}' },
      ],
    });
    // The scripted model always calls the tool; what matters is that the round trip is accepted.
    expect(second.usage.prompt_tokens).toBeGreaterThan(r.usage.prompt_tokens);
    expect(second.choices[0]!.finish_reason).toBe('tool_calls');
  });

  it('offers the token-level session API beneath', async () => {
    const tok = chat.tokenizer!;
    const s = chat.createSession();
    const prompt = tok.encode('<|start|>user<|message|>hi<|end|><|start|>assistant');
    const r = await s.generate({ prompt, maxTokens: 40, sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 }, stopTokens: [200002] });
    expect(tok.decode(r.tokens)).toBe(`<|channel|>final<|message|>${ANSWER_TEXT}<|return|>`);
    expect(r.finishReason).toBe('stop');
    expect(s.position).toBe(prompt.length + r.tokens.length - 1);
    s.reset();
    expect(s.position).toBe(0);
    s.dispose();
  });
});
