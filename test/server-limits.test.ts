/**
 * What bounds a request's hold on the GPU, and what the server refuses rather than ignores, over
 * real HTTP with the official `openai` client on a scripted checkpoint whose answer never ends
 * (test/helpers/scripted-model.ts): --max-tokens-cap (400 above it, the default length below it),
 * --request-timeout (the generation stops; finish_reason "length", Responses "incomplete"),
 * 400s naming the parameter for n > 1, logprobs, response_format, impossible tool_choice,
 * non-boolean stream and the Responses API's unsupported fields, and the `gptoss serve` flags.
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
import { LOOP_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const CONTEXT = 4096;
const CAP = 4;
const TIME_LIMIT_S = 2;
const ASK = [{ role: 'user' as const, content: 'Say hello.' }];
const TOOLS = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
/** What the looping model writes (its first tokens open the final channel). */
const LOOP_TEXT = ' la li lo'.repeat(2000);
const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));

let tmp = '';
let engine: Engine;
let capServer: RunningServer;
let timeServer: RunningServer;
let capped: OpenAI;
let timed: OpenAI;

// Without the cap or the time limit the looping model would write ~4000 tokens (many minutes on a
// software GPU): the client's timeout turns that into a failure instead of a hang.
const client = (s: RunningServer) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 90_000 });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-limits-'));
  const tok = await realTokenizer();
  await writeScriptedCheckpoint(join(tmp, 'loop'), [tok.encode(LOOP_SCRIPT)]);
  engine = await createEngine({ model: join(tmp, 'loop'), contextLimit: CONTEXT, modelId: 'loop' });
  capServer = await serve(engine, { port: 0, maxTokensCap: CAP });
  timeServer = await serve(engine, { port: 0, requestTimeout: TIME_LIMIT_S });
  capped = client(capServer);
  timed = client(timeServer);
}, 300_000);

afterAll(async () => {
  await capServer?.close();
  await timeServer?.close();
  await engine?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The APIError a call fails with (or a failure saying it succeeded). */
async function apiError(p: Promise<unknown>, what: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e, `${what}: the server accepted it`).toBeInstanceOf(OpenAI.APIError);
  return e as InstanceType<typeof OpenAI.APIError>;
}

async function expect400(p: Promise<unknown>, param: string, what: string): Promise<void> {
  const e = await apiError(p, what);
  expect([e.status, e.param], `${what}: ${e.message}`).toEqual([400, param]);
  expect(e.type, what).toBe('invalid_request_error');
}

async function pending(s: RunningServer): Promise<number> {
  return ((await (await fetch(`${s.url}/health`)).json()) as { pending: number }).pending;
}

describe('--max-tokens-cap', () => {
  it('refuses a larger max_tokens with a 400 naming the parameter', async () => {
    await expect400(capped.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: CAP + 1 }), 'max_tokens', 'max_tokens above the cap');
    await expect400(capped.chat.completions.create({ model: 'loop', messages: ASK, max_completion_tokens: CAP + 1 }), 'max_completion_tokens', 'max_completion_tokens above the cap');
    await expect400(capped.responses.create({ model: 'loop', input: 'Say hello.', max_output_tokens: CAP + 1 }), 'max_output_tokens', 'max_output_tokens above the cap');
  });

  it('gives a request without max_tokens min(cap, context left), streamed or not', async () => {
    const r = await capped.chat.completions.create({ model: 'loop', messages: ASK });
    expect([r.choices[0]!.finish_reason, r.usage!.completion_tokens], 'finish_reason and tokens of an answer without max_tokens').toEqual(['length', CAP]);
    let finish: string | null = null;
    let tokens = -1;
    for await (const c of await capped.chat.completions.create({ model: 'loop', messages: ASK, stream: true, stream_options: { include_usage: true } })) {
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) tokens = c.usage.completion_tokens;
    }
    expect([finish, tokens], 'a streamed answer without max_tokens').toEqual(['length', CAP]);
    const resp = await capped.responses.create({ model: 'loop', input: 'Say hello.' });
    expect([resp.status, resp.incomplete_details?.reason, resp.usage?.output_tokens], 'a Responses answer without max_output_tokens').toEqual(['incomplete', 'max_output_tokens', CAP]);
    const ok = await capped.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: CAP - 1 });
    expect(ok.usage!.completion_tokens, 'max_tokens under the cap is honoured').toBe(CAP - 1);
  });
});

