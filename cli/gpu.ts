/** Shared by the GPU subcommands: open a checkpoint and put it on the GPU with a progress line. */
import { Checkpoint } from '../loader/checkpoint.ts';
import { resolveModelSource, type ModelLocation } from '../loader/resolve.ts';
import { meterBuffers, type BufferMeter } from '../engine/gpu/buffer-meter.ts';
import { createGpuContext, type GpuContext, type GpuOptions } from '../engine/gpu/device.ts';
import { GpuModel, type ModelOptions } from '../engine/gpu-model.ts';
import { CliError, formatBytes } from './args.ts';

export interface LoadedModel {
  ck: Checkpoint;
  gpu: GpuContext;
  model: GpuModel;
  /** GPU buffer bytes really allocated on the device (weights from the load on; sessions too). */
  buffers: BufferMeter;
  /** Errors the device raised outside an error scope, first lines (see checkGpu). */
  gpuErrors: string[];
}

/**
 * The GPU first (without one nothing is opened or read), then the checkpoint; whatever was
 * opened is closed again when a later step fails.
 */
export async function loadGpuModel(model: ModelLocation, options: ModelOptions, quiet = false, gpuOptions: GpuOptions = {}): Promise<LoadedModel> {
  const gpu = await createGpuContext(gpuOptions);
  const buffers = meterBuffers(gpu.device);
  // Dawn prints uncaptured errors and carries on: record them, so that no result computed after
  // one is printed as if it were fine.
  const gpuErrors: string[] = [];
  gpu.device.addEventListener('uncapturederror', (ev) => {
    ev.preventDefault();
    gpuErrors.push(ev.error.message.split('\n').map((l) => l.trim()).find(Boolean) ?? 'unknown error');
  });
  let ck: Checkpoint | undefined;
  let m: GpuModel | undefined;
  let last = 0;
  const t0 = performance.now();
  try {
    ck = await Checkpoint.open(await resolveModelSource(model));
    m = await GpuModel.load(ck, gpu, {
      ...options,
      onProgress: (done, total) => {
        const now = performance.now();
        if (!quiet && (now - last > 1000 || done === total) && process.stderr.isTTY) {
          last = now;
          process.stderr.write(`\rloading ${formatBytes(done)} / ${formatBytes(total)}`);
        }
      },
    });
    const loaded: LoadedModel = { ck, gpu, model: m, buffers, gpuErrors };
    await checkGpu(loaded);
    if (!quiet) {
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}loaded ${formatBytes(ck.totalBytes)} in ${s.toFixed(1)} s on ${describeAdapter(gpu)}\n`);
    }
    return loaded;
  } catch (e) {
    m?.dispose();
    await ck?.close().catch(() => {});
    gpu.destroy();
    throw e;
  }
}

/** Throws when the device has reported an error since the model was loaded. */
export async function checkGpu(m: LoadedModel): Promise<void> {
  await m.gpu.device.queue.onSubmittedWorkDone();
  if (m.gpuErrors.length > 0) throw new CliError(`the GPU reported an error: ${m.gpuErrors[0]}`);
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
