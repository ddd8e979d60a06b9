/**
 * What the chat page and its engine worker share beyond the library's worker engine
 * (createWorkerEngine / serveEngineInWorker): the demo's load settings, sent along with
 * createEngine's options, and the demo's own messages from the worker (a storage notice during
 * the load, the download statistics at its end).
 */
import type { AdapterSummary } from '../../index.ts';

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

/** What the download went through (the worker's cache statistics). */
export interface LoadStats {
  totalBytes: number;
  networkBytes: number;
  cachedBytes: number;
  /** Set when the storage quota is too small to cache the model (it is then loaded uncached). */
  quotaWarning?: string;
}

export interface LoadInfo extends LoadStats {
  modelId: string;
  backend: 'local' | 'fallback';
  adapter?: AdapterSummary;
  /** Why the fallback endpoint answers (backend 'fallback'). */
  fallbackReason?: string;
}

/** The worker engine's progress, with the download cache's counts added by the demo worker. */
/** The engine's load progress (phases tokenizer, compile, weights, verify; with the file) and the download cache's byte counts. */
export interface ProgressInfo {
  phase?: 'tokenizer' | 'compile' | 'weights' | 'verify';
  file?: string;
  bytesDone: number;
  bytesTotal: number;
  networkBytes?: number;
  cachedBytes?: number;
}

/** The demo worker's own messages (the library's carry its channel field, these a `demo` one). */
export type DemoMessage =
  | { demo: 'notice'; text: string }
  | { demo: 'loaded'; stats: LoadStats };
