/**
 * ModelSource over HTTP(S) with Range requests, e.g. a Hugging Face `resolve/main` URL or any
 * static server. Each read is one `Range: bytes=a-b` GET, under a connect/idle timeout, retried
 * with exponential backoff (loader/http-fetch.ts).
 *
 * A server that ignores Range (200 with the whole file) is detected on the size probe: a file
 * up to MAX_UNRANGED_BYTES is then downloaded once and read from memory; a larger one is
 * refused with the reason, since every read would download it again.
 */
import { ModelLoadError } from './errors.ts';
import { HF_HUB, hubDigests, hubResolveUrl, parseHubUrl, type HubRepo } from './hub.ts';
import { retryable, timedFetch, withRetries, type HttpRequestOptions, type TimedResponse } from './http-fetch.ts';
import { checkLength, checkRange, type ByteSource, type ModelSource } from './source.ts';

export interface HttpSourceOptions {
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  /** Attempts per request for network errors, timeouts and 5xx/429 answers (default 3). */
  retries?: number;
  /** Longest wait for an answer, and for each chunk of a body after it, in ms (default 30 000). */
  timeoutMs?: number;
  /** Backoff before retry n: retryDelayMs * 2^(n-1) ms (default 250). */
  retryDelayMs?: number;
  /**
   * The Hugging Face repo the files belong to: its hashes are checked (loader/hub.ts). Found
   * from the URL for huggingface.co `resolve/` URLs.
   */
  hub?: HubRepo;
}

/** Defaults of every httpSource that does not set its own (the CLI sets timeoutMs from GPTOSS_HTTP_TIMEOUT). */
export const HTTP_DEFAULTS = { retries: 3, timeoutMs: 30_000, retryDelayMs: 250 };

/** Files above this size must be served with Range support. */
export const MAX_UNRANGED_BYTES = 64 << 20;

/** What the size probe learnt about a file. */
interface Probe {
  size: number;
  /** The whole file, when the server ignores Range and the file is small enough to keep. */
  whole?: Uint8Array;
  /** The server ignores Range for this file. */
  unranged: boolean;
}

