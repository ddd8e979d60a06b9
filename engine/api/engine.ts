/**
 * The public entry point: `createEngine({ model })` loads a gpt-oss checkpoint onto WebGPU and
 * offers `engine.chat.completions.create(...)` with OpenAI's shapes, plus a lower-level
 * session API (append tokens, generate, reset, dispose) that the OpenAI surface is built on.
 * When the GPU device is lost, requests fail with DeviceLostError until `engine.recover()`
 * re-creates the device and reloads the weights (engine/api/gpu-runtime.ts).
 */
import type { GptOssConfig } from '../../loader/config.ts';
import type { ManifestOption } from '../../loader/digests.ts';
import type { HuggingFaceOptions } from '../../loader/hub.ts';
import type { IntegrityReport, VerifyPolicy } from '../../loader/integrity.ts';
import type { ModelLocation } from '../../loader/resolve.ts';
import type { GptOssTokenizer } from '../../loader/tokenizer.ts';
import { createGpuContext, GpuUnavailableError, type AdapterSummary, type GpuContext } from '../gpu/device.ts';
import type { DeviceLostError } from '../gpu/device-lost.ts';
import { GpuModel, type ModelOptions } from '../gpu-model.ts';
import { GpuSession } from '../gpu-session.ts';
import { ModelTooLargeError, type KvFormat, type WeightFormat } from '../memory-plan.ts';
import { createCompletion, streamCompletion, type LocalChatBackend, type RunOptions } from './chat.ts';
import { GpuQueue } from './gpu-queue.ts';
import { SessionPool } from './session-pool.ts';
import { GpuRuntime, type EngineState } from './gpu-runtime.ts';
import { guardCreate, type Guardrails } from './guardrails.ts';
import { openModelFiles, type LoadProgress, type ModelFiles } from './model-files.ts';
import { remoteCompletion, remoteStream, type FallbackOptions } from './remote.ts';
import { LocalTextSession, type TextSession } from './text-session.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams } from './types.ts';

export type { TextSession };
export type { LoadPhase, LoadProgress } from './model-files.ts';

export interface CreateEngineOptions {
  /** A URL, a Hugging Face repo id, a local directory (Node, Deno), browser Files, or a ModelSource. */
  model: ModelLocation;
  /** Load progress in phases: 'tokenizer', 'compile', 'weights', 'verify' (engine/api/model-files.ts). */
  onProgress?: (p: LoadProgress) => void;
  /**
   * The files' expected sha256 (a `sha256sum` manifest's path or URL, or its entries). Without it,
   * a Hugging Face repo is checked against the hub's hashes, and any folder against a
   * `manifest.sha256` beside its files. A mismatch fails the load with IntegrityError.
   */
  manifest?: ManifestOption;
  /** 'auto' (default): hash everything except browser-cached copies already verified; 'always'; 'never'. */
  verify?: VerifyPolicy;
  /** Hugging Face revision, access token (gated or private repos; sent to the hub only, never logged) and hub URL. */
  huggingFace?: HuggingFaceOptions;
  /** Keep downloads in the browser's Cache API (true or a cache name; default: on in browsers). */
  cache?: boolean | string;
  /** Non-fatal load warnings, e.g. that there is no hash to check the files against (default console.warn). */
  onWarning?: (message: string) => void;
  /** Longest prompt + answer (default min(4096, the model's maximum)). */
  contextLimit?: number;
  kvFormat?: KvFormat;
  /** 'q8': 8-bit attention projections and lm_head, quantised at load (less memory, faster decode, stated error); default 'bf16' (exact). */
  weights?: WeightFormat;
  /**
   * Conversations whose KV cache is kept between requests (default 1): a request that repeats
   * the start of an earlier one (the next turn of a chat) prefills only what is new and reports
   * the rest as usage.prompt_tokens_details.cached_tokens. Each costs one session's KV cache
   * and activations (`gptoss plan --sessions N`).
   */
  conversations?: number;
  /**
   * Keep the sliding-window layers' cache for the whole context (default true), so the next turn
   * can reuse it after a long answer; false keeps only the window (less memory, fewer reuses).
   */
  kvReuse?: boolean;
  maxBatch?: number;
  /** GPU memory to plan against, when known. */
  memoryLimit?: number;
  /** A GPU object to use instead of navigator.gpu / npm webgpu. */
  gpu?: GPU;
  /** The name this engine answers to (default: the model location's last path part). */
  modelId?: string;
  /** Where to send requests when WebGPU is unavailable or the model does not fit. */
  fallback?: FallbackOptions;
  /** Checks of each request and answer, for the local and the fallback backend alike (guardrails.ts). */
  guardrails?: Guardrails;
  signal?: AbortSignal;
}

/**
 * `signal` aborts the call. `defaultMaxTokens` and `timeLimitMs` bound a generation (the HTTP
 * server's --max-tokens-cap and --request-timeout); the fallback backend leaves them to its server.
 * `stop` ends the generation as a stop string would (guardrails use it; the fallback cancels the request).
 */
export type CreateOptions = RunOptions;

