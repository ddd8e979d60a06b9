/**
 * The checkpoint's tokenizer (`tokenizer.json` + `tokenizer_config.json`, o200k_harmony for
 * gpt-oss) through @huggingface/tokenizers, plus a streaming decoder that never emits half a
 * UTF-8 character.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelLoadError } from './errors.ts';
import { parseJson, readBytes, type ModelSource } from './source.ts';
import { recallTokenizer, rememberTokenizer, tokenizerKey } from './tokenizer-cache.ts';
import { exactSlices, slicesAreExact } from './tokenizer-slices.ts';

export interface EncodeOptions {
  /**
   * true (default): special-token strings such as `<|start|>` in the text become their ids (for raw
   * prompt text, as `gptoss generate` takes). false: they are encoded as ordinary text, exactly as
   * tiktoken's `encode_ordinary` does (for every text part of a harmony prompt, see
   * engine/harmony/render-ids.ts: no prompt injection through special tokens).
   */
  allowSpecial?: boolean;
}

/** GPT-2's byte-level alphabet: the printable character standing for each byte, inverted. */
function byteLevelDecoder(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const m = new Map<string, number>();
  bs.forEach((b, i) => m.set(String.fromCharCode(cs[i]!), b));
  return m;
}

const EMPTY = new Uint8Array(0);

type Merge = string | [string, string];

/** What buildTokenizer replaces in @huggingface/tokenizers' BPE model (0.2: bpe_ranks.get(JSON.stringify([a, b]))). */
interface BpeInternals {
  bpe_ranks: { get(key: string): number | undefined };
}

/**
 * A BPE model's merge ranks, keyed as @huggingface/tokenizers looks them up, indexed on the first
 * lookup (all at once) or ahead of it a slice at a time (indexInSlices). The same ranks as the
 * library's own Map: a pair listed twice keeps its later rank.
 */
export class MergeRanks {
  private readonly map = new Map<string, number>();
  private done = 0;

  constructor(private readonly merges: Merge[]) {}

  get(key: string): number | undefined {
    if (!this.complete) this.index(this.merges.length);
    return this.map.get(key);
  }

  /** Merges indexed so far (all of them once complete). */
  get indexed(): number {
    return this.done;
  }

  get complete(): boolean {
    return this.done === this.merges.length;
  }

  /** Indexes the rest, yielding (`yieldTurn`) whenever a slice has taken `sliceMs`. */
  async indexInSlices(sliceMs: number, yieldTurn: () => Promise<void>): Promise<void> {
    while (!this.complete) {
      const t0 = performance.now();
      do this.index(Math.min(this.merges.length, this.done + 4096));
      while (!this.complete && performance.now() - t0 < sliceMs);
      if (!this.complete) await yieldTurn();
    }
  }

  private index(until: number): void {
    for (; this.done < until; this.done++) {
      const m = this.merges[this.done]!;
      this.map.set(JSON.stringify(typeof m === 'string' ? m.split(' ', 2) : m), this.done);
    }
  }
}

/**
 * The Tokenizer, its BPE merge ranks indexed on first use rather than at load (MergeRanks).
 * Indexing o200k's 446k merges (a Map keyed by JSON.stringify of each pair) is a third of the
 * build, about 0.7 s on a 2-core machine, and with `ignore_merges` (o200k) BPE runs only on a
 * piece the vocabulary lacks, so loading, decoding and many encodes never need them. Any other
 * model type, or a library whose BPE model keeps its ranks otherwise, is built as it comes.
 */
export function buildTokenizer(json: object, config: object): Tokenizer {
  const model = (json as { model?: { type?: string; merges?: Merge[] } }).model;
  const merges = model?.merges;
  if (model?.type !== 'BPE' || !Array.isArray(merges) || merges.length === 0) return new Tokenizer(json, config);
  const tok = new Tokenizer({ ...json, model: { ...model, merges: [] } }, config);
  const bpe = tok.model as unknown as Partial<BpeInternals> | undefined;
  if (!(bpe?.bpe_ranks instanceof Map) || bpe.bpe_ranks.size !== 0) return new Tokenizer(json, config);
  bpe.bpe_ranks = new MergeRanks(merges);
  return tok;
}

export class GptOssTokenizer {
  private readonly added = new Map<number, { content: string; special: boolean }>();
  private byteDecoder: Map<string, number> | undefined;
  private longestToken: number | undefined;

  constructor(
    private readonly tok: Tokenizer,
    /** the parsed tokenizer.json, to check that its pre-tokenizer can be sliced (ordinarySlices) */
    private readonly json?: object,
  ) {
    for (const [id, t] of tok.get_added_tokens_decoder()) this.added.set(id, { content: t.content, special: t.special });
  }

  /** `onBytes(file, done, total)` as the tokenizer files are read (the tokenizer download's progress). */
  static async load(source: ModelSource, onBytes?: (file: string, done: number, total: number) => void): Promise<GptOssTokenizer> {
    if (!(await source.exists('tokenizer.json'))) {
      throw new ModelLoadError('missing-file', `no tokenizer.json in ${source.description}`, { file: 'tokenizer.json' });
    }
    const progress = (file: string) => onBytes && ((done: number, total: number) => onBytes(file, done, total));
    const tokBytes = await readBytes(source, 'tokenizer.json', progress('tokenizer.json'));
    const configBytes = (await source.exists('tokenizer_config.json'))
      ? await readBytes(source, 'tokenizer_config.json', progress('tokenizer_config.json'))
      : undefined;
    const key = await tokenizerKey(configBytes ? [tokBytes, configBytes] : [tokBytes]);
    const kept = key === undefined ? undefined : recallTokenizer(key);
    if (kept) return kept;
    const json = parseJson(tokBytes, 'tokenizer.json') as object;
    const config = (configBytes ? parseJson(configBytes, 'tokenizer_config.json') : {}) as object;
    let tok: GptOssTokenizer;
    try {
      tok = new GptOssTokenizer(buildTokenizer(json, config), json);
    } catch (e) {
      throw new ModelLoadError('bad-config', `cannot build the tokenizer: ${(e as Error).message}`, { file: 'tokenizer.json', cause: e });
    }
    if (key !== undefined) rememberTokenizer(key, tok);
    return tok;
  }

