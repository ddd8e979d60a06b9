/**
 * The checkpoint's tokenizer (`tokenizer.json` + `tokenizer_config.json`, o200k_harmony for
 * gpt-oss) through @huggingface/tokenizers, plus a streaming decoder that never emits half a
 * UTF-8 character.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelLoadError } from './errors.ts';
import { readJson, type ModelSource } from './source.ts';

export class GptOssTokenizer {
  constructor(private readonly tok: Tokenizer) {}

  static async load(source: ModelSource): Promise<GptOssTokenizer> {
    if (!(await source.exists('tokenizer.json'))) {
      throw new ModelLoadError('missing-file', `no tokenizer.json in ${source.description}`, { file: 'tokenizer.json' });
    }
    const json = await readJson(source, 'tokenizer.json');
    const config = (await source.exists('tokenizer_config.json')) ? await readJson(source, 'tokenizer_config.json') : {};
    try {
      return new GptOssTokenizer(new Tokenizer(json as object, config as object));
    } catch (e) {
      throw new ModelLoadError('bad-config', `cannot build the tokenizer: ${(e as Error).message}`, { file: 'tokenizer.json', cause: e });
    }
  }

  /** Text to ids; special-token strings such as `<|start|>` become their ids. */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[], skipSpecial = false): string {
    return this.tok.decode(ids, { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false });
  }

  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  streamDecoder(skipSpecial = false): StreamDecoder {
    return new StreamDecoder((ids) => this.decode(ids, skipSpecial));
  }
}

/**
 * Turns a stream of token ids into text pieces. Byte-level BPE tokens can split a character:
 * text is held back while the decoded tail ends in U+FFFD (an incomplete sequence).
 */
export class StreamDecoder {
  private pending: number[] = [];

  constructor(private readonly decode: (ids: number[]) => string) {}

  /** The text this token completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.pending.push(id);
    const text = this.decode(this.pending);
    // Up to 3 continuation tokens can follow before a 4-byte character is complete.
    if (text.endsWith('\uFFFD') && this.pending.length < 4) return '';
    this.pending = [];
    return text;
  }

  /** Whatever is still held back (possibly with replacement characters). */
  flush(): string {
    const text = this.pending.length ? this.decode(this.pending) : '';
    this.pending = [];
    return text;
  }
}
