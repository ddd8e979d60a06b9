/**
 * The models in the browser's download cache (loader/source-cache.ts), for apps that show what
 * is stored and let the user free space: list them, ask for one, delete one. A model is the set
 * of files under one base URL (a Hugging Face repo at a revision, or a folder URL).
 */
import type { HuggingFaceOptions } from './hub.ts';
import { hubResolveUrl } from './hub.ts';
import { MANIFEST_FILE } from './manifest.ts';
import { hubRepoOf } from './resolve.ts';
import { DEFAULT_CACHE_NAME, parseCacheKey, type FileRecord, type ModelRecord } from './source-cache.ts';

export interface CachedModel {
  /** The repo id (`org/name`, `org/name@revision`) or URL it was loaded as. */
  model: string;
  /** The base URL of its files. */
  url: string;
  /** Bytes stored for it. */
  bytes: number;
  /** Every byte of every file the loader opened is stored (a load needs no network). */
  complete: boolean;
  /** Every file's stored copy matched its published hash. */
  verified: boolean;
  files: { file: string; size: number; storedBytes: number; verified: boolean }[];
}

export interface CacheOptions {
  /** The Cache API cache (default 'gpt-oss-webgpu-models'). */
  cacheName?: string;
  /** For repo ids: the revision and hub address the model was loaded with. */
  huggingFace?: HuggingFaceOptions;
}

/** The base URL (with a trailing slash) a model location's files live under. */
export function modelBaseUrl(model: string | URL, hf: HuggingFaceOptions = {}): string {
  const s = String(model);
  const hub = /^https?:\/\//i.test(s) ? undefined : hubRepoOf(s, hf);
  if (hub) return hubResolveUrl(hub);
  const abs = new URL(s, typeof location === 'undefined' ? undefined : location.href).toString();
  return abs.endsWith('/') ? abs : abs + '/';
}

interface Group {
  record?: ModelRecord;
  files: Map<string, FileRecord & { ranges: [number, number][]; verified: boolean }>;
  bytes: number;
}

async function openExisting(name: string): Promise<Cache | undefined> {
  if (typeof caches === 'undefined' || !(await caches.has(name))) return undefined;
  return caches.open(name);
}

/** Every model with something stored, with its size and state. */
export async function listCachedModels(options: CacheOptions = {}): Promise<CachedModel[]> {
  const cache = await openExisting(options.cacheName ?? DEFAULT_CACHE_NAME);
  if (!cache) return [];
  const keys = await cache.keys();
  const groups = new Map<string, Group>();
  const group = (base: string) => {
    let g = groups.get(base);
    if (!g) groups.set(base, (g = { files: new Map(), bytes: 0 }));
    return g;
  };
  const parsed = keys.map((k) => ({ req: k, ...parseCacheKey(k.url) }));
  // Records first: they say which base each file URL belongs to.
  const fileBase = new Map<string, string>();
  for (const k of parsed) {
    if (k.kind === 'model') {
      const r = (await (await cache.match(k.req))?.json().catch(() => undefined)) as ModelRecord | undefined;
      if (r) {
        group(r.base).record = r;
        for (const u of r.related) fileBase.set(u, r.base);
      }
    } else if (k.kind === 'file') {
      const r = (await (await cache.match(k.req))?.json().catch(() => undefined)) as FileRecord | undefined;
      if (r) {
        group(r.base).files.set(k.url, { ...r, ranges: [], verified: false });
        fileBase.set(k.url, r.base);
      }
    }
  }
  for (const k of parsed) {
    if (k.kind !== 'range' && k.kind !== 'verified') continue;
    const base = fileBase.get(k.url) ?? k.url.slice(0, k.url.lastIndexOf('/') + 1);
    const g = group(base);
    const f = g.files.get(k.url);
    if (k.kind === 'verified') {
      if (f) f.verified = true;
      continue;
    }
    const res = await cache.match(k.req);
    const len = Number(res?.headers.get('content-length') ?? 0);
    g.bytes += Number.isFinite(len) ? len : 0;
    const status = res?.headers.get('x-gptoss-status') ?? '200';
    if (!f) continue;
    if (status === '200') f.ranges.push([0, f.size]);
    else if (status === '206') {
      const m = /^(?:bytes=)?(\d+)-(\d+)$/.exec(k.value ?? '');
      if (m) f.ranges.push([Number(m[1]), Number(m[2]) + 1]);
    }
  }
  const out: CachedModel[] = [];
  for (const [base, g] of groups) {
    const files = [...g.files.values()].map((f) => ({ file: f.file, size: f.size, storedBytes: covered(f.ranges, f.size), verified: f.verified }));
    if (files.length === 0 && g.bytes === 0) continue;
    out.push({
      model: g.record?.model ?? [...g.files.values()][0]?.model ?? base,
      url: base,
      bytes: g.bytes,
      complete: files.length > 0 && files.every((f) => f.storedBytes === f.size),
      // The manifest beside the files is what they are checked against: it carries no mark.
      verified: files.length > 0 && files.every((f) => f.verified || f.file === MANIFEST_FILE),
      files: files.sort((a, b) => (a.file < b.file ? -1 : 1)),
    });
  }
  return out.sort((a, b) => (a.model < b.model ? -1 : 1));
}

/** Bytes of [0, size) the ranges cover. */
function covered(ranges: [number, number][], size: number): number {
  let n = 0;
  let end = 0;
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const from = Math.max(a, end);
    const to = Math.min(b, size);
    if (to > from) n += to - from;
    end = Math.max(end, b);
  }
  return n;
}

/** Whether the model is completely stored (a load would download nothing). */
export async function hasModelInCache(model: string | URL, options: CacheOptions = {}): Promise<boolean> {
  const base = modelBaseUrl(model, options.huggingFace);
  return (await listCachedModels(options)).some((m) => m.url === base && m.complete);
}

/** Deletes everything stored for the model; false when nothing was. */
export async function deleteModelFromCache(model: string | URL, options: CacheOptions = {}): Promise<boolean> {
  const cache = await openExisting(options.cacheName ?? DEFAULT_CACHE_NAME);
  if (!cache) return false;
  const base = modelBaseUrl(model, options.huggingFace);
  const keys = (await cache.keys()).map((req) => ({ req, ...parseCacheKey(req.url) }));
  const related = new Set<string>();
  for (const k of keys) {
    if (k.kind === 'model' && k.url === base) {
      const r = (await (await cache.match(k.req))?.json().catch(() => undefined)) as ModelRecord | undefined;
      for (const u of r?.related ?? []) related.add(u);
    }
  }
  let deleted = false;
  for (const k of keys) {
    if (k.url.startsWith(base) || related.has(k.url)) deleted = (await cache.delete(k.req)) || deleted;
  }
  return deleted;
}
