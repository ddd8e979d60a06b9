/**
 * chat.completions over a local model: the OpenAI request is rendered in the harmony format,
 * generated on the GPU, and the model's channels are parsed back into the OpenAI shapes
 * (analysis -> reasoning_content, final -> content, commentary to=functions.X -> tool_calls).
 * This is an adapter over the session API; the engine itself knows nothing of OpenAI.
 */
import type { GptOssTokenizer } from '../../loader/tokenizer.ts';
import { conversationFromChatRequest, HarmonyParser, PromptTooLongError, renderPromptIdsAsync, type HarmonyConversation, type HarmonyEvent } from '../harmony/index.ts';
import { ContextLimitError } from '../gpu-session.ts';
import type { SessionPool } from './session-pool.ts';
import { generate } from '../generate.ts';
import type { SamplingParams } from '../sampling.ts';
import type { GpuQueue } from './gpu-queue.ts';
import { checkUnsupportedParams, paramOfMessage } from './params.ts';
import {
  ApiError, type ChatCompletion, type ChatCompletionUsage, type ChatCompletionChunk, type ChatCompletionCreateParams, type ChatToolCall, type FinishReason,
} from './types.ts';

/** <|return|>, <|call|>, <|endoftext|>: the model is done with its turn. */
export const HARMONY_STOP_TOKENS = [200002, 200012, 199999];

export interface LocalChatBackend {
  modelId: string;
  tokenizer: GptOssTokenizer;
  /** The conversations kept on the GPU; each request continues the one sharing most of its prompt. */
  sessions: SessionPool;
  queue: GpuQueue;
  contextLimit: number;
}

interface Prepared {
  prompt: number[];
  maxTokens: number;
  sampling: SamplingParams;
  stops: string[];
  includeUsage: boolean;
}

/** How one call runs, beyond the OpenAI parameters (the HTTP server sets these). */
export interface RunOptions {
  signal?: AbortSignal;
  /** The answer's length when the request names no max_tokens: min(this, the context left). */
  defaultMaxTokens?: number;
  /**
   * How long (ms) the generation may hold the GPU, counted from when it gets it: then it stops
   * through the abort path and the answer ends with finish_reason "length".
   */
  timeLimitMs?: number;
  /**
   * Ends the generation as a stop string would: the answer so far, usage counted, no error
   * (guardrails stop a blocked answer with it).
   */
  stop?: AbortSignal;
  /**
   * Sees each generated token and its decoded text before the harmony parser does: what a model
   * that does not write harmony (a random or foreign checkpoint) said, which no delta carries.
   */
  onToken?: (id: number, text: string) => void;
}

/**
 * Validates a request and renders its prompt ids; every problem is a 400 naming the parameter.
 * Async: a long prompt is tokenized in slices between event-loop turns, and given up on as soon
 * as it cannot fit the context.
 */