describe('--request-timeout', () => {
  const room = (u: { prompt_tokens: number } | { input_tokens: number }) => CONTEXT - ('prompt_tokens' in u ? u.prompt_tokens : u.input_tokens);

  it('stops a chat completion at the time limit with finish_reason "length", JSON and streamed', async () => {
    const t0 = performance.now();
    const r = await timed.chat.completions.create({ model: 'loop', messages: ASK });
    const s = (performance.now() - t0) / 1000;
    expect(r.choices[0]!.finish_reason, 'finish_reason at the time limit').toBe('length');
    expect(r.usage!.completion_tokens, 'the answer ran to the end of the context: the time limit did not stop it').toBeLessThan(room(r.usage!));
    expect(r.usage!.completion_tokens, 'tokens generated before the time limit').toBeGreaterThan(0);
    expect(LOOP_TEXT.startsWith(r.choices[0]!.message.content ?? '?'), `the text generated before the time limit: ${r.choices[0]!.message.content}`).toBe(true);
    console.log(`time limit ${TIME_LIMIT_S} s: ${r.usage!.completion_tokens} tokens in ${s.toFixed(1)} s`);

    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let text = '';
    for await (const c of await timed.chat.completions.create({ model: 'loop', messages: ASK, stream: true, stream_options: { include_usage: true } })) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      usage = c.usage ?? usage;
    }
    expect(finish, 'the streamed finish_reason at the time limit').toBe('length');
    expect(usage, 'usage after a streamed answer stopped by the time limit').toBeDefined();
    expect(usage!.completion_tokens, 'streamed: the time limit did not stop the answer').toBeLessThan(room(usage!));
    expect(LOOP_TEXT.startsWith(text), `the streamed text before the time limit: ${text}`).toBe(true);
    expect(await pending(timeServer), 'generations holding the GPU after the time limit').toBe(0);
  });

  it('ends a Responses answer at the time limit as "incomplete", JSON and streamed', async () => {
    const r = await timed.responses.create({ model: 'loop', input: 'Say hello.' });
    expect([r.status, r.incomplete_details?.reason], 'status of a response stopped by the time limit').toEqual(['incomplete', 'max_output_tokens']);
    expect(r.usage!.output_tokens, 'the time limit did not stop the response').toBeLessThan(room(r.usage!));
    const events: { type: string; response?: { status?: string; incomplete_details?: { reason?: string } | null } }[] = [];
    for await (const e of await timed.responses.create({ model: 'loop', input: 'Say hello.', stream: true })) events.push(e as never);
    const last = events.at(-1)!;
    expect(last.type, 'the last event of a stream stopped by the time limit').toBe('response.incomplete');
    expect([last.response?.status, last.response?.incomplete_details?.reason]).toEqual(['incomplete', 'max_output_tokens']);
  });
});

