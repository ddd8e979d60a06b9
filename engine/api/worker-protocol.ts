/**
 * The messages between createWorkerEngine (the page) and serveEngineInWorker (the worker). Each
 * carries `channel: CHANNEL`, so an app's worker can handle its own messages beside them. Every
 * request has an id; the worker answers it with 'result' or 'error', after any 'progress',
 * 'chunk' or 'token' messages for it. 'device-lost' comes unasked (id 0).
 */
import type { AdapterSummary } from '../gpu/device.ts';
import type { GptOssConfig } from '../../loader/config.ts';
import type { GenerateOptions } from '../generate.ts';
import type { EngineState } from './gpu-runtime.ts';
import type { ChatCompletionChunk, ChatCompletionCreateParams } from './types.ts';
import type { WireError } from './wire-error.ts';

export const CHANNEL = 'gpt-oss-webgpu/engine';

/** What the page knows of the engine without asking (updated after a recovery). */
export interface EngineInfo {
  backend: 'local' | 'fallback';
  modelId: string;
  fallbackReason?: string;
  config?: GptOssConfig;
  adapter?: AdapterSummary;
  state: EngineState;
}

/** GenerateOptions without what cannot cross (signal, onToken: sent as messages instead). */
export type WireGenerateOptions = Omit<GenerateOptions, 'signal' | 'onToken'> & { prompt?: number[] };

export type SessionOp =
  | { op: 'create' }
  | { op: 'append'; tokens: number[] }
  | { op: 'generate'; options: WireGenerateOptions; tokens: boolean }
  | { op: 'reset' }
  | { op: 'dispose' };

type Req<T> = T & { channel: typeof CHANNEL; id: number };

export type ToWorker =
  /** `options`: createEngine's options less functions and signals; `progress`: send progress. */
  | Req<{ type: 'load'; options: Record<string, unknown>; progress: boolean }>
  | Req<{ type: 'create'; params: ChatCompletionCreateParams; options: { defaultMaxTokens?: number; timeLimitMs?: number } }>
  /** Aborts request `id` (a create, a session's generate, a load or a recovery). */
  | Req<{ type: 'abort'; reason?: WireError }>
  /** A guardrail's stop for create `id`: ends the generation as a stop string would. */
  | Req<{ type: 'stop' }>
  | Req<{ type: 'session'; session: number } & SessionOp>
  | Req<{ type: 'recover'; progress: boolean }>
  | Req<{ type: 'dispose' }>;

export type FromWorker =
  | Req<{ type: 'progress'; progress: unknown }>
  /** A streamed create has started (its request passed validation); chunks follow. */
  | Req<{ type: 'started' }>
  | Req<{ type: 'chunk'; chunk: ChatCompletionChunk }>
  | Req<{ type: 'token'; token: number }>
  | Req<{ type: 'result'; value: unknown }>
  | Req<{ type: 'error'; error: WireError }>
  | Req<{ type: 'device-lost'; error: WireError }>;

export function isMessage<T extends { channel: string }>(data: unknown): data is T {
  return typeof data === 'object' && data !== null && (data as { channel?: unknown }).channel === CHANNEL;
}
