/**
 * Encoding a text in slices (loader/tokenizer-slices.ts) gives the ids of encoding it whole: on
 * the tokenizer test corpora, a fuzz corpus built from the characters the pre-tokenizer treats
 * specially around the cut points, and long documents. Also the bounds the prompt encoder relies
 * on: the UTF-8 length, and no text encoding to fewer than bytes / longest-token ids.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8Length } from '../engine/harmony/index.ts';
import { tokenizerFiles } from '../loader/synth-writer-node.ts';
import { exactSlices, slicesAreExact } from '../loader/tokenizer-slices.ts';
import type { GptOssTokenizer } from '../loader/tokenizer.ts';
import { realTokenizer } from './helpers/scripted-model.ts';
import { fuzzCorpus, longDocument, mulberry32, VARIED } from './helpers/text-corpus.ts';

const TOKENIZER_JSON = JSON.parse(readFileSync(tokenizerFiles().find((f) => f.name === 'tokenizer.json')!.path, 'utf8')) as Record<string, unknown>;

/** Strings over the characters that decide where o200k's pre-tokenizer splits near a cut. */
function edgeCorpus(count: number, seed = 99): string[] {
  const alphabet = ['a', 'Z', 's', 'é', 'e\u0301', '\u0301', '中', '𠜎', 'ǅ', '1', '٣', '½', ' ', '  ', '\n', '\r\n', '\r', '\t', '\u00a0', '\u3000',
    '/', "'", "'s", "'LL", '.', ';', '!', '-', '👍', '\u200d', '<|end|>', '\ufeff', '\u2029'];
  const rnd = mulberry32(seed);
  return Array.from({ length: count }, () => {
    let s = '';
    const len = 1 + Math.floor(rnd() * 24);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    return s;
  });
}

let tok: GptOssTokenizer;
beforeAll(async () => {
  tok = await realTokenizer();
});

function expectSlicedEqualsWhole(texts: string[], target: number): number {
  let cuts = 0;
  const bad: string[] = [];
  for (const text of texts) {
    const slices = [...exactSlices(text, target)];
    cuts += slices.length - 1;
    if (slices.join('') !== text) bad.push(`slices do not join to ${JSON.stringify(text)}`);
    const sliced = slices.flatMap((s) => tok.encode(s, { allowSpecial: false }));
    const whole = tok.encode(text, { allowSpecial: false });
    if (JSON.stringify(sliced) !== JSON.stringify(whole)) {
      bad.push(`target ${target}: ${JSON.stringify(text)} cut as ${JSON.stringify(slices)}: ${sliced.join(',')} instead of ${whole.join(',')}`);
    }
  }
  expect(bad.slice(0, 5), `${bad.length} of ${texts.length} texts encode differently in slices`).toEqual([]);
  return cuts;
}

describe('exact slices', () => {
  it('are proven for the shipped tokenizer.json and for no other pre-tokenizer', () => {
    expect(slicesAreExact(TOKENIZER_JSON)).toBe(true);
    const pre = TOKENIZER_JSON.pre_tokenizer as { pretokenizers: { pattern?: { Regex: string }; use_regex?: boolean }[] };
    const variants: Record<string, unknown>[] = [
      { ...TOKENIZER_JSON, normalizer: { type: 'NFC' } },
      { ...TOKENIZER_JSON, pre_tokenizer: { ...pre, pretokenizers: [{ ...pre.pretokenizers[0], pattern: { Regex: pre.pretokenizers[0]!.pattern!.Regex.replace('|\\s+(?!\\S)', '') } }, pre.pretokenizers[1]] } },
      { ...TOKENIZER_JSON, pre_tokenizer: { ...pre, pretokenizers: [pre.pretokenizers[0], { ...pre.pretokenizers[1], use_regex: true }] } },
      { ...TOKENIZER_JSON, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true } },
    ];
    for (const v of variants) expect(slicesAreExact(v), JSON.stringify(v.pre_tokenizer).slice(0, 80)).toBe(false);
  });

  it('encode like the whole text: the tokenizer corpora, cut wherever possible', () => {
    const texts = [...VARIED, ...fuzzCorpus(3000)];
    let cuts = 0;
    for (const target of [1, 4]) cuts += expectSlicedEqualsWhole(texts, target);
    expect(cuts, 'cuts made in the corpora').toBeGreaterThan(3000);
  });

  it('encode like the whole text: 10000 strings of the characters around cut points', () => {
    // Wrong cuts are caught: after '\n' before any non-space ('/'), about 15 texts differ; before a space after a space, about 1200.
    const texts = edgeCorpus(10000);
    const cuts = expectSlicedEqualsWhole(texts, 1);
    expect(cuts, 'cuts made in the edge corpus').toBeGreaterThan(3000);
  });

  it('encode like the whole text: long documents, at the slice size the prompt encoder uses', () => {
    const doc = longDocument(300_000);
    const slices = [...tok.ordinarySlices(doc, 2048)];
    expect(slices.length, 'a 300k-unit document is cut into many slices').toBeGreaterThan(100);
    expect(Math.max(...slices.map((s) => s.length)), 'no slice is far over the target').toBeLessThan(4096);
    expect(slices.flatMap((s) => tok.encode(s, { allowSpecial: false }))).toEqual(tok.encode(doc, { allowSpecial: false }));
    for (const seed of [1, 2, 3]) expectSlicedEqualsWhole([longDocument(20_000, seed)], 37);
  });

  it('leave a text without cut points whole', () => {
    expect([...exactSlices('x'.repeat(10_000), 100)]).toEqual(['x'.repeat(10_000)]);
    expect([...exactSlices(' '.repeat(5000), 100)]).toHaveLength(1);
    expect([...exactSlices('', 100)]).toEqual(['']);
  });
});

describe('prompt size bounds', () => {
  it('measure UTF-8 as TextEncoder does, lone surrogates included', () => {
    const enc = new TextEncoder();
    for (const text of [...VARIED, ...fuzzCorpus(500), '\ud800', 'a\udc00b', '\ud83d\ude00\ud83d', '']) {
      expect(utf8Length(text), JSON.stringify(text)).toBe(enc.encode(text).length);
    }
  });

  it('no text encodes to fewer than ceil(bytes / maxTokenBytes) ids', () => {
    const longest = tok.maxTokenBytes();
    expect(longest, 'o200k has tokens of 128 spaces').toBeGreaterThanOrEqual(128);
    const texts = [...VARIED, ...fuzzCorpus(1000), ...edgeCorpus(1000), ' '.repeat(4096), 'a' + ' '.repeat(1000) + 'b', '='.repeat(2000), longDocument(50_000)];
    for (const text of texts) {
      const n = tok.encode(text, { allowSpecial: false }).length;
      expect(n, JSON.stringify(text.slice(0, 60))).toBeGreaterThanOrEqual(Math.ceil(utf8Length(text) / longest));
    }
  });
});