describe('unsupported parameters are refused, not ignored', () => {
  // max_tokens: 1 keeps a wrongly accepted request short.
  const chat = (extra: Record<string, unknown>) => timed.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 1, ...extra } as never);

  it('answers 400 naming the chat-completions parameter, and accepts the supported values', async () => {
    await expect400(chat({ n: 2 }), 'n', 'n = 2');
    await expect400(chat({ logprobs: true }), 'logprobs', 'logprobs: true');
    await expect400(chat({ top_logprobs: 3 }), 'top_logprobs', 'top_logprobs');
    await expect400(chat({ response_format: { type: 'json_object' } }), 'response_format', 'response_format json_object');
    await expect400(chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } } }), 'response_format', 'response_format json_schema');
    await expect400(chat({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_time' } } }), 'tool_choice', 'tool_choice naming a function not in tools');
    await expect400(chat({ tool_choice: 'required' }), 'tool_choice', 'tool_choice "required" without tools');
    await expect400(chat({ tools: [{ type: 'function', function: { name: 'not a name!' } }] }), 'tools[0].function.name', 'a bad tool name');
    await expect400(chat({ reasoning_effort: 'extreme' }), 'reasoning_effort', 'reasoning_effort "extreme"');
    await expect400(chat({ max_tokens: undefined, max_completion_tokens: CONTEXT }), 'max_completion_tokens', 'max_completion_tokens beyond the context');
    const yes = await fetch(`${timeServer.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: ASK, max_tokens: 1, stream: 'yes' }),
    });
    const body = (await yes.text());
    expect([yes.status, yes.headers.get('content-type')], `stream: "yes": ${body}`).toEqual([400, 'application/json']);
    expect((JSON.parse(body) as { error: { param: string } }).error.param).toBe('stream');
    // ... while their supported values still work.
    const r = await chat({ n: 1, logprobs: false, response_format: { type: 'text' }, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    expect(r.usage!.completion_tokens, 'n: 1, logprobs: false, response_format text and a tool_choice naming a given tool').toBe(1);
  });

  it('answers 400 naming the Responses parameter', async () => {
    const resp = (extra: Record<string, unknown>) => timed.responses.create({ model: 'loop', input: 'Say hello.', max_output_tokens: 1, ...extra } as never);
    await expect400(resp({ tools: [{ type: 'function', name: 'get_weather', parameters: {}, strict: false }] }), 'tools', 'Responses tools');
    await expect400(resp({ text: { format: { type: 'json_object' } } }), 'text.format', 'Responses text.format json_object');
    await expect400(resp({ previous_response_id: 'resp_123' }), 'previous_response_id', 'previous_response_id');
    await expect400(resp({ top_logprobs: 2 }), 'top_logprobs', 'Responses top_logprobs');
    await expect400(resp({ reasoning: { effort: 'extreme' } }), 'reasoning.effort', 'Responses reasoning.effort "extreme"');
    await expect400(resp({ max_output_tokens: CONTEXT }), 'max_output_tokens', 'max_output_tokens beyond the context');
    await expect400(resp({ stream: 'yes' }), 'stream', 'Responses stream: "yes"');
  });
});

describe('gptoss serve flags', () => {
  it('takes --cors, --max-tokens-cap and --request-timeout, and warns on a public --host without a key', async () => {
    const app = 'http://app.example:3000';
    const child = spawn(process.execPath, [BIN, 'serve', '--model', join(tmp, 'loop'), '--port', '0', '--host', '0.0.0.0', '--context', '256',
      '--cors', app, '--max-tokens-cap', '2', '--request-timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      const port = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const m = /listening on http:\/\/\S+:(\d+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      expect(stderr, 'the warning for 0.0.0.0 without --api-key').toMatch(/warning: listening on 0\.0\.0\.0.*no API key/);
      const models = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { origin: app } });
      expect(models.headers.get('access-control-allow-origin'), '--cors origin reflected').toBe(app);
      const c = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 90_000 });
      const r = await c.chat.completions.create({ model: 'loop', messages: ASK });
      expect(r.usage!.completion_tokens, '--max-tokens-cap 2 bounds an answer without max_tokens').toBe(2);
      await expect400(c.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 3 }), 'max_tokens', '--max-tokens-cap 2, max_tokens 3');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('rejects bad values of the new flags with usage', async () => {
    const run = (args: string[]) => new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [BIN, 'serve', '--model', tmp, ...args], (err, _o, stderr) => resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr })));
    for (const [args, flag] of [[['--max-tokens-cap', '0'], '--max-tokens-cap'], [['--request-timeout', 'soon'], '--request-timeout'], [['--request-timeout=-1'], '--request-timeout'],
      [['--cors', 'http://app.example/page'], '--cors'], [['--cors', ','], '--cors']] as const) {
      const r = await run([...args]);
      expect([r.code, new RegExp(`${flag}.* (must|needs) `).test(r.stderr)], `serve ${args.join(' ')} should say what ${flag} takes: ${r.stderr}`).toEqual([2, true]);
    }
  });
});
