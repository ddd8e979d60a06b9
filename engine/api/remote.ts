/**
 * The fallback: the same chat.completions calls sent to any OpenAI-compatible server (vLLM,
 * Azure AI Foundry, our own `gptoss serve`) when WebGPU is missing or the model does not fit.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { ApiError, type ChatCompletion, type ChatCompletionChunk, type ChatCompletionCreateParams } from './types.ts';

export interface FallbackOptions {
  baseURL: string;
  apiKey?: string;
  model: string;
  fetch?: typeof fetch;
}

function endpoint(o: FallbackOptions): string {
  return o.baseURL.replace(/\/+$/, '') + '/chat/completions';
}

async function post(o: FallbackOptions, p: ChatCompletionCreateParams, stream: boolean, signal?: AbortSignal): Promise<Response> {
  const { signal: _s, ...body } = p;
  const res = await (o.fetch ?? fetch)(endpoint(o), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
    body: JSON.stringify({ ...body, model: o.model, stream }),
    signal: signal ?? p.signal,
  });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    let type: ApiError['type'] = res.status >= 500 ? 'server_error' : res.status === 401 ? 'authentication_error' : res.status === 404 ? 'not_found_error' : 'invalid_request_error';
    try {
      const j = (await res.json()) as { error?: { message?: string; type?: string } };
      if (j.error?.message) message = j.error.message;
      if (j.error?.type) type = j.error.type as ApiError['type'];
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, `fallback server ${o.baseURL}: ${message}`, type);
  }
  return res;
}

const FINGERPRINT = (o: FallbackOptions) => `fallback:${o.baseURL}`;

export async function remoteCompletion(o: FallbackOptions, p: ChatCompletionCreateParams, signal?: AbortSignal): Promise<ChatCompletion> {
  const c = (await (await post(o, p, false, signal)).json()) as ChatCompletion;
  return { ...c, system_fingerprint: FINGERPRINT(o) };
}

/**
 * The streamed answer: server-sent events parsed by eventsource-parser (the spec's line and
 * field rules: CRLF, multi-line data, comments, a final event without a blank line), each
 * event's data a chunk until `[DONE]`.
 */
export async function* remoteStream(o: FallbackOptions, p: ChatCompletionCreateParams, signal?: AbortSignal): AsyncGenerator<ChatCompletionChunk> {
  const res = await post(o, p, true, signal);
  if (!res.body) throw new ApiError(502, `fallback server ${o.baseURL} sent no body`, 'server_error');
  const reader = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (value.data === '[DONE]') return;
      let chunk: ChatCompletionChunk & { error?: { message?: string } };
      try {
        chunk = JSON.parse(value.data) as typeof chunk;
      } catch {
        throw new ApiError(502, `fallback server ${o.baseURL} sent an event that is not JSON: ${value.data.slice(0, 200)}`, 'server_error');
      }
      // A server that fails mid-stream sends an OpenAI error object as an event.
      if (chunk.error) throw new ApiError(502, `fallback server ${o.baseURL}: ${chunk.error.message ?? 'error'}`, 'server_error');
      yield { ...chunk, system_fingerprint: FINGERPRINT(o) };
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
