/**
 * Turns what a user passes as `model` into a ModelSource: an http(s) base URL, a Hugging Face
 * repo id (`openai/gpt-oss-20b`), a local directory (Node, Deno), browser Files, or a
 * File System Access API directory handle (`showDirectoryPicker()`, OPFS).
 */
import { blobSource } from './source-blob.ts';
import { directoryHandleSource, isDirectoryHandle } from './source-fs-handle.ts';
import { httpSource, huggingFaceUrl } from './source-http.ts';
import type { ModelSource } from './source.ts';

export type ModelLocation = string | URL | ModelSource | Iterable<File> | Map<string, Blob> | FileSystemDirectoryHandle;

const HF_REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

function isModelSource(m: unknown): m is ModelSource {
  return typeof m === 'object' && m !== null && 'open' in m && 'exists' in m && 'description' in m;
}

async function isLocalDirectory(path: string): Promise<boolean> {
  if (typeof process === 'undefined' || !process.versions?.node) return false;
  const fs = await import('node:fs/promises');
  return (await fs.stat(path).catch(() => null))?.isDirectory() ?? false;
}

export async function resolveModelSource(model: ModelLocation): Promise<ModelSource> {
  if (isModelSource(model)) return model;
  if (model instanceof URL) return httpSource(model.toString());
  if (isDirectoryHandle(model)) return directoryHandleSource(model);
  if (typeof model !== 'string') return blobSource(model);
  if (/^https?:\/\//i.test(model)) return httpSource(model);
  if (HF_REPO_ID.test(model) && !(await isLocalDirectory(model))) return httpSource(huggingFaceUrl(model));
  const { directorySource } = await import('./source-node.ts');
  return directorySource(model);
}
