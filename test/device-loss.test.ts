/**
 * GPU device loss in Node (Dawn), simulated with device.destroy() on the engine's own device:
 * a generation running at that moment rejects with DeviceLostError (not Dawn's AbortError, not
 * a hang), requests after the loss fail the same way at once, and engine.recover() re-creates
 * the device and reloads the weights, after which greedy tokens equal those from before the loss.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../engine/api/engine.ts';
import { getGpu } from '../engine/gpu/device.ts';
import { DeviceLostError } from '../engine/gpu/device-lost.ts';
import { GREEDY } from '../engine/sampling.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { LossyGpu } from './helpers/lossy-gpu.ts';

const PROMPT = [200006, 17360, 200008, 3575, 553, 17554, 162016, 11];
const N = 16;
const ASK = { messages: [{ role: 'user' as const, content: 'Say hello.' }], max_tokens: 4 };
/** A running generation must fail within this after the device is destroyed. */
const LOSS_BOUND_MS = 10_000;
/** "At once": no GPU work, no waiting for a device. */
const AT_ONCE_MS = 500;

let tmp = '';
let lossy: LossyGpu;
let engine: Engine;
let before: number[] = [];

async function greedy(): Promise<number[]> {
  const s = engine.createSession();
  try {
    return (await s.generate({ prompt: PROMPT, maxTokens: N, sampling: GREEDY })).tokens;
  } finally {
    s.dispose();
  }
}

/** The rejection of `p` (or a failure saying it resolved), and how long it took. */
async function rejection(p: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  const error = await p.then(() => new Error('expected a rejection, got a result'), (e: unknown) => e);
  return { error, ms: performance.now() - t0 };
}

function expectDeviceLost(error: unknown, what: string): asserts error is DeviceLostError {
  expect(error, `${what}: ${String(error)}`).toBeInstanceOf(DeviceLostError);
  const e = error as DeviceLostError;
  expect(e.name, `${what}: error name`).toBe('DeviceLostError');
  expect(e.reason, `${what}: GPUDeviceLostInfo.reason of device.destroy()`).toBe('destroyed');
  expect(e.message, `${what}: message`).toMatch(/^the GPU device was lost \(reason "destroyed"/);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-devloss-'));
  await writeSyntheticCheckpoint({ preset: 'tiny', seed: 21, outDir: join(tmp, 'tiny') });
  lossy = new LossyGpu(await getGpu());
  engine = await createEngine({ model: join(tmp, 'tiny'), gpu: lossy.gpu, contextLimit: 256, modelId: 'tiny' });
  before = await greedy();
}, 300_000);

afterAll(async () => {
  await engine?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('GPU device loss (Node, Dawn)', () => {
  const heard: DeviceLostError[] = [];

  it('a generation running when the device is destroyed rejects with DeviceLostError, promptly', async () => {
    expect(engine.state).toBe('ready');
    expect(new Set(before).size, 'the greedy sequence before the loss is not one repeated token').toBeGreaterThan(3);
    engine.onDeviceLost((e) => heard.push(e));
    const session = engine.createSession();
    const seen: number[] = [];
    // Prefill, first sample, then decode steps: destroyed a few tokens into the generation.
    const destroyed = lossy.destroyAfterSubmits(6);
    const run = session.generate({ prompt: PROMPT, maxTokens: 200, sampling: GREEDY, onToken: (id) => seen.push(id) });
    await destroyed;
    const t0 = performance.now();
    const { error } = await rejection(run);
    const ms = performance.now() - t0;
    console.log(`device destroyed after ${seen.length} tokens; the generation rejected ${ms.toFixed(0)} ms later: ${(error as Error).message}`);
    expectDeviceLost(error, 'the running generation');
    expect(ms, 'time from destroy() to the rejection').toBeLessThan(LOSS_BOUND_MS);
    expect(seen.length, 'tokens before the loss').toBeGreaterThan(0);
    expect(seen.length, 'the generation stopped at the loss').toBeLessThan(200);
    expect(engine.state).toBe('lost');
    await Promise.resolve();
    expect(heard.map((e) => e.reason), 'onDeviceLost listeners heard of the loss once').toEqual(['destroyed']);
  });

  it('requests after the loss get the same typed error at once', async () => {
    const json = await rejection(engine.chat.completions.create(ASK));
    expectDeviceLost(json.error, 'chat.completions.create after the loss');
    expect(json.error.message).toMatch(/call engine\.recover\(\)/);
    expect(json.ms, 'rejected without touching the GPU').toBeLessThan(AT_ONCE_MS);
    const stream = await rejection(engine.chat.completions.create({ ...ASK, stream: true }));
    expectDeviceLost(stream.error, 'a streamed chat.completions.create after the loss');
    expect(stream.ms).toBeLessThan(AT_ONCE_MS);
    let thrown: unknown;
    try {
      engine.createSession();
    } catch (e) {
      thrown = e;
    }
    expectDeviceLost(thrown, 'createSession after the loss');
  });

  it('recover() re-creates the device and reloads the weights: the same greedy tokens as before the loss', async () => {
    const old = lossy.device;
    const recovering = engine.recover();
    expect(engine.state).toBe('recovering');
    const during = await rejection(engine.chat.completions.create(ASK));
    expectDeviceLost(during.error, 'a request while recovering');
    expect(during.error.message).toMatch(/re-creating the device and reloading the model/);
    expect(engine.recover(), 'concurrent recover() calls share one recovery').toBe(recovering);
    const t0 = performance.now();
    await recovering;
    console.log(`recovered (new device, weights reloaded) in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(engine.state).toBe('ready');
    expect(lossy.devices.length, 'a second device was created').toBe(2);
    expect(lossy.device).not.toBe(old);
    expect(await greedy(), 'greedy tokens after recovery vs before the loss').toEqual(before);
    const r = await engine.chat.completions.create({ ...ASK, temperature: 0 });
    expect(r.usage.completion_tokens, 'chat.completions answers again').toBe(4);
    await expect(engine.recover(), 'recover() when ready does nothing').resolves.toBeUndefined();
    expect(lossy.devices.length).toBe(2);
  });

  it('sessions from before the loss say so; a second loss recovers too', async () => {
    const s = engine.createSession();
    const destroyed = lossy.destroyAfterSubmits(1);
    const first = await rejection(s.generate({ prompt: PROMPT, maxTokens: 50, sampling: GREEDY }));
    await destroyed;
    expectDeviceLost(first.error, 'the second loss');
    await engine.recover();
    const stale = await rejection(s.generate({ prompt: PROMPT, maxTokens: 2, sampling: GREEDY }));
    expectDeviceLost(stale.error, 'a session created on the lost device, used after recovery');
    expect(await greedy()).toEqual(before);
    expect(heard.length, 'listeners heard both losses').toBe(2);
  });
});
