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

/** The engine's load progress (phases tokenizer, compile, weights, verify; with the file) and the download cache's byte counts. */
export interface ProgressInfo {
  phase?: 'tokenizer' | 'compile' | 'weights' | 'verify';
  file?: string;
  /** Nothing of this phase came from the network so far. */
  fromCache?: boolean;
  bytesDone: number;
  bytesTotal: number;
  networkBytes?: number;
  cachedBytes?: number;
}

/** Downloads above this many bytes are asked about first. */
export const ASK_ABOVE_BYTES = 1e9;

/**
 * The demo worker's own messages (the library's carry its channel field, these a `demo` one):
 * a notice, the load's statistics, each generated token's text (before harmony parsing: shown
 * when the output is not harmony), and a question before a large download.
 */
export type DemoMessage =
  | { demo: 'notice'; text: string }
  | { demo: 'loaded'; stats: LoadStats }
  | { demo: 'token'; text: string }
  | { demo: 'ask-download'; id: number; bytes: number; model: string };

/** The page's answer to 'ask-download'. */
export interface DownloadAnswer {
  demo: 'download-answer';
  id: number;
  ok: boolean;
}
