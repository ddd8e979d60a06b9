/**
 * `gptoss serve` over real HTTP on localhost, driven by the official `openai` npm client, on
 * scripted real checkpoints (test/helpers/scripted-model.ts): models, completions (JSON and
 * streamed), a tool-call round trip, the Responses API, an abort mid-stream, 20 concurrent
 * requests, OpenAI-style errors, API keys, and the library's fallback to a second server.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, LOOP_SCRIPT, TOOL_ARGS, TOOL_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const KEY = 'test-key-123';
const TOOLS = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const ASK = [{ role: 'user' as const, content: 'Say hello.' }];

let tmp = '';
let chatEngine: Engine;
let toolEngine: Engine;
let chatServer: RunningServer;
let toolServer: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-serve-'));
  const tok = await realTokenizer();
  await writeScriptedCheckpoint(join(tmp, 'chat'), [tok.encode(ANSWER_SCRIPT)]);
  await writeScriptedCheckpoint(join(tmp, 'tools'), [tok.encode(TOOL_SCRIPT)]);
  chatEngine = await createEngine({ model: join(tmp, 'chat'), contextLimit: 256, modelId: 'scripted-chat' });
  toolEngine = await createEngine({ model: join(tmp, 'tools'), contextLimit: 256, modelId: 'scripted-tools' });
  chatServer = await serve(chatEngine, { port: 0, apiKey: KEY });
  toolServer = await serve(toolEngine, { port: 0 });
  client = new OpenAI({ baseURL: `${chatServer.url}/v1`, apiKey: KEY, maxRetries: 0 });
}, 300_000);

afterAll(async () => {
  await chatServer?.close();
  await toolServer?.close();
  await chatEngine?.dispose();
  await toolEngine?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('gptoss serve with the openai client', () => {
  it('binds to localhost, lists the model and answers /health', async () => {
    expect(chatServer.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['scripted-chat']);
    const h = await fetch(`${chatServer.url}/health`);
    expect(await h.json()).toMatchObject({ status: 'ok', model: 'scripted-chat', backend: 'local' });
  });

  it('completes, as JSON and as a stream', async () => {
    const r = await client.chat.completions.create({ model: 'scripted-chat', messages: ASK, temperature: 0 });
    expect(r.choices[0]!.message.content).toBe(ANSWER_TEXT);
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ model: 'scripted-chat', messages: ASK, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(ANSWER_TEXT);
    expect(finish).toBe('stop');
  });

  it('round-trips a tool call', async () => {
    const tools = new OpenAI({ baseURL: `${toolServer.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const r = await tools.chat.completions.create({ model: 'scripted-tools', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: TOOLS });
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type === 'function' && call.function).toEqual({ name: 'get_weather', arguments: TOOL_ARGS });
    const second = await tools.chat.completions.create({
      model: 'scripted-tools',
      tools: TOOLS,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: r.choices[0]!.message.tool_calls },
        { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' },
      ],
      max_tokens: 4,
    });
    expect(second.usage!.prompt_tokens).toBeGreaterThan(r.usage!.prompt_tokens);
  });

  it('serves the Responses API, plain and streamed', async () => {
    const r = await client.responses.create({ model: 'scripted-chat', input: 'Say hello.', instructions: 'Be brief.' });
    expect(r.output_text).toBe(ANSWER_TEXT);
    expect(r.status).toBe('completed');
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    const events: string[] = [];
    let text = '';
    for await (const e of await client.responses.create({ model: 'scripted-chat', input: 'Say hello.', stream: true })) {
      events.push(e.type);
      if (e.type === 'response.output_text.delta') text += e.delta;
    }
    expect(text).toBe(ANSWER_TEXT);
    expect(events[0]).toBe('response.created');
    expect(events.at(-1)).toBe('response.completed');
    expect(events).toContain('response.output_text.done');
  });

  it('frees the GPU when a client aborts mid-stream', async () => {
    // A model whose answer never ends: without the abort it would hold the GPU for 400 tokens.
    const tok = await realTokenizer();
    await writeScriptedCheckpoint(join(tmp, 'loop'), [tok.encode(LOOP_SCRIPT)]);
    const engine = await createEngine({ model: join(tmp, 'loop'), contextLimit: 512, modelId: 'loop' });
    const server = await serve(engine, { port: 0 });
    try {
      const loop = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const ac = new AbortController();
      const stream = await loop.chat.completions.create({ model: 'loop', messages: ASK, stream: true, max_tokens: 400 }, { signal: ac.signal });
      let text = '';
      try {
        for await (const c of stream) {
          text += c.choices[0]?.delta.content ?? '';
          if (text.length >= 9) ac.abort();
        }
      } catch (e) {
        expect((e as Error).name).toMatch(/Abort/);
      }
      expect(text, 'streamed text before the abort').toMatch(/^( la li lo)+/);
      // The server notices the disconnect and releases the GPU long before 400 tokens.
      let pending = -1;
      for (let i = 0; i < 100 && pending !== 0; i++) {
        pending = ((await (await fetch(`${server.url}/health`)).json()) as { pending: number }).pending;
        if (pending !== 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(pending, 'generations still holding the GPU 10 s after the client left').toBe(0);
      const r = await loop.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 5 }); // <|channel|>final<|message|> la li
      expect(r.choices[0]!.message.content).toBe(' la li');
    } finally {
      await server.close();
      await engine.dispose();
    }
  });

  it('answers 20 concurrent requests, one generation at a time', async () => {
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      client.chat.completions.create({ model: 'scripted-chat', messages: [{ role: 'user', content: `Request ${i}` }], max_tokens: 3 })));
    expect(all).toHaveLength(20);
    for (const r of all) {
      expect(r.choices[0]!.finish_reason).toBe('length');
      expect(r.usage!.completion_tokens).toBe(3);
    }
    console.log(`20 concurrent requests in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

  it('rejects bad requests with OpenAI-style errors and keeps serving', async () => {
    const post = (body: string, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) =>
      fetch(`${chatServer.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const bad = await post('{not json');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/not valid JSON/);
    const noKey = await post(JSON.stringify({ messages: ASK }), {});
    expect(noKey.status).toBe(401);
    const expectStatus = async (p: Promise<unknown>, status: number, match: RegExp) => {
      const e = await p.then(() => null, (x: unknown) => x as InstanceType<typeof OpenAI.APIError>);
      expect(e).toBeInstanceOf(OpenAI.APIError);
      expect(e!.status).toBe(status);
      expect(e!.message).toMatch(match);
    };
    await expectStatus(client.chat.completions.create({ model: 'gpt-9', messages: ASK }), 404, /does not exist/);
    await expectStatus(client.chat.completions.create({ model: 'scripted-chat', messages: [{ role: 'user', content: 'word '.repeat(400) }] }), 400, /context limit/);
    await expectStatus(client.chat.completions.create({ model: 'scripted-chat', messages: ASK, temperature: 9 }), 400, /temperature/);
    await expectStatus(client.chat.completions.create({ model: 'scripted-chat', messages: [] }), 400, /messages/);
    await expectStatus(new OpenAI({ baseURL: `${chatServer.url}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list(), 401, /API key/);
    const missing = await fetch(`${chatServer.url}/v1/nothing`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(missing.status).toBe(404);
    const r = await client.chat.completions.create({ model: 'scripted-chat', messages: ASK });
    expect(r.choices[0]!.message.content).toBe(ANSWER_TEXT);
  });

  it('falls back to a remote server when the model does not fit, and says so', async () => {
    const engine = await createEngine({
      model: join(tmp, 'chat'),
      memoryLimit: 1_000_000,
      fallback: { baseURL: `${chatServer.url}/v1`, apiKey: KEY, model: 'scripted-chat' },
    });
    expect(engine.backend).toBe('fallback');
    expect(engine.fallbackReason).toMatch(/only 1\.0 MB is available/);
    const r = await engine.chat.completions.create({ messages: ASK });
    expect(r.choices[0]!.message.content).toBe(ANSWER_TEXT);
    expect(r.system_fingerprint).toBe(`fallback:${chatServer.url}/v1`);
    let text = '';
    for await (const c of await engine.chat.completions.create({ messages: ASK, stream: true })) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe(ANSWER_TEXT);
    await engine.dispose();
  });
});

describe('gptoss serve (the command)', () => {
  it('starts, prints its URL, serves /v1/models and stops on SIGTERM', async () => {
    const bin = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'serve', '--model', join(tmp, 'chat'), '--port', '0', '--model-id', 'cli-model', '--context', '128'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data[0]!.id).toBe('cli-model');
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('rejects a bad port with usage', async () => {
    const bin = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => execFile(process.execPath, [bin, 'serve', '--model', tmp, '--port', '70000'], (err, _o, stderr) => resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr })));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--port');
  });
});
