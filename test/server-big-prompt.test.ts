/**
 * A 2 MB prompt does not stall the server: while it is tokenized (a slice at a time, given up once
 * it passes the context), /health keeps answering within a second over real HTTP (polled from a
 * worker thread, as a separate client would), and the prompt
 * gets an OpenAI-style 400 context_length_exceeded naming `messages`. Scripted real checkpoint
 * (test/helpers/scripted-model.ts) with a 131072-token context, so the prompt is not rejected by
 * its size alone and really is tokenized.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { serve, type RunningServer } from '../server/openai-server.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';
import { longDocument } from './helpers/text-corpus.ts';

/**
 * Polls a URL from its own thread (the server shares this test's thread, so a poller here would
 * stall with it and see nothing): GET on a new connection every 50 ms until told to stop, then
 * reports each call's latency in ms (-1 for a failed call).
 */
const POLLER = `
const { parentPort, workerData } = require('node:worker_threads');
const { get } = require('node:http');
let stop = false;
parentPort.on('message', () => { stop = true; });
const once = () => new Promise((resolve, reject) => {
  get(workerData.url, { agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject);
});
(async () => {
  const latencies = [];
  while (!stop) {
    const t0 = performance.now();
    const status = await once().catch(() => 0);
    latencies.push(status === 200 ? performance.now() - t0 : -1);
    await new Promise((r) => setTimeout(r, 50));
  }
  parentPort.postMessage(latencies);
})();
`;

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
    const poller = new Worker(POLLER, { eval: true, workerData: { url: `${server.url}/health` } });
    const polled = new Promise<number[]>((resolve, reject) => poller.once('message', resolve).once('error', reject));
    await new Promise((r) => setTimeout(r, 200)); // the poller is running
    const t0 = performance.now();
    const big = fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'scripted-chat', messages: [{ role: 'user', content }] }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { code: string; param: string; message: string } } }));
    await big.catch(() => {});
    poller.postMessage('stop');
    const latencies = await polled;
    await poller.terminate();
    const r = await big;
    const took = performance.now() - t0;
    console.log(`2 MB prompt refused after ${took.toFixed(0)} ms; /health polled ${latencies.length} times, slowest ${Math.max(...latencies).toFixed(0)} ms`);
    expect(latencies.filter((ms) => ms < 0), 'failed /health calls').toEqual([]);
    expect(Math.max(...latencies), '/health latency (ms) while the 2 MB prompt was handled').toBeLessThan(1000);
    expect(latencies.length, `/health calls while the 2 MB prompt was handled (${took.toFixed(0)} ms)`).toBeGreaterThanOrEqual(3);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
    expect(r.body.error.message).toMatch(/the prompt is at least \d+ tokens; this model's context limit is 131072/);
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
