/**
 * Application guardrails around chat.completions.create, the same for every backend (local
 * WebGPU, the remote fallback, a worker engine):
 *  - `input(messages)` runs before anything else: a blocked request does no GPU work and sends
 *    nothing to a server; it is answered with empty content and finish_reason 'content_filter'.
 *  - `output(text, { done, reasoning })` runs before each chunk that adds answer or reasoning
 *    text is passed on, with the whole answer so far (`text`, the new delta included) and the
 *    reasoning so far; then once more with `done: true` and the final text, before the chunk
 *    that carries finish_reason. A blocked delta is never sent: generation stops at once, the
 *    text sent before stays sent, and the stream ends with finish_reason 'content_filter'.
 *    A non-streamed answer is checked the same way and, when blocked, comes back with empty
 *    content (nothing of it was shown yet). Tool-call arguments are not checked.
 * Either may return its verdict or a promise of it; the blocked answer's `guardrail` field says
 * which stage blocked and why. A guardrail that throws fails the request with its error.
 */
import { AsyncQueue } from './async-queue.ts';
import type { ChatCompletionsApi, CreateOptions } from './engine.ts';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams, ChatMessageParam, ChatToolCall, FinishReason, GuardrailBlock,
} from './types.ts';

export type GuardrailVerdict = { allow: true } | { allow: false; reason: string };

export interface OutputCheck {
  /** True once, when the answer is complete. */
  done: boolean;
  /** The reasoning (analysis channel) so far. */
  reasoning: string;
}

export interface Guardrails {
  input?(messages: ChatMessageParam[]): GuardrailVerdict | Promise<GuardrailVerdict>;
  output?(text: string, check: OutputCheck): GuardrailVerdict | Promise<GuardrailVerdict>;
}

type Create = (params: ChatCompletionCreateParams, options?: CreateOptions) => Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;

/** Who answers a blocked request: the engine's model name and system_fingerprint. */
export interface Answerer {
  modelId: string;
  fingerprint: string;
}

async function verdict(stage: 'input' | 'output', v: GuardrailVerdict | Promise<GuardrailVerdict>): Promise<GuardrailBlock | undefined> {
  const r = await v;
  if (r && r.allow === true) return undefined;
  if (r && r.allow === false) return { stage, reason: typeof r.reason === 'string' ? r.reason : String(r.reason) };
  throw new TypeError(`guardrails.${stage} must return { allow: true } or { allow: false, reason }, got ${JSON.stringify(r)}`);
}

/** Wraps a create function with the guardrails; without any, returns it as it is. */
export function guardCreate(create: Create, g: Guardrails, who: Answerer): ChatCompletionsApi['create'] {
  if (!g.input && !g.output) return create as ChatCompletionsApi['create'];
  const guarded = async (params: ChatCompletionCreateParams, options: CreateOptions = {}) => {
    if (g.input && Array.isArray(params?.messages)) {
      const blocked = await verdict('input', g.input(params.messages));
      if (blocked) return params.stream ? blockedStream(params, who, blocked) : blockedCompletion(params, who, blocked);
    }
    if (!g.output) return create(params, options);
    const check = g.output.bind(g);
    const stop = new AbortController();
    const opts: CreateOptions = { ...options, stop: options.stop ? AbortSignal.any([options.stop, stop.signal]) : stop.signal };
    if (params.stream) return guardStream(await create(params, opts) as AsyncIterable<ChatCompletionChunk>, check, stop);
    // A non-streamed answer is generated as a stream, so a blocked one stops at once too.
    const stream = await create({ ...params, stream: true, stream_options: { include_usage: true } }, opts) as AsyncIterable<ChatCompletionChunk>;
    return collect(guardStream(stream, check, stop));
  };
  return guarded as ChatCompletionsApi['create'];
}

const newId = () => `chatcmpl-${crypto.randomUUID().replace(/-/g, '')}`;
const ZERO_USAGE = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

function blockedCompletion(p: ChatCompletionCreateParams, who: Answerer, guardrail: GuardrailBlock): ChatCompletion {
  return {
    id: newId(), object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: p.model ?? who.modelId,
    choices: [{ index: 0, message: { role: 'assistant', content: '', refusal: null }, finish_reason: 'content_filter', logprobs: null }],
    usage: ZERO_USAGE, system_fingerprint: who.fingerprint, guardrail,
  };
}