export interface RecoverOptions {
  /** Upload progress of the reload (default: createEngine's onProgress). */
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

export interface ChatCompletionsApi {
  create(params: ChatCompletionCreateParams & { stream: true }, options?: CreateOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(params: ChatCompletionCreateParams & { stream?: false | null }, options?: CreateOptions): Promise<ChatCompletion>;
  create(params: ChatCompletionCreateParams, options?: CreateOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
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
  /** What the load checked: the hash source and each file's status (local backend only). */
  readonly integrity?: IntegrityReport;
  /** Generations running or waiting for the GPU (0 for the fallback). */
  readonly pending: number;
  /**
   * 'ready'; 'lost' when the GPU device was lost (requests and createSession fail at once with
   * DeviceLostError); 'recovering' while recover() reloads; 'disposed'. The fallback is always 'ready'.
   */
  readonly state: EngineState;
  /** A token-level session sharing the engine's GPU lock (local backend only). Sessions do not survive a device loss. */
  createSession(): TextSession;
  /**
   * After a device loss: a fresh adapter and device, the weights streamed again from the same
   * source; resolves once the engine serves again. Concurrent calls share one recovery; nothing
   * to do when ready. If it fails (no adapter, the new device lost too), the state is 'lost' again.
   */
  recover(options?: RecoverOptions): Promise<void>;
  /** Calls `listener` whenever the engine's GPU device is lost; returns an unsubscribe function. */
  onDeviceLost(listener: (error: DeviceLostError) => void): () => void;
  dispose(): Promise<void>;
}

export async function createEngine(options: CreateEngineOptions): Promise<Engine> {
  let engine: Engine;
  try {
    engine = await createLocalEngine(options);
  } catch (e) {
    const reason = fallbackReason(e);
    if (!options.fallback || !reason) throw e;
    engine = createRemoteEngine(options.fallback, reason);
  }
  if (options.guardrails) guardEngine(engine, options.guardrails, systemFingerprint(engine.backend, options.fallback));
  return engine;
}

/** Puts the guardrails around the engine's chat.completions.create (any Engine: local, fallback, worker). */
export function guardEngine(engine: Engine, guardrails: Guardrails, fingerprint: string): void {
  const completions = engine.chat.completions as { create: ChatCompletionsApi['create'] };
  completions.create = guardCreate(completions.create.bind(completions), guardrails, { modelId: engine.modelId, fingerprint });
}

/** What a response's system_fingerprint says: which backend answered. */
export function systemFingerprint(backend: Engine['backend'], fallback: FallbackOptions | undefined): string {
  return backend === 'local' ? 'local-webgpu' : `fallback:${fallback?.baseURL ?? ''}`;
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
  let files: ModelFiles;
  try {
    files = await openModelFiles(o);
  } catch (e) {
    gpu.destroy();
    throw e;
  }
  const { ck, tokenizer } = files;
  const modelOptions = (onProgress: ((p: LoadProgress) => void) | undefined, signal: AbortSignal | undefined, reload: boolean): ModelOptions => ({
    contextLimit: o.contextLimit, kvFormat: o.kvFormat, weights: o.weights, maxBatch: o.maxBatch, memoryLimit: o.memoryLimit, signal,
    kvReuse: o.kvReuse ?? true, sessions: o.conversations ?? 1,
    ...files.hooks(onProgress, reload),
  });
  let model: GpuModel | undefined;
  try {
    // Prompts are bounded by the longest token: find it now (a scan of the vocabulary) rather than in the first request.
    tokenizer.maxTokenBytes();
    model = await GpuModel.load(ck, gpu, modelOptions(o.onProgress, o.signal, false));
    const queue = new GpuQueue();
    const backend: LocalChatBackend = {
      modelId: o.modelId ?? defaultModelId(o.model),
      tokenizer,
      sessions: new SessionPool(() => new GpuSession(runtime.model), o.conversations ?? 1),
      queue,
      contextLimit: model.contextLimit,
    };
    const source = ck;
    const sessions = new Set<LocalTextSession>();
    const runtime = new GpuRuntime({ gpu, model }, {
      async load(r) {
        const g = await createGpuContext({ gpu: o.gpu });
        try {
          return { gpu: g, model: await GpuModel.load(source, g, modelOptions(r.onProgress ?? o.onProgress, r.signal, true)) };
        } catch (e) {
          g.destroy();
          throw e;
        }
      },
      install: (next) => queue.run(async () => {
        backend.sessions.replace(() => new GpuSession(next.model));
        sessions.clear(); // they lived on the lost device and say so when used
      }),
    });
    const create = (params: ChatCompletionCreateParams, opts?: CreateOptions) => {
      try {
        runtime.check();
      } catch (e) {
        return Promise.reject(e);
      }
      return params.stream ? streamCompletion(backend, params, opts) : createCompletion(backend, params, opts);
    };
    return {
      backend: 'local',
      modelId: backend.modelId,
      config: source.config,
      get adapter() {
        return runtime.gpu.info;
      },
      tokenizer,
      integrity: files.integrity.report,
      get pending() {
        return queue.depth;
      },
      get state() {
        return runtime.state;
      },
      chat: { completions: { create: create as ChatCompletionsApi['create'] } },
      createSession() {
        runtime.check();
        const s = new LocalTextSession(new GpuSession(runtime.model), queue);
        sessions.add(s);
        return s;
      },
      recover: (r) => runtime.recover(r),
      onDeviceLost: (listener) => runtime.onDeviceLost(listener),
      async dispose() {
        await queue.run(async () => {
          for (const s of sessions) s.dispose();
          backend.sessions.dispose();
          runtime.dispose();
          await source.close();
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
    state: 'ready',
    chat: { completions: { create: (async (params: ChatCompletionCreateParams, opts?: CreateOptions) => {
      // A guardrail's stop ends the request: the server stops generating when the client leaves.
      const signals = [opts?.signal, opts?.stop].filter((x): x is AbortSignal => x !== undefined);
      const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
      return params.stream ? remoteStream(f, params, signal) : remoteCompletion(f, params, signal);
    }) as ChatCompletionsApi['create'] } },
    createSession() {
      throw new Error(`the fallback backend has no token-level sessions (${reason})`);
    },
    recover: async () => {},
    onDeviceLost: () => () => {},
    async dispose() {},
  };
}
