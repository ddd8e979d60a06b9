/**
 * The page's half of a worker engine: `createWorkerEngine(worker, options)` loads the model in a
 * Web Worker (which calls serveEngineInWorker(self)) and returns an Engine with the same interface
 * as createEngine's, so the page never blocks on tokenizing, uploading or reading back tokens.
 * Requests, chunks, progress, aborts and sessions travel as messages (worker-protocol.ts); errors
 * come back as the same classes (wire-error.ts). Guardrails run here, on the page, around the
 * worker's answers (functions cannot be sent to a worker).
 */
import { DeviceLostError } from '../gpu/device-lost.ts';
import type { GenerateOptions, GenerateResult } from '../generate.ts';
import { AsyncQueue } from './async-queue.ts';
import { guardEngine, systemFingerprint, type ChatCompletionsApi, type CreateEngineOptions, type CreateOptions, type Engine, type LoadProgress, type RecoverOptions } from './engine.ts';
import type { EngineState } from './gpu-runtime.ts';
import type { TextSession } from './text-session.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams } from './types.ts';
import { fromWire, toWire } from './wire-error.ts';
import { CHANNEL, isMessage, type EngineInfo, type FromWorker, type SessionOp, type ToWorker } from './worker-protocol.ts';
import type { EngineWorkerScope } from './worker-handler.ts';

/** A Worker, or a MessagePort whose other end is served by serveEngineInWorker. */
export type EngineWorker = EngineWorkerScope;

/**
 * createEngine's options, less what cannot be sent to a worker: the model is a URL, repo id,
 * browser files or a directory handle (not a ModelSource object), no `gpu` (the worker's
 * navigator.gpu is used) and no fallback `fetch`. Other fields are passed to the worker as they
 * are, for a worker whose serveEngineInWorker has its own createEngine.
 */
export type WorkerEngineOptions = Omit<CreateEngineOptions, 'model' | 'gpu' | 'fallback'> & {
  model: string | URL | File[] | FileList | Map<string, Blob> | FileSystemDirectoryHandle;
  fallback?: Omit<NonNullable<CreateEngineOptions['fallback']>, 'fetch'>;
};

type Request = ToWorker extends infer T ? (T extends ToWorker ? Omit<T, 'channel' | 'id'> : never) : never;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  onMessage?(m: FromWorker): void;
}

const aborted = (signal: AbortSignal): unknown => signal.reason ?? new DOMException('The request was aborted', 'AbortError');

