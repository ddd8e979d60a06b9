/**
 * `gptoss serve` through a GPU device loss, over real HTTP with the official `openai` client:
 * the request running when the device is destroyed and every request until the model is
 * reloaded get 503 (OpenAI error shape, type server_error, code device_lost), /health says
 * 'recovering' with 503, and once the server has re-created the device and reloaded the
 * weights on its own it answers 200 with the same greedy answer as before the loss.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { getGpu } from '../engine/gpu/device.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { LossyGpu } from './helpers/lossy-gpu.ts';
import { LOOP_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const ASK = [{ role: 'user' as const, content: 'Say hello.' }];
const RECOVERY_BOUND_MS = 60_000;

let tmp = '';
let lossy: LossyGpu;
let engine: Engine;
let server: RunningServer;
let client: OpenAI;
const logLines: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-serve-devloss-'));
  // An answer that never ends (' la li lo' until max_tokens): a long request is surely running.
  await writeScriptedCheckpoint(join(tmp, 'loop'), [(await realTokenizer()).encode(LOOP_SCRIPT)]);
  lossy = new LossyGpu(await getGpu());
  engine = await createEngine({ model: join(tmp, 'loop'), gpu: lossy.gpu, contextLimit: 512, modelId: 'loop' });
  server = await serve(engine, { port: 0, log: (l) => logLines.push(l) });
  // Idle keep-alive sockets outlive the slow steps of this test on a loaded machine: the server
  // closing one just as the client reuses it would be an ECONNRESET unrelated to device loss.
  server.server.keepAliveTimeout = 120_000;
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 300_000);

afterAll(async () => {
  await server?.close();
  await engine?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function health(): Promise<{ status: number; body: { status: string } }> {
  const r = await fetch(`${server.url}/health`);
  return { status: r.status, body: (await r.json()) as { status: string } };
}

/** The error `p` rejects with (the test fails if it resolves). */
async function apiError(p: Promise<unknown>, what: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, `${what} should fail with an API error, got ${String(e)}`).toBeInstanceOf(OpenAI.APIError);
  return e as InstanceType<typeof OpenAI.APIError>;
}

function expect503(e: InstanceType<typeof OpenAI.APIError>, what: string): void {
  expect(e.status, `${what}: HTTP status (${e.message})`).toBe(503);
  expect(e.type, `${what}: OpenAI error type`).toBe('server_error');
  expect(e.code, `${what}: error code`).toBe('device_lost');
  expect(e.message, `${what}: message`).toMatch(/GPU device was lost .*the model is being reloaded/);
}

async function waitHealthy(): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const h = await health();
    if (h.status === 200) return performance.now() - t0;
    expect(h.body.status, '/health while not ready').toMatch(/^(recovering|lost)$/);
    if (performance.now() - t0 > RECOVERY_BOUND_MS) throw new Error(`/health still ${h.status} ${JSON.stringify(h.body)} after ${RECOVERY_BOUND_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('gptoss serve through a GPU device loss', () => {
  let before = '';

  it('answers 503 during and after the loss, then 200 with the same answer once it has reloaded', async () => {
    const first = await client.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 12, temperature: 0 });
    before = first.choices[0]!.message.content ?? '';
    expect(before, 'the answer before the loss').toMatch(/la li lo/);
    expect((await health()).status).toBe(200);

    // The reload waits for this, so the test can see the server while it recovers.
    const releaseAdapters = lossy.holdAdapters();
    try {
      const destroyed = lossy.destroyAfterSubmits(8);
      const running = client.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 400, temperature: 0 });
      await destroyed;
      expect503(await apiError(running, 'the request running when the device was destroyed'), 'in-flight request');

      const h = await health();
      expect(h.status, '/health while reloading').toBe(503);
      expect(h.body.status).toBe('recovering');
      const t0 = performance.now();
      expect503(await apiError(client.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 4 }), 'a request after the loss'), 'after the loss');
      expect503(await apiError(client.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 4, stream: true }), 'a streamed request after the loss'), 'streamed, after the loss');
      expect503(await apiError(client.responses.create({ model: 'loop', input: 'Say hello.', max_output_tokens: 4 }), 'a Responses request after the loss'), 'Responses API');
      // Recovery is held back: a request that waited for it would never be answered at all.
      expect(performance.now() - t0, 'requests during the reload are answered at once').toBeLessThan(5000);
    } finally {
      releaseAdapters();
    }
    const ms = await waitHealthy();
    console.log(`the server recovered ${ms.toFixed(0)} ms after the adapter was released; log: ${logLines.join(' | ')}`);
    expect(lossy.devices.length, 'a new device was created').toBe(2);
    const after = await client.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 12, temperature: 0 });
    expect(after.choices[0]!.message.content, 'the greedy answer after recovery vs before the loss').toBe(before);
    expect(logLines.join('\n')).toMatch(/recovered from the GPU device loss/);
  });

  it('a stream running at the loss ends with the device_lost error; the server recovers again', async () => {
    const destroyed = lossy.destroyAfterSubmits(20);
    const stream = await client.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 400, stream: true });
    let text = '';
    const e = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    })().then(() => undefined, (err: unknown) => err);
    await destroyed;
    expect(e, `the stream should end with an error, got ${String(e)} after ${JSON.stringify(text)}`).toBeInstanceOf(OpenAI.APIError);
    expect((e as Error).message).toMatch(/GPU device was lost .*the model is being reloaded/);
    expect(text, 'part of the answer arrived before the loss').toMatch(/la/);
    await waitHealthy();
    const after = await client.chat.completions.create({ model: 'loop', messages: ASK, max_tokens: 12, temperature: 0 });
    expect(after.choices[0]!.message.content).toBe(before);
    expect(lossy.devices.length).toBe(3);
  });
});
