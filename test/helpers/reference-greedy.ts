/** Greedy decoding on the CPU reference: the token sequence GPU generation must reproduce. */
import type { ReferenceModel } from '../../engine/reference/model.ts';

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** `n` greedy tokens after `prompt`, with the reference's f32 or 8-bit KV cache. */
export function referenceGreedy(ref: ReferenceModel, prompt: number[], n: number, kv: 'f32' | 'q8' = 'f32'): number[] {
  const s = ref.newSession({ kv });
  let logits = s.forward(prompt);
  const V = ref.config.vocabSize;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = argmax(logits.subarray(logits.length - V));
    out.push(id);
    logits = s.forward([id]);
  }
  return out;
}
