/**
 * Node on Linux without a GPU: Dawn needs a Vulkan driver. When the caller chose none
 * (VK_ICD_FILENAMES / VK_DRIVER_FILES) and the system has no Vulkan driver manifest, use the
 * SwiftShader CPU driver that Debian's chromium package installs. A real GPU's driver, when
 * present, is always left in charge.
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
