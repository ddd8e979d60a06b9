/**
 * An OpenAI chat-completions request body -> a harmony conversation. System and developer
 * messages become the developer instructions, `tools` the `functions` namespace,
 * `reasoning_effort` the system message; assistant `reasoning_content` (or `reasoning`) becomes an
 * analysis message, `tool_calls` commentary messages to `functions.NAME` with `<|constrain|>json`,
 * `content` the final answer (or a commentary preamble when the message also calls tools).
 * `tool_choice` is only validated here: enforcing it is the caller's job.
 */
import type { HarmonyConversation, HarmonyMessage, ReasoningEffort } from './render.ts';
import type { FunctionTool } from './tools-schema.ts';

export interface ChatRequestLike {
  messages: unknown[];
  tools?: unknown[];
  reasoning_effort?: string;
  tool_choice?: unknown;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A message's content: a string or an array of `{type: 'text', text}` parts (joined). */
function textContent(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v
      .map((part, i) => {
        if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') {
          throw new TypeError(`${field}[${i}] must be a {type: "text", text} part (got ${JSON.stringify(isObject(part) ? part.type : part)})`);
        }
        return part.text;
      })
      .join('');
  }
  throw new TypeError(`${field} must be a string or an array of text parts`);
}

function optionalText(v: unknown, field: string): string | undefined {
  return v === undefined || v === null ? undefined : textContent(v, field);
}

function parseTools(tools: unknown): FunctionTool[] {
  if (!Array.isArray(tools)) throw new TypeError('tools must be an array');
  return tools.map((t, i) => {
    const f = `tools[${i}]`;
    if (!isObject(t)) throw new TypeError(`${f} must be an object`);
    if (t.type !== 'function') throw new RangeError(`${f}.type must be "function", got ${JSON.stringify(t.type)}`);
    const fn = t.function;
    if (!isObject(fn)) throw new TypeError(`${f}.function must be an object`);
    if (typeof fn.name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(fn.name)) {
      throw new TypeError(`${f}.function.name must be a non-empty name of letters, digits, _ . -`);
    }
    if (fn.description !== undefined && typeof fn.description !== 'string') throw new TypeError(`${f}.function.description must be a string`);
    if (fn.parameters !== undefined && !isObject(fn.parameters)) throw new TypeError(`${f}.function.parameters must be a JSON Schema object`);
    const tool: FunctionTool = { name: fn.name };
    if (fn.description !== undefined) tool.description = fn.description;
    if (fn.parameters !== undefined) tool.parameters = fn.parameters;
    return tool;
  });
}

function parseEffort(v: unknown): ReasoningEffort {
  if (v === undefined || v === null) return 'medium';
  if (typeof v !== 'string') throw new TypeError('reasoning_effort must be a string');
  if (v !== 'low' && v !== 'medium' && v !== 'high') throw new RangeError(`reasoning_effort must be low, medium or high, got ${JSON.stringify(v)}`);
  return v;
}

function validateToolChoice(v: unknown): void {
  if (v === undefined || v === null || v === 'none' || v === 'auto' || v === 'required') return;
  if (isObject(v) && v.type === 'function' && isObject(v.function) && typeof v.function.name === 'string') return;
  throw new RangeError(`tool_choice must be "none", "auto", "required" or {type: "function", function: {name}}`);
}

export function conversationFromChatRequest(req: ChatRequestLike, options: { currentDate?: string } = {}): HarmonyConversation {
  if (!isObject(req)) throw new TypeError('the request body must be a JSON object');
  if (!Array.isArray(req.messages)) throw new TypeError('messages must be an array');
  validateToolChoice(req.tool_choice);
  const conv: HarmonyConversation = { reasoningEffort: parseEffort(req.reasoning_effort), messages: [] };
  if (options.currentDate !== undefined) conv.currentDate = options.currentDate;
  if (req.tools !== undefined && req.tools !== null) {
    const tools = parseTools(req.tools);
    if (tools.length) conv.tools = tools;
  }
  const instructions: string[] = [];
  const toolNames = new Map<string, string>();
  req.messages.forEach((raw, i) => {
    const f = `messages[${i}]`;
    if (!isObject(raw)) throw new TypeError(`${f} must be an object`);
    switch (raw.role) {
      case 'system':
      case 'developer':
        instructions.push(textContent(raw.content, `${f}.content`));
        break;
      case 'user':
        conv.messages.push({ role: 'user', content: textContent(raw.content, `${f}.content`) });
        break;
      case 'assistant':
        conv.messages.push(...assistantMessages(raw, f, toolNames));
        break;
      case 'tool': {
        if (typeof raw.tool_call_id !== 'string') throw new TypeError(`${f}.tool_call_id must be a string`);
        const name = toolNames.get(raw.tool_call_id);
        if (name === undefined) throw new RangeError(`${f}.tool_call_id ${JSON.stringify(raw.tool_call_id)} matches no earlier assistant tool call`);
        conv.messages.push({ role: 'tool', name: `functions.${name}`, content: textContent(raw.content, `${f}.content`) });
        break;
      }
      default:
        throw new RangeError(`${f}.role must be system, developer, user, assistant or tool, got ${JSON.stringify(raw.role)}`);
    }
  });
  const joined = instructions.filter((s) => s.length > 0).join('\n\n');
  if (joined) conv.instructions = joined;
  return conv;
}

function assistantMessages(raw: Obj, f: string, toolNames: Map<string, string>): HarmonyMessage[] {
  const out: HarmonyMessage[] = [];
  const reasoningField = raw.reasoning_content !== undefined && raw.reasoning_content !== null ? 'reasoning_content' : 'reasoning';
  const reasoning = optionalText(raw[reasoningField], `${f}.${reasoningField}`);
  const content = optionalText(raw.content, `${f}.content`);
  const calls = raw.tool_calls === undefined || raw.tool_calls === null ? [] : raw.tool_calls;
  if (!Array.isArray(calls)) throw new TypeError(`${f}.tool_calls must be an array`);
  if (reasoning) out.push({ role: 'assistant', channel: 'analysis', content: reasoning });
  if (calls.length === 0) {
    if (content === undefined) throw new TypeError(`${f}.content is missing (an assistant message needs content or tool_calls)`);
    out.push({ role: 'assistant', channel: 'final', content });
    return out;
  }
  // Text beside tool calls is a preamble: harmony puts it on the commentary channel.
  if (content) out.push({ role: 'assistant', channel: 'commentary', content });
  calls.forEach((call, j) => {
    const cf = `${f}.tool_calls[${j}]`;
    if (!isObject(call)) throw new TypeError(`${cf} must be an object`);
    if (call.type !== undefined && call.type !== 'function') throw new RangeError(`${cf}.type must be "function", got ${JSON.stringify(call.type)}`);
    const fn = call.function;
    if (!isObject(fn) || typeof fn.name !== 'string' || fn.name === '') throw new TypeError(`${cf}.function.name must be a non-empty string`);
    const args = fn.arguments === undefined || fn.arguments === null ? '{}' : typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments);
    if (typeof call.id === 'string') toolNames.set(call.id, fn.name);
    out.push({ role: 'assistant', channel: 'commentary', recipient: `functions.${fn.name}`, contentType: '<|constrain|>json', content: args });
  });
  return out;
}