  /**
   * Indexes the BPE merge ranks (if not yet done) a slice at a time, yielding with `yieldTurn`
   * every `sliceMs`, so that the first encode needing them does not block for the whole index
   * (about 0.7 s for o200k). The async prompt renderer calls it before encoding.
   */
  async indexMerges(sliceMs: number, yieldTurn: () => Promise<void>): Promise<void> {
    const ranks = (this.tok.model as unknown as Partial<BpeInternals> | undefined)?.bpe_ranks;
    if (ranks instanceof MergeRanks) await ranks.indexInSlices(sliceMs, yieldTurn);
  }

  /** Text to ids. By default special-token strings such as `<|start|>` become their ids; see {@link EncodeOptions}. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (options.allowSpecial === false) return this.encodeOrdinary(text);
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * The same normalizer, pre-tokenizer and BPE without added-token matching: the whole text goes
   * through the pre-tokenizer and BPE, so a special-token string is split like any other text
   * (tiktoken's encode_ordinary). This is what the tokenizer's own encode does to the text between
   * two added tokens, run by its parts, so no second tokenizer has to be built (a second or more,
   * and as much memory again).
   */
  private encodeOrdinary(text: string): number[] {
    const { normalizer, pre_tokenizer: preTokenizer, model } = this.tok;
    if (!model) throw new Error('the tokenizer has no model');
    const normalized = normalizer ? normalizer(text) : text;
    if (normalized.length === 0) return [];
    const tokens = model(preTokenizer ? preTokenizer(normalized) : [normalized]);
    return tokens.map((t: string) => {
      const id = model.tokens_to_ids.get(t) ?? model.unk_token_id;
      if (id === undefined) throw new Error(`the tokenizer has no id for ${JSON.stringify(t)}`);
      return id;
    });
  }

  /**
   * Slices of `text` whose `allowSpecial: false` encodings, joined, are the encoding of the whole
   * text, each of at least `target` UTF-16 units where the text allows (tokenizer-slices.ts); the
   * text whole when this tokenizer's pre-tokenizer is not o200k's.
   */
  ordinarySlices(text: string, target: number): Iterable<string> {
    return slicesAreExact(this.json) ? exactSlices(text, target) : [text];
  }

  /** The longest ordinary token in bytes: a text of n UTF-8 bytes encodes to at least n / this tokens. */
  maxTokenBytes(): number {
    if (this.longestToken === undefined) {
      let longest = 0;
      // A piece stands for 1 byte per character (byte-level) or at most 3 (text): only long pieces can raise the maximum.
      const pieces = this.tok.model?.vocab ?? [];
      for (let id = 0; id < pieces.length; id++) {
        const piece = pieces[id];
        if (piece !== undefined && 3 * piece.length > longest && !this.added.has(id)) longest = Math.max(longest, this.tokenBytes(id).length);
      }
      this.longestToken = longest;
    }
    return this.longestToken;
  }

  decode(ids: number[], skipSpecial = false): string {
    return this.tok.decode(ids, { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false });
  }

  /** Whether the vocabulary (BPE pieces or added tokens) has this id. */
  hasId(id: number): boolean {
    return this.added.has(id) || this.tok.id_to_token(id) !== undefined;
  }

  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /**
   * The raw bytes one token stands for: the UTF-8 of an added token's content (nothing for a
   * special token when skipSpecial), the byte-level BPE bytes otherwise; nothing for an unknown id.
   */
  tokenBytes(id: number, skipSpecial = false): Uint8Array {
    const added = this.added.get(id);
    if (added) return skipSpecial && added.special ? EMPTY : new TextEncoder().encode(added.content);
    const piece = this.tok.id_to_token(id);
    if (piece === undefined) return EMPTY;
    this.byteDecoder ??= byteLevelDecoder();
    const out = new Uint8Array(piece.length);
    let n = 0;
    for (const ch of piece) {
      const b = this.byteDecoder.get(ch);
      if (b === undefined) return new TextEncoder().encode(piece); // not byte-level: take the text as is
      out[n++] = b;
    }
    return out.subarray(0, n);
  }

  streamDecoder(skipSpecial = false): StreamDecoder {
    return new StreamDecoder((id) => this.tokenBytes(id, skipSpecial));
  }
}

/**
 * Turns a stream of token ids into text pieces. Byte-level BPE tokens can split a character, so
 * the decoder works on bytes: each token's bytes go through a streaming UTF-8 decoder, which emits
 * every complete character at once and holds back only the bytes of a character still incomplete
 * (at most 3). Invalid bytes become U+FFFD as soon as they are known to be invalid, so nothing can
 * stall; a token holding several characters comes out whole.
 */
export class StreamDecoder {
  private utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(private readonly bytesOf: (id: number) => Uint8Array) {}

  /** The text this token completes ('' while a character is still incomplete). */
  push(id: number): string {
    return this.utf8.decode(this.bytesOf(id), { stream: true });
  }

  /** Whatever is still held back (an incomplete character at the end becomes U+FFFD); the decoder can be reused after. */
  flush(): string {
    return this.utf8.decode();
  }
}
