/**
 * GPU device loss in the browser: createEngine over HTTP on navigator.gpu (through LossyGpu, so
 * the page can destroy the engine's device mid-generation), then (a) the running generation's
 * error, (b) the errors of requests after the loss, (c) engine.recover() and greedy tokens
 * after it. Query parameters: model=<checkpoint url> tokens=1,2,3 n=<greedy tokens>.
 * The result goes to window.__deviceLossResult (a DeviceLossResult, or an error string).
 */
import { createEngine } from '../../engine/api/engine.ts';
import { DeviceLostError } from '../../engine/gpu/device-lost.ts';
import { GREEDY } from '../../engine/sampling.ts';
import { LossyGpu } from '../helpers/lossy-gpu.ts';

export interface SeenError {
  name: string;
  message: string;
  /** `instanceof DeviceLostError` in the page. */
  typed: boolean;
  reason?: string;
  /** From the call (or, for the running generation, from device.destroy()) to the rejection. */
  ms: number;
}

export interface DeviceLossResult {
  before: number[];
  after: number[];
  /** Tokens the interrupted generation produced before the loss. */
  tokensBeforeLoss: number;
  running: SeenError;
  chatAfter: SeenError;
  streamAfter: SeenError;
  sessionAfter: SeenError;
  stateAfterLoss: string;
  stateAfterRecover: string;
  recoverMs: number;
  devices: number;
}

declare global {
  interface Window {
    __deviceLossResult?: DeviceLossResult | string;
  }
}

const log = (line: string) => {
  document.getElementById('log')!.textContent += `\n${line}`;
  console.log(line);
};

function seen(e: unknown, ms: number): SeenError {
  const err = e instanceof Error ? e : new Error(`not an Error: ${String(e)}`);
  return { name: err.name, message: err.message, typed: e instanceof DeviceLostError, reason: (e as DeviceLostError).reason, ms };
}

async function failure(p: Promise<unknown> | (() => unknown), t0 = performance.now()): Promise<SeenError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return seen(e, performance.now() - t0);
  }
  return { name: 'none', message: 'it did not fail', typed: false, ms: performance.now() - t0 };
}

async function run(): Promise<DeviceLossResult> {
  const q = new URLSearchParams(location.search);
  const model = new URL(q.get('model') ?? '', location.href).toString();
  const prompt = (q.get('tokens') ?? '').split(',').filter(Boolean).map(Number);
  const n = Number(q.get('n') ?? 12);
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) throw new Error('no navigator.gpu in this browser');
  const lossy = new LossyGpu(gpu);
  const engine = await createEngine({ model, gpu: lossy.gpu, contextLimit: 64, maxBatch: 4, kvFormat: 'f32', modelId: 'tiny' });
  try {
    const greedy = async () => {
      const s = engine.createSession();
      try {
        return (await s.generate({ prompt, maxTokens: n, sampling: GREEDY })).tokens;
      } finally {
        s.dispose();
      }
    };
    const before = await greedy();
    log(`before the loss: ${before.join(',')}`);

    const session = engine.createSession();
    let tokensBeforeLoss = 0;
    const destroyed = lossy.destroyAfterSubmits(5);
    const generation = session.generate({ prompt, maxTokens: 50, sampling: GREEDY, onToken: () => tokensBeforeLoss++ });
    generation.catch(() => {});
    await destroyed;
    const running = await failure(generation);
    log(`the running generation (${tokensBeforeLoss} tokens in): ${running.name} after ${running.ms.toFixed(0)} ms: ${running.message}`);
    const stateAfterLoss = engine.state;

    const ask = { messages: [{ role: 'user' as const, content: 'Say hello.' }], max_tokens: 4 };
    const chatAfter = await failure(engine.chat.completions.create(ask));
    const streamAfter = await failure(engine.chat.completions.create({ ...ask, stream: true }));
    const sessionAfter = await failure(() => engine.createSession());

    const r0 = performance.now();
    await engine.recover();
    const recoverMs = performance.now() - r0;
    const after = await greedy();
    log(`recovered in ${recoverMs.toFixed(0)} ms; after: ${after.join(',')}`);
    return {
      before, after, tokensBeforeLoss, running, chatAfter, streamAfter, sessionAfter,
      stateAfterLoss, stateAfterRecover: engine.state, recoverMs, devices: lossy.devices.length,
    };
  } finally {
    await engine.dispose();
  }
}

run().then(
  (r) => (window.__deviceLossResult = r),
  (e: unknown) => (window.__deviceLossResult = `device-loss page failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`),
);
