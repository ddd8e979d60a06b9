/**
 * A 2 MB prompt does not stall the server: while it is tokenized (a slice at a time, given up once
 * it passes the context), /health keeps answering within a second over real HTTP, and the prompt
 * gets an OpenAI-style 400 context_length_exceeded naming `messages`. Scripted real checkpoint
 * (test/helpers/scripted-model.ts) with a 131072-token context, so the prompt is not rejected by
 * its size alone and really is tokenized.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';
import { longDocument } from './helpers/text-corpus.ts';

let tmp = '';
let engine: Engine;
let server: RunningServer;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-big-prompt-'));
  const tok = await realTokenizer();
  await writeScriptedCheckpoint(join(tmp, 'chat'), [tok.encode(ANSWER_SCRIPT)]);
  engine = await createEngine({ model: join(tmp, 'chat'), contextLimit: 131072, modelId: 'scripted-chat' });
  server = await serve(engine, { port: 0 });
}, 300_000);

afterAll(async () => {
  await server?.close();
  await engine?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('a 2 MB prompt', () => {
  it('leaves /health answering within a second and is refused as too long', async () => {
    const content = longDocument(2_000_000);
    expect(new TextEncoder().encode(content).length).toBeGreaterThan(2_000_000);
    const t0 = performance.now();
    let done = false;
    const big = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'scripted-chat', messages: [{ role: 'user', content }] }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { code: string; param: string; message: string } } }))
      .finally(() => (done = true));
    const latencies: number[] = [];
    const failures: string[] = [];
    while (!done) {
      const h0 = performance.now();
      try {
        const h = await fetch(`${server.url}/health`);
        if (h.status !== 200) failures.push(`/health answered ${h.status}`);
        await h.json();
      } catch (e) {
        // A server stuck for seconds also drops kept-alive connections (ECONNRESET).
        failures.push(`/health failed after ${(performance.now() - h0).toFixed(0)} ms: ${(e as Error).message} ${(e as { cause?: Error }).cause?.message ?? ''}`);
      }
      if (!done) latencies.push(performance.now() - h0);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(failures).toEqual([]);
    const r = await big;
    const took = performance.now() - t0;
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
    expect(r.body.error.message).toMatch(/the prompt is at least \d+ tokens; this model's context limit is 131072/);
    console.log(`2 MB prompt refused after ${took.toFixed(0)} ms; /health answered ${latencies.length} times meanwhile, slowest ${Math.max(...latencies).toFixed(0)} ms`);
    expect(latencies.length, `/health calls answered while the 2 MB prompt was handled (${took.toFixed(0)} ms)`).toBeGreaterThanOrEqual(3);
    expect(Math.max(...latencies), '/health latency (ms) while the 2 MB prompt was tokenized').toBeLessThan(1000);
  });

  it('still answers a normal request afterwards', async () => {
    const r = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Say hello.' }], temperature: 0 }),
    });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe(ANSWER_TEXT);
  });
});
