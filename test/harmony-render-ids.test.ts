/**
 * The async prompt encoder (engine/harmony/render-ids.ts) on big prompts: the same ids as the
 * one-shot renderer, a prompt that cannot fit rejected before any encoding, encoding given up as
 * soon as the count passes the limit, a fitting prompt never rejected, the event loop kept
 * turning, and aborts between slices.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PromptTooLongError, renderPromptIds, renderPromptIdsAsync, type HarmonyConversation, type PromptTokenizer,
} from '../engine/harmony/index.ts';
import type { GptOssTokenizer } from '../loader/tokenizer.ts';
import { realTokenizer } from './helpers/scripted-model.ts';
import { longDocument } from './helpers/text-corpus.ts';

let tok: GptOssTokenizer;
beforeAll(async () => {
  tok = await realTokenizer();
});

/** The real tokenizer, counting what it is asked to encode. */
function counting(): { tok: PromptTokenizer; calls: number; units: number } {
  const c = {
    calls: 0,
    units: 0,
    tok: {
      encode: (text: string, o?: { allowSpecial?: boolean }) => {
        c.calls++;
        c.units += text.length;
        return tok.encode(text, o);
      },
      tokenId: (s: string) => tok.tokenId(s),
      ordinarySlices: (text: string, target: number) => tok.ordinarySlices(text, target),
      maxTokenBytes: () => tok.maxTokenBytes(),
    },
  };
  return c;
}

const ask = (content: string, extra: Partial<HarmonyConversation> = {}): HarmonyConversation => ({ reasoningEffort: 'low', messages: [{ role: 'user', content }], ...extra });

async function rejection(p: Promise<unknown>): Promise<PromptTooLongError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(PromptTooLongError);
  return e as PromptTooLongError;
}

describe('renderPromptIdsAsync', () => {
  it('gives the ids of renderPromptIds on a long prompt of many parts', async () => {
    const conv: HarmonyConversation = {
      reasoningEffort: 'high',
      instructions: longDocument(20_000, 1),
      tools: [{ name: 'f', description: longDocument(5_000, 2) }],
      messages: [
        { role: 'user', content: longDocument(120_000, 3) },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.f', contentType: '<|constrain|>json', content: JSON.stringify({ q: longDocument(10_000, 4) }) },
        { role: 'tool', name: 'functions.f', content: longDocument(30_000, 5) },
      ],
    };
    const c = counting();
    const ids = await renderPromptIdsAsync(conv, c.tok, { maxTokens: 1_000_000 });
    expect(c.calls, 'long texts are encoded in many slices').toBeGreaterThan(50);
    expect(ids).toEqual(renderPromptIds(conv, tok));
  });

  it('rejects a prompt that cannot fit without encoding any of it', async () => {
    const text = longDocument(2_000_000);
    const c = counting();
    const e = await rejection(renderPromptIdsAsync(ask(text), c.tok, { maxTokens: 4095 }));
    expect(c.calls, 'encode calls').toBe(0);
    expect(e.exact).toBe(false);
    expect(e.atLeast).toBeGreaterThanOrEqual(Math.ceil(new TextEncoder().encode(text).length / tok.maxTokenBytes()));
    expect(e.maxTokens).toBe(4095);
  });

  it('stops encoding as soon as the ids pass the limit', async () => {
    const text = longDocument(1_000_000);
    const c = counting();
    const e = await rejection(renderPromptIdsAsync(ask(text), c.tok, { maxTokens: 20_000 }));
    expect(c.units / text.length, 'share of the text encoded before giving up').toBeLessThan(0.25);
    expect(e.atLeast).toBeGreaterThan(20_000);
  });

  it('never rejects a prompt that fits, even of the longest tokens, and counts one over exactly', async () => {
    const texts = ['What is 2 + 2?', ' '.repeat(128 * 40), `a${' '.repeat(12_800)}b`, '='.repeat(3000), longDocument(30_000), '\n'.repeat(5000)];
    for (const text of texts) {
      const conv = ask(text);
      const n = renderPromptIds(conv, tok).length;
      expect((await renderPromptIdsAsync(conv, tok, { maxTokens: n })).length, JSON.stringify(text.slice(0, 30))).toBe(n);
      const e = await rejection(renderPromptIdsAsync(conv, tok, { maxTokens: n - 1 }));
      expect(e.atLeast, JSON.stringify(text.slice(0, 30))).toBe(n);
    }
  });

  it('keeps the event loop turning while it encodes', async () => {
    const text = longDocument(600_000);
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 1);
    const t0 = performance.now();
    try {
      await renderPromptIdsAsync(ask(text), tok, { maxTokens: 1_000_000 });
    } finally {
      clearInterval(timer);
    }
    const took = performance.now() - t0;
    expect(took, 'the encoding takes a while (else this test shows nothing)').toBeGreaterThan(300);
    expect(ticks, `timer ticks during ${took.toFixed(0)} ms of encoding`).toBeGreaterThan(took / 100);
    expect(maxGap, 'longest time the event loop was blocked (ms)').toBeLessThan(250);
  });

  it('stops at an abort between slices', async () => {
    const text = longDocument(600_000);
    const c = counting();
    const ac = new AbortController();
    setTimeout(() => ac.abort(new DOMException('stop', 'AbortError')), 20);
    const e = await renderPromptIdsAsync(ask(text), c.tok, { signal: ac.signal }).then(() => null, (x: unknown) => x);
    expect((e as Error)?.name).toBe('AbortError');
    expect(c.units).toBeLessThan(text.length);
  });
});
