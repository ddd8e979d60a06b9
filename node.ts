/**
 * `gpt-oss-webgpu/node`: the Node-only helpers (local directories, synthetic checkpoints, the
 * OpenAI-compatible HTTP server). Kept out of the main entry so browser bundles never see
 * `node:` modules. Everything from the main entry is re-exported for convenience.
 */
export * from './index.ts';
export { directorySource } from './loader/source-node.ts';
export { writeSyntheticCheckpoint, tokenizerFiles, DEFAULT_MAX_SHARD_BYTES } from './loader/synth-writer-node.ts';
export type { WriteSyntheticOptions, WriteSyntheticResult } from './loader/synth-writer-node.ts';
export { nodeSyntheticSource } from './loader/source-synthetic-node.ts';
export { serve, DEFAULT_MAX_TOKENS_CAP, DEFAULT_REQUEST_TIMEOUT } from './server/openai-server.ts';
export type { ServeOptions, RunningServer } from './server/openai-server.ts';
