/**
 * The token-level API beneath chat.completions: tokens in, tokens out, one generation at a time
 * on the engine's GPU. `TextSession` is what every engine offers (the worker engine proxies it
 * over messages); `LocalTextSession` runs it on this thread's GPU session.
 */
import { generate, type GenerateOptions, type GenerateResult } from '../generate.ts';
import type { GpuSession } from '../gpu-session.ts';
import type { GpuQueue } from './gpu-queue.ts';

export interface TextSession {
  /** Tokens in the KV cache. */
  readonly position: number;
  /** Feeds tokens into the KV cache (prefill). */
  append(tokens: number[]): Promise<void>;
  /** Generates after what was appended; `prompt` tokens are appended first. */
  generate(options: GenerateOptions & { prompt?: number[] }): Promise<GenerateResult>;
  /** Empties the KV cache. */
  reset(): void;
  dispose(): void;
}

export class LocalTextSession implements TextSession {
  private disposed = false;
  constructor(private readonly session: GpuSession, private readonly queue: GpuQueue) {}

  get position(): number {
    return this.session.position;
  }

  append(tokens: number[]): Promise<void> {
    return this.queue.run(async () => {
      await this.session.append(tokens);
    });
  }

  generate(options: GenerateOptions & { prompt?: number[] }): Promise<GenerateResult> {
    return this.queue.run(() => generate(this.session, options.prompt ?? [], options), options.signal);
  }

  reset(): void {
    this.session.reset();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.session.dispose();
  }
}