export function httpSource(baseUrl: string, options: HttpSourceOptions = {}): ModelSource {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  const o: HttpRequestOptions = {
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    headers: options.headers,
    retries: options.retries ?? HTTP_DEFAULTS.retries,
    timeoutMs: options.timeoutMs ?? HTTP_DEFAULTS.timeoutMs,
    retryDelayMs: options.retryDelayMs ?? HTTP_DEFAULTS.retryDelayMs,
  };
  const hub = options.hub ?? parseHubUrl(base);
  const url = (file: string) => new URL(file.split('/').map(encodeURIComponent).join('/'), base).toString();
  const denied = (status: number) => (hub && (status === 401 || status === 403)
    ? `: ${hub.repo} is gated or private, or the access token does not open it (huggingFace.token; HF_TOKEN for the CLI)` : '');
  const statusError = (file: string, res: Response, what = `for ${url(file)}`) =>
    new ModelLoadError('http', `HTTP ${res.status} ${res.statusText} ${what}`.replace(/\s+/g, ' ') + denied(res.status), { file });

  /** A GET; 5xx and 429 answers are retryable errors. */
  async function get(file: string, range: string | null): Promise<TimedResponse> {
    const r = await timedFetch(url(file), file, range === null ? {} : { Range: `bytes=${range}` }, o);
    if (r.res.status >= 500 || r.res.status === 429) {
      await r.cancel();
      throw retryable(statusError(file, r.res));
    }
    return r;
  }

  /** The whole body of a 200 answer, kept only when small enough. */
  async function wholeBody(file: string, r: TimedResponse): Promise<Uint8Array> {
    const len = contentLength(r.res);
    if (len !== null && len > MAX_UNRANGED_BYTES) {
      await r.cancel();
      throw unrangedError(file, len);
    }
    return r.bytes(MAX_UNRANGED_BYTES).catch((e: unknown) => {
      throw e instanceof ModelLoadError && /sent more than/.test(e.message) ? unrangedError(file) : e;
    });
  }

  function unrangedError(file: string, size?: number): ModelLoadError {
    const what = size === undefined ? `a file over ${MAX_UNRANGED_BYTES} bytes` : `a ${size}-byte file`;
    return new ModelLoadError('http', `${url(file)} ignores Range requests, needed to stream ${what} (it would be downloaded again for every read)`, { file });
  }

  /**
   * Size (and Range support) from a one-byte range request: works through redirects and on CDNs
   * that drop HEAD. `keep`: a server without Range support sends the whole file; keep it.
   */
  async function probe(file: string, keep: boolean): Promise<Probe | null> {
    const first = await withRetries(o, async (): Promise<Probe | null | 'retry-unranged'> => {
      const r = await get(file, '0-0');
      const { res } = r;
      if (res.status === 404 || res.status === 410) {
        await r.cancel();
        return null;
      }
      if (res.status === 206) {
        await r.cancel();
        const total = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
        if (total === undefined) throw new ModelLoadError('http', `206 answer without a Content-Range total for ${url(file)}`, { file });
        return { size: Number(total), unranged: false };
      }
      if (res.status === 200) return unrangedProbe(file, r, keep);
      if (res.status === 416) {
        await r.cancel();
        // "bytes */0": the file is empty, so its first byte cannot be served. Anything else
        // contradicts the request: ask again without Range.
        const total = /^bytes\s+\*\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
        return total === '0' ? { size: 0, unranged: false } : 'retry-unranged';
      }
      await r.cancel();
      throw statusError(file, res);
    });
    if (first !== 'retry-unranged') return first;
    return withRetries(o, async () => {
      const r = await get(file, null);
      if (r.res.status === 404 || r.res.status === 410) {
        await r.cancel();
        return null;
      }
      if (r.res.status !== 200) {
        await r.cancel();
        throw statusError(file, r.res, `for ${url(file)} (asked without Range after a 416 answer to bytes=0-0)`);
      }
      const len = contentLength(r.res);
      if (len !== null && (!keep || len > MAX_UNRANGED_BYTES)) {
        await r.cancel();
        // Other ranges than the first byte may still work: the reads will tell.
        return { size: len, unranged: false };
      }
      const whole = await wholeBody(file, r);
      return { size: whole.byteLength, whole, unranged: true };
    });
  }

  /** A 200 answer to the probe: the body is the whole file. */
  async function unrangedProbe(file: string, r: TimedResponse, keep: boolean): Promise<Probe> {
    const len = contentLength(r.res);
    if (!keep && len !== null) {
      await r.cancel();
      return { size: len, unranged: true };
    }
    const whole = await wholeBody(file, r);
    return { size: whole.byteLength, whole, unranged: true };
  }

  /** Reads one range; a 200 answer (Range ignored after all) is the whole file, returned as such. */
  async function readRange(file: string, offset: number, length: number): Promise<{ bytes: Uint8Array; whole: boolean }> {
    const range = `${offset}-${offset + length - 1}`;
    return withRetries(o, async () => {
      const r = await get(file, range);
      const { res } = r;
      if (res.status === 206) {
        const start = /^bytes\s+(\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
        if (start !== undefined && Number(start) !== offset) {
          await r.cancel();
          throw new ModelLoadError('http', `asked for bytes ${range} of ${url(file)}, the server sent ${res.headers.get('content-range')}`, { file });
        }
        return { bytes: await r.bytes(length), whole: false };
      }
      if (res.status === 200) return { bytes: await wholeBody(file, r), whole: true };
      await r.cancel();
      throw statusError(file, res, `reading bytes ${range} of ${url(file)}`);
    });
  }

  return {
    description: base,
    ...(hub ? { digests: hubDigests(hub, o) } : {}),
    async exists(file) {
      return (await probe(file, false)) !== null;
    },
    async open(file): Promise<ByteSource> {
      const p = await probe(file, true);
      if (p === null) throw new ModelLoadError('missing-file', `not found at ${url(file)}`, { file });
      const size = p.size;
      // Set once the server is known to ignore Range: every read is served from this copy.
      let whole: Promise<Uint8Array> | undefined = p.whole && Promise.resolve(p.whole);
      if (p.unranged && !whole) throw unrangedError(file, size);
      return {
        name: file,
        size,
        async read(offset, length) {
          checkRange(file, size, offset, length);
          if (length === 0) return new Uint8Array(0);
          if (!whole) {
            const got = await readRange(file, offset, length);
            if (!got.whole) return checkLength(file, offset, length, got.bytes);
            whole ??= Promise.resolve(got.bytes);
          }
          const all = await whole;
          return checkLength(file, offset, length, all.subarray(offset, Math.min(all.byteLength, offset + length)));
        },
        async close() {
          whole = undefined;
        },
      };
    },
  };
}

function contentLength(res: Response): number | null {
  const v = res.headers.get('content-length')?.trim();
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

/** `openai/gpt-oss-20b` -> its Hugging Face `resolve/{revision}` base URL. */
export function huggingFaceUrl(repoId: string, revision = 'main', hubUrl = HF_HUB): string {
  return hubResolveUrl({ hubUrl, repo: repoId, revision }).slice(0, -1);
}