async function* blockedStream(p: ChatCompletionCreateParams, who: Answerer, guardrail: GuardrailBlock): AsyncGenerator<ChatCompletionChunk> {
  const base = { id: newId(), object: 'chat.completion.chunk' as const, created: Math.floor(Date.now() / 1000), model: p.model ?? who.modelId, system_fingerprint: who.fingerprint };
  yield { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }] };
  yield { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'content_filter', logprobs: null }], guardrail };
  if (p.stream_options?.include_usage) yield { ...base, choices: [], usage: ZERO_USAGE };
}

/**
 * Passes the chunks on as they pass the output check. It reads ahead of the consumer, so a
 * blocked answer stops the generation (through `stop`) even while nobody is reading.
 */
function guardStream(source: AsyncIterable<ChatCompletionChunk>, check: NonNullable<Guardrails['output']>, stop: AbortController): AsyncIterable<ChatCompletionChunk> {
  const it = source[Symbol.asyncIterator]();
  const halt = () => {
    stop.abort();
    void it.return?.()?.catch(() => {});
  };
  const out = new AsyncQueue<ChatCompletionChunk>(halt);
  let text = '';
  let reasoning = '';
  let blocked = false;
  const block = async (at: ChatCompletionChunk, guardrail: GuardrailBlock) => {
    blocked = true;
    stop.abort();
    const { choices: _c, usage: _u, ...base } = at;
    out.push({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'content_filter', logprobs: null }], guardrail });
    // What the backend sends after the stop: only the usage chunk is passed on.
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      if (r.value.usage && r.value.choices.length === 0) out.push(r.value);
    }
  };
  void (async () => {
    let checkedDone = false;
    let last: ChatCompletionChunk | undefined;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done || out.closed) break;
        const c = (last = r.value);
        const choice = c.choices[0];
        const d = choice?.delta;
        if (d && (d.content || d.reasoning_content)) {
          const nextText = text + (d.content ?? '');
          const nextReasoning = reasoning + (d.reasoning_content ?? '');
          const b = await verdict('output', check(nextText, { done: false, reasoning: nextReasoning }));
          if (b) return await block(c, b);
          text = nextText;
          reasoning = nextReasoning;
        }
        if (choice?.finish_reason && !checkedDone) {
          checkedDone = true;
          const b = await verdict('output', check(text, { done: true, reasoning }));
          if (b) return await block(c, b);
        }
        out.push(c);
      }
      if (!checkedDone && last && !out.closed) {
        const b = await verdict('output', check(text, { done: true, reasoning }));
        if (b) return await block(last, b);
      }
    } catch (e) {
      // After a block the backend may end with an abort (the fallback's request is cancelled).
      if (!blocked) {
        halt();
        out.fail(e);
      }
    } finally {
      out.end();
    }
  })();
  return out;
}

/** The chunks of a stream as one completion; a blocked answer keeps none of its text. */
async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletion> {
  let head: ChatCompletionChunk | undefined;
  let content = '';
  let reasoning = '';
  const calls: ChatToolCall[] = [];
  let finish: FinishReason = 'stop';
  let usage = ZERO_USAGE;
  let guardrail: GuardrailBlock | undefined;
  for await (const c of stream) {
    head ??= c;
    if (c.usage) usage = c.usage;
    if (c.guardrail) guardrail = c.guardrail;
    const choice = c.choices[0];
    if (!choice) continue;
    if (choice.finish_reason) finish = choice.finish_reason;
    const d = choice.delta;
    content += d.content ?? '';
    reasoning += d.reasoning_content ?? '';
    for (const t of d.tool_calls ?? []) {
      const call = (calls[t.index] ??= { id: t.id ?? '', type: 'function', function: { name: '', arguments: '' } });
      if (t.id) call.id = t.id;
      call.function.name += t.function.name ?? '';
      call.function.arguments += t.function.arguments ?? '';
    }
  }
  if (!head) throw new Error('the backend sent an empty stream');
  const filtered = finish === 'content_filter';
  const toolCalls = filtered ? [] : calls.filter(Boolean);
  return {
    id: head.id, object: 'chat.completion', created: head.created, model: head.model,
    choices: [{
      index: 0,
      message: {
        role: 'assistant',
        content: filtered ? '' : content || (toolCalls.length ? null : ''),
        refusal: null,
        ...(reasoning && !filtered ? { reasoning_content: reasoning } : {}),
        ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
      },
      finish_reason: finish,
      logprobs: null,
    }],
    usage, system_fingerprint: head.system_fingerprint, ...(guardrail ? { guardrail } : {}),
  };
}
