/**
 * The GPU half of a local engine: a device and the model's weights on it. It notices when the
 * device is lost (a driver reset, a browser reclaiming the GPU, device.destroy()) and, on
 * request, re-creates both: a fresh adapter and device, the weights streamed again from the same
 * checkpoint. Nothing survives from the lost device (pipelines are cached per device).
 *
 * States: 'ready' -> 'lost' (the device is gone; every request fails with DeviceLostError)
 * -> 'recovering' (recover() is reloading) -> 'ready' again, or back to 'lost' if that failed.
 */
import { DeviceLostError, deviceLost, onDeviceLost } from '../gpu/device-lost.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { GpuModel } from '../gpu-model.ts';
import type { RecoverOptions } from './engine.ts';

export type EngineState = 'ready' | 'lost' | 'recovering' | 'disposed';

export interface Resident {
  gpu: GpuContext;
  model: GpuModel;
}

export interface RuntimeHooks {
  /** A new device with the model loaded on it. */
  load(options: RecoverOptions): Promise<Resident>;
  /** Points the engine's sessions at the new model (under the engine's GPU lock). */
  install(next: Resident): Promise<void>;
}

export class GpuRuntime {
  private status: EngineState = 'ready';
  private loss?: DeviceLostError;
  private recovery?: Promise<void>;
  private unwatch: () => void = () => {};
  private readonly listeners = new Set<(e: DeviceLostError) => void>();

  constructor(private resident: Resident, private readonly hooks: RuntimeHooks) {
    this.watch(resident);
  }

  get gpu(): GpuContext {
    return this.resident.gpu;
  }

  get model(): GpuModel {
    return this.resident.model;
  }

  get state(): EngineState {
    // The loss may be known to a failed GPU wait a moment before the listener below hears of it.
    if (this.status === 'ready') {
      const lost = deviceLost(this.resident.gpu.device);
      if (lost) this.markLost(lost);
    }
    return this.status;
  }

  /** Throws unless ready: DeviceLostError while lost or recovering. */
  check(): void {
    const s = this.state;
    if (s === 'ready') return;
    if (s === 'disposed') throw new Error('the engine has been disposed');
    throw this.loss!.withHint(s === 'recovering'
      ? 'the engine is re-creating the device and reloading the model: retry when it is ready'
      : 'call engine.recover() to re-create the device and reload the model');
  }

  /** `listener` hears of every loss of the engine's device; returns an unsubscribe function. */
  onDeviceLost(listener: (e: DeviceLostError) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Re-creates the device and reloads the model; one recovery at a time, nothing to do when ready. */
  recover(options: RecoverOptions = {}): Promise<void> {
    const s = this.state;
    if (s === 'disposed') return Promise.reject(new Error('the engine has been disposed'));
    if (s === 'ready') return Promise.resolve();
    if (this.recovery) return this.recovery;
    this.status = 'recovering';
    this.recovery = this.reload(options).finally(() => (this.recovery = undefined));
    return this.recovery;
  }

  dispose(): void {
    this.status = 'disposed';
    this.unwatch();
    release(this.resident);
  }

  private async reload(options: RecoverOptions): Promise<void> {
    let next: Resident | undefined;
    try {
      next = await this.hooks.load(options);
      if (this.status !== 'recovering') throw new Error('the engine was disposed while it was recovering');
      await this.hooks.install(next);
    } catch (e) {
      if (next) release(next);
      if (this.status === 'recovering') this.status = 'lost';
      throw e;
    }
    const old = this.resident;
    this.resident = next;
    this.watch(next);
    release(old);
    this.loss = undefined;
    this.status = 'ready';
  }

  private watch(r: Resident): void {
    this.unwatch();
    this.unwatch = onDeviceLost(r.gpu.device, (e) => {
      if (this.resident === r) this.markLost(e);
    });
  }

  private markLost(e: DeviceLostError): void {
    if (this.status !== 'ready') return;
    this.status = 'lost';
    this.loss = e;
    // Listeners run like event handlers: after this call, and an exception in one is its own.
    for (const l of this.listeners) queueMicrotask(() => l(e));
  }
}

function release(r: Resident): void {
  r.model.dispose();
  r.gpu.destroy();
}
