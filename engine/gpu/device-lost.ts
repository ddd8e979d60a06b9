/**
 * GPU device loss (a driver reset, a browser reclaiming a background tab's GPU, device.destroy()):
 * the typed error, a synchronous "is it lost?" per device, and `gpuWait`, which races a GPU
 * promise (mapAsync, onSubmittedWorkDone, popErrorScope) against the loss. After a loss, such
 * promises reject with an unrelated error (Dawn, Chromium: an AbortError) or, in some
 * implementations, never settle; through gpuWait they reject with DeviceLostError instead.
 */

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  /**
   * @param reason GPUDeviceLostInfo.reason: 'destroyed' (device.destroy()) or 'unknown' (anything else).
   * @param deviceMessage GPUDeviceLostInfo.message, the implementation's own words.
   * @param hint What the caller can do about it, appended to the message.
   */
  constructor(readonly reason: string, readonly deviceMessage: string, hint?: string) {
    super(`the GPU device was lost (reason "${reason}"${deviceMessage ? `: ${deviceMessage}` : ''})${hint ? `; ${hint}` : ''}`);
  }

  /** The same loss, with another hint (a fresh error per request, so stacks stay the caller's). */
  withHint(hint?: string): DeviceLostError {
    return new DeviceLostError(this.reason, this.deviceMessage, hint);
  }
}

interface Watch {
  lost?: DeviceLostError;
  /** Settled waits remove themselves: nothing piles up on a device that lives for days. */
  readonly waiters: Set<(e: DeviceLostError) => void>;
}

const watches = new WeakMap<GPUDevice, Watch>();

function watch(device: GPUDevice): Watch {
  let w = watches.get(device);
  if (!w) {
    const created: Watch = { waiters: new Set() };
    watches.set(device, (w = created));
    device.lost.then((info) => {
      created.lost = new DeviceLostError(info.reason, info.message);
      for (const f of created.waiters) f(created.lost);
      created.waiters.clear();
    }, () => {});
  }
  return w;
}

/** The loss of `device` once its `lost` promise has resolved; undefined while it works. */
export function deviceLost(device: GPUDevice): DeviceLostError | undefined {
  return watch(device).lost;
}

/** Calls `listener` once when `device` is lost (at once if it already is); returns an unsubscribe function. */
export function onDeviceLost(device: GPUDevice, listener: (e: DeviceLostError) => void): () => void {
  const w = watch(device);
  if (w.lost) {
    listener(w.lost);
    return () => {};
  }
  w.waiters.add(listener);
  return () => void w.waiters.delete(listener);
}

/** Throws DeviceLostError if `device` is known to be lost. */
export function throwIfLost(device: GPUDevice, hint?: string): void {
  const lost = deviceLost(device);
  if (lost) throw lost.withHint(hint);
}

/** How long a failed GPU wait looks for a loss that explains it (the two may come in either order). */
export const LOSS_GRACE_MS = 2000;

/**
 * `p`, or DeviceLostError as soon as `device` is lost (even if `p` never settles). A rejection of
 * `p` that a loss explains, reported up to LOSS_GRACE_MS later, becomes DeviceLostError too.
 */
export function gpuWait<T>(device: GPUDevice, p: Promise<T>): Promise<T> {
  const w = watch(device);
  if (w.lost) {
    p.catch(() => {});
    return Promise.reject(w.lost.withHint());
  }
  return new Promise<T>((resolve, reject) => {
    const onLost = (e: DeviceLostError) => reject(e.withHint());
    w.waiters.add(onLost);
    p.then(
      (v) => {
        w.waiters.delete(onLost);
        resolve(v);
      },
      (err: unknown) => {
        w.waiters.delete(onLost);
        void lossWithin(w, LOSS_GRACE_MS).then((lost) => reject(lost ? lost.withHint() : err));
      },
    );
  });
}

function lossWithin(w: Watch, ms: number): Promise<DeviceLostError | undefined> {
  if (w.lost) return Promise.resolve(w.lost);
  return new Promise((resolve) => {
    const done = (e?: DeviceLostError) => {
      clearTimeout(timer);
      w.waiters.delete(done);
      resolve(e);
    };
    const timer = setTimeout(() => done(), ms);
    w.waiters.add(done);
  });
}
