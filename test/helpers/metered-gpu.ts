/**
 * A GPU object for createEngine's `gpu` option whose devices are metered (engine/gpu/buffer-meter.ts)
 * and whose buffers are tracked by label, so a test can say which buffers a failed load left
 * alive. No Node imports: browser test pages use it too.
 */
import { meterBuffers, type BufferMeter } from '../../engine/gpu/buffer-meter.ts';

export interface MeteredGpu {
  gpu: GPU;
  /** One meter per device created, oldest first. */
  meters: BufferMeter[];
  /** Labels of the buffers created and not destroyed (all devices). */
  liveLabels(): string[];
}

export function meteredGpu(real: GPU): MeteredGpu {
  const meters: BufferMeter[] = [];
  const live = new Set<GPUBuffer>();
  const gpu = {
    requestAdapter: async (o?: GPURequestAdapterOptions) => {
      const adapter = await real.requestAdapter(o);
      if (!adapter) return adapter;
      const requestDevice = adapter.requestDevice.bind(adapter);
      (adapter as { requestDevice: GPUAdapter['requestDevice'] }).requestDevice = async (d?: GPUDeviceDescriptor) => {
        const device = await requestDevice(d);
        meters.push(meterBuffers(device));
        const create = device.createBuffer;
        device.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
          const b = create.call(this, desc);
          live.add(b);
          const destroy = b.destroy;
          b.destroy = function (this: GPUBuffer): undefined {
            live.delete(b);
            return destroy.call(this);
          };
          return b;
        };
        return device;
      };
      return adapter;
    },
    getPreferredCanvasFormat: () => real.getPreferredCanvasFormat(),
    wgslLanguageFeatures: real.wgslLanguageFeatures,
  } as GPU;
  return { gpu, meters, liveLabels: () => [...live].map((b) => b.label) };
}