export async function prepareRequest(b: LocalChatBackend, p: ChatCompletionCreateParams, o: RunOptions = {}): Promise<Prepared> {
  const signal = o.signal ?? p.signal;
  const defaultMaxTokens = o.defaultMaxTokens;
  if (p === null || typeof p !== 'object') throw new ApiError(400, 'the request body must be a JSON object');
  checkUnsupportedParams(p as unknown as Record<string, unknown>);
  if (!Array.isArray(p.messages) || p.messages.length === 0) throw new ApiError(400, 'messages must be a non-empty array', 'invalid_request_error', 'messages');
  if (p.model !== undefined && p.model !== null && p.model !== b.modelId) {
    throw new ApiError(404, `the model ${JSON.stringify(p.model)} does not exist; this engine serves ${JSON.stringify(b.modelId)}`, 'not_found_error', 'model', 'model_not_found');
  }
  const num = (v: unknown, name: string, lo: number, hi: number, dflt: number): number => {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
      throw new ApiError(400, `${name} must be a number between ${lo} and ${hi}, got ${JSON.stringify(v)}`, 'invalid_request_error', name);
    }
    return v;
  };
  const temperature = num(p.temperature, 'temperature', 0, 2, 1);
  const topP = num(p.top_p, 'top_p', Number.MIN_VALUE, 1, 1);
  const topK = num(p.top_k, 'top_k', 0, 1e9, 0);
  if (!Number.isInteger(topK)) throw new ApiError(400, `top_k must be an integer, got ${topK}`, 'invalid_request_error', 'top_k');
  const seedRaw = p.seed === undefined || p.seed === null ? randomSeed() : p.seed;
  if (!Number.isSafeInteger(seedRaw)) throw new ApiError(400, `seed must be an integer, got ${JSON.stringify(p.seed)}`, 'invalid_request_error', 'seed');
  const seed = ((seedRaw % 2 ** 32) + 2 ** 32) % 2 ** 32;
  const stops = p.stop === undefined || p.stop === null ? [] : Array.isArray(p.stop) ? p.stop : [p.stop];
  if (stops.length > 4 || !stops.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new ApiError(400, 'stop must be a non-empty string or a list of up to 4 of them', 'invalid_request_error', 'stop');
  }
  if (p.tool_choice === 'none') p = { ...p, tools: undefined };

  let conv: HarmonyConversation;
  try {
    conv = conversationFromChatRequest(p as never);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(400, (e as Error).message, 'invalid_request_error', paramOfMessage((e as Error).message));
  }
  let prompt: number[];
  try {
    // At least one token of the context is left for the answer.
    prompt = await renderPromptIdsAsync(conv, b.tokenizer, { maxTokens: b.contextLimit - 1, signal });
  } catch (e) {
    if (!(e instanceof PromptTooLongError)) throw e;
    throw new ApiError(400, `the prompt is ${e.exact ? '' : 'at least '}${e.atLeast} tokens; this model's context limit is ${b.contextLimit}`,
      'invalid_request_error', 'messages', 'context_length_exceeded');
  }
  const room = b.contextLimit - prompt.length;
  const field = p.max_completion_tokens !== undefined && p.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const requested = p[field];
  const maxTokens = requested === undefined || requested === null
    ? Math.min(room, defaultMaxTokens ?? room)
    : num(requested, field, 1, Number.MAX_SAFE_INTEGER, room);
  if (!Number.isInteger(maxTokens)) throw new ApiError(400, `${field} must be an integer`, 'invalid_request_error', field);
  if (maxTokens > room) {
    throw new ApiError(400, `${field} ${maxTokens} plus the ${prompt.length}-token prompt exceeds this model's context limit of ${b.contextLimit}`, 'invalid_request_error', field, 'context_length_exceeded');
  }
  return { prompt, maxTokens, sampling: { temperature, topP, topK, seed }, stops, includeUsage: p.stream_options?.include_usage === true };
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

type Delta = ChatCompletionChunk['choices'][0]['delta'];

/**
 * Turns harmony events into OpenAI deltas, and applies `stop` strings to the answer text
 * (holding back a tail that could still become a stop string).
 */
export class ChannelMapper {
  content = '';
  reasoning = '';
  toolCalls: ChatToolCall[] = [];
  stopped = false;
  called = false;
  private held = '';

  constructor(private readonly stops: string[]) {}

  map(e: HarmonyEvent): Delta[] {
    if (this.stopped) return [];
    if (e.type === 'message' && isToolCall(e.recipient)) {
      const call: ChatToolCall = { id: `call_${randomId(24)}`, type: 'function', function: { name: e.recipient!.slice('functions.'.length), arguments: '' } };
      this.toolCalls.push(call);
      return [{ tool_calls: [{ index: this.toolCalls.length - 1, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }];
    }
    if (e.type === 'content') {
      if (isToolCall(e.recipient)) {
        const i = this.toolCalls.length - 1;
        if (i < 0) return [];
        this.toolCalls[i]!.function.arguments += e.delta;
        return [{ tool_calls: [{ index: i, function: { arguments: e.delta } }] }];
      }
      if (e.channel === 'analysis') {
        this.reasoning += e.delta;
        return [{ reasoning_content: e.delta }];
      }
      return this.answer(e.delta);
    }
    if (e.type === 'done' && e.end === 'call') this.called = true;
    return [];
  }

  /** Text still held back for stop-string matching, at the end of generation. */
  flush(): Delta[] {
    if (this.stopped || !this.held) return [];
    const text = this.held;
    this.held = '';
    this.content += text;
    return [{ content: text }];
  }

  private answer(delta: string): Delta[] {
    if (this.stops.length === 0) {
      this.content += delta;
      return [{ content: delta }];
    }
    const text = this.held + delta;
    let cut = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.held = '';
      const out = text.slice(0, cut);
      this.content += out;
      return out ? [{ content: out }] : [];
    }
    // Hold back the longest suffix that is a prefix of some stop string.
    let keep = 0;
    for (const s of this.stops) for (let k = Math.min(s.length - 1, text.length); k > keep; k--) if (s.startsWith(text.slice(text.length - k))) keep = k;
    this.held = text.slice(text.length - keep);
    const out = text.slice(0, text.length - keep);
    this.content += out;
    return out ? [{ content: out }] : [];
  }
}

function isToolCall(recipient: string | undefined): boolean {
  return recipient !== undefined && recipient.startsWith('functions.');
}

function randomId(n: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => alphabet[b % alphabet.length]).join('');
}

