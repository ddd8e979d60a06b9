/**
 * The download cache and the integrity check in the browser: the test (test/cache.browser.test.ts)
 * calls the functions on window.__cache one after the other through page.evaluate. Loads go
 * through createEngine (cache on by default in a page) on navigator.gpu, metered
 * (test/helpers/metered-gpu.ts) so a failed load can be shown to leave no buffer behind.
 */
import { createEngine, type CreateEngineOptions } from '../../engine/api/engine.ts';
import { deleteModelFromCache, hasModelInCache, listCachedModels, type CachedModel } from '../../loader/cache-models.ts';
import { IntegrityError } from '../../loader/errors.ts';
import { DEFAULT_CACHE_NAME, parseCacheKey } from '../../loader/source-cache.ts';
import { meteredGpu } from '../helpers/metered-gpu.ts';

export interface PageLoad {
  ok: boolean;
  files?: Record<string, string>;
  hashedBytes?: number;
  error?: { name: string; message: string; file?: string; expected?: string; actual?: string };
  /** Labels of GPU buffers alive after the load failed (or was disposed), and the meters' live bytes. */
  liveBuffers: string[];
  liveBytes: number[];
  phases: string[];
  /** Each phase's fromCache in its last progress event. */
  fromCache: Record<string, boolean>;
}

type Opts = Pick<CreateEngineOptions, 'verify' | 'huggingFace' | 'manifest'>;

async function load(model: string, opts: Opts = {}): Promise<PageLoad> {
  const metered = meteredGpu(navigator.gpu);
  const phases: string[] = [];
  const fromCache: Record<string, boolean> = {};
  try {
    const engine = await createEngine({
      model, ...opts, gpu: metered.gpu, contextLimit: 64, maxBatch: 4, kvFormat: 'f32', onWarning: (m) => console.warn(m),
      onProgress: (p) => {
        if (phases.at(-1) !== p.phase) phases.push(p.phase);
        fromCache[p.phase] = p.fromCache;
      },
    });
    const files = { ...engine.integrity!.files };
    const hashedBytes = engine.integrity!.hashedBytes;
    await engine.dispose();
    return { ok: true, files, hashedBytes, liveBuffers: [], liveBytes: [], phases, fromCache };
  } catch (e) {
    const err = e as Error;
    const integrity = e instanceof IntegrityError ? { file: e.file, expected: e.expected, actual: e.actual } : {};
    return {
      ok: false, error: { name: err.name, message: err.message, ...integrity },
      liveBuffers: metered.liveLabels(), liveBytes: metered.meters.map((m) => m.liveBytes), phases, fromCache,
    };
  }
}

async function keys(): Promise<string[]> {
  return (await (await caches.open(DEFAULT_CACHE_NAME)).keys()).map((r) => r.url);
}

/** Flips one byte in the biggest stored answer of `file` (a URL ending in it). */
async function tamper(file: string): Promise<string> {
  const cache = await caches.open(DEFAULT_CACHE_NAME);
  let best: { req: Request; size: number } | undefined;
  for (const req of await cache.keys()) {
    const k = parseCacheKey(req.url);
    if (k.kind !== 'range' || !k.url.endsWith(`/${file}`)) continue;
    const size = Number((await cache.match(req))!.headers.get('content-length'));
    if (!best || size > best.size) best = { req, size };
  }
  if (!best) throw new Error(`nothing stored for ${file}`);
  const res = (await cache.match(best.req))!;
  const body = new Uint8Array(await res.arrayBuffer());
  body[Math.floor(body.length / 2)]! ^= 0x10;
  await cache.put(best.req, new Response(body, { status: 200, headers: res.headers }));
  return best.req.url;
}

/** Removes the verified mark of `file`, as if its copy had never been checked. */
async function unmark(file: string): Promise<number> {
  const cache = await caches.open(DEFAULT_CACHE_NAME);
  let n = 0;
  for (const req of await cache.keys()) {
    const k = parseCacheKey(req.url);
    if (k.kind === 'verified' && k.url.endsWith(`/${file}`) && (await cache.delete(req))) n++;
  }
  return n;
}

declare global {
  interface Window {
    __cache: {
      load: typeof load;
      list: () => Promise<CachedModel[]>;
      has: (model: string, opts?: Opts) => Promise<boolean>;
      del: (model: string, opts?: Opts) => Promise<boolean>;
      keys: typeof keys;
      tamper: typeof tamper;
      unmark: typeof unmark;
    };
  }
}

window.__cache = {
  load,
  list: () => listCachedModels(),
  has: (model, opts) => hasModelInCache(model, opts),
  del: (model, opts) => deleteModelFromCache(model, opts),
  keys,
  tamper,
  unmark,
};
