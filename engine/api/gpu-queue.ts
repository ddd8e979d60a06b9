/**
 * One generation at a time on the GPU: callers queue in arrival order and none is dropped.
 * `run` holds the lock for the whole task, including a stream the caller iterates.
 */
export class GpuQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** Number of tasks running or queued. */
  get depth(): number {
    return this.waiting;
  }

  /** Resolves to a release function once every earlier holder has released. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    this.waiting++;
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const before = this.tail;
    this.tail = before.then(() => mine);
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      this.waiting--;
      release();
    };
    try {
      await abortable(before, signal);
    } catch (e) {
      // Leave the chain intact: our slot passes straight through once its turn comes.
      done();
      throw e;
    }
    return done;
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await task();
    } finally {
      release();
    }
  }
}

function abortable(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}
