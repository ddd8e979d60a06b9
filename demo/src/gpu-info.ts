/** The adapter's details for the "About this GPU" disclosure. */
import type { AdapterSummary } from '../../index.ts';
import type { LoadInfo } from './protocol.ts';
import { fmtBytes } from './dom.ts';

const KEY_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'];

export function describeAdapter(a: AdapterSummary): string {
  const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed adapter';
  const key = KEY_FEATURES.map((f) => `${f} ${a.features.includes(f) ? 'yes' : 'no'}`).join(', ');
  return `Adapter: ${name}${a.fallback ? ' (software fallback adapter: slow)' : ''}; ${key}; ` +
    `max buffer ${fmtBytes(a.maxBufferSize)}, max storage binding ${fmtBytes(a.maxStorageBufferBindingSize)}, ` +
    `workgroup storage ${fmtBytes(a.maxComputeWorkgroupStorageSize)}; all features: ${a.features.join(', ') || 'none'}`;
}

export function describeBackend(info: LoadInfo): string {
  return info.adapter ? describeAdapter(info.adapter) : `Backend: fallback endpoint (${info.modelId})`;
}

/** The adapter the page's navigator.gpu offers (the worker's device reports the same one). */
export function adapterSummary(a: GPUAdapter): AdapterSummary {
  const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    vendor: info.vendor, architecture: info.architecture, description: info.description, features: [...a.features].sort(),
    maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: a.limits.maxComputeWorkgroupStorageSize,
    fallback: info.isFallbackAdapter === true || info.architecture === 'swiftshader',
  };
}
