/**
 * The worker's half of a worker engine: `serveEngineInWorker(self)` answers createWorkerEngine's
 * messages (worker-protocol.ts) with an engine made by createEngine in the worker: load, chat
 * completions (streamed chunk by chunk), aborts, guardrail stops, token-level sessions, device
 * loss and recovery. One engine per worker; a new load disposes the previous one.
 */
import { createEngine, type CreateEngineOptions, type Engine } from './engine.ts';
import type { TextSession } from './text-session.ts';
import { toWire } from './wire-error.ts';
import { CHANNEL, isMessage, type EngineInfo, type FromWorker, type SessionOp, type ToWorker } from './worker-protocol.ts';

/** A DedicatedWorkerGlobalScope (`self`), or a MessagePort. */
export interface EngineWorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (ev: MessageEvent) => void): void;
  start?(): void;
}

export interface ServeInWorkerOptions {
  /**
   * Makes the engine from the options the page gave (default createEngine). `options` has every
   * field the page passed that survives postMessage, so an app can send its own settings; its
   * onProgress reports to the page.
   */
  createEngine?: (options: CreateEngineOptions & Record<string, unknown>) => Promise<Engine>;
}

type Out = FromWorker extends infer T ? (T extends FromWorker ? Omit<T, 'channel'> : never) : never;

/** Serves createWorkerEngine's requests in this worker; returns a function that stops serving. */
export function serveEngineInWorker(scope: EngineWorkerScope, options: ServeInWorkerOptions = {}): () => void {
  const make = options.createEngine ?? createEngine;
  const post = (m: Out) => scope.postMessage({ ...m, channel: CHANNEL });
  let engine: Engine | undefined;
  let unwatch = () => {};
  const aborts = new Map<number, AbortController>();
  const stops = new Map<number, AbortController>();
  const sessions = new Map<number, TextSession | { failed: unknown }>();

  const info = (e: Engine): EngineInfo => ({
    backend: e.backend, modelId: e.modelId, fallbackReason: e.fallbackReason, config: e.config, adapter: e.adapter, state: e.state,
  });
  const need = (): Engine => {
    if (!engine) throw new Error('no model is loaded in this worker (createWorkerEngine loads one)');
    return engine;
  };
  /** Runs `task` with an AbortController that request `id`'s 'abort' message fires. */
  const abortable = async <T>(id: number, task: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const ac = new AbortController();
    aborts.set(id, ac);
    try {
      return await task(ac.signal);
    } finally {
      aborts.delete(id);
    }
  };

  async function load(id: number, wire: Record<string, unknown>, progress: boolean): Promise<EngineInfo> {
    await dispose();
    const e = await abortable(id, (signal) => make({
      ...(wire as unknown as CreateEngineOptions),
      signal,
      onProgress: progress ? (p) => post({ type: 'progress', id, progress: p }) : undefined,
    }));
    engine = e;
    unwatch = e.onDeviceLost((error) => post({ type: 'device-lost', id: 0, error: toWire(error) }));
    return info(e);
  }

  async function create(id: number, m: Extract<ToWorker, { type: 'create' }>): Promise<unknown> {
    const e = need();
    const stop = new AbortController();
    stops.set(id, stop);
    try {
      return await abortable(id, async (signal) => {
        const r = await e.chat.completions.create(m.params, { ...m.options, signal, stop: stop.signal });
        if (!m.params.stream) return r;
        post({ type: 'started', id });
        for await (const chunk of r as AsyncIterable<import('./types.ts').ChatCompletionChunk>) post({ type: 'chunk', id, chunk });
        return null;
      });
    } finally {
      stops.delete(id);
    }
  }

  async function session(id: number, sid: number, m: SessionOp): Promise<unknown> {
    if (m.op === 'create') {
      try {
        sessions.set(sid, need().createSession());
      } catch (failed) {
        sessions.set(sid, { failed }); // reported by the session's next call
      }
      return null;
    }
    const s = sessions.get(sid);
    if (!s) throw new Error('this session has been disposed');
    if ('failed' in s) throw s.failed;
    switch (m.op) {
      case 'append':
        await s.append(m.tokens);
        return { position: s.position };
      case 'generate': {
        const r = await abortable(id, (signal) => s.generate({
          ...m.options, signal, onToken: m.tokens ? (token) => post({ type: 'token', id, token }) : undefined,
        }));
        return { result: r, position: s.position };
      }
      case 'reset':
        s.reset();
        return { position: s.position };
      case 'dispose':
        s.dispose();
        sessions.delete(sid);
        return null;
    }
  }

  async function dispose(): Promise<void> {
    unwatch();
    unwatch = () => {};
    for (const s of sessions.values()) if (!('failed' in s)) s.dispose();
    sessions.clear();
    const e = engine;
    engine = undefined;
    await e?.dispose();
  }

  async function handle(m: ToWorker): Promise<unknown> {
    switch (m.type) {
      case 'load':
        return load(m.id, m.options, m.progress);
      case 'create':
        return create(m.id, m);
      case 'session':
        return session(m.id, m.session, m);
      case 'recover': {
        const e = need();
        await abortable(m.id, (signal) => e.recover({ signal, ...(m.progress ? { onProgress: (p) => post({ type: 'progress', id: m.id, progress: p }) } : {}) }));
        return info(e);
      }
      case 'dispose':
        await dispose();
        return null;
      case 'abort':
      case 'stop':
        return undefined;
    }
  }

  const listener = (ev: MessageEvent) => {
    const m = ev.data as unknown;
    if (!isMessage<ToWorker>(m)) return;
    if (m.type === 'abort') {
      aborts.get(m.id)?.abort(m.reason ? new DOMException(m.reason.message, m.reason.name) : new DOMException('The request was aborted', 'AbortError'));
      return;
    }
    if (m.type === 'stop') {
      stops.get(m.id)?.abort();
      return;
    }
    handle(m).then(
      (value) => post({ type: 'result', id: m.id, value }),
      (e: unknown) => post({ type: 'error', id: m.id, error: toWire(e) }),
    );
  };
  scope.addEventListener('message', listener);
  scope.start?.();
  return () => scope.removeEventListener('message', listener);
}
