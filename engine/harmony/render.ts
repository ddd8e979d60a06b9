/**
 * A conversation -> the harmony prompt, ending with `<|start|>assistant`. Follows openai/harmony
 * `src/encoding.rs` (system and developer content, message headers) and its docs/format.md (tool
 * results as `{tool} to=assistant<|channel|>commentary`).
 *
 * The prompt is built as parts: formatting tokens, which only this structure produces, and text,
 * which is always encoded as ordinary text (render-ids.ts), so that a `<|start|>` typed by a user
 * stays text. `renderPrompt` spells the parts out as one string, for display only: tokenizing
 * that string with special tokens allowed would turn text into structure.
 */
import type { HarmonySpecial } from './parser.ts';
import { renderToolsSection, type FunctionTool } from './tools-schema.ts';

export type ReasoningEffort = 'low' | 'medium' | 'high';

export type HarmonyMessage =
  | { role: 'user'; content: string }
  | {
      role: 'assistant';
      channel: 'analysis' | 'commentary' | 'final';
      content: string;
      /** e.g. 'functions.get_weather': a tool call, ended by `<|call|>` */
      recipient?: string;
      /** rendered after the header, e.g. '<|constrain|>json' (a leading `<|constrain|>` is the formatting token) */
      contentType?: string;
    }
  | { role: 'tool'; name: string; content: string };

export interface HarmonyConversation {
  reasoningEffort: ReasoningEffort;
  /** 'YYYY-MM-DD'; omitted => no `Current date:` line */
  currentDate?: string;
  /** the developer message's `# Instructions` (omitted or empty => none) */
  instructions?: string;
  /** the developer message's `# Tools` section, namespace `functions` */
  tools?: FunctionTool[];
  messages: HarmonyMessage[];
}

/** A piece of a rendered prompt: a formatting token, or text (never special, whatever it spells). */
export type PromptPart = { special: HarmonySpecial } | string;

export const MODEL_IDENTITY = 'You are ChatGPT, a large language model trained by OpenAI.';
export const KNOWLEDGE_CUTOFF = '2024-06';
const REASONING_EFFORTS: readonly string[] = ['low', 'medium', 'high'];
const CONSTRAIN = '<|constrain|>';

export function systemContent(conv: Pick<HarmonyConversation, 'reasoningEffort' | 'currentDate'>, hasFunctionTools: boolean): string {
  if (!REASONING_EFFORTS.includes(conv.reasoningEffort)) {
    throw new RangeError(`reasoningEffort must be low, medium or high, got ${JSON.stringify(conv.reasoningEffort)}`);
  }
  const top = [MODEL_IDENTITY, `Knowledge cutoff: ${KNOWLEDGE_CUTOFF}`];
  if (conv.currentDate !== undefined) top.push(`Current date: ${conv.currentDate}`);
  let channels = '# Valid channels: analysis, commentary, final. Channel must be included for every message.';
  if (hasFunctionTools) channels += "\nCalls to these tools must go to the commentary channel: 'functions'.";
  return [top.join('\n'), `Reasoning: ${conv.reasoningEffort}`, channels].join('\n\n');
}

/** The developer message content, or undefined when there is neither instructions nor tools. */
export function developerContent(conv: Pick<HarmonyConversation, 'instructions' | 'tools'>): string | undefined {
  const sections: string[] = [];
  if (conv.instructions) sections.push('# Instructions', conv.instructions);
  if (conv.tools?.length) sections.push(renderToolsSection(conv.tools));
  return sections.length ? sections.join('\n\n') : undefined;
}

const START = { special: 'start' } as const;
const CHANNEL = { special: 'channel' } as const;
const MESSAGE = { special: 'message' } as const;
const END = { special: 'end' } as const;

/**
 * One message as parts. Header pieces are separate text parts, as openai/harmony renders them
 * (role or tool name, ` to=recipient`, channel, content type each encoded on its own). A text part
 * that follows another starts with a space before a non-space, and o200k's pre-tokenizer always
 * starts a new piece at such a space (it begins a word or punctuation piece; no whitespace piece
 * ends on a space followed by a non-space), so these ids equal those of the header encoded whole.
 * The one exception is the lone ' ' before `<|constrain|>`, which differs only after a recipient
 * ending in whitespace (never a valid function name).
 */
export function messageParts(m: HarmonyMessage): PromptPart[] {
  switch (m.role) {
    case 'user':
      return [START, 'user', MESSAGE, m.content, END];
    case 'tool':
      return [START, m.name, ' to=assistant', CHANNEL, 'commentary', MESSAGE, m.content, END];
    case 'assistant': {
      const parts: PromptPart[] = [START, 'assistant', CHANNEL, m.channel];
      if (m.recipient !== undefined && m.recipient !== 'all') parts.push(` to=${m.recipient}`);
      if (m.contentType !== undefined) {
        // As openai/harmony: a content type starting with <|constrain|> is ' ', the token, then the rest.
        if (m.contentType.startsWith(CONSTRAIN)) {
          parts.push(' ', { special: 'constrain' });
          if (m.contentType.length > CONSTRAIN.length) parts.push(m.contentType.slice(CONSTRAIN.length));
        } else {
          parts.push(` ${m.contentType}`);
        }
      }
      parts.push(MESSAGE, m.content, { special: m.recipient !== undefined ? 'call' : 'end' });
      return parts;
    }
    default:
      throw new RangeError(`unknown message role ${JSON.stringify((m as { role: unknown }).role)}`);
  }
}

/**
 * Analysis messages are dropped when a final answer follows them: the chain of thought of an
 * answered turn is not shown again, while the one leading to a pending tool call is kept.
 */
export function visibleMessages(messages: HarmonyMessage[]): HarmonyMessage[] {
  let finalAfter = false;
  const keep: HarmonyMessage[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role === 'assistant' && m.channel === 'analysis' && finalAfter) continue;
    if (m.role === 'assistant' && m.channel === 'final') finalAfter = true;
    keep.push(m);
  }
  return keep.reverse();
}

/** The whole prompt as parts: system, developer (when there is one), the messages, `<|start|>assistant`. */
export function promptParts(conv: HarmonyConversation): PromptPart[] {
  const hasTools = (conv.tools?.length ?? 0) > 0;
  const parts: PromptPart[] = [START, 'system', MESSAGE, systemContent(conv, hasTools), END];
  const dev = developerContent(conv);
  if (dev !== undefined) parts.push(START, 'developer', MESSAGE, dev, END);
  for (const m of visibleMessages(conv.messages)) parts.push(...messageParts(m));
  parts.push(START, 'assistant');
  return parts;
}

/** Parts spelled out as text, special tokens as `<|name|>`. */
export function partsText(parts: PromptPart[]): string {
  return parts.map((p) => (typeof p === 'string' ? p : `<|${p.special}|>`)).join('');
}

/** One message as display text. */
export function renderMessage(m: HarmonyMessage): string {
  return partsText(messageParts(m));
}

/** The prompt as display text (for ids use renderPromptIds: this string cannot tell text from structure). */
export function renderPrompt(conv: HarmonyConversation): string {
  return partsText(promptParts(conv));
}
