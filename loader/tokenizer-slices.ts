/**
 * Cutting a text into slices whose encodings, joined, equal the encoding of the whole text, so a
 * long prompt can be tokenized a slice at a time (and given up on once it is known to be too long).
 *
 * BPE never merges across pre-tokens, so a cut is exact where o200k's pre-tokenizer regex ends a
 * piece no matter what follows, and where the piece it ends is found the same way in the text cut
 * there. The regex (tokenizer.json, `O200K_SPLIT` below) has seven alternatives: two word forms
 * (an optional char that is not CR/LF/letter/digit, letters and marks, an optional 's 't ... suffix),
 * 1-3 digits, punctuation (` ?[^\s\p{L}\p{N}]+[\r\n/]*`), `\s*[\r\n]+`, `\s+(?!\S)` and `\s+`. None
 * looks behind, and each stops one char past its end at most, so matching up to a piece that ends
 * at p reads nothing past p. We cut only at:
 *
 *  1. a space U+0020 right after a letter or digit: only a word piece holds a letter and only a
 *     digit piece a digit (the optional first char excludes both), and neither takes a space or
 *     needs one to stop, so the piece ends at the cut in the whole text and in the slice;
 *  2. a letter or digit right after '\n': the '\n' sits in a `\s*[\r\n]+` piece, a whitespace
 *     piece or the `[\r\n/]*` tail of a punctuation piece; none takes a letter or digit, and
 *     `\s*[\r\n]+` comes before the whitespace forms whose lookahead would read past the cut.
 *
 * The text after a cut is then split exactly as the slice starting there. Any other pre-tokenizer
 * gets no cuts (see `slicesAreExact`). A long run with no cut (a 100 KB word, a run of spaces) is
 * one slice: it is one pre-token, which no exact method could split.
 */

/** The Split regex of o200k_harmony's tokenizer.json. */
const O200K_SPLIT =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
  "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
  '|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether the cuts above are proven for this tokenizer.json: no normalizer, o200k's split, then byte-level mapping only. */
export function slicesAreExact(tokenizerJson: unknown): boolean {
  if (!isObj(tokenizerJson) || (tokenizerJson.normalizer !== null && tokenizerJson.normalizer !== undefined)) return false;
  const pre = tokenizerJson.pre_tokenizer;
  if (!isObj(pre) || pre.type !== 'Sequence' || !Array.isArray(pre.pretokenizers) || pre.pretokenizers.length !== 2) return false;
  const [split, bytes] = pre.pretokenizers as unknown[];
  return isObj(split) && split.type === 'Split' && isObj(split.pattern) && split.pattern.Regex === O200K_SPLIT &&
    split.behavior === 'Isolated' && split.invert === false &&
    isObj(bytes) && bytes.type === 'ByteLevel' && bytes.use_regex === false && bytes.add_prefix_space === false;
}

/** The cut positions: a space after a letter or digit (1), a letter or digit after '\n' (2). */
const CUT = /(?<=[\p{L}\p{N}]) |(?<=\n)[\p{L}\p{N}]/gu;

/** Slices of at least `target` UTF-16 units (the last one, or a text without cuts, may be shorter or longer). */
export function* exactSlices(text: string, target: number): Generator<string> {
  const cut = new RegExp(CUT);
  let start = 0;
  while (text.length - start > target) {
    let from = start + target;
    // A unicode regex started inside a surrogate pair backs up to the pair: start after it.
    if ((text.charCodeAt(from) & 0xfc00) === 0xdc00 && (text.charCodeAt(from - 1) & 0xfc00) === 0xd800) from++;
    cut.lastIndex = from;
    const m = cut.exec(text);
    if (!m) break;
    yield text.slice(start, m.index);
    start = m.index;
  }
  yield text.slice(start);
}
