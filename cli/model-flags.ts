/**
 * What the commands that load a model through createEngine (serve, chat) share: where the
 * files' hashes come from (--manifest), the Hugging Face revision (--revision) and access token
 * (the HF_TOKEN environment variable: never a flag, so it stays out of shell history and ps),
 * warnings on stderr, and a progress line for the weights.
 */
import type { CreateEngineOptions, LoadProgress } from '../engine/api/engine.ts';
import { formatBytes } from './args.ts';

export const MODEL_SOURCE_FLAGS = { manifest: { type: 'string' }, revision: { type: 'string' } } as const;

export const MODEL_SOURCE_USAGE = [
  '--manifest FILE|URL  sha256sum-format hashes to check the model files against (default: the Hugging Face',
  '                     hub\'s for a repo, or manifest.sha256 beside the files); a mismatch stops the load.',
  '--revision REV       Hugging Face branch, tag or commit (default main). HF_TOKEN: access token for gated repos.',
];

export function modelSourceOptions(values: { manifest?: string; revision?: string }): Pick<CreateEngineOptions, 'manifest' | 'huggingFace' | 'onWarning'> {
  return {
    manifest: values.manifest,
    huggingFace: { revision: values.revision, token: process.env.HF_TOKEN || undefined },
    onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
  };
}

/** Prints the weights' progress to stderr every 2 s and at the end. */
export function progressPrinter(): (p: LoadProgress) => void {
  let last = 0;
  return ({ phase, bytesDone, bytesTotal }) => {
    if (phase !== 'weights') return;
    const now = Date.now();
    if (now - last > 2000 || bytesDone === bytesTotal) {
      last = now;
      process.stderr.write(`loading ${formatBytes(bytesDone)} / ${formatBytes(bytesTotal)}\n`);
    }
  };
}
