/**
 * Request parameters this engine does not implement. OpenAI clients send them expecting an
 * effect (several choices, log probabilities, JSON mode, a forced tool call); answering as if
 * they had been honoured would mislead, so each is a 400 naming the parameter instead.
 */
import { ApiError } from './types.ts';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const given = (v: unknown) => v !== undefined && v !== null;
const bad = (param: string, message: string) => new ApiError(400, message, 'invalid_request_error', param, 'unsupported_parameter');

/** `stream` must be a boolean: "yes" or 1 would otherwise pick a response shape by truthiness. */
export function checkStream(v: unknown, param = 'stream'): void {
  if (given(v) && typeof v !== 'boolean') {
    throw new ApiError(400, `${param} must be true or false, got ${JSON.stringify(v)}`, 'invalid_request_error', param, 'invalid_type');
  }
}

/** Throws a 400 for a chat-completions parameter that is given but not supported. */
export function checkUnsupportedParams(p: Record<string, unknown>): void {
  checkStream(p.stream);
  if (given(p.n)) {
    if (typeof p.n !== 'number' || !Number.isInteger(p.n) || p.n < 1) throw new ApiError(400, `n must be a positive integer, got ${JSON.stringify(p.n)}`, 'invalid_request_error', 'n', 'invalid_value');
    if (p.n > 1) throw bad('n', `n = ${p.n} is not supported: this server generates one choice per request (send n = 1 or leave it out)`);
  }
  if (given(p.logprobs) && p.logprobs !== false) throw bad('logprobs', 'logprobs is not supported by this server');
  if (given(p.top_logprobs)) throw bad('top_logprobs', 'top_logprobs is not supported by this server');
  const rf = p.response_format;
  if (given(rf) && !(isObject(rf) && rf.type === 'text')) {
    const type = isObject(rf) ? JSON.stringify(rf.type) : JSON.stringify(rf);
    throw bad('response_format', `response_format ${type} is not supported by this server; only {"type": "text"}`);
  }
  checkToolChoice(p.tool_choice, p.tools);
}

/** A tool_choice that cannot be met: "required" without tools, or a function not in `tools`. */
function checkToolChoice(choice: unknown, tools: unknown): void {
  const names = Array.isArray(tools)
    ? tools.map((t) => (isObject(t) && isObject(t.function) ? t.function.name : undefined)).filter((n): n is string => typeof n === 'string')
    : [];
  if (choice === 'required' && names.length === 0) {
    throw new ApiError(400, 'tool_choice "required" needs at least one tool in tools', 'invalid_request_error', 'tool_choice', 'invalid_value');
  }
  if (isObject(choice) && choice.type === 'function' && isObject(choice.function) && typeof choice.function.name === 'string') {
    const name = choice.function.name;
    if (!names.includes(name)) {
      throw new ApiError(400, `tool_choice names the function ${JSON.stringify(name)}, which is not in tools`, 'invalid_request_error', 'tool_choice', 'invalid_value');
    }
  }
}

/**
 * The parameter a request-conversion error is about, read from the start of its message
 * ("tools[0].function.name must be ...", "reasoning_effort must be ..."); `messages` otherwise.
 */
export function paramOfMessage(message: string): string {
  const m = /^((?:messages|tools|tool_choice|reasoning_effort)(?:\[\d+\]|\.[A-Za-z_]+)*)\b/.exec(message);
  return m ? m[1]! : 'messages';
}
