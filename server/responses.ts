/**
 * The Responses API (/v1/responses) as a mapping onto chat completions: text (or messages) in,
 * reasoning and text out, with its streaming event sequence.
 */
import { checkStream } from '../engine/api/params.ts';
import { ApiError, type ChatCompletion, type ChatCompletionChunk, type ChatCompletionCreateParams, type ChatMessageParam } from '../engine/api/types.ts';

type InputPart = { type: 'input_text' | 'output_text' | 'text'; text: string };
type InputItem = { role: 'user' | 'assistant' | 'system' | 'developer'; content: string | InputPart[]; type?: 'message' };

export interface ResponsesRequest {
  model?: string;
  input: string | InputItem[];
  instructions?: string | null;
  reasoning?: { effort?: 'low' | 'medium' | 'high' | null } | null;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  stream?: boolean | null;
  tools?: unknown[] | null;
  text?: { format?: { type?: string } | null } | null;
  previous_response_id?: string | null;
  top_logprobs?: number | null;
}

const unsupported = (param: string, message: string) => new ApiError(400, message, 'invalid_request_error', param, 'unsupported_parameter');

/** Parameters of the Responses API this server does not implement: a 400 rather than silence. */
function checkUnsupported(r: ResponsesRequest): void {
  checkStream(r.stream);
  if (Array.isArray(r.tools) && r.tools.length > 0) throw unsupported('tools', 'tools are not supported on /v1/responses by this server; use /v1/chat/completions for function calling');
  const format = r.text?.format;
  if (format !== undefined && format !== null && format.type !== 'text') {
    throw unsupported('text.format', `text.format ${JSON.stringify(format.type)} is not supported by this server; only {"type": "text"}`);
  }
  if (r.previous_response_id !== undefined && r.previous_response_id !== null) {
    throw unsupported('previous_response_id', 'previous_response_id is not supported: this server stores no responses; send the conversation as input');
  }
  if (r.top_logprobs !== undefined && r.top_logprobs !== null) throw unsupported('top_logprobs', 'top_logprobs is not supported by this server');
  const m = r.max_output_tokens;
  if (m !== undefined && m !== null && (typeof m !== 'number' || !Number.isSafeInteger(m) || m < 1)) {
    throw new ApiError(400, `max_output_tokens must be an integer >= 1, got ${JSON.stringify(m)}`, 'invalid_request_error', 'max_output_tokens', 'invalid_value');
  }
}

export function responsesToChat(r: ResponsesRequest): ChatCompletionCreateParams {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new ApiError(400, 'the request body must be a JSON object');
  checkUnsupported(r);
  const messages: ChatMessageParam[] = [];
  if (typeof r.instructions === 'string' && r.instructions) messages.push({ role: 'developer', content: r.instructions });
  if (typeof r.input === 'string') {
    messages.push({ role: 'user', content: r.input });
  } else if (Array.isArray(r.input)) {
    r.input.forEach((item, i) => {
      if (!item || typeof item !== 'object' || !['user', 'assistant', 'system', 'developer'].includes(item.role)) {
        throw new ApiError(400, `input[${i}] must be a message with role user, assistant, system or developer`, 'invalid_request_error', `input[${i}]`);
      }
      const text = typeof item.content === 'string'
        ? item.content
        : Array.isArray(item.content) ? item.content.map((p) => (p && typeof p.text === 'string' ? p.text : '')).join('') : null;
      if (text === null) throw new ApiError(400, `input[${i}].content must be a string or a list of text parts`, 'invalid_request_error', `input[${i}].content`);
      messages.push(item.role === 'assistant' ? { role: 'assistant', content: text } : { role: item.role, content: text });
    });
  } else {
    throw new ApiError(400, 'input must be a string or a list of messages', 'invalid_request_error', 'input');
  }
  return {
    model: r.model,
    messages,
    reasoning_effort: r.reasoning?.effort ?? undefined,
    max_tokens: r.max_output_tokens ?? undefined,
    temperature: r.temperature ?? undefined,
    top_p: r.top_p ?? undefined,
    stream_options: { include_usage: true },
  };
}

const newId = (prefix: string) => `${prefix}_${crypto.randomUUID().replace(/-/g, '')}`;

function outputItems(reasoning: string, text: string, ids: { rs: string; msg: string }) {
  const out: unknown[] = [];
  if (reasoning) out.push({ type: 'reasoning', id: ids.rs, summary: [], content: [{ type: 'reasoning_text', text: reasoning }] });
  out.push({ type: 'message', id: ids.msg, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] });
  return out;
}

/** Why a response is incomplete, from the chat finish_reason; null when it is complete. */
function incompleteReason(finish: string | null): 'max_output_tokens' | 'content_filter' | null {
  return finish === 'length' ? 'max_output_tokens' : finish === 'content_filter' ? 'content_filter' : null;
}

