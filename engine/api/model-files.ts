/**
 * The files side of createEngine: the model location resolved (cache, Hugging Face revision and
 * token), the hashes to check it against found (loader/digests.ts), the checkpoint and tokenizer
 * opened through the integrity check (loader/integrity.ts), and the load's progress in phases:
 * 'tokenizer' (its files read), 'compile' (the kernels built), 'weights' (streamed to the GPU,
 * hashed as they go), 'verify' (the rest of each file hashed and every hash compared).
 */
import { Checkpoint } from '../../loader/checkpoint.ts';
import { findDigests, type ManifestOption } from '../../loader/digests.ts';
import type { HuggingFaceOptions } from '../../loader/hub.ts';
import { checkedSource, type CheckedSource, type VerifyPolicy } from '../../loader/integrity.ts';
import { resolveModelSource, type ModelLocation } from '../../loader/resolve.ts';
import { GptOssTokenizer } from '../../loader/tokenizer.ts';
import type { ModelOptions } from '../gpu-model.ts';

export type LoadPhase = 'tokenizer' | 'compile' | 'weights' | 'verify';

export interface LoadProgress {
  /** 'tokenizer', 'compile', 'weights', 'verify', in that order. */
  phase: LoadPhase;
  /** The file the bytes came from ('tokenizer' and 'weights'; 'verify' while it hashes one). */
  file?: string;
  /** Bytes so far and in all: of the file ('tokenizer'), of the weights ('weights'), to hash ('verify'); 'compile': 0 of 1, then 1 of 1. */
  bytesDone: number;
  bytesTotal: number;
  /** Nothing of this phase so far came from the network: the browser cache served it. False for uncached sources. */
  fromCache: boolean;
  /** Milliseconds since the load started. */
  elapsedMs: number;
}

export interface ModelFilesOptions {
  model: ModelLocation;
  /** Expected sha256 of the files: a manifest's path or URL, or its entries. */
  manifest?: ManifestOption;
  verify?: VerifyPolicy;
  huggingFace?: HuggingFaceOptions;
  cache?: boolean | string;
  onProgress?: (p: LoadProgress) => void;
  onWarning?: (message: string) => void;
}

export interface ModelFiles {
  ck: Checkpoint;
  tokenizer: GptOssTokenizer;
  integrity: CheckedSource;
  /** GpuModel.load's progress and verify hooks, reporting to `onProgress`; `reload`: after a device loss (a new clock). */
  hooks(onProgress: ((p: LoadProgress) => void) | undefined, reload: boolean): Pick<ModelOptions, 'onProgress' | 'onCompileProgress' | 'verify'>;
}

export async function openModelFiles(o: ModelFilesOptions): Promise<ModelFiles> {
  let t0 = performance.now();
  const source = await resolveModelSource(o.model, { huggingFace: o.huggingFace, cache: o.cache });
  const net = () => source.cache?.networkBytes ?? 0;
  let listener = o.onProgress;
  const phaseStart = new Map<LoadPhase, number>();
  const emit = (phase: LoadPhase, bytesDone: number, bytesTotal: number, file?: string) => {
    if (!listener) return;
    if (!phaseStart.has(phase)) phaseStart.set(phase, net());
    const fromCache = source.cache !== undefined && net() === phaseStart.get(phase);
    listener({ phase, ...(file === undefined ? {} : { file }), bytesDone, bytesTotal, fromCache, elapsedMs: performance.now() - t0 });
  };
  const verify = o.verify === 'never' ? undefined : await findDigests(source, o.manifest);
  const integrity = checkedSource(source, {
    digests: verify,
    policy: o.verify,
    onWarning: o.onWarning,
    onVerifyProgress: (p) => emit('verify', p.bytesDone, p.bytesTotal, p.file),
  });
  const ck = await Checkpoint.open(integrity.source);
  let tokenizer: GptOssTokenizer;
  try {
    phaseStart.set('tokenizer', net()); // its first event comes after its first read
    tokenizer = await GptOssTokenizer.load(ck.source, (file, done, total) => emit('tokenizer', done, total, file));
  } catch (e) {
    await ck.close();
    throw e;
  }
  return {
    ck,
    tokenizer,
    integrity,
    hooks(onProgress, reload) {
      listener = onProgress;
      if (reload) {
        t0 = performance.now();
        phaseStart.clear();
      }
      return {
        onCompileProgress: (done, total) => emit('compile', done, total),
        onProgress: (done, total, file) => emit('weights', done, total, file),
        verify: () => integrity.finish(),
      };
    },
  };
}
