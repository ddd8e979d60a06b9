/**
 * The page's side of the engine worker: an object with the library Engine's chat API
 * (`chat.completions.create({ ..., stream: true }, { signal })` gives an async iterable of
 * chunks) plus load(model, options, onProgress), cache size and clearing, and recover() after a
 * GPU device loss. Errors keep their names, so GpuUnavailableError / ModelTooLargeError /
 * DeviceLostError can be told apart.
 */
import { DeviceLostError, GpuUnavailableError, ModelTooLargeError, type ChatCompletionChunk, type ChatCompletionCreateParams } from '../../index.ts';
import type { CachedModel, DemoModel, FromWorker, LoadInfo, LoadOptions, ProgressInfo, ToWorker, WireError } from './protocol.ts';

type Pending = {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: (p: ProgressInfo) => void;
  onNotice?: (text: string) => void;
  onChunk?: (c: ChatCompletionChunk) => void;
};

type Request = ToWorker extends infer T ? (T extends ToWorker ? Omit<T, 'id'> : never) : never;

function revive(e: WireError): Error {
  if (e.name === 'GpuUnavailableError') return new GpuUnavailableError(e.message);
  if (e.name === 'ModelTooLargeError') return new ModelTooLargeError(e.message, 0, 0);
  if (e.name === 'DeviceLostError') {
    const lost = new DeviceLostError(e.reason ?? 'unknown', e.deviceMessage ?? '');
    lost.message = e.message;
    return lost;
  }
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  return err;
}

export class WorkerEngine {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Called when the engine's GPU device is lost, even between requests; recover() reloads. */
  onDeviceLost?: (e: DeviceLostError) => void;
  readonly chat: { completions: { create: (params: ChatCompletionCreateParams & { stream: true }, options?: { signal?: AbortSignal }) => Promise<AsyncIterable<ChatCompletionChunk>> } };

  constructor(worker?: Worker) {
    this.worker = worker ?? new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (ev: MessageEvent<FromWorker>) => this.receive(ev.data);
    this.chat = { completions: { create: (params, options) => Promise.resolve(this.stream(params, options?.signal)) } };
  }

  private receive(m: FromWorker): void {
    if (m.type === 'device-lost') {
      this.onDeviceLost?.(revive(m.error) as DeviceLostError);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'progress') p.onProgress?.(m.progress);
    else if (m.type === 'notice') p.onNotice?.(m.text);
    else if (m.type === 'chunk') p.onChunk?.(m.chunk);
    else {
      this.pending.delete(m.id);
      if (m.type === 'error') p.reject(revive(m.error));
      else p.resolve(m.value);
    }
  }

  private call<T>(msg: Request, extra: Partial<Pending> = {}): { id: number; done: Promise<T> } {
    const id = this.nextId++;
    const done = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, ...extra }));
    this.worker.postMessage({ ...msg, id } as ToWorker);
    return { id, done };
  }

  /** Loads a model; `onNotice` hears what the page should say before the load ends (e.g. a small quota). */
  load(model: DemoModel, options: LoadOptions = {}, onProgress?: (p: ProgressInfo) => void, onNotice?: (text: string) => void): Promise<LoadInfo> {
    return this.call<LoadInfo>({ type: 'load', model, options }, { onProgress, onNotice }).done;
  }

  cacheSize(): Promise<number> {
    return this.call<number>({ type: 'cache-size' }).done;
  }

  clearCache(): Promise<void> {
    return this.call<void>({ type: 'clear-cache' }).done;
  }

  listCache(): Promise<CachedModel[]> {
    return this.call<CachedModel[]>({ type: 'list-cache' }).done;
  }

  /** Deletes one cached model by its base URL (CachedModel.url). */
  deleteModel(url: string): Promise<boolean> {
    return this.call<boolean>({ type: 'delete-model', url }).done;
  }

  /** After a device loss: re-creates the device and reloads the model (from the download cache). */
  recover(onProgress?: (p: ProgressInfo) => void): Promise<void> {
    return this.call<void>({ type: 'recover' }, { onProgress }).done;
  }

  dispose(): Promise<void> {
    return this.call<void>({ type: 'dispose' }).done;
  }

  private stream(params: ChatCompletionCreateParams, signal?: AbortSignal): AsyncIterable<ChatCompletionChunk> {
    const queue: ChatCompletionChunk[] = [];
    let finished = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    const { id, done } = this.call<null>({ type: 'create', params }, { onChunk: (c) => { queue.push(c); notify(); } });
    done.then(() => { finished = true; notify(); }, (e: Error) => { failure = e; finished = true; notify(); });
    const abort = () => this.worker.postMessage({ type: 'abort', id } satisfies ToWorker);
    if (signal?.aborted) abort();
    else signal?.addEventListener('abort', abort, { once: true });
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            if (queue.length > 0) {
              yield queue.shift()!;
              continue;
            }
            if (finished) break;
            await new Promise<void>((r) => (wake = r));
          }
          if (failure) throw failure;
        } finally {
          signal?.removeEventListener('abort', abort);
          if (!finished) abort();
        }
      },
    };
  }
}
