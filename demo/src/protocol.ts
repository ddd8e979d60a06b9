/** Messages between the page (worker-proxy.ts) and the engine worker (worker.ts). */
import type { AdapterSummary, CachedModel, ChatCompletionChunk, ChatCompletionCreateParams, LoadProgress } from '../../index.ts';

/** An OpenAI-compatible server that answers when WebGPU is missing or the model does not fit. */
export interface FallbackEndpoint {
  baseURL: string;
  model: string;
  apiKey?: string;
}

/** A model location: URL or Hugging Face repo id, a picked folder's handle, or its files (<input webkitdirectory>). */
export type DemoModel = string | FileSystemDirectoryHandle | File[];

export interface LoadOptions {
  contextLimit?: number;
  /** GPU memory to plan against (WebGPU does not report it); undefined: unknown. */
  memoryLimit?: number;
  /** Cache HTTP downloads in the Cache API (default true). */
  cache?: boolean;
  fallback?: FallbackEndpoint;
}

export interface LoadInfo {
  modelId: string;
  backend: 'local' | 'fallback';
  adapter?: AdapterSummary;
  fallback?: boolean;
  totalBytes: number;
  networkBytes: number;
  cachedBytes: number;
  /** Set when the storage quota is too small to cache the model (it is then loaded uncached). */
  quotaWarning?: string;
  /** Why the fallback endpoint answers (backend 'fallback'). */
  fallbackReason?: string;
}

/** The engine's load progress (phases tokenizer, compile, weights, verify) and the cache's byte counts. */
export interface ProgressInfo extends LoadProgress {
  networkBytes: number;
  cachedBytes: number;
}

export type { CachedModel };

export type ToWorker =
  | { type: 'load'; id: number; model: DemoModel; options: LoadOptions }
  | { type: 'create'; id: number; params: ChatCompletionCreateParams }
  | { type: 'abort'; id: number }
  | { type: 'cache-size'; id: number }
  | { type: 'clear-cache'; id: number }
  /** The models in the download cache (listCachedModels), and deleting one by its URL. */
  | { type: 'list-cache'; id: number }
  | { type: 'delete-model'; id: number; url: string }
  | { type: 'dispose'; id: number }
  /** After a GPU device loss: a new device, the model reloaded (progress messages carry this id). */
  | { type: 'recover'; id: number };

export interface WireError {
  name: string;
  message: string;
  /** ModelLoadError's code, e.g. 'http' for a failed download. */
  code?: string;
  /** DeviceLostError's reason and the implementation's message. */
  reason?: string;
  deviceMessage?: string;
}

export type FromWorker =
  | { type: 'progress'; id: number; progress: ProgressInfo }
  | { type: 'notice'; id: number; text: string }
  | { type: 'chunk'; id: number; chunk: ChatCompletionChunk }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: WireError }
  /** The engine's GPU device was lost (sent when it happens, even between requests; id 0). */
  | { type: 'device-lost'; id: 0; error: WireError };
