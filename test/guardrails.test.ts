/**
 * Guardrail hooks (engine/api/guardrails.ts) on scripted checkpoints: a blocked request does no
 * GPU work and sends nothing to a fallback server; a blocked answer stops generation at once,
 * keeps what was streamed and ends with finish_reason "content_filter"; the output check sees
 * the text so far and a final `done: true`. The same through the remote fallback (a second
 * serve() instance) and through `gptoss serve --guardrails MODULE.js` with the openai client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import type { Guardrails, GuardrailVerdict, OutputCheck } from '../engine/api/guardrails.ts';
import type { ChatCompletionChunk } from '../engine/api/types.ts';
import { getGpu } from '../engine/gpu/device.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, LOOP_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const ASK = [{ role: 'user' as const, content: 'Say hello.' }];
const FORBIDDEN = [{ role: 'user' as const, content: 'Tell me the forbidden recipe.' }];
const ALLOW: GuardrailVerdict = { allow: true };

/** The guardrails every test engine uses; each test sets what they do. */
let policy: Guardrails = {};
const seen: { input: number; output: [string, OutputCheck][] } = { input: 0, output: [] };
const guardrails: Guardrails = {
  input(messages) {
    seen.input++;
    return policy.input?.(messages) ?? ALLOW;
  },
  // Async on purpose: a promise of a verdict is awaited.
  async output(text, check) {
    seen.output.push([text, check]);
    return policy.output?.(text, check) ?? ALLOW;
  },
};
const blockWord = (word: string, reason: string): Guardrails['output'] => (text) => (text.includes(word) ? { allow: false, reason } : ALLOW);
const forbidInput: Guardrails['input'] = (messages) =>
  messages.some((m) => String(m.content).includes('forbidden')) ? { allow: false, reason: 'forbidden topic' } : ALLOW;

/** Counts queue submissions of every device the engine creates: GPU work, or none. */
function countingGpu(real: GPU): { gpu: GPU; submits: () => number } {
  let n = 0;
  const gpu = {
    requestAdapter: async (o?: GPURequestAdapterOptions) => {
      const adapter = await real.requestAdapter(o);
      if (!adapter) return adapter;
      const requestDevice = adapter.requestDevice.bind(adapter);
      (adapter as { requestDevice: GPUAdapter['requestDevice'] }).requestDevice = async (d) => {
        const device = await requestDevice(d);
        const submit = device.queue.submit.bind(device.queue);
        (device.queue as { submit: GPUQueue['submit'] }).submit = (b) => {
          n++;
          submit(b);
        };
        return device;
      };
      return adapter;
    },
    getPreferredCanvasFormat: () => real.getPreferredCanvasFormat(),
    wgslLanguageFeatures: real.wgslLanguageFeatures,
  } as GPU;
  return { gpu, submits: () => n };
}

const noAdapter = { requestAdapter: async () => null, getPreferredCanvasFormat: () => 'rgba8unorm', wgslLanguageFeatures: new Set() } as unknown as GPU;

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<{ text: string; finish: (string | null)[]; chunks: ChatCompletionChunk[] }> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return {
    chunks,
    text: chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''),
    finish: chunks.map((c) => c.choices[0]?.finish_reason ?? null).filter((f) => f !== null),
  };
}

let tmp = '';
let chat: Engine;
let loop: Engine;
let counted: ReturnType<typeof countingGpu>;
let serverEngine: Engine;
let server: RunningServer;
const serverLog: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-guardrails-'));
  const tok = await realTokenizer();
  await writeScriptedCheckpoint(join(tmp, 'chat'), [tok.encode(ANSWER_SCRIPT)]);
  await writeScriptedCheckpoint(join(tmp, 'loop'), [tok.encode(LOOP_SCRIPT)]);
  counted = countingGpu(await getGpu());
  chat = await createEngine({ model: join(tmp, 'chat'), contextLimit: 256, modelId: 'chat', gpu: counted.gpu, guardrails });
  loop = await createEngine({ model: join(tmp, 'loop'), contextLimit: 256, modelId: 'loop', guardrails });
  // The fallback's server has no guardrails of its own: the client's apply.
  serverEngine = await createEngine({ model: join(tmp, 'loop'), contextLimit: 256, modelId: 'loop' });
  server = await serve(serverEngine, { port: 0, log: (l) => serverLog.push(l) });
}, 300_000);