export async function createWorkerEngine<O extends WorkerEngineOptions>(worker: EngineWorker, options: O): Promise<Engine> {
  const { onProgress, guardrails, signal, ...rest } = options;
  if ('gpu' in rest || typeof (rest.fallback as { fetch?: unknown } | undefined)?.fetch === 'function') {
    throw new TypeError('a worker engine cannot take `gpu` or `fallback.fetch`: functions and GPU objects stay on the page (the worker uses its own navigator.gpu and fetch)');
  }
  const wire: Record<string, unknown> = { ...rest, model: rest.model instanceof URL ? rest.model.href : rest.model };

  let nextId = 1;
  const pending = new Map<number, Pending>();
  /** Progress of the load, which also reports a recovery started without its own onProgress. */
  const progressOf = new Map<number, (p: LoadProgress) => void>();
  const lostListeners = new Set<(e: DeviceLostError) => void>();
  let info: EngineInfo | undefined;
  let state: EngineState = 'ready';
  let loss: DeviceLostError | undefined;
  let running = 0;

  const listener = (ev: MessageEvent) => {
    const m = ev.data as unknown;
    if (!isMessage<FromWorker>(m)) return;
    if (m.type === 'device-lost') {
      const e = fromWire(m.error) as DeviceLostError;
      if (state === 'ready') state = 'lost';
      loss = e;
      for (const l of lostListeners) queueMicrotask(() => l(e));
      return;
    }
    if (m.type === 'progress') {
      progressOf.get(m.id)?.(m.progress as LoadProgress);
      return;
    }
    const p = pending.get(m.id);
    if (!p) return;
    if (m.type === 'result' || m.type === 'error') {
      pending.delete(m.id);
      if (m.type === 'result') return p.resolve(m.value);
      const e = fromWire(m.error);
      // The request may hear of a loss before the 'device-lost' message arrives.
      if (e instanceof DeviceLostError && state === 'ready') {
        state = 'lost';
        loss = e;
      }
      p.reject(e);
    } else {
      p.onMessage?.(m);
    }
  };
  worker.addEventListener('message', listener);
  worker.start?.();

  const send = (m: Request, id: number) => worker.postMessage({ ...m, id, channel: CHANNEL });
  /** Sends a request; `signal` aborts it (the promise rejects at once, the worker is told). */
  function call<T>(m: Request, o: { signal?: AbortSignal; onMessage?: (m: FromWorker) => void; id?: number } = {}): Promise<T> {
    const id = o.id ?? nextId++;
    const { signal: s } = o;
    if (s?.aborted) return Promise.reject(aborted(s));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        pending.delete(id);
        send({ type: 'abort', reason: toWire(aborted(s!)) }, id);
        reject(aborted(s!));
      };
      s?.addEventListener('abort', onAbort, { once: true });
      const done = () => s?.removeEventListener('abort', onAbort);
      pending.set(id, {
        resolve: (v) => (done(), resolve(v as T)),
        reject: (e) => (done(), reject(e)),
        onMessage: o.onMessage,
      });
      send(m, id);
    });
  }
  /** Counts toward `pending` while it runs. */
  const counted = <T>(p: Promise<T>): Promise<T> => {
    running++;
    return p.finally(() => running--);
  };

  function stream(params: ChatCompletionCreateParams, opts: CreateOptions, wireParams: ChatCompletionCreateParams): Promise<AsyncIterable<ChatCompletionChunk>> {
    const id = nextId++;
    const s = opts.signal ?? params.signal;
    const queue = new AsyncQueue<ChatCompletionChunk>(() => send({ type: 'abort' }, id));
    let started!: () => void;
    const start = new Promise<void>((r) => (started = r));
    const stopped = () => send({ type: 'stop' }, id);
    opts.stop?.addEventListener('abort', stopped, { once: true });
    const done = counted(call<null>({ type: 'create', params: wireParams, options: runOptions(opts) }, {
      id, signal: s,
      onMessage: (m) => {
        if (m.type === 'started') started();
        else if (m.type === 'chunk') queue.push(m.chunk);
      },
    }));
    done.then(() => queue.end(), (e: unknown) => queue.fail(e)).finally(() => opts.stop?.removeEventListener('abort', stopped));
    // Resolves once the worker has accepted the request: a bad one rejects here, as createEngine's does.
    return Promise.race([start, done]).then(() => queue);
  }

  const create = ((params: ChatCompletionCreateParams, opts: CreateOptions = {}) => {
    const { signal: _s, ...wireParams } = params;
    if (params.stream) return stream(params, opts, wireParams as ChatCompletionCreateParams);
    const stopped = () => send({ type: 'stop' }, id);
    const id = nextId++;
    opts.stop?.addEventListener('abort', stopped, { once: true });
    return counted(call<ChatCompletion>({ type: 'create', params: wireParams as ChatCompletionCreateParams, options: runOptions(opts) }, { id, signal: opts.signal ?? params.signal }))
      .finally(() => opts.stop?.removeEventListener('abort', stopped));
  }) as ChatCompletionsApi['create'];

  let nextSession = 1;
  function createSession(): TextSession {
    if (state === 'disposed') throw new Error('the engine has been disposed');
    if (state !== 'ready' && loss) throw loss.withHint('call engine.recover() to re-create the device and reload the model');
    if (info!.backend === 'fallback') throw new Error(`the fallback backend has no token-level sessions (${info!.fallbackReason})`);
    const session = nextSession++;
    let position = 0;
    const op = <T>(o: SessionOp, extra: Parameters<typeof call>[1] = {}) => counted(call<T>({ type: 'session', session, ...o }, extra));
    void op({ op: 'create' }).catch(() => {});
    return {
      get position() {
        return position;
      },
      async append(tokens: number[]) {
        ({ position } = await op<{ position: number }>({ op: 'append', tokens }));
      },
      async generate(o: GenerateOptions & { prompt?: number[] }): Promise<GenerateResult> {
        const { signal: gs, onToken, ...wireOptions } = o;
        const r = await op<{ result: GenerateResult; position: number }>({ op: 'generate', options: wireOptions, tokens: !!onToken }, {
          signal: gs,
          onMessage: (m) => {
            if (m.type === 'token') onToken?.(m.token);
          },
        });
        position = r.position;
        return r.result;
      },
      reset() {
        position = 0;
        void op({ op: 'reset' }).catch(() => {});
      },
      dispose() {
        void op({ op: 'dispose' }).catch(() => {});
      },
    };
  }

  const loadId = nextId++;
  if (onProgress) progressOf.set(loadId, onProgress);
  try {
    info = await call<EngineInfo>({ type: 'load', options: wire, progress: !!onProgress }, { signal, id: loadId });
  } catch (e) {
    worker.removeEventListener('message', listener);
    throw e;
  }
  state = info.state;

  const engine: Engine = {
    get backend() {
      return info!.backend;
    },
    get modelId() {
      return info!.modelId;
    },
    get fallbackReason() {
      return info!.fallbackReason;
    },
    get config() {
      return info!.config;
    },
    get adapter() {
      return info!.adapter;
    },
    /** The tokenizer stays in the worker. */
    tokenizer: undefined,
    get pending() {
      return running;
    },
    get state() {
      return state;
    },
    chat: { completions: { create } },
    createSession,
    async recover(o: RecoverOptions = {}) {
      if (state === 'disposed') throw new Error('the engine has been disposed');
      // Asked even when this side thinks all is well: the worker knows best (nothing to do when ready).
      if (state === 'lost') state = 'recovering';
      const id = nextId++;
      const progress = o.onProgress ?? onProgress;
      if (progress) progressOf.set(id, progress);
      try {
        info = await call<EngineInfo>({ type: 'recover', progress: !!progress }, { signal: o.signal, id });
        state = info.state;
        loss = undefined;
      } catch (e) {
        if (state === 'recovering') state = 'lost';
        throw e;
      } finally {
        progressOf.delete(id);
      }
    },
    onDeviceLost(l) {
      lostListeners.add(l);
      return () => void lostListeners.delete(l);
    },
    async dispose() {
      if (state === 'disposed') return;
      await call<null>({ type: 'dispose' });
      state = 'disposed';
      worker.removeEventListener('message', listener);
    },
  };
  if (guardrails) guardEngine(engine, guardrails, systemFingerprint(info.backend, options.fallback));
  return engine;
}

function runOptions(o: CreateOptions): { defaultMaxTokens?: number; timeLimitMs?: number } {
  return {
    ...(o.defaultMaxTokens !== undefined ? { defaultMaxTokens: o.defaultMaxTokens } : {}),
    ...(o.timeLimitMs !== undefined ? { timeLimitMs: o.timeLimitMs } : {}),
  };
}
