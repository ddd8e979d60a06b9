/** Small helpers the kernel case tables share to record and run dispatches. */
import { createBuffer } from '../../engine/gpu/buffers.ts';
import { STEP_BYTES, writeStep } from '../../kernels/common.ts';

/** Records one compute pass, submits it and waits until the queue has run it. */
export async function runPass(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void): Promise<void> {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  record(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
}

/** A Step uniform (kernels/common.ts) holding n_tokens and pos0. */
export function stepBuffer(device: GPUDevice, nTokens: number, pos0 = 0): GPUBuffer {
  const buf = createBuffer(device, STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'step');
  writeStep(device, buf, nTokens, pos0);
  return buf;
}

/** Read-write storage usage (a function: GPUBufferUsage exists only once WebGPU is set up). */
export const rwStorage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
