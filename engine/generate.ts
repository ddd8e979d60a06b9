/**
 * The generation loop over a GPU session: prefill the prompt in batches, then one command
 * buffer per token, pipelined (token N+1 is submitted before token N is read back), stopping on
 * a stop token, the token budget, the context limit or an abort.
 */
import type { GpuSession } from './gpu-session.ts';
import { validateSampling, type SamplingParams } from './sampling.ts';

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerateOptions {
  maxTokens: number;
  sampling: SamplingParams;
  /** Token ids that end generation (included in the output). */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  /** Called with every generated token as soon as it is read back. */
  onToken?(id: number): void;
}

export interface GenerateResult {
  tokens: number[];
  finishReason: FinishReason;
  promptTokens: number;
  /** Prompt processing time (ms), up to the first sampled token. */
  prefillMs: number;
  /** Time for the tokens after the first (ms). */
  decodeMs: number;
}

export async function generate(session: GpuSession, prompt: number[], o: GenerateOptions): Promise<GenerateResult> {
  validateSampling(o.sampling);
  if (!Number.isSafeInteger(o.maxTokens) || o.maxTokens < 1) throw new RangeError(`maxTokens must be an integer >= 1, got ${o.maxTokens}`);
  if (prompt.length === 0 && session.position === 0) throw new RangeError('the prompt is empty');
  const stop = new Set(o.stopTokens ?? []);
  const tokens: number[] = [];
  const t0 = performance.now();
  o.signal?.throwIfAborted();
  await session.append(prompt);
  const first = await session.sample(o.sampling);
  const t1 = performance.now();
  // A step may run iff the token it draws is still wanted and the context keeps room for it.
  const canStep = (count: number) => count < o.maxTokens && session.position + 1 < session.contextLimit;
  let finishReason: FinishReason = 'length';
  let inFlight: Promise<number> | null = null;
  let id = first;
  // Whatever ends the loop early (a loss found by the next enqueueStep, a throwing onToken) leaves
  // the step in flight with nobody to await it: mark it handled (its failure is the same loss).
  try {
    for (;;) {
      tokens.push(id);
      o.onToken?.(id);
      // The step after `inFlight` is submitted before `inFlight` is read back, so the GPU is never
      // idle while the host reads a token; a stop found one step late takes that step back.
      const done = stop.has(id) ? 'stop' : o.signal?.aborted ? 'abort' : null;
      if (done) {
        finishReason = done;
        if (inFlight) {
          await inFlight;
          session.rewind(id);
        }
        break;
      }
      if (!inFlight) {
        if (!canStep(tokens.length)) break;
        inFlight = session.enqueueStep(o.sampling);
      }
      const ahead = canStep(tokens.length + 1) ? session.enqueueStep(o.sampling) : null;
      id = await settle(inFlight, ahead);
      inFlight = ahead;
    }
  } catch (e) {
    inFlight?.catch(() => {});
    throw e;
  }
  return { tokens, finishReason, promptTokens: prompt.length, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
}

/**
 * `count` decode steps after a draw (session.sample or a previous step), pipelined like
 * generate(): step i+1 is submitted before step i is read back. Returns the drawn ids; the last
 * one is left pending. For benchmarks and tools that decode a fixed number of tokens.
 */
export async function decodeSteps(session: GpuSession, count: number, sampling: SamplingParams): Promise<number[]> {
  const ids: number[] = [];
  let inFlight: Promise<number> | null = count > 0 ? session.enqueueStep(sampling) : null;
  for (let i = 0; i < count; i++) {
    let ahead: Promise<number> | null;
    try {
      ahead = i + 1 < count ? session.enqueueStep(sampling) : null;
    } catch (e) {
      inFlight?.catch(() => {});
      throw e;
    }
    ids.push(await settle(inFlight!, ahead));
    inFlight = ahead;
  }
  return ids;
}

/**
 * Awaits a step; if it fails (a lost device), the step submitted behind it fails too, with
 * nobody left to await it: mark that one handled so it is not an unhandled rejection.
 */
async function settle(step: Promise<number>, behind: Promise<number> | null): Promise<number> {
  try {
    return await step;
  } catch (e) {
    behind?.catch(() => {});
    throw e;
  }
}
