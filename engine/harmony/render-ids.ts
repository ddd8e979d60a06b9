/**
 * A conversation -> prompt token ids. Formatting tokens come only from the renderer's structure
 * (render.ts parts, by id); every text part is encoded with special tokens disallowed, each on its
 * own, as openai/harmony does (`encode_ordinary` per piece), so `<|start|>` in a message is text.
 *
 * The async form bounds and spreads the work of a huge prompt: it rejects at once a prompt whose
 * text cannot fit (from its UTF-8 size and the longest token), stops as soon as the ids counted
 * pass the limit, and encodes long texts in exact slices (loader/tokenizer-slices.ts), yielding
 * to the event loop between them so a server keeps answering other requests.
 */
import type { GptOssTokenizer } from '../../loader/tokenizer.ts';
import { promptParts, type HarmonyConversation, type PromptPart } from './render.ts';
import type { HarmonySpecial } from './parser.ts';

export type PromptTokenizer = Pick<GptOssTokenizer, 'encode' | 'tokenId' | 'ordinarySlices' | 'maxTokenBytes'> & Partial<Pick<GptOssTokenizer, 'indexMerges'>>;

/** A prompt longer than the tokens allowed; `atLeast` is a lower bound of its length (exact when `exact`). */
export class PromptTooLongError extends RangeError {
  override name = 'PromptTooLongError';
  constructor(readonly maxTokens: number, readonly atLeast: number, readonly exact: boolean) {
    super(`the prompt is ${exact ? '' : 'at least '}${atLeast} tokens, over the ${maxTokens} allowed`);
  }
}

export interface RenderIdsOptions {
  /** Longest prompt accepted; a longer one throws PromptTooLongError without being encoded in full. */
  maxTokens?: number;
  /** Work between yields to the event loop, in milliseconds (default 10). */
  sliceMs?: number;
  signal?: AbortSignal;
}

function specialId(tok: PromptTokenizer, name: HarmonySpecial): number {
  const id = tok.tokenId(`<|${name}|>`);
  if (id === undefined) throw new Error(`the tokenizer has no <|${name}|> token`);
  return id;
}

/** The prompt ids, at once (for short prompts and tools; servers should use renderPromptIdsAsync). */
export function renderPromptIds(conv: HarmonyConversation, tok: PromptTokenizer): number[] {
  const ids: number[] = [];
  for (const p of promptParts(conv)) {
    if (typeof p === 'string') ids.push(...tok.encode(p, { allowSpecial: false }));
    else ids.push(specialId(tok, p.special));
  }
  return ids;
}

const UTF8_CHUNK = 16384;
let utf8Scratch: Uint8Array | undefined;

/** UTF-8 length of a string, as TextEncoder writes it (a lone surrogate as the 3 bytes of U+FFFD). */
export function utf8Length(s: string): number {
  // encodeInto a reused buffer, a chunk at a time: native speed, no copy of a huge text.
  utf8Scratch ??= new Uint8Array(3 * UTF8_CHUNK);
  const encoder = new TextEncoder();
  let n = 0;
  for (let at = 0; at < s.length; ) {
    let end = Math.min(at + UTF8_CHUNK, s.length);
    if ((s.charCodeAt(end) & 0xfc00) === 0xdc00 && (s.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--; // keep a pair whole
    n += encoder.encodeInto(s.slice(at, end), utf8Scratch).written;
    at = end;
  }
  return n;
}

/** The least number of ids these parts can encode to: one per formatting token, ceil(bytes / longest token) per text. */
export function minimumTokens(parts: PromptPart[], maxTokenBytes: number): number {
  let n = 0;
  for (const p of parts) n += typeof p === 'string' ? Math.ceil(utf8Length(p) / maxTokenBytes) : 1;
  return n;
}

/** About this many UTF-16 units per encode call (a few milliseconds on a slow CPU). */
const SLICE_UNITS = 2048;

const macrotask = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/** The same ids as renderPromptIds, bounded by `maxTokens` and spread over event-loop turns. */
export async function renderPromptIdsAsync(conv: HarmonyConversation, tok: PromptTokenizer, options: RenderIdsOptions = {}): Promise<number[]> {
  const { maxTokens = Infinity, sliceMs = 10, signal } = options;
  const parts = promptParts(conv);
  if (maxTokens !== Infinity) {
    const least = minimumTokens(parts, tok.maxTokenBytes());
    if (least > maxTokens) throw new PromptTooLongError(maxTokens, least, false);
  }
  // BPE's merge ranks (loader/tokenizer.ts MergeRanks) in slices too, not all at the first rare word.
  await tok.indexMerges?.(sliceMs, macrotask);
  signal?.throwIfAborted();
  const ids: number[] = [];
  let last = performance.now();
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (typeof p !== 'string') {
      ids.push(specialId(tok, p.special));
      continue;
    }
    for (const slice of tok.ordinarySlices(p, SLICE_UNITS)) {
      for (const id of tok.encode(slice, { allowSpecial: false })) ids.push(id);
      // Too long already: what is left is not encoded, only counted from below.
      if (ids.length > maxTokens) throw new PromptTooLongError(maxTokens, ids.length + minimumTokens(parts.slice(i + 1), tok.maxTokenBytes()), false);
      if (performance.now() - last >= sliceMs) {
        await macrotask();
        signal?.throwIfAborted();
        last = performance.now();
      }
    }
  }
  if (ids.length > maxTokens) throw new PromptTooLongError(maxTokens, ids.length, true);
  return ids;
}
