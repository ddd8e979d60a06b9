/**
 * Parsed tokenizers by the SHA-256 of their files. Building gpt-oss's tokenizer (a 27.9 MB
 * tokenizer.json: JSON parse, 200k-entry vocabulary, 446k merges) takes seconds; a reload of
 * the same model (after a GPU device loss, another engine on the same checkpoint, a model
 * switched back to) reuses the one built less than KEEP_MS ago. The cache holds a tokenizer only
 * for that long after its last use: an engine keeps its own reference for as long as it lives.
 * Without Web Crypto (an insecure browser context) nothing is cached.
 */
import type { GptOssTokenizer } from './tokenizer.ts';

export const KEEP_MS = 60_000;

const entries = new Map<string, { tok: GptOssTokenizer; timer: ReturnType<typeof setTimeout> }>();

/** The key of a tokenizer's files (their SHA-256, in order, with their lengths), or undefined without Web Crypto. */
export async function tokenizerKey(files: Uint8Array[]): Promise<string | undefined> {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!subtle) return undefined;
  const parts = await Promise.all(files.map(async (f) => {
    const d = new Uint8Array(await subtle.digest('SHA-256', f as Uint8Array<ArrayBuffer>));
    return `${f.byteLength}:${Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  }));
  return parts.join('/');
}

function expireLater(key: string): ReturnType<typeof setTimeout> {
  const timer = setTimeout(() => entries.delete(key), KEEP_MS);
  // Node: a kept tokenizer never holds the process open.
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

/** The tokenizer built from files with this key less than KEEP_MS ago, if any (its time starts again). */
export function recallTokenizer(key: string): GptOssTokenizer | undefined {
  const e = entries.get(key);
  if (!e) return undefined;
  clearTimeout(e.timer);
  e.timer = expireLater(key);
  return e.tok;
}

export function rememberTokenizer(key: string, tok: GptOssTokenizer): void {
  const old = entries.get(key);
  if (old) clearTimeout(old.timer);
  entries.set(key, { tok, timer: expireLater(key) });
}

/** Drops every kept tokenizer (their memory goes once no engine uses them). */
export function clearTokenizerCache(): void {
  for (const e of entries.values()) clearTimeout(e.timer);
  entries.clear();
}