interface RunResult {
  finishReason: FinishReason;
  completionTokens: number;
  /** Prompt tokens whose KV cache an earlier request left and this one reused. */
  cachedTokens: number;
  mapper: ChannelMapper;
  /** performance.now() of the first token, of the end, and the generation's prefill and decode times (ms). */
  firstTokenAt: number;
  endAt: number;
  prefillMs: number;
  decodeMs: number;
}

/** OpenAI's token counts plus the timings (`extra`) of a run that started at `t0` (performance.now()). */
function usageOf(prep: Prepared, r: RunResult, t0: number): ChatCompletionUsage {
  const s = (ms: number) => Math.max(0, ms) / 1000;
  const decoded = r.completionTokens - 1;
  return {
    prompt_tokens: prep.prompt.length,
    completion_tokens: r.completionTokens,
    total_tokens: prep.prompt.length + r.completionTokens,
    prompt_tokens_details: { cached_tokens: r.cachedTokens },
    extra: {
      time_to_first_token_s: s(r.firstTokenAt - t0),
      e2e_latency_s: s(r.endAt - t0),
      // Only the tokens after the reused prefix were prefilled.
      prefill_tokens_per_s: r.prefillMs > 0 ? (prep.prompt.length - r.cachedTokens) / s(r.prefillMs) : 0,
      decode_tokens_per_s: decoded > 0 && r.decodeMs > 0 ? decoded / s(r.decodeMs) : 0,
      time_per_output_token_s: decoded > 0 ? s(r.decodeMs) / decoded : 0,
    },
  };
}

