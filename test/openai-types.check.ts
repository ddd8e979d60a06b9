/**
 * Compile-time check (by `npm run typecheck`; nothing here runs) that the library's request and
 * response types stay compatible with the official `openai` package's:
 *  - what we answer (ChatCompletion, ChatCompletionChunk) is assignable to OpenAI's types, so
 *    code written for the OpenAI client reads our answers unchanged;
 *  - what we accept is assignable to OpenAI's request type (given a model), so a request built
 *    for this engine can be sent to any OpenAI-compatible server;
 *  - the requests people write for OpenAI's types (text messages, function tools, sampling
 *    parameters) are accepted by our `create`, both as typed variables and as literals.
 * A field renamed, a finish reason added or a shape changed on either side breaks the build here,
 * naming the field. test/openai-types.test.ts checks that this file does fail on such a drift.
 */
import type OpenAI from 'openai';
import type { Engine } from '../engine/api/engine.ts';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams, ChatCompletionUsage, ChatFunctionTool, ChatMessageParam, ChatToolCall, FinishReason,
} from '../engine/api/types.ts';

declare const engine: Engine;

// Responses: ours -> OpenAI's.
declare const completion: ChatCompletion;
declare const chunk: ChatCompletionChunk;
export const asOpenAICompletion: OpenAI.ChatCompletion = completion;
export const asOpenAIChunk: OpenAI.ChatCompletionChunk = chunk;
export const asOpenAIMessage: OpenAI.ChatCompletionMessage = completion.choices[0]!.message;
export const asOpenAIUsage: OpenAI.CompletionUsage = completion.usage;
export const asOpenAIFinish: OpenAI.ChatCompletion.Choice['finish_reason'] = null! as FinishReason;
declare const toolCall: ChatToolCall;
export const asOpenAIToolCall: OpenAI.ChatCompletionMessageToolCall = toolCall;

// The fields both sides have mean the same: OpenAI's usage and tool calls are ours too.
declare const openaiUsage: OpenAI.CompletionUsage;
export const fromOpenAIUsage: ChatCompletionUsage = openaiUsage;
declare const openaiCall: OpenAI.ChatCompletionMessageFunctionToolCall;
export const fromOpenAIToolCall: ChatToolCall = openaiCall;
declare const openaiFunctionTool: OpenAI.ChatCompletionFunctionTool;
export const fromOpenAITool: ChatFunctionTool = openaiFunctionTool;

// Requests: ours -> OpenAI's (the model is optional here, required there).
declare const params: ChatCompletionCreateParams;
declare const message: ChatMessageParam;
export const asOpenAIMessageParam: OpenAI.ChatCompletionMessageParam = message;
export const asOpenAIParams: OpenAI.ChatCompletionCreateParams = { ...params, stream: false, model: 'gpt-oss-20b' };
export const asOpenAIStreamParams: OpenAI.ChatCompletionCreateParams = { ...params, stream: true, model: 'gpt-oss-20b' };

// Requests written against OpenAI's types: text messages of every role, tools, sampling.
declare const system: OpenAI.ChatCompletionSystemMessageParam & { content: string };
declare const developer: OpenAI.ChatCompletionDeveloperMessageParam & { content: string };
declare const user: OpenAI.ChatCompletionUserMessageParam & { content: string | OpenAI.ChatCompletionContentPartText[] };
declare const tool: OpenAI.ChatCompletionToolMessageParam & { content: string };
declare const assistant: OpenAI.ChatCompletionAssistantMessageParam & { content?: string | null; tool_calls?: OpenAI.ChatCompletionMessageFunctionToolCall[] };
export const fromOpenAIMessages: ChatMessageParam[] = [system, developer, user, tool, assistant];

export async function openaiShapedRequests(): Promise<void> {
  const req = {
    model: 'gpt-oss-20b',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
    ],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
    tool_choice: 'auto',
    temperature: 0.7,
    top_p: 0.9,
    max_completion_tokens: 256,
    seed: 1,
    stop: ['\n\n'],
    reasoning_effort: 'low',
    stream_options: { include_usage: true },
  } satisfies OpenAI.ChatCompletionCreateParamsNonStreaming;
  const answer: OpenAI.ChatCompletion = await engine.chat.completions.create(req);
  void answer;
  const stream = await engine.chat.completions.create({ ...req, stream: true });
  for await (const c of stream) {
    const theirs: OpenAI.ChatCompletionChunk = c;
    void theirs;
  }
}
