/** The harmony chat format of gpt-oss: prompt rendering, chat-completions mapping, output parsing. */
export {
  renderPrompt, renderMessage, promptParts, messageParts, partsText, systemContent, developerContent, visibleMessages, MODEL_IDENTITY, KNOWLEDGE_CUTOFF,
} from './render.ts';
export type { ReasoningEffort, HarmonyMessage, HarmonyConversation, PromptPart } from './render.ts';
export { renderPromptIds, renderPromptIdsAsync, minimumTokens, utf8Length, PromptTooLongError } from './render-ids.ts';
export type { PromptTokenizer, RenderIdsOptions } from './render-ids.ts';
export { jsonSchemaToTypeScript, renderToolsSection } from './tools-schema.ts';
export type { FunctionTool } from './tools-schema.ts';
export { conversationFromChatRequest } from './openai-request.ts';
export type { ChatRequestLike } from './openai-request.ts';
export { HarmonyParser, HARMONY_SPECIAL_IDS } from './parser.ts';
export type { HarmonyEvent, HarmonySpecial } from './parser.ts';
