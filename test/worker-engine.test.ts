/**
 * The worker engine's protocol in Node, on a scripted checkpoint: createWorkerEngine on one end
 * of a MessageChannel, serveEngineInWorker on the other (the same structured cloning as a Web
 * Worker; test/worker-engine.browser.test.ts runs a real one in Chromium). The engine it returns
 * behaves as createEngine's: progress, completions plain and streamed, aborts, token-level
 * sessions, guardrails, errors as the same classes, device loss and recovery.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type LoadProgress } from '../engine/api/engine.ts';
import { ApiError, type ChatCompletionChunk } from '../engine/api/types.ts';
import { createWorkerEngine } from '../engine/api/worker-engine.ts';
import { serveEngineInWorker } from '../engine/api/worker-handler.ts';
import { DeviceLostError } from '../engine/gpu/device-lost.ts';
import { GpuUnavailableError, getGpu } from '../engine/gpu/device.ts';
import { ContextLimitError } from '../engine/gpu-session.ts';
import { ModelLoadError } from '../loader/errors.ts';
import { LossyGpu } from './helpers/lossy-gpu.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, LOOP_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const ASK = [{ role: 'user' as const, content: 'Say hello.' }];

let tmp = '';
const channels: MessageChannel[] = [];
let lossy: LossyGpu;
let engine: Engine;
const progress: LoadProgress[] = [];

/** A "worker" (the far port, served with `make`) and the page's end of it. */
function workerPair(make?: Parameters<typeof serveEngineInWorker>[1]) {
  const ch = new MessageChannel();
  channels.push(ch);
  serveEngineInWorker(ch.port2 as unknown as Parameters<typeof serveEngineInWorker>[0], make);
  return ch.port1 as unknown as Parameters<typeof createWorkerEngine>[0];
}

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<string> {
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  return text;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-worker-engine-'));
  const tok = await realTokenizer();
  await writeScriptedCheckpoint(join(tmp, 'chat'), [tok.encode(ANSWER_SCRIPT)]);
  await writeScriptedCheckpoint(join(tmp, 'loop'), [tok.encode(LOOP_SCRIPT)]);
  lossy = new LossyGpu(await getGpu());
  // The worker's createEngine is the library's, with a GPU the test can make lose its device.
  const worker = workerPair({ createEngine: (o) => createEngine({ ...o, gpu: lossy.gpu }) });
  engine = await createWorkerEngine(worker, { model: join(tmp, 'chat'), contextLimit: 256, modelId: 'scripted-chat', onProgress: (p) => progress.push(p) });
}, 300_000);

