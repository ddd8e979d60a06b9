/**
 * The public entry point: `createEngine({ model })` loads a gpt-oss checkpoint onto WebGPU and
 * offers `engine.chat.completions.create(...)` with OpenAI's shapes, plus a lower-level
 * session API (append tokens, generate, reset, dispose) that the OpenAI surface is built on.
 */
import { Checkpoint } from '../../loader/checkpoint.ts';
import type { GptOssConfig } from '../../loader/config.ts';
import { resolveModelSource, type ModelLocation } from '../../loader/resolve.ts';
import { GptOssTokenizer } from '../../loader/tokenizer.ts';
import { createGpuContext, GpuUnavailableError, type AdapterSummary, type GpuContext } from '../gpu/device.ts';
import { GpuModel, type ModelOptions } from '../gpu-model.ts';
import { GpuSession } from '../gpu-session.ts';
import { generate, type GenerateOptions, type GenerateResult } from '../generate.ts';
import { ModelTooLargeError, type KvFormat } from '../memory-plan.ts';
import { createCompletion, streamCompletion, type LocalChatBackend } from './chat.ts';
import { GpuQueue } from './gpu-queue.ts';
import { remoteCompletion, remoteStream, type FallbackOptions } from './remote.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams } from './types.ts';

export interface LoadProgress {
  bytesDone: number;
  bytesTotal: number;
}

export interface CreateEngineOptions {
  /** A URL, a Hugging Face repo id, a local directory (Node, Deno), browser Files, or a ModelSource. */
  model: ModelLocation;
  onProgress?: (p: LoadProgress) => void;
  /** Longest prompt + answer (default min(4096, the model's maximum)). */
  contextLimit?: number;
  kvFormat?: KvFormat;
  maxBatch?: number;
  /** GPU memory to plan against, when known. */
  memoryLimit?: number;
  /** A GPU object to use instead of navigator.gpu / npm webgpu. */
  gpu?: GPU;
  /** The name this engine answers to (default: the model location's last path part). */
  modelId?: string;
  /** Where to send requests when WebGPU is unavailable or the model does not fit. */
  fallback?: FallbackOptions;
  signal?: AbortSignal;
}

export interface ChatCompletionsApi {
  create(params: ChatCompletionCreateParams & { stream: true }, options?: { signal?: AbortSignal }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(params: ChatCompletionCreateParams & { stream?: false | null }, options?: { signal?: AbortSignal }): Promise<ChatCompletion>;
  create(params: ChatCompletionCreateParams, options?: { signal?: AbortSignal }): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}

export interface Engine {
  /** 'local' (WebGPU) or 'fallback' (the remote server). */
  readonly backend: 'local' | 'fallback';
  readonly modelId: string;
  /** Why the fallback answers (e.g. no WebGPU); undefined when local. */
  readonly fallbackReason?: string;
  readonly chat: { completions: ChatCompletionsApi };
  /** Only for the local backend. */
  readonly config?: GptOssConfig;
  readonly adapter?: AdapterSummary;
  readonly tokenizer?: GptOssTokenizer;
  /** Generations running or waiting for the GPU (0 for the fallback). */
  readonly pending: number;
  /** A token-level session sharing the engine's GPU lock (local backend only). */
  createSession(): TextSession;
  dispose(): Promise<void>;
}

/** The low-level API: tokens in, tokens out, one generation at a time on the engine's GPU. */
export class TextSession {
  private disposed = false;
  constructor(private readonly session: GpuSession, private readonly queue: GpuQueue) {}

  get position(): number {
    return this.session.position;
  }

  /** Feeds tokens into the KV cache (prefill). */
  append(tokens: number[]): Promise<void> {
    return this.queue.run(async () => {
      await this.session.append(tokens);
    });
  }

  /** Generates after what was appended; `prompt` tokens are appended first. */
  generate(options: GenerateOptions & { prompt?: number[] }): Promise<GenerateResult> {
    return this.queue.run(() => generate(this.session, options.prompt ?? [], options), options.signal);
  }

