/**
 * An async iterable fed from outside: a producer pushes items (GPU tokens, worker messages,
 * checked chunks) at its own pace, the consumer reads them in order with `for await`. Items
 * pushed before a failure are still delivered, then the failure is thrown. A consumer that
 * stops early (break, return) ends the queue and calls `onReturn`, so the producer can stop.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake?: () => void;
  private ended = false;
  private failure: { error: unknown } | undefined;

  constructor(private readonly onReturn?: () => void) {}

  /** Whether end(), fail() or the consumer's return() has closed the queue. */
  get closed(): boolean {
    return this.ended;
  }

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = { error };
    this.end();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          if (this.items.length > 0) return { value: this.items.shift()!, done: false };
          if (this.failure) {
            const { error } = this.failure;
            this.failure = undefined;
            throw error;
          }
          if (this.ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        const early = !this.ended;
        this.ended = true;
        this.items.length = 0;
        this.failure = undefined;
        if (early) this.onReturn?.();
        return { value: undefined, done: true };
      },
    };
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
