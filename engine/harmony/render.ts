/**
 * A conversation -> the harmony prompt text (special tokens spelled out), ending with
 * `<|start|>assistant`. Follows openai/harmony `src/encoding.rs` (system and developer content,
 * message headers) and its docs/format.md (tool results as `{tool} to=assistant<|channel|>commentary`).
 */
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
      /** rendered after the header, e.g. '<|constrain|>json' */
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

export const MODEL_IDENTITY = 'You are ChatGPT, a large language model trained by OpenAI.';
export const KNOWLEDGE_CUTOFF = '2024-06';
const REASONING_EFFORTS: readonly string[] = ['low', 'medium', 'high'];

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

export function renderMessage(m: HarmonyMessage): string {
  switch (m.role) {
    case 'user':
      return `<|start|>user<|message|>${m.content}<|end|>`;
    case 'tool':
      return `<|start|>${m.name} to=assistant<|channel|>commentary<|message|>${m.content}<|end|>`;
    case 'assistant': {
      let header = `<|start|>assistant<|channel|>${m.channel}`;
      if (m.recipient !== undefined && m.recipient !== 'all') header += ` to=${m.recipient}`;
      if (m.contentType !== undefined) header += ` ${m.contentType}`;
      return `${header}<|message|>${m.content}${m.recipient !== undefined ? '<|call|>' : '<|end|>'}`;
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

export function renderPrompt(conv: HarmonyConversation): string {
  const hasTools = (conv.tools?.length ?? 0) > 0;
  let out = `<|start|>system<|message|>${systemContent(conv, hasTools)}<|end|>`;
  const dev = developerContent(conv);
  if (dev !== undefined) out += `<|start|>developer<|message|>${dev}<|end|>`;
  for (const m of visibleMessages(conv.messages)) out += renderMessage(m);
  return `${out}<|start|>assistant`;
}