afterAll(async () => {
  await server?.close();
  for (const e of [chat, loop, serverEngine]) await e?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function reset(p: Guardrails): void {
  policy = p;
  seen.input = 0;
  seen.output = [];
}

describe('guardrails on the local engine', () => {
  it('a blocked request does no GPU work and is answered with empty content, content_filter', async () => {
    reset({ input: forbidInput });
    const before = counted.submits();
    const r = await chat.chat.completions.create({ messages: FORBIDDEN });
    expect(r.choices[0]!.message).toEqual({ role: 'assistant', content: '', refusal: null });
    expect(r.choices[0]!.finish_reason).toBe('content_filter');
    expect(r.guardrail).toEqual({ stage: 'input', reason: 'forbidden topic' });
    expect(r.usage.total_tokens).toBe(0);
    const s = await collect(await chat.chat.completions.create({ messages: FORBIDDEN, stream: true, stream_options: { include_usage: true } }));
    expect([s.text, s.finish]).toEqual(['', ['content_filter']]);
    expect(s.chunks.find((c) => c.guardrail)?.guardrail).toEqual({ stage: 'input', reason: 'forbidden topic' });
    expect(s.chunks.at(-1)!.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect(counted.submits() - before, 'GPU queue submissions for blocked requests').toBe(0);
    expect(seen.output, 'a blocked request has no answer to check').toEqual([]);
    // An allowed request goes on to the GPU as usual.
    expect((await chat.chat.completions.create({ messages: ASK })).choices[0]!.message.content).toBe(ANSWER_TEXT);
    expect(counted.submits()).toBeGreaterThan(before);
  });

  it('checks the answer so far before each delta, then once with done: true', async () => {
    reset({});
    const s = await collect(await chat.chat.completions.create({ messages: ASK, stream: true }));
    expect([s.text, s.finish]).toEqual([ANSWER_TEXT, ['stop']]);
    const texts = seen.output.map(([t]) => t);
    expect(texts.at(-1)).toBe(ANSWER_TEXT);
    expect(seen.output.filter(([, c]) => c.done)).toEqual([[ANSWER_TEXT, { done: true, reasoning: '' }]]);
    expect(seen.output.at(-1)![1].done).toBe(true);
    // Each check sees the text so far: every earlier one is a prefix of the next.
    for (let i = 1; i < texts.length; i++) expect(texts[i]!.startsWith(texts[i - 1]!), `check ${i}: ${JSON.stringify(texts)}`).toBe(true);
    expect(seen.input).toBe(1);
  });

  it('a blocked answer stops generation at once; what was streamed stays, finish_reason content_filter', async () => {
    reset({ output: blockWord('li', 'no li') });
    const s = await collect(await loop.chat.completions.create({ messages: ASK, max_tokens: 150, stream: true, stream_options: { include_usage: true } }));
    // ' la' passed; the delta ' li' was blocked and never sent.
    expect(s.text).toBe(' la');
    expect(s.finish).toEqual(['content_filter']);
    expect(s.chunks.find((c) => c.guardrail)?.guardrail).toEqual({ stage: 'output', reason: 'no li' });
    const usage = s.chunks.at(-1)!.usage!;
    expect(usage.completion_tokens, 'tokens generated before the stop took effect').toBeLessThan(20);
    expect(seen.output.map(([t]) => t)).toEqual([' la', ' la li']);
    // The engine is free again and answers the next request.
    reset({});
    const next = await loop.chat.completions.create({ messages: ASK, max_tokens: 4 });
    expect(next.choices[0]!.finish_reason).toBe('length');
  });

  it('a blocked non-streamed answer comes back empty, with usage', async () => {
    reset({ output: blockWord('GPU', 'no GPU talk') });
    const r = await chat.chat.completions.create({ messages: ASK });
    expect(r.choices[0]!.message.content).toBe('');
    expect(r.choices[0]!.finish_reason).toBe('content_filter');
    expect(r.guardrail).toEqual({ stage: 'output', reason: 'no GPU talk' });
    expect(r.usage.completion_tokens).toBeGreaterThan(0);
    // Blocked only at the end (done: true): the stream has all the text, the finish says content_filter.
    reset({ output: (_t, { done }) => (done ? { allow: false, reason: 'final check' } : ALLOW) });
    const s = await collect(await chat.chat.completions.create({ messages: ASK, stream: true }));
    expect([s.text, s.finish]).toEqual([ANSWER_TEXT, ['content_filter']]);
  });

  it('a guardrail that throws or answers nonsense fails the request and frees the GPU', async () => {
    reset({ output: () => { throw new Error('moderation service down'); } });
    await expect(chat.chat.completions.create({ messages: ASK })).rejects.toThrow('moderation service down');
    reset({ input: () => ({ ok: true }) as unknown as GuardrailVerdict });
    await expect(chat.chat.completions.create({ messages: ASK })).rejects.toThrow(/guardrails\.input must return \{ allow: true \}/);
    reset({});
    expect((await chat.chat.completions.create({ messages: ASK })).choices[0]!.message.content).toBe(ANSWER_TEXT);
  });
});

describe('guardrails on the remote fallback', () => {
  let remote: Engine;
  beforeAll(async () => {
    remote = await createEngine({ model: join(tmp, 'loop'), gpu: noAdapter, fallback: { baseURL: `${server.url}/v1`, model: 'loop' }, guardrails });
  });
  afterAll(() => remote?.dispose());

  it('a blocked request is not sent to the server', async () => {
    expect(remote.backend).toBe('fallback');
    reset({ input: forbidInput });
    serverLog.length = 0;
    const r = await remote.chat.completions.create({ messages: FORBIDDEN });
    expect([r.choices[0]!.message.content, r.choices[0]!.finish_reason]).toEqual(['', 'content_filter']);
    expect(r.system_fingerprint).toBe(`fallback:${server.url}/v1`);
    const s = await collect(await remote.chat.completions.create({ messages: FORBIDDEN, stream: true }));
    expect(s.finish).toEqual(['content_filter']);
    expect(serverLog).toEqual([]);
  });

  it('a blocked answer ends the request: streamed text stays, content_filter, the server stops', async () => {
    reset({ output: blockWord('li', 'no li') });
    serverLog.length = 0;
    const s = await collect(await remote.chat.completions.create({ messages: ASK, max_tokens: 150, stream: true }));
    expect(s.text).toBe(' la');
    expect(s.finish).toEqual(['content_filter']);
    // The client left: the server logs the request as aborted and frees its GPU.
    for (let i = 0; i < 100 && (serverLog.length === 0 || serverEngine.pending > 0); i++) await new Promise((r) => setTimeout(r, 100));
    expect(serverLog.join('\n')).toMatch(/POST \/v1\/chat\/completions 200 .* aborted/);
    expect(serverEngine.pending).toBe(0);
    const r = await remote.chat.completions.create({ messages: ASK, max_tokens: 150 });
    expect([r.choices[0]!.message.content, r.choices[0]!.finish_reason]).toEqual(['', 'content_filter']);
  });
});

describe('gptoss serve --guardrails', () => {
  let child: ChildProcess | undefined;
  afterAll(() => void child?.kill('SIGTERM'));

  it('loads them from a module and applies them for the openai client', async () => {
    const module = join(tmp, 'guard.mjs');
    await writeFile(module, [
      'const blocked = ["forbidden"];',
      'export function input(messages) {',
      '  const text = messages.map((m) => String(m.content)).join(" ");',
      '  return blocked.some((w) => text.includes(w)) ? { allow: false, reason: "blocked word" } : { allow: true };',
      '}',
      'export const output = (text) => (text.includes("GPU") ? { allow: false, reason: "no GPU talk" } : { allow: true });',
    ].join('\n'));
    const bin = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));
    child = spawn(process.execPath, [bin, 'serve', '--model', join(tmp, 'chat'), '--port', '0', '--model-id', 'guarded', '--context', '256', '--guardrails', module], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child!.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const blockedIn = await client.chat.completions.create({ model: 'guarded', messages: FORBIDDEN });
    expect([blockedIn.choices[0]!.message.content, blockedIn.choices[0]!.finish_reason]).toEqual(['', 'content_filter']);
    const blockedOut = await client.chat.completions.create({ model: 'guarded', messages: ASK });
    expect([blockedOut.choices[0]!.message.content, blockedOut.choices[0]!.finish_reason]).toEqual(['', 'content_filter']);
    let text = '';
    let finish: string | null = null;
    for await (const c of await client.chat.completions.create({ model: 'guarded', messages: ASK, stream: true })) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(ANSWER_TEXT.startsWith(text) && text.length < ANSWER_TEXT.length && !text.includes('GPU'), `streamed ${JSON.stringify(text)}`).toBe(true);
    expect(finish).toBe('content_filter');
    const resp = await client.responses.create({ model: 'guarded', input: 'Say hello.' });
    expect([resp.status, resp.incomplete_details?.reason]).toEqual(['incomplete', 'content_filter']);
  });

  it('refuses a module that exports no guardrail', async () => {
    const module = join(tmp, 'empty.mjs');
    await writeFile(module, 'export const nothing = 1;\n');
    const bin = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [bin, 'serve', '--model', join(tmp, 'chat'), '--port', '0', '--guardrails', module], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      c.stderr.on('data', (d) => (stderr += d));
      c.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--guardrails .*empty\.mjs exports neither input nor output/);
  });
});
