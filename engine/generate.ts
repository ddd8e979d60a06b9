/**
 * The generation loop over a GPU session: prefill the prompt in batches, then one command
 * buffer per token, stopping on a stop token, the token budget, the context limit or an abort.
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
  let id = await session.sample(o.sampling);
  const t1 = performance.now();
  let finishReason: FinishReason = 'length';
  for (;;) {
    tokens.push(id);
    o.onToken?.(id);
    if (stop.has(id)) {
      finishReason = 'stop';
      break;
    }
    if (tokens.length >= o.maxTokens || session.position + 1 >= session.contextLimit) break;
    if (o.signal?.aborted) {
      finishReason = 'abort';
      break;
    }
    id = await session.step(o.sampling);
  }
  return { tokens, finishReason, promptTokens: prompt.length, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
}
