/** The real o200k_harmony tokenizer files (shipped with synthetic checkpoints) load and round-trip. */
import { describe, expect, it } from 'vitest';
import { blobSource } from '../loader/source-blob.ts';
import { GptOssTokenizer } from '../loader/tokenizer.ts';
import { tokenizerFiles } from '../loader/synth-writer-node.ts';
import { readFile } from 'node:fs/promises';

async function load(): Promise<GptOssTokenizer> {
  const files = new Map<string, Blob>();
  for (const f of tokenizerFiles()) files.set(f.name, new Blob([await readFile(f.path)]));
  return GptOssTokenizer.load(blobSource(files));
}

describe('tokenizer', () => {
  it('encodes the SPEC test vector user turn and the special tokens', async () => {
    const tok = await load();
    expect(tok.encode('<|start|>user<|message|>What is 2 + 2?<|end|>')).toEqual([200006, 1428, 200008, 4827, 382, 220, 17, 659, 220, 17, 30, 200007]);
    expect(tok.tokenId('<|call|>')).toBe(200012);
    expect(tok.tokenId('<|return|>')).toBe(200002);
  });

  it('round-trips mixed scripts and emoji, and streams them without broken characters', async () => {
    const tok = await load();
    const text = 'Grüße, 世界! 👩‍🔬 naïve café — ok\n\tcode();';
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    const dec = tok.streamDecoder();
    const pieces = ids.map((id) => dec.push(id));
    pieces.push(dec.flush());
    for (const p of pieces) expect(p.includes('\uFFFD'), `piece ${JSON.stringify(p)}`).toBe(false);
    expect(pieces.join('')).toBe(text);
  });
});