/** Generates under the GPU lock, calling `emit` with each delta as tokens arrive. */
async function run(
  b: LocalChatBackend, prep: Prepared, emit: (d: Delta) => void, signal?: AbortSignal, timeLimitMs?: number, stop?: AbortSignal,
  onToken?: RunOptions['onToken'],
): Promise<RunResult> {
  return b.queue.run(async () => {
    const mapper = new ChannelMapper(prep.stops);
    const parser = new HarmonyParser();
    const dec = b.tokenizer.streamDecoder();
    const stopController = new AbortController();
    // The time limit starts now, with the GPU ours; it stops generation like a stop string does.
    const timeUp = new AbortController();
    const timer = timeLimitMs ? setTimeout(() => timeUp.abort(new DOMException('the time limit passed', 'TimeoutError')), timeLimitMs) : undefined;
    const stopSignal = AbortSignal.any([...(signal ? [signal] : []), stopController.signal, timeUp.signal, ...(stop ? [stop] : [])]);
    const handle = (events: HarmonyEvent[]) => {
      for (const e of events) for (const d of mapper.map(e)) emit(d);
      if (mapper.stopped) stopController.abort();
    };
    // The conversation's cache from an earlier request: only what follows the common prefix is prefilled.
    const session = b.sessions.acquire(prep.prompt);
    const cachedTokens = session.reuse(prep.prompt);
    let res;
    let firstTokenAt = 0;
    try {
      res = await generate(session, prep.prompt.slice(cachedTokens), {
        maxTokens: prep.maxTokens,
        sampling: prep.sampling,
        stopTokens: HARMONY_STOP_TOKENS,
        signal: stopSignal,
        onToken: (id) => {
          firstTokenAt ||= performance.now();
          const text = dec.push(id);
          onToken?.(id, text);
          handle(parser.push(id, text));
        },
      });
    } catch (e) {
      if (e instanceof ContextLimitError) throw new ApiError(400, e.message, 'invalid_request_error', 'messages', 'context_length_exceeded');
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (signal?.aborted) throw signal.reason ?? new DOMException('The request was aborted', 'AbortError');
    handle(parser.finish());
    for (const d of mapper.flush()) emit(d);
    // Cut short by the time limit: "length", as OpenAI reports an answer cut short by its budget.
    const timedOut = res.finishReason === 'abort' && timeUp.signal.aborted;
    const finishReason: FinishReason = mapper.called || (mapper.toolCalls.length > 0 && !mapper.stopped)
      ? 'tool_calls'
      : (res.finishReason === 'length' || timedOut) && !mapper.stopped ? 'length' : 'stop';
    return {
      finishReason, completionTokens: res.tokens.length, cachedTokens, mapper,
      firstTokenAt, endAt: performance.now(), prefillMs: res.prefillMs, decodeMs: res.decodeMs,
    };
  }, signal);
}

export async function createCompletion(b: LocalChatBackend, p: ChatCompletionCreateParams, o: RunOptions = {}): Promise<ChatCompletion> {
  const t0 = performance.now();
  const prep = await prepareRequest(b, p, o);
  const r = await run(b, prep, () => {}, o.signal ?? p.signal, o.timeLimitMs, o.stop, o.onToken);
  const m = r.mapper;
  return {
    id: `chatcmpl-${randomId(24)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: b.modelId,
    choices: [{
      index: 0,
      message: {
        role: 'assistant',
        content: m.content || (m.toolCalls.length ? null : ''),
        refusal: null,
        ...(m.reasoning ? { reasoning_content: m.reasoning } : {}),
        ...(m.toolCalls.length ? { tool_calls: m.toolCalls } : {}),
      },
      finish_reason: r.finishReason,
      logprobs: null,
    }],
    usage: usageOf(prep, r, t0),
    system_fingerprint: 'local-webgpu',
  };
}

/** The streamed form: chunks are produced as tokens are read back from the GPU. */
export async function streamCompletion(b: LocalChatBackend, p: ChatCompletionCreateParams, o: RunOptions = {}): Promise<AsyncIterable<ChatCompletionChunk>> {
  const t0 = performance.now();
  const prep = await prepareRequest(b, p, o); // validation errors surface before streaming starts
  const signal = o.signal;
  const id = `chatcmpl-${randomId(24)}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Delta, finish: FinishReason | null = null): ChatCompletionChunk => ({
    id, object: 'chat.completion.chunk', created, model: b.modelId,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    system_fingerprint: 'local-webgpu',
  });
  return {
    [Symbol.asyncIterator]: () => {
      const queue: ChatCompletionChunk[] = [];
      let wake: (() => void) | null = null;
      let done = false;
      let failure: unknown = null;
      const consumerStop = new AbortController();
      const sig = AbortSignal.any([consumerStop.signal, ...(signal ?? p.signal ? [(signal ?? p.signal)!] : [])]);
      const push = (c: ChatCompletionChunk) => {
        queue.push(c);
        wake?.();
      };
      push(chunk({ role: 'assistant', content: '' }));
      run(b, prep, (d) => push(chunk(d)), sig, o.timeLimitMs, o.stop, o.onToken).then(
        (r) => {
          push(chunk({}, r.finishReason));
          if (prep.includeUsage) {
            push({ ...chunk({}), choices: [] as never, usage: usageOf(prep, r, t0) });
          }
        },
        (e) => (failure = e),
      ).finally(() => {
        done = true;
        wake?.();
      });
      return {
        async next(): Promise<IteratorResult<ChatCompletionChunk>> {
          for (;;) {
            if (queue.length) return { value: queue.shift()!, done: false };
            if (failure) throw failure;
            if (done) return { value: undefined, done: true };
            await new Promise<void>((r) => (wake = r));
            wake = null;
          }
        },
        async return(): Promise<IteratorResult<ChatCompletionChunk>> {
          // The consumer stopped reading (break, client disconnect): free the GPU.
          consumerStop.abort(new DOMException('the stream was closed', 'AbortError'));
          return { value: undefined, done: true };
        },
      };
    },
  };
}
