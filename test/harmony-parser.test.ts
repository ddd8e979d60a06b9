/** The streaming harmony parser over real o200k_harmony token streams, split and malformed. */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { blobSource } from '../loader/source-blob.ts';
import { GptOssTokenizer } from '../loader/tokenizer.ts';
import { tokenizerFiles } from '../loader/synth-writer-node.ts';
import { HarmonyParser, type HarmonyEvent } from '../engine/harmony/index.ts';

let tok: GptOssTokenizer;
beforeAll(async () => {
  const files = new Map<string, Blob>();
  for (const f of tokenizerFiles()) files.set(f.name, new Blob([await readFile(f.path)]));
  tok = await GptOssTokenizer.load(blobSource(files));
});

function run(text: string, opts: { finish?: boolean } = {}): HarmonyEvent[] {
  const p = new HarmonyParser();
  const dec = tok.streamDecoder();
  const events: HarmonyEvent[] = [];
  for (const id of tok.encode(text)) events.push(...p.push(id, dec.push(id)));
  if (opts.finish !== false) events.push(...p.finish());
  return events;
}

const dones = (ev: HarmonyEvent[]) => ev.filter((e) => e.type === 'done');

describe('HarmonyParser', () => {
  it('parses a full analysis + final answer (docs/format.md example output)', () => {
    const ev = run('<|channel|>analysis<|message|>User asks: "What is 2 + 2?" Simple arithmetic.<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>');
    expect(ev[0]).toEqual({ type: 'message', channel: 'analysis' });
    expect(dones(ev)).toEqual([
      { type: 'done', channel: 'analysis', content: 'User asks: "What is 2 + 2?" Simple arithmetic.', end: 'end' },
      { type: 'done', channel: 'final', content: '2 + 2 = 4.', end: 'return' },
    ]);
    const finalDeltas = ev.filter((e) => e.type === 'content' && e.channel === 'final').map((e) => (e as { delta: string }).delta);
    expect(finalDeltas.join('')).toBe('2 + 2 = 4.');
    expect(ev.some((e) => e.type === 'malformed')).toBe(false);
  });

  it('parses a tool call, with the recipient after or before the channel', () => {
    for (const header of ['<|channel|>commentary to=functions.get_weather <|constrain|>json', ' to=functions.get_weather<|channel|>commentary<|constrain|>json']) {
      const ev = run(`<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant${header}<|message|>{"location":"Tokyo"}<|call|>`);
      expect(ev.filter((e) => e.type === 'message')[1]).toEqual({ type: 'message', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json' });
      expect(dones(ev)[1]).toEqual({ type: 'done', channel: 'commentary', recipient: 'functions.get_weather', content: '{"location":"Tokyo"}', end: 'call' });
      expect(ev.some((e) => e.type === 'malformed'), header).toBe(false);
    }
    const ev = run('<|channel|>commentary to=functions.f json<|message|>{}<|call|>');
    expect(ev[0]).toEqual({ type: 'message', channel: 'commentary', recipient: 'functions.f', contentType: 'json' });
  });

  it('accumulates content split across tokens, including multi-byte characters', () => {
    const p = new HarmonyParser();
    const ids = tok.encode('<|channel|>final<|message|>Grüße 👩‍🔬 ok<|return|>');
    const dec = tok.streamDecoder();
    const ev = ids.flatMap((id) => p.push(id, dec.push(id)));
    expect(dones(ev)).toEqual([{ type: 'done', channel: 'final', content: 'Grüße 👩‍🔬 ok', end: 'return' }]);
    expect(ev.filter((e) => e.type === 'content').length).toBeGreaterThan(2);
    // The same text pushed in arbitrary pieces under one fake id.
    const q = new HarmonyParser();
    q.push(200005, '<|channel|>');
    q.push(1, 'fin');
    q.push(2, 'al');
    q.push(200008, '<|message|>');
    const pieces = ['He', 'llo', ' wor', 'ld'].flatMap((t, i) => q.push(10 + i, t));
    expect(pieces.map((e) => (e as { delta: string }).delta).join('')).toBe('Hello world');
    expect(q.push(200002, '<|return|>')).toEqual([{ type: 'done', channel: 'final', content: 'Hello world', end: 'return' }]);
  });

  it('reports finish reasons: truncated mid-message, nothing after a clean stop', () => {
    expect(dones(run('<|channel|>final<|message|>Half an ans'))).toEqual([{ type: 'done', channel: 'final', content: 'Half an ans', end: 'truncated' }]);
    const clean = run('<|channel|>final<|message|>Done.<|return|>', { finish: false });
    const p = new HarmonyParser();
    expect(p.finish()).toEqual([]);
    expect(clean.at(-1)).toMatchObject({ type: 'done', end: 'return' });
    const midHeader = run('<|channel|>comm');
    expect(midHeader).toEqual([{ type: 'malformed', detail: expect.stringContaining('inside a message header') }]);
  });

  it('reports malformed streams and recovers', () => {
    // Missing channel: reported, defaults to final.
    const noChannel = run('<|message|>Hi<|end|>');
    expect(noChannel[0]).toMatchObject({ type: 'malformed' });
    expect(dones(noChannel)).toEqual([{ type: 'done', channel: 'final', content: 'Hi', end: 'end' }]);
    // Text between messages, an unknown special token, a message ended inside its header.
    const ev = run('<|channel|>analysis<|message|>a<|end|>stray text<|start|>assistant<|channel|>final<|endoftext|><|message|>b<|return|>');
    expect(ev.filter((e) => e.type === 'malformed').length).toBe(2);
    expect(dones(ev).map((e) => (e as { content: string }).content)).toEqual(['a', 'b']);
    const cut = run('<|channel|>analysis<|end|><|start|>assistant<|channel|>final<|message|>ok<|return|>');
    expect(cut[0]).toMatchObject({ type: 'malformed' });
    expect(dones(cut)).toEqual([{ type: 'done', channel: 'final', content: 'ok', end: 'return' }]);
    // A new <|start|> before the message ended truncates it.
    const restart = run('<|channel|>final<|message|>x<|start|>assistant<|channel|>final<|message|>y<|return|>');
    expect(dones(restart).map((e) => (e as { end: string }).end)).toEqual(['truncated', 'return']);
  });

  it('never throws on random token soup', () => {
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const specials = [199998, 199999, 200002, 200003, 200005, 200006, 200007, 200008, 200012, 200014, 201087];
    for (let run = 0; run < 200; run++) {
      const p = new HarmonyParser();
      let contentSeen = '';
      for (let i = 0; i < 200; i++) {
        const id = rand() < 0.3 ? specials[Math.floor(rand() * specials.length)]! : Math.floor(rand() * 199998);
        const text = id >= 199998 ? `<|${id}|>` : String.fromCharCode(97 + (id % 26));
        for (const e of p.push(id, text)) if (e.type === 'done') contentSeen += e.content;
      }
      for (const e of p.finish()) expect(['done', 'malformed']).toContain(e.type);
      expect(typeof contentSeen).toBe('string');
    }
  });
});