  reset(): void {
    this.session.reset();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.session.dispose();
  }
}

export async function createEngine(options: CreateEngineOptions): Promise<Engine> {
  try {
    return await createLocalEngine(options);
  } catch (e) {
    const reason = fallbackReason(e);
    if (options.fallback && reason) return createRemoteEngine(options.fallback, reason);
    throw e;
  }
}

function fallbackReason(e: unknown): string | undefined {
  if (e instanceof GpuUnavailableError || e instanceof ModelTooLargeError) return e.message;
  if (e instanceof Error && /out of memory/i.test(e.message)) return e.message;
  return undefined;
}

function defaultModelId(model: ModelLocation): string {
  if (typeof model === 'string' || model instanceof URL) {
    const parts = String(model).replace(/\/+$/, '').split(/[\\/]/).filter((s) => s && s !== 'resolve' && s !== 'main');
    return parts.length >= 2 && /huggingface\.co$/.test(parts[parts.length - 3] ?? '') ? `${parts.at(-2)}/${parts.at(-1)}` : parts.at(-1) ?? 'gpt-oss';
  }
  return 'gpt-oss';
}

async function createLocalEngine(o: CreateEngineOptions): Promise<Engine> {
  // The GPU first: without one, nothing of the model is downloaded before falling back.
  const gpu: GpuContext = await createGpuContext({ gpu: o.gpu });
  let ck: Checkpoint;
  try {
    ck = await Checkpoint.open(await resolveModelSource(o.model));
  } catch (e) {
    gpu.destroy();
    throw e;
  }
  let model: GpuModel | undefined;
  try {
    const tokenizer = await GptOssTokenizer.load(ck.source);
    // Prompts are bounded by the longest token: find it now (a scan of the vocabulary) rather than in the first request.
    tokenizer.maxTokenBytes();
    const modelOptions: ModelOptions = {
      contextLimit: o.contextLimit, kvFormat: o.kvFormat, maxBatch: o.maxBatch, memoryLimit: o.memoryLimit, signal: o.signal,
      onProgress: o.onProgress ? (bytesDone, bytesTotal) => o.onProgress!({ bytesDone, bytesTotal }) : undefined,
    };
    model = await GpuModel.load(ck, gpu, modelOptions);
    const queue = new GpuQueue();
    const backend: LocalChatBackend = {
      modelId: o.modelId ?? defaultModelId(o.model),
      tokenizer,
      session: new GpuSession(model),
      queue,
      contextLimit: model.contextLimit,
    };
    const loaded = model;
    const ctx = gpu;
    const sessions = new Set<TextSession>();
    return {
      backend: 'local',
      modelId: backend.modelId,
      config: ck.config,
      adapter: gpu.info,
      tokenizer,
      get pending() {
        return queue.depth;
      },
      chat: { completions: { create: ((params: ChatCompletionCreateParams, opts?: { signal?: AbortSignal }) =>
        params.stream ? streamCompletion(backend, params, opts?.signal) : createCompletion(backend, params, opts?.signal)) as ChatCompletionsApi['create'] } },
      createSession() {
        const s = new TextSession(new GpuSession(loaded), queue);
        sessions.add(s);
        return s;
      },
      async dispose() {
        await queue.run(async () => {
          for (const s of sessions) s.dispose();
          backend.session.dispose();
          loaded.dispose();
          await ck.close();
          ctx.destroy();
        });
      },
    };
  } catch (e) {
    model?.dispose();
    gpu.destroy();
    await ck.close();
    throw e;
  }
}

function createRemoteEngine(f: FallbackOptions, reason: string): Engine {
  return {
    backend: 'fallback',
    modelId: f.model,
    fallbackReason: reason,
    pending: 0,
    chat: { completions: { create: (async (params: ChatCompletionCreateParams, opts?: { signal?: AbortSignal }) =>
      params.stream ? remoteStream(f, params, opts?.signal) : remoteCompletion(f, params, opts?.signal)) as ChatCompletionsApi['create'] } },
    createSession() {
      throw new Error(`the fallback backend has no token-level sessions (${reason})`);
    },
    async dispose() {},
  };
}
