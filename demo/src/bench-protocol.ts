/** Messages between the benchmark page (bench.ts) and its worker (bench-worker.ts), and the report it produces. */
import type { AdapterSummary, GptOssConfig, KvFormat } from '../../index.ts';
import type { BenchResult, DecodeBytes } from '../../bench/decode-prefill.ts';

export interface BenchRunOptions {
  promptLen: number;
  gen: number;
  repeat: number;
  kvFormat: KvFormat;
  /** Context limit of the KV cache; undefined: the engine's default, min(4096, max positions). */
  contextLimit?: number;
  /** Also time each kernel for one prefill batch and one decode token. */
  profile: boolean;
  /** Cache HTTP downloads in the Cache API. */
  cache: boolean;
}

/** The adapter as the page shows it: the engine's summary plus the fallback and shader-f16 flags. */
export interface BenchAdapter extends AdapterSummary {
  /** A CPU implementation (SwiftShader, WARP...). */
  fallback: boolean;
  /** shader-f16 was granted to the device. */
  f16: boolean;
}

/**
 * Everything one benchmark run measured, as "Copy JSON" gives it. Same kind and top-level
 * fields as `gptoss bench --json` (cli/bench.ts), with the browser in `runtime` and `load` added.
 */
export interface BenchReport {
  kind: 'gptoss-bench';
  version: 1;
  date: string;
  runtime: { userAgent: string; hardwareConcurrency?: number; where: 'browser-worker' };
  adapter: BenchAdapter;
  model: { source: string; description: string; config: GptOssConfig; weightBytes: number };
  kvFormat: KvFormat;
  context: number;
  maxBatch: number;
  decodeWeightBytes: DecodeBytes;
  load: {
    /** The model was still on the GPU from the previous run with the same model, KV format and context. */
    reused: boolean;
    seconds: number;
    networkBytes: number;
    cachedBytes: number;
    /** Set when the storage quota was too small to cache the model (it was then loaded uncached). */
    quotaWarning?: string;
  };
  result: BenchResult;
}

export type BenchProgress =
  | { phase: 'download'; bytesDone: number; bytesTotal: number; networkBytes: number; cachedBytes: number }
  | { phase: 'bench'; message: string };

export type ToBenchWorker =
  | { type: 'adapter'; id: number }
  | { type: 'run'; id: number; model: string | FileSystemDirectoryHandle; options: BenchRunOptions };

export type FromBenchWorker =
  | { type: 'progress'; id: number; progress: BenchProgress }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: { name: string; message: string } };
