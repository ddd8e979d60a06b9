/**
 * Counts the GPU memory a device's buffers actually take: wraps device.createBuffer (and each
 * buffer's destroy) to keep the bytes of live buffers and their peak. For checking the memory
 * plan (engine/memory-plan.ts) against what the model and its sessions really create.
 */

export interface BufferMeter {
  /** Bytes of the buffers created while metering and not destroyed yet. */
  readonly liveBytes: number;
  /** The highest liveBytes reached. */
  readonly peakBytes: number;
  /** Buffers created while metering. */
  readonly created: number;
  /** Starts the peak again from the live bytes (after a temporary buffer that should not count). */
  resetPeak(): void;
  /** Restores the device's own createBuffer (buffers already wrapped keep counting their destroy). */
  stop(): void;
}

const meters = new WeakMap<GPUDevice, BufferMeter>();

/** Starts metering `device` (or returns the meter already running on it). */
export function meterBuffers(device: GPUDevice): BufferMeter {
  const running = meters.get(device);
  if (running) return running;
  const own = Object.prototype.hasOwnProperty.call(device, 'createBuffer') ? device.createBuffer : undefined;
  const create = device.createBuffer;
  let live = 0;
  let peak = 0;
  let created = 0;
  device.createBuffer = function (this: GPUDevice, descriptor: GPUBufferDescriptor): GPUBuffer {
    const buffer = create.call(this, descriptor);
    const size = buffer.size;
    live += size;
    peak = Math.max(peak, live);
    created++;
    const destroy = buffer.destroy;
    let gone = false;
    buffer.destroy = function (this: GPUBuffer): undefined {
      if (!gone) {
        gone = true;
        live -= size;
      }
      return destroy.call(this);
    };
    return buffer;
  };
  const meter: BufferMeter = {
    get liveBytes() { return live; },
    get peakBytes() { return peak; },
    get created() { return created; },
    resetPeak() {
      peak = live;
    },
    stop() {
      if (own) device.createBuffer = own;
      else delete (device as { createBuffer?: unknown }).createBuffer;
      meters.delete(device);
    },
  };
  meters.set(device, meter);
  return meter;
}
