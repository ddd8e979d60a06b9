/// <reference types="@webgpu/types" preserve="true" />
/**
 * The package's main entry (`gpt-oss-webgpu`): everything a browser, Deno or Node app needs to
 * run gpt-oss on WebGPU. Nothing reachable from here imports a `node:` module statically (the
 * Node-only pieces are loaded with dynamic imports behind runtime checks), so browser bundles
 * stay clean; Node-only helpers live in `gpt-oss-webgpu/node`.
 */
export { createEngine } from './engine/api/engine.ts';
export type { Engine, TextSession, CreateEngineOptions, ChatCompletionsApi, CreateOptions, LoadPhase, LoadProgress, RecoverOptions } from './engine/api/engine.ts';
export type { EngineState } from './engine/api/gpu-runtime.ts';
export type { FallbackOptions } from './engine/api/remote.ts';
export { createWorkerEngine } from './engine/api/worker-engine.ts';
export type { EngineWorker, WorkerEngineOptions } from './engine/api/worker-engine.ts';
export { serveEngineInWorker } from './engine/api/worker-handler.ts';
export type { EngineWorkerScope, ServeInWorkerOptions } from './engine/api/worker-handler.ts';
export type { Guardrails, GuardrailVerdict, OutputCheck } from './engine/api/guardrails.ts';
export { ApiError } from './engine/api/types.ts';
export type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionUsage,
  ChatFunctionTool,
  ChatMessageParam,
  ChatToolCall,
  FinishReason,
  GuardrailBlock,
} from './engine/api/types.ts';
export type { GenerateOptions, GenerateResult, FinishReason as GenerateFinishReason } from './engine/generate.ts';

export { GpuUnavailableError } from './engine/gpu/device.ts';
export { DeviceLostError } from './engine/gpu/device-lost.ts';
export type { AdapterSummary } from './engine/gpu/device.ts';
export { ModelTooLargeError } from './engine/memory-plan.ts';
export type { KvFormat } from './engine/memory-plan.ts';
export { ContextLimitError } from './engine/gpu-session.ts';
export { PipelineError } from './kernels/pipeline-cache.ts';
export { IntegrityError, ModelLoadError } from './loader/errors.ts';
export type { ModelLoadErrorCode, ModelLoadErrorDetails } from './loader/errors.ts';

export { GREEDY, validateSampling } from './engine/sampling.ts';
export type { SamplingParams } from './engine/sampling.ts';

export {
  renderPrompt,
  renderPromptIds,
  renderPromptIdsAsync,
  PromptTooLongError,
  promptParts,
  renderMessage,
  conversationFromChatRequest,
  HarmonyParser,
  HARMONY_SPECIAL_IDS,
  jsonSchemaToTypeScript,
  renderToolsSection,
} from './engine/harmony/index.ts';
export type {
  ReasoningEffort,
  HarmonyMessage,
  HarmonyConversation,
  PromptPart,
  PromptTokenizer,
  RenderIdsOptions,
  HarmonyEvent,
  HarmonySpecial,
  ChatRequestLike,
  FunctionTool,
} from './engine/harmony/index.ts';

export { GptOssTokenizer, StreamDecoder } from './loader/tokenizer.ts';
export type { EncodeOptions } from './loader/tokenizer.ts';
export { clearTokenizerCache } from './loader/tokenizer-cache.ts';
export { Checkpoint } from './loader/checkpoint.ts';
export type { TensorRef, OpenOptions } from './loader/checkpoint.ts';
export type { GptOssConfig } from './loader/config.ts';
export type { ModelSource, ByteSource } from './loader/source.ts';
export { HTTP_DEFAULTS, httpSource, huggingFaceUrl } from './loader/source-http.ts';
export type { HttpSourceOptions } from './loader/source-http.ts';
export { blobSource } from './loader/source-blob.ts';
export { directoryHandleSource } from './loader/source-fs-handle.ts';
export { syntheticSource } from './loader/source-synthetic.ts';
export type { SyntheticSource, SyntheticSourceOptions } from './loader/source-synthetic.ts';
export type { SynthPreset, SynthOverrides } from './loader/synth.ts';
export { resolveModelSource } from './loader/resolve.ts';
export type { ModelLocation, ResolveOptions } from './loader/resolve.ts';
export type { HuggingFaceOptions } from './loader/hub.ts';

export { listCachedModels, hasModelInCache, deleteModelFromCache } from './loader/cache-models.ts';
export type { CachedModel, CacheOptions } from './loader/cache-models.ts';
export { cachedHttpSource, DEFAULT_CACHE_NAME } from './loader/source-cache.ts';
export { checkedSource } from './loader/integrity.ts';
export type { CheckedSource, FileStatus, IntegrityReport, VerifyPolicy } from './loader/integrity.ts';
export { findDigests } from './loader/digests.ts';
export type { Digest, DigestSource, ManifestOption } from './loader/digests.ts';
export { parseManifest, formatManifest, MANIFEST_FILE } from './loader/manifest.ts';
export { Sha256 } from './loader/sha256.ts';
