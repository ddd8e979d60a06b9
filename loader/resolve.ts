/**
 * Turns what a user passes as `model` into a ModelSource: an http(s) base URL, a Hugging Face
 * repo id (`openai/gpt-oss-20b`), a local directory (Node, Deno), browser Files, or a
 * File System Access API directory handle (`showDirectoryPicker()`, OPFS).
 */
import { HF_HUB, hubResolveUrl, isHubUrl, parseHubUrl, type HubRepo, type HuggingFaceOptions } from './hub.ts';
import { blobSource } from './source-blob.ts';
import { cachedHttpSource } from './source-cache.ts';
import { directoryHandleSource, isDirectoryHandle } from './source-fs-handle.ts';
import { httpSource } from './source-http.ts';
import type { ModelSource } from './source.ts';

export type ModelLocation = string | URL | ModelSource | Iterable<File> | Map<string, Blob> | FileSystemDirectoryHandle;

export interface ResolveOptions {
  /** Revision, access token and hub address for Hugging Face repos (the token goes to the hub only). */
  huggingFace?: HuggingFaceOptions;
  /**
   * Read URLs and repos through the browser's download cache (loader/source-cache.ts): true, or
   * the Cache API cache name. Default: on in browsers (pages and workers), off elsewhere.
   */
  cache?: boolean | string;
}

const HF_REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

function isModelSource(m: unknown): m is ModelSource {
  return typeof m === 'object' && m !== null && 'open' in m && 'exists' in m && 'description' in m;
}

async function isLocalDirectory(path: string): Promise<boolean> {
  if (typeof process === 'undefined' || !process.versions?.node) return false;
  const fs = await import('node:fs/promises');
  return (await fs.stat(path).catch(() => null))?.isDirectory() ?? false;
}

/** Whether this runtime is a browser page or worker with the Cache API. */
export function browserCacheAvailable(): boolean {
  const g = globalThis as { caches?: unknown; document?: unknown; WorkerGlobalScope?: unknown };
  return typeof g.caches !== 'undefined' && (typeof g.document !== 'undefined' || typeof g.WorkerGlobalScope !== 'undefined');
}

/** The repo a `model` string names on the hub, or undefined for a URL or a path. */
export function hubRepoOf(model: string, hf: HuggingFaceOptions = {}): HubRepo | undefined {
  const hubUrl = hf.hubUrl ?? HF_HUB;
  if (/^https?:\/\//i.test(model)) return parseHubUrl(model, hubUrl);
  return HF_REPO_ID.test(model) ? { hubUrl, repo: model, revision: hf.revision ?? 'main' } : undefined;
}

function http(url: string, o: ResolveOptions, hub?: HubRepo): ModelSource {
  const hf = o.huggingFace ?? {};
  hub ??= parseHubUrl(url, hf.hubUrl ?? HF_HUB);
  // The token is for the hub only: never sent to another server.
  const headers = hf.token && isHubUrl(url, hf.hubUrl ?? HF_HUB) ? { Authorization: `Bearer ${hf.token}` } : undefined;
  const cache = o.cache ?? browserCacheAvailable();
  if (cache) return cachedHttpSource(url, { headers, hub, cacheName: typeof cache === 'string' ? cache : undefined }).source;
  return httpSource(url, { headers, hub });
}

export async function resolveModelSource(model: ModelLocation, options: ResolveOptions = {}): Promise<ModelSource> {
  if (isModelSource(model)) return model;
  if (model instanceof URL) return http(model.toString(), options);
  if (isDirectoryHandle(model)) return directoryHandleSource(model);
  if (typeof model !== 'string') return blobSource(model);
  if (/^https?:\/\//i.test(model)) return http(model, options);
  const hub = hubRepoOf(model, options.huggingFace);
  if (hub && !(await isLocalDirectory(model))) return http(hubResolveUrl(hub), options, hub);
  const { directorySource } = await import('./source-node.ts');
  return directorySource(model);
}
