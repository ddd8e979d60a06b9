/** Buffer helpers: creation from host data (padded to 4 bytes) and read-back. */
import { gpuWait } from './device-lost.ts';

export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function createBuffer(device: GPUDevice, size: number, usage: GPUBufferUsageFlags, label?: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, align(size, 4)), usage });
}

/** A storage buffer holding `data` (byte length padded to a multiple of 4). */
export function bufferFrom(
  device: GPUDevice,
  data: ArrayBufferView,
  usage: GPUBufferUsageFlags = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  label?: string,
): GPUBuffer {
  const buf = device.createBuffer({ label, size: Math.max(4, align(data.byteLength, 4)), usage, mappedAtCreation: true });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buf.unmap();
  return buf;
}

/** Copies `size` bytes of `buf` (from `offset`) to the host. For tests, tools and the sampled token. */
export async function readBuffer(device: GPUDevice, buf: GPUBuffer, size = buf.size, offset = 0): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ size: align(size, 4), usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, offset, staging, 0, align(size, 4));
  device.queue.submit([enc.finish()]);
  await gpuWait(device, staging.mapAsync(GPUMapMode.READ));
  const out = staging.getMappedRange().slice(0, size);
  staging.unmap();
  staging.destroy();
  return out;
}

export async function readF32(device: GPUDevice, buf: GPUBuffer, count: number, offsetElems = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buf, count * 4, offsetElems * 4));
}

export async function readU32(device: GPUDevice, buf: GPUBuffer, count: number, offsetElems = 0): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(device, buf, count * 4, offsetElems * 4));
}

/** Pads little-endian bf16/u8 bytes to a u32 multiple (WGSL reads them as array<u32>). */
export function padTo4(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength % 4 === 0) return bytes;
  const out = new Uint8Array(align(bytes.byteLength, 4));
  out.set(bytes);
  return out;
}
