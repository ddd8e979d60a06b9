/** Messages between the page (worker-proxy.ts) and the engine worker (worker.ts). */
import type { AdapterSummary, ChatCompletionChunk, ChatCompletionCreateParams } from '../../index.ts';

export interface LoadOptions {
  contextLimit?: number;
  /** Cache HTTP downloads in the Cache API (default true). */
  cache?: boolean;
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
}

export interface ProgressInfo {
  phase: 'download';
  bytesDone: number;
  bytesTotal: number;
  networkBytes: number;
  cachedBytes: number;
}

export type ToWorker =
  | { type: 'load'; id: number; model: string | FileSystemDirectoryHandle; options: LoadOptions }
  | { type: 'create'; id: number; params: ChatCompletionCreateParams }
  | { type: 'abort'; id: number }
  | { type: 'cache-size'; id: number }
  | { type: 'clear-cache'; id: number }
  | { type: 'dispose'; id: number };

export interface WireError {
  name: string;
  message: string;
}

export type FromWorker =
  | { type: 'progress'; id: number; progress: ProgressInfo }
  | { type: 'chunk'; id: number; chunk: ChatCompletionChunk }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: WireError };