afterAll(async () => {
  await engine?.dispose();
  for (const ch of channels) {
    ch.port1.close();
    ch.port2.close();
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('createWorkerEngine over a MessageChannel', () => {
  it('loads with progress and reports what createEngine does', () => {
    expect(progress.length, 'progress events').toBeGreaterThan(0);
    expect(progress.at(-1)!.bytesDone).toBe(progress.at(-1)!.bytesTotal);
    expect(engine.backend).toBe('local');
    expect(engine.modelId).toBe('scripted-chat');
    expect(engine.state).toBe('ready');
    expect(engine.config?.vocabSize).toBe(201088);
    expect(engine.adapter?.features).toBeInstanceOf(Array);
  });

  it('answers plain and streamed', async () => {
    const r = await engine.chat.completions.create({ messages: ASK });
    expect(r.choices[0]!.message).toEqual({ role: 'assistant', content: ANSWER_TEXT, refusal: null });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await engine.chat.completions.create({ messages: ASK, stream: true, stream_options: { include_usage: true } })) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(ANSWER_TEXT);
    expect(chunks.at(-1)!.usage!.completion_tokens).toBeGreaterThan(0);
    expect(engine.pending).toBe(0);
  });

  it('aborts a stream with the caller\'s signal and a consumer that stops reading', async () => {
    const ac = new AbortController();
    const stream = await engine.chat.completions.create({ messages: ASK, stream: true }, { signal: ac.signal });
    let n = 0;
    const err = await (async () => {
      for await (const _ of stream) if (++n === 2) ac.abort();
    })().then(() => undefined, (e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    for await (const _ of await engine.chat.completions.create({ messages: ASK, stream: true })) break;
    expect(await collect(await engine.chat.completions.create({ messages: ASK, stream: true }))).toBe(ANSWER_TEXT);
  });

  it('rethrows errors as the same classes, with their fields', async () => {
    const notFound = await engine.chat.completions.create({ messages: ASK, model: 'gpt-4' }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(ApiError);
    expect([(notFound as ApiError).status, (notFound as ApiError).code, (notFound as ApiError).param]).toEqual([404, 'model_not_found', 'model']);
    const streamed = await engine.chat.completions.create({ messages: ASK, stream: true, temperature: 9 }).catch((e: unknown) => e);
    expect(streamed, 'a bad streamed request rejects create(), as createEngine does').toBeInstanceOf(ApiError);
    const s = engine.createSession();
    const tooLong = await s.append(new Array(300).fill(1)).catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(ContextLimitError);
    expect((tooLong as ContextLimitError).limit).toBe(256);
    s.dispose();
    const missing = await createWorkerEngine(workerPair(), { model: join(tmp, 'nothing-here') }).catch((e: unknown) => e);
    expect(missing, String(missing)).toBeInstanceOf(ModelLoadError);
    const noGpu = { requestAdapter: async () => null, getPreferredCanvasFormat: () => 'rgba8unorm', wgslLanguageFeatures: new Set() } as unknown as GPU;
    const unavailable = await createWorkerEngine(workerPair({ createEngine: (o) => createEngine({ ...o, gpu: noGpu }) }), { model: join(tmp, 'chat') }).catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(GpuUnavailableError);
    expect((unavailable as Error).message).toMatch(/no WebGPU adapter/);
  });

  it('offers token-level sessions', async () => {
    const tok = await realTokenizer();
    const s = engine.createSession();
    const prompt = tok.encode('<|start|>user<|message|>hi<|end|><|start|>assistant');
    await s.append(prompt.slice(0, 3));
    expect(s.position).toBe(3);
    const seen: number[] = [];
    const r = await s.generate({ prompt: prompt.slice(3), maxTokens: 40, sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 }, stopTokens: [200002], onToken: (t) => seen.push(t) });
    expect(tok.decode(r.tokens)).toBe(`<|channel|>final<|message|>${ANSWER_TEXT}<|return|>`);
    expect(seen).toEqual(r.tokens);
    expect(s.position).toBe(prompt.length + r.tokens.length - 1);
    s.reset();
    expect(s.position).toBe(0);
    s.dispose();
  });

  it('applies guardrails on the page side', async () => {
    const guarded = await createWorkerEngine(workerPair(), {
      model: join(tmp, 'loop'), contextLimit: 256,
      guardrails: {
        input: (m) => (String(m[0]?.content).includes('forbidden') ? { allow: false, reason: 'no' } : { allow: true }),
        output: (text) => (text.includes('li') ? { allow: false, reason: 'no li' } : { allow: true }),
      },
    });
    try {
      const blocked = await guarded.chat.completions.create({ messages: [{ role: 'user', content: 'forbidden' }] });
      expect([blocked.choices[0]!.message.content, blocked.choices[0]!.finish_reason]).toEqual(['', 'content_filter']);
      const chunks: ChatCompletionChunk[] = [];
      for await (const c of await guarded.chat.completions.create({ messages: ASK, max_tokens: 150, stream: true, stream_options: { include_usage: true } })) chunks.push(c);
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(' la');
      expect(chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean)).toEqual(['content_filter']);
      expect(chunks.at(-1)!.usage!.completion_tokens, 'the guardrail stopped the worker\'s generation').toBeLessThan(20);
    } finally {
      await guarded.dispose();
    }
  });

  it('reports a device loss, fails requests with DeviceLostError, and recovers', async () => {
    const heard: DeviceLostError[] = [];
    const off = engine.onDeviceLost((e) => heard.push(e));
    const lost = lossy.destroyAfterSubmits(2);
    const err = await engine.chat.completions.create({ messages: ASK }).catch((e: unknown) => e);
    await lost;
    expect(err).toBeInstanceOf(DeviceLostError);
    expect((err as DeviceLostError).reason).toBe('destroyed');
    for (let i = 0; i < 50 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(heard.map((e) => e instanceof DeviceLostError)).toEqual([true]);
    expect(engine.state).toBe('lost');
    expect(() => engine.createSession()).toThrow(DeviceLostError);
    await engine.recover();
    expect(engine.state).toBe('ready');
    expect((await engine.chat.completions.create({ messages: ASK })).choices[0]!.message.content).toBe(ANSWER_TEXT);
    off();
  });
});
