/**
 * createEngine when WebGPU is unavailable: a GPU whose requestAdapter() resolves null is exactly
 * what a browser without a usable adapter gives. With `fallback`, the engine answers through a
 * real `serve()` instance of the scripted chat model over HTTP; without it, createEngine throws
 * GpuUnavailableError; a fallback server's error surfaces as ApiError with the server's message.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { ApiError } from '../engine/api/types.ts';
import { GpuUnavailableError } from '../engine/gpu/device.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const KEY = 'fallback-key';
const ASK = [{ role: 'user' as const, content: 'Say hello.' }];

/** A WebGPU entry point with no adapter (navigator.gpu on a machine WebGPU cannot use). */
function gpuWithoutAdapter(): GPU & { requests: number } {
  const gpu = {
    requests: 0,
    async requestAdapter() {
      gpu.requests++;
      return null;
    },
    getPreferredCanvasFormat: () => 'rgba8unorm' as GPUTextureFormat,
    wgslLanguageFeatures: new Set<string>(),
  };
  return gpu as unknown as GPU & { requests: number };
}

let tmp = '';
let model = '';
let serverEngine: Engine;
let server: RunningServer;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-fallback-'));
  model = join(tmp, 'chat');
  await writeScriptedCheckpoint(model, [(await realTokenizer()).encode(ANSWER_SCRIPT)]);
  serverEngine = await createEngine({ model, contextLimit: 256, modelId: 'scripted-chat' });
  server = await serve(serverEngine, { port: 0, apiKey: KEY });
}, 300_000);

afterAll(async () => {
  await server?.close();
  await serverEngine?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('createEngine without a WebGPU adapter', () => {
  it('falls back to the OpenAI-compatible server and answers, plain and streamed', async () => {
    const gpu = gpuWithoutAdapter();
    const engine = await createEngine({ model, gpu, fallback: { baseURL: `${server.url}/v1`, apiKey: KEY, model: 'scripted-chat' } });
    try {
      expect(gpu.requests).toBe(1);
      expect(engine.backend).toBe('fallback');
      expect(engine.fallbackReason).toMatch(/no WebGPU adapter/);
      expect(engine.modelId).toBe('scripted-chat');
      expect(engine.config).toBeUndefined();
      expect(() => engine.createSession()).toThrow(/no WebGPU adapter/);
      const r = await engine.chat.completions.create({ messages: ASK });
      expect(r.choices[0]!.message.content).toBe(ANSWER_TEXT);
      expect(r.choices[0]!.finish_reason).toBe('stop');
      expect(r.model).toBe('scripted-chat');
      expect(r.system_fingerprint).toBe(`fallback:${server.url}/v1`);
      let text = '';
      let finish: string | null = null;
      for await (const c of await engine.chat.completions.create({ messages: ASK, stream: true })) {
        text += c.choices[0]?.delta.content ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      expect(text).toBe(ANSWER_TEXT);
      expect(finish).toBe('stop');
    } finally {
      await engine.dispose();
    }
  });

  it('throws GpuUnavailableError with a clear message when no fallback is given', async () => {
    const err = await createEngine({ model, gpu: gpuWithoutAdapter() }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect((err as Error).name).toBe('GpuUnavailableError');
    expect((err as Error).message).toMatch(/no WebGPU adapter found/);
    expect((err as Error).message).toMatch(/VK_ICD_FILENAMES/); // says what to do about it
  });

  it("surfaces the fallback server's error (wrong API key: 401) as an ApiError", async () => {
    const engine = await createEngine({ model, gpu: gpuWithoutAdapter(), fallback: { baseURL: `${server.url}/v1`, apiKey: 'wrong', model: 'scripted-chat' } });
    try {
      expect(engine.backend).toBe('fallback');
      for (const stream of [false, true]) {
        // A stream fails on its first chunk: the request is sent when iteration starts.
        const err = await (async () => {
          const r = await engine.chat.completions.create({ messages: ASK, stream });
          if (stream) for await (const _ of r as AsyncIterable<unknown>) { /* drain */ }
        })().then(() => undefined, (e: unknown) => e);
        expect(err, `stream ${stream}`).toBeInstanceOf(ApiError);
        expect((err as ApiError).status).toBe(401);
        expect((err as ApiError).message).toContain('invalid or missing API key');
        expect((err as ApiError).message).toContain(server.url);
      }
    } finally {
      await engine.dispose();
    }
  });

  it('a server that is down fails the request, not createEngine', async () => {
    const engine = await createEngine({ model, gpu: gpuWithoutAdapter(), fallback: { baseURL: 'http://127.0.0.1:9/v1', model: 'm' } });
    expect(engine.backend).toBe('fallback');
    await expect(engine.chat.completions.create({ messages: ASK })).rejects.toThrow();
    await engine.dispose();
  });
});
