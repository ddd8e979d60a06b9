/**
 * The HTTP plumbing of source-http.ts: one request whose answer and every body chunk must come
 * within a timeout (a server that accepts the connection and then says nothing fails in
 * seconds, not after the runtime's own 5-minute limits), and retries with exponential backoff
 * for what is worth retrying (network errors, timeouts, 5xx, 429, a body cut short).
 */
import { ModelLoadError } from './errors.ts';

export interface HttpRequestOptions {
  fetch: typeof fetch;
  headers?: Record<string, string>;
  /** Attempts per request (1 = no retry). */
  retries: number;
  /** Longest wait for the answer, and for each body chunk after it (ms). */
  timeoutMs: number;
  /** Wait before retry n (n = 1, 2...): retryDelayMs * 2^(n-1). */
  retryDelayMs: number;
}

/** A response whose body is read under the same idle timeout. */
export interface TimedResponse {
  readonly res: Response;
  /** The whole body; more than `limit` bytes is an `http` error naming the URL. */
  bytes(limit?: number): Promise<Uint8Array>;
  cancel(): Promise<void>;
}

const transient = new WeakSet<object>();

/** Marks an error as worth another attempt. */
export function retryable<E extends object>(e: E): E {
  transient.add(e);
  return e;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toPrecision(3))} s`;
}

class Timeout extends Error {}

/** One GET: headers within `timeoutMs`, then each body chunk within `timeoutMs` of the last. */
export async function timedFetch(
  url: string,
  file: string,
  headers: Record<string, string>,
  o: HttpRequestOptions,
  redirect: RequestRedirect = 'follow',
): Promise<TimedResponse> {
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ac.abort(new Timeout()), o.timeoutMs);
  };
  const disarm = () => clearTimeout(timer);
  // Rejects on timeout even with a fetch (or body stream) that ignores the abort signal.
  const aborted = new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true }));
  aborted.catch(() => {});
  const orTimeout = <T>(p: Promise<T>) => Promise.race([p, aborted]);
  arm();
  let res: Response;
  try {
    res = await orTimeout(o.fetch(url, { headers: { ...o.headers, ...headers }, signal: ac.signal, ...(redirect === 'follow' ? {} : { redirect }) }));
  } catch (e) {
    disarm();
    if (ac.signal.aborted) {
      throw retryable(new ModelLoadError('http', `no answer from ${url} within ${seconds(o.timeoutMs)}`, { file, cause: e }));
    }
    throw retryable(new ModelLoadError('http', `request for ${url} failed: ${describeFetchError(e)}`, { file, cause: e }));
  }
  disarm();
  return {
    res,
    async bytes(limit = Infinity) {
      const reader = res.body?.getReader();
      if (!reader) return new Uint8Array(0);
      const parts: Uint8Array[] = [];
      let n = 0;
      try {
        for (;;) {
          arm();
          const { done, value } = await orTimeout(reader.read());
          if (done) break;
          n += value.byteLength;
          if (n > limit) {
            await reader.cancel().catch(() => {});
            throw new ModelLoadError('http', `${url} sent more than the ${limit} bytes expected`, { file });
          }
          parts.push(value);
        }
      } catch (e) {
        if (e instanceof ModelLoadError) throw e;
        if (ac.signal.aborted) {
          await reader.cancel().catch(() => {});
          throw retryable(new ModelLoadError('http', `${url} sent no data for ${seconds(o.timeoutMs)} (after ${n} bytes of the body)`, { file, cause: e }));
        }
        throw retryable(new ModelLoadError('http', `reading the body from ${url} failed: ${describeFetchError(e)}`, { file, cause: e }));
      } finally {
        disarm();
      }
      if (parts.length === 1) return parts[0]!;
      const out = new Uint8Array(n);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.byteLength;
      }
      return out;
    },
    async cancel() {
      disarm();
      await res.body?.cancel().catch(() => {});
    },
  };
}

/** fetch's own messages are vague ("fetch failed"): add the cause's, e.g. ECONNREFUSED. */
function describeFetchError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = (e as { cause?: { message?: string; code?: string } } | null)?.cause;
  const detail = cause?.code ?? cause?.message;
  return detail && !msg.includes(detail) ? `${msg} (${detail})` : msg;
}

/**
 * Runs `attempt` up to `o.retries` times while it throws retryable errors, waiting
 * retryDelayMs, 2 x retryDelayMs... in between. The last error says how many attempts it took.
 */
export async function withRetries<T>(o: HttpRequestOptions, attempt: () => Promise<T>): Promise<T> {
  const attempts = Math.max(1, o.retries);
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!transient.has(e as object) || i >= attempts) {
        if (i > 1 && e instanceof ModelLoadError) {
          throw new ModelLoadError(e.code, `${e.message} (gave up after ${i} attempts)`, { file: e.file, cause: e.cause ?? e });
        }
        throw e;
      }
      await new Promise((r) => setTimeout(r, o.retryDelayMs * 2 ** (i - 1)));
    }
  }
}
