/**
 * ModelSource over HTTP(S) with Range requests, e.g. a Hugging Face `resolve/main` URL or any
 * static server. Each read is one `Range: bytes=a-b` GET; transient failures are retried.
 */
import { ModelLoadError } from './errors.ts';
import { checkLength, checkRange, type ByteSource, type ModelSource } from './source.ts';

export interface HttpSourceOptions {
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  /** Attempts per request for network errors and 5xx/429 answers. */
  retries?: number;
}

/** Files above this size must be served with Range support. */
const MAX_UNRANGED_BYTES = 64 << 20;

export function httpSource(baseUrl: string, options: HttpSourceOptions = {}): ModelSource {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const retries = options.retries ?? 3;
  const url = (file: string) => new URL(file.split('/').map(encodeURIComponent).join('/'), base).toString();

  async function get(file: string, range: string): Promise<Response> {
    let lastError: unknown;
    for (let attempt = 0; attempt < retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      try {
        const res = await doFetch(url(file), { headers: { ...options.headers, Range: `bytes=${range}` } });
        if (res.status >= 500 || res.status === 429) {
          lastError = new ModelLoadError('http', `HTTP ${res.status} ${res.statusText} for ${url(file)}`, { file });
          await res.body?.cancel();
          continue;
        }
        return res;
      } catch (e) {
        lastError = new ModelLoadError('http', `request for ${url(file)} failed: ${(e as Error).message}`, { file, cause: e });
      }
    }
    throw lastError;
  }

  /** The whole body; a connection that fails mid-body is an `http` ModelLoadError. */
  async function body(file: string, res: Response): Promise<Uint8Array> {
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw new ModelLoadError('http', `reading the body from ${url(file)} failed: ${(e as Error).message}`, { file, cause: e });
    }
  }

  /** Size from a one-byte range request (works through redirects and on CDNs that drop HEAD). */
  async function probe(file: string): Promise<number | null> {
    const res = await get(file, '0-0');
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      return null;
    }
    if (res.status === 206) {
      await res.body?.cancel();
      const total = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (total === undefined) throw new ModelLoadError('http', `206 answer without a Content-Range total for ${url(file)}`, { file });
      return Number(total);
    }
    if (res.status === 200) {
      // Server ignores Range: the whole body is the file.
      const len = res.headers.get('content-length');
      if (len !== null) {
        await res.body?.cancel();
        return Number(len);
      }
      return (await body(file, res)).byteLength;
    }
    if (res.status === 416) {
      await res.body?.cancel();
      return 0;
    }
    await res.body?.cancel();
    throw new ModelLoadError('http', `HTTP ${res.status} ${res.statusText} for ${url(file)}`, { file });
  }

  return {
    description: base,
    async exists(file) {
      return (await probe(file)) !== null;
    },
    async open(file): Promise<ByteSource> {
      const size = await probe(file);
      if (size === null) throw new ModelLoadError('missing-file', `not found at ${url(file)}`, { file });
      return {
        name: file,
        size,
        async read(offset, length) {
          checkRange(file, size, offset, length);
          if (length === 0) return new Uint8Array(0);
          const range = `${offset}-${offset + length - 1}`;
          // A connection cut mid-body is as transient as a 503: the whole request is retried.
          for (let attempt = 1; ; attempt++) {
            const res = await get(file, range);
            if (res.status !== 206 && res.status !== 200) {
              await res.body?.cancel();
              throw new ModelLoadError('http', `HTTP ${res.status} ${res.statusText} reading bytes ${range} of ${url(file)}`, { file });
            }
            if (res.status === 206) {
              const start = /^bytes\s+(\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
              if (start !== undefined && Number(start) !== offset) {
                await res.body?.cancel();
                throw new ModelLoadError('http', `asked for bytes ${range} of ${url(file)}, the server sent ${res.headers.get('content-range')}`, { file });
              }
            } else if (size > MAX_UNRANGED_BYTES) {
              // The server ignores Range: reading a slice would download the whole file.
              await res.body?.cancel();
              throw new ModelLoadError('http', `${url(file)} does not support Range requests, needed to stream a ${size}-byte file`, { file });
            }
            let bytes: Uint8Array;
            try {
              bytes = await body(file, res);
            } catch (e) {
              if (attempt >= retries) throw e;
              continue;
            }
            return checkLength(file, offset, length, res.status === 206 ? bytes : bytes.subarray(offset, offset + length));
          }
        },
        async close() {},
      };
    },
  };
}

/** `openai/gpt-oss-20b` -> its Hugging Face `resolve/main` base URL. */
export function huggingFaceUrl(repoId: string, revision = 'main'): string {
  return `https://huggingface.co/${repoId}/resolve/${revision}`;
}
