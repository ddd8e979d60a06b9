/** Shared by the GPU subcommands: open a checkpoint and put it on the GPU with a progress line. */
import { Checkpoint } from '../loader/checkpoint.ts';
import { resolveModelSource, type ModelLocation } from '../loader/resolve.ts';
import { meterBuffers, type BufferMeter } from '../engine/gpu/buffer-meter.ts';
import { createGpuContext, type GpuContext } from '../engine/gpu/device.ts';
import { GpuModel, type ModelOptions } from '../engine/gpu-model.ts';
import { formatBytes } from './args.ts';

export interface LoadedModel {
  ck: Checkpoint;
  gpu: GpuContext;
  model: GpuModel;
  /** GPU buffer bytes really allocated on the device (weights from the load on; sessions too). */
  buffers: BufferMeter;
}

export async function loadGpuModel(model: ModelLocation, options: ModelOptions, quiet = false): Promise<LoadedModel> {
  const ck = await Checkpoint.open(await resolveModelSource(model));
  const gpu = await createGpuContext();
  const buffers = meterBuffers(gpu.device);
  let last = 0;
  const t0 = performance.now();
  try {
    const m = await GpuModel.load(ck, gpu, {
      ...options,
      onProgress: (done, total) => {
        const now = performance.now();
        if (!quiet && (now - last > 1000 || done === total) && process.stderr.isTTY) {
          last = now;
          process.stderr.write(`\rloading ${formatBytes(done)} / ${formatBytes(total)}`);
        }
      },
    });
    if (!quiet) {
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}loaded ${formatBytes(ck.totalBytes)} in ${s.toFixed(1)} s on ${describeAdapter(gpu)}\n`);
    }
    return { ck, gpu, model: m, buffers };
  } catch (e) {
    await ck.close();
    gpu.destroy();
    throw e;
  }
}

export function describeAdapter(gpu: GpuContext): string {
  const i = gpu.info;
  return `${[i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unknown adapter'}${gpu.f16 ? ' (shader-f16)' : ''}`;
}

export async function unload(m: LoadedModel): Promise<void> {
  m.model.dispose();
  await m.ck.close();
  m.gpu.destroy();
}
