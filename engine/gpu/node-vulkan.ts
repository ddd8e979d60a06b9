/**
 * Node on Linux without a GPU: Dawn needs a Vulkan driver. When the caller chose none
 * (VK_ICD_FILENAMES / VK_DRIVER_FILES) and the system has no Vulkan driver manifest, use the
 * SwiftShader CPU driver that Debian's chromium package installs. A real GPU's driver, when
 * present, is always left in charge.
 *
 * On SwiftShader, Dawn's instance also leaves workgroup-memory zeroing to Tint
 * (dawnFlags): SwiftShader compiles the zero initializers that VK_KHR_zero_initialize_workgroup_memory
 * hands it into code whose compile time grows with the arrays' size (about 3 s for one prefill
 * attention kernel with 16 KiB of workgroup memory; with Tint's zeroing loop, 25 ms). The memory is
 * zeroed either way, as WebGPU requires.
 */
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export async function chooseVulkanDriver(): Promise<void> {
  if (process.platform !== 'linux' || process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return;
  const fs = await import('node:fs/promises');
  for (const dir of ICD_DIRS) {
    const entries = await fs.readdir(dir).catch(() => [] as string[]);
    if (entries.some((e) => e.endsWith('.json'))) return;
  }
  if (await fs.stat(SWIFTSHADER_ICD).then(() => true, () => false)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}

/** The Vulkan driver manifests chosen through the environment (empty: the system's own). */
function chosenDrivers(): string[] {
  const list = process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES || '';
  return list.split(process.platform === 'win32' ? ';' : ':').filter(Boolean);
}

/** The Dawn flag for SwiftShader: workgroup memory zeroed by Tint (Chromium: `--` + this). */
export const SWIFTSHADER_DAWN_FLAG = 'disable-dawn-features=use_vulkan_zero_initialize_workgroup_memory_extension';

/** Dawn instance flags (npm webgpu `create(flags)`) for the chosen Vulkan driver. */
export function dawnFlags(): string[] {
  const drivers = chosenDrivers();
  const swiftshaderOnly = drivers.length > 0 && drivers.every((d) => /swiftshader/i.test(d));
  return swiftshaderOnly ? [SWIFTSHADER_DAWN_FLAG] : [];
}
