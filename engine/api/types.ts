/**
 * The OpenAI chat-completions shapes this engine accepts and returns (the subset it
 * implements), so code written against OpenAI's API runs unchanged on a local model.
 */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessageParam =
  | { role: 'system' | 'developer'; content: string | { type: 'text'; text: string }[] }
  | { role: 'user'; content: string | { type: 'text'; text: string }[] }
  | { role: 'assistant'; content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: ChatToolCall[] }
  | { role: 'tool'; content: string; tool_call_id: string };

export interface ChatFunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface ChatCompletionCreateParams {
  messages: ChatMessageParam[];
  model?: string;
  stream?: boolean;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  /** Not in OpenAI's API; common in local engines (vLLM, llama.cpp). 0 = off. */
  top_k?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  reasoning_effort?: 'low' | 'medium' | 'high' | null;
  tools?: ChatFunctionTool[];
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };
  stream_options?: { include_usage?: boolean } | null;
  /** Aborts generation (also accepted as the second argument's `signal`). */
  signal?: AbortSignal;
}

/** 'content_filter': a guardrail blocked the request or the answer (see guardrails.ts). */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export interface ChatCompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** As OpenAI reports prompt caching: the prompt tokens whose KV cache was reused, not recomputed. */
  prompt_tokens_details?: { cached_tokens?: number };
  /** Not in OpenAI's API: timings of a local generation, as WebLLM's `usage.extra`. */
  extra?: UsageTimings;
}

/** How long a local answer took (seconds) and how fast it went (tokens per second). */
export interface UsageTimings {
  /** From the call to the first generated token: waiting for the GPU and reading the prompt. */
  time_to_first_token_s: number;
  /** From the call to the last token. */
  e2e_latency_s: number;
  /** Prompt tokens per second of prompt processing (prefill). */
  prefill_tokens_per_s: number;
  /** Generated tokens per second after the first (decode); 0 with one token. */
  decode_tokens_per_s: number;
  /** Seconds per generated token after the first; 0 with one token. */
  time_per_output_token_s: number;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: 0;
    /** `refusal` is always null (the model's refusals are ordinary answers), as in OpenAI's shape. */
    message: { role: 'assistant'; content: string | null; refusal: null; reasoning_content?: string; tool_calls?: ChatToolCall[] };
    finish_reason: FinishReason;
    logprobs: null;
  }[];
  usage: ChatCompletionUsage;
  /** Which backend answered: 'local' (WebGPU) or 'fallback' (the remote server). */
  system_fingerprint: string;
  /** Set when a guardrail blocked the request or the answer (finish_reason 'content_filter'). */
  guardrail?: GuardrailBlock;
}

/** Which guardrail blocked, and the reason it gave (not in OpenAI's API). */
export interface GuardrailBlock {
  stage: 'input' | 'output';
  reason: string;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: 0;
    delta: {
      role?: 'assistant';
      content?: string;
      reasoning_content?: string;
      tool_calls?: { index: number; id?: string; type?: 'function'; function: { name?: string; arguments?: string } }[];
    };
    finish_reason: FinishReason | null;
    logprobs: null;
  }[];
  usage?: ChatCompletionUsage | null;
  system_fingerprint: string;
  /** On the chunk with finish_reason 'content_filter': which guardrail blocked, and why. */
  guardrail?: GuardrailBlock;
}

/** An OpenAI-style error: `status` is the HTTP status the server answers with. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: 'invalid_request_error' | 'server_error' | 'authentication_error' | 'not_found_error' = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}
