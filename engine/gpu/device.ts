/**
 * Getting a WebGPU device with the limits the engine needs, the same way in browsers, Deno
 * (built-in navigator.gpu) and Node (npm `webgpu`, Dawn's bindings).
 */

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

export interface GpuContext {
  adapter: GPUAdapter;
  device: GPUDevice;
  info: AdapterSummary;
  /** shader-f16 was granted. */
  f16: boolean;
  /**
   * `subgroups` was granted: kernels may use subgroup reductions (`enable subgroups;`). The
   * engine uses them on GPUs only (not on fallback adapters); the kernel tests run them anywhere.
   */
  subgroups: boolean;
  /** The adapter's subgroup sizes (adapter.info.subgroupMinSize / MaxSize) where it reports them. */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  /** A CPU implementation (SwiftShader, WARP...): kernels pick barrier-free variants. */
  fallback: boolean;
  destroy(): void;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  features: string[];
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  /** A software (CPU) adapter such as SwiftShader: it works, slowly. */
  fallback: boolean;
}

export interface GpuOptions {
  /** A GPU object to use instead of navigator.gpu / npm webgpu. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Use shader-f16 when the adapter has it (default true). */
  allowF16?: boolean;
  /** Use subgroups when the adapter has them (default true). */
  allowSubgroups?: boolean;
}

// Keeps Dawn's GPU object alive in Node: dropping it lets the process exit.
let nodeGpu: GPU | undefined;

/** navigator.gpu, or in Node the npm `webgpu` package (Dawn). */
export async function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node && !('Deno' in globalThis);
  if (!isNode) throw new GpuUnavailableError('WebGPU is not available in this environment (no navigator.gpu)');
  if (nodeGpu) return nodeGpu;
  const vulkan = await import('./node-vulkan.ts');
  await vulkan.chooseVulkanDriver();
  // Kept out of bundlers' static analysis: the browser build never includes Dawn.
  const specifier = 'webgpu';
  let mod: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    mod = await import(/* @vite-ignore */ specifier);
  } catch (e) {
    // An optional peer dependency: web apps do not need Dawn's binaries, Node apps add them.
    const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && /'webgpu'|"webgpu"/.test((e as Error).message);
    throw new GpuUnavailableError(missing
      ? 'install the `webgpu` package to run on Node: npm install webgpu'
      : `cannot load the npm package "webgpu" (Dawn for Node): ${(e as Error).message}`);
  }
  Object.assign(globalThis, mod.globals);
  nodeGpu = mod.create(vulkan.dawnFlags());
  return nodeGpu;
}

export async function createGpuContext(options: GpuOptions = {}): Promise<GpuContext> {
  const gpu = options.gpu ?? (await getGpu());
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    const inBrowser = typeof window !== 'undefined' || 'WorkerGlobalScope' in globalThis;
    throw new GpuUnavailableError(inBrowser
      ? 'no WebGPU adapter found: the browser offers none (the GPU or its driver may be blocklisted, or WebGPU is switched off)'
      : 'no WebGPU adapter found (on Linux without a GPU, install a Vulkan driver such as SwiftShader and set VK_ICD_FILENAMES)');
  }
  const wanted: GPUFeatureName[] = [];
  const f16 = options.allowF16 !== false && adapter.features.has('shader-f16');
  if (f16) wanted.push('shader-f16');
  const subgroups = options.allowSubgroups !== false && adapter.features.has('subgroups');
  if (subgroups) wanted.push('subgroups');
  if (adapter.features.has('timestamp-query')) wanted.push('timestamp-query');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: wanted,
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  });
  const info = adapter.info;
  const sizes = info as { subgroupMinSize?: number; subgroupMaxSize?: number } | undefined;
  const fallback = (info as { isFallbackAdapter?: boolean })?.isFallbackAdapter === true ||
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true || info?.architecture === 'swiftshader';
  return {
    adapter,
    device,
    f16,
    subgroups,
    ...(subgroups && sizes?.subgroupMinSize ? { subgroupMinSize: sizes.subgroupMinSize } : {}),
    ...(subgroups && sizes?.subgroupMaxSize ? { subgroupMaxSize: sizes.subgroupMaxSize } : {}),
    fallback,
    info: {
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      description: info?.description ?? '',
      features: [...adapter.features].sort(),
      maxBufferSize: device.limits.maxBufferSize,
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
      fallback,
    },
    destroy: () => device.destroy(),
  };
}