function envelope(id: string, created: number, model: string, status: string, output: unknown[], usage: ChatCompletion['usage'] | null, incomplete: ReturnType<typeof incompleteReason>) {
  return {
    id, object: 'response', created_at: created, status, model, output,
    output_text: output.length ? ((output.at(-1) as { content: { text: string }[] }).content[0]?.text ?? '') : '',
    // OpenAI's reasons are max_output_tokens and content_filter: an answer cut short by this
    // server's token cap or time limit (chat finish_reason "length") is max_output_tokens, one a
    // guardrail blocked is content_filter.
    incomplete_details: incomplete ? { reason: incomplete } : null,
    usage: usage ? { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens, total_tokens: usage.total_tokens } : null,
  };
}

export function responseObject(c: ChatCompletion) {
  const m = c.choices[0]!.message;
  const incomplete = incompleteReason(c.choices[0]!.finish_reason);
  return envelope(newId('resp'), c.created, c.model, incomplete ? 'incomplete' : 'completed',
    outputItems(m.reasoning_content ?? '', m.content ?? '', { rs: newId('rs'), msg: newId('msg') }), c.usage, incomplete);
}

export type ResponseEvent = { type: string; sequence_number: number; [k: string]: unknown };

/** Chat chunks -> Responses streaming events (created, item added, deltas, done, completed). */
export async function* streamResponseEvents(chunks: AsyncIterable<ChatCompletionChunk>): AsyncGenerator<ResponseEvent> {
  let seq = 0;
  const ev = (type: string, body: Record<string, unknown>): ResponseEvent => ({ type, sequence_number: seq++, ...body });
  const id = newId('resp');
  const ids = { rs: newId('rs'), msg: newId('msg') };
  const created = Math.floor(Date.now() / 1000);
  let model = '';
  let reasoning = '';
  let text = '';
  // An object, not a let: the helper generators below change it, which TS narrowing cannot see.
  const st: { phase: 'none' | 'reasoning' | 'text' } = { phase: 'none' };
  let usage: ChatCompletion['usage'] | null = null;
  let finish: string | null = null;
  let outputIndex = -1;

  function* closeReasoning() {
    if (st.phase !== 'reasoning') return;
    yield ev('response.reasoning_text.done', { item_id: ids.rs, output_index: outputIndex, content_index: 0, text: reasoning });
    yield ev('response.output_item.done', { output_index: outputIndex, item: { type: 'reasoning', id: ids.rs, summary: [], content: [{ type: 'reasoning_text', text: reasoning }] } });
  }
  function* openText() {
    yield* closeReasoning();
    st.phase = 'text';
    outputIndex++;
    yield ev('response.output_item.added', { output_index: outputIndex, item: { type: 'message', id: ids.msg, role: 'assistant', status: 'in_progress', content: [] } });
    yield ev('response.content_part.added', { item_id: ids.msg, output_index: outputIndex, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
  }

  let started = false;
  for await (const c of chunks) {
    model = c.model;
    if (!started) {
      started = true;
      const r = envelope(id, created, model, 'in_progress', [], null, null);
      yield ev('response.created', { response: r });
      yield ev('response.in_progress', { response: r });
    }
    if (c.usage) usage = c.usage;
    const choice = c.choices[0];
    if (!choice) continue;
    if (choice.finish_reason) finish = choice.finish_reason;
    const d = choice.delta;
    if (d.reasoning_content) {
      if (st.phase === 'none') {
        st.phase = 'reasoning';
        outputIndex++;
        yield ev('response.output_item.added', { output_index: outputIndex, item: { type: 'reasoning', id: ids.rs, summary: [], content: [] } });
      }
      if (st.phase === 'reasoning') {
        reasoning += d.reasoning_content;
        yield ev('response.reasoning_text.delta', { item_id: ids.rs, output_index: outputIndex, content_index: 0, delta: d.reasoning_content });
      }
    }
    if (d.content) {
      if (st.phase !== 'text') yield* openText();
      text += d.content;
      yield ev('response.output_text.delta', { item_id: ids.msg, output_index: outputIndex, content_index: 0, delta: d.content, logprobs: [] });
    }
  }
  if (st.phase !== 'text') yield* openText();
  yield ev('response.output_text.done', { item_id: ids.msg, output_index: outputIndex, content_index: 0, text, logprobs: [] });
  yield ev('response.content_part.done', { item_id: ids.msg, output_index: outputIndex, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
  yield ev('response.output_item.done', { output_index: outputIndex, item: { type: 'message', id: ids.msg, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] } });
  const incomplete = incompleteReason(finish);
  const final = envelope(id, created, model, incomplete ? 'incomplete' : 'completed', outputItems(reasoning, text, ids), usage, incomplete);
  yield ev(incomplete ? 'response.incomplete' : 'response.completed', { response: final });
}
