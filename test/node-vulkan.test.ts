/**
 * Node's Dawn instance on SwiftShader (engine/gpu/node-vulkan.ts): the flag that moves
 * workgroup-memory zeroing from SwiftShader's compiler to Tint is set only for SwiftShader, and
 * workgroup memory still starts at zero on the test device, as WebGPU requires: a kernel that
 * reads workgroup memory before writing it sees zeros, in every workgroup, although each
 * workgroup leaves its memory full of garbage for the next.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBuffer, readU32 } from '../engine/gpu/buffers.ts';
import { dawnFlags } from '../engine/gpu/node-vulkan.ts';
import { testGpu } from './gpu/node-device.ts';

const ZEROING_FLAG = 'disable-dawn-features=use_vulkan_zero_initialize_workgroup_memory_extension';

describe('dawnFlags', () => {
  const saved = { icd: process.env.VK_ICD_FILENAMES, files: process.env.VK_DRIVER_FILES };
  const setDrivers = (icd?: string, files?: string) => {
    if (icd === undefined) delete process.env.VK_ICD_FILENAMES;
    else process.env.VK_ICD_FILENAMES = icd;
    if (files === undefined) delete process.env.VK_DRIVER_FILES;
    else process.env.VK_DRIVER_FILES = files;
  };
  afterEach(() => setDrivers(saved.icd, saved.files));

  it('SwiftShader alone gets the zeroing flag; a real driver, a mix or the system default gets none', () => {
    const sep = process.platform === 'win32' ? ';' : ':';
    const cases: [icd: string | undefined, files: string | undefined, want: string[]][] = [
      ['/usr/lib/chromium/vk_swiftshader_icd.json', undefined, [ZEROING_FLAG]],
      [undefined, '/opt/swiftshader/vk_swiftshader_icd.json', [ZEROING_FLAG]],
      ['/usr/share/vulkan/icd.d/nvidia_icd.json', undefined, []],
      [`/usr/lib/chromium/vk_swiftshader_icd.json${sep}/usr/share/vulkan/icd.d/radeon_icd.x86_64.json`, undefined, []],
      // VK_DRIVER_FILES wins over VK_ICD_FILENAMES, as in the Vulkan loader.
      ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/share/vulkan/icd.d/intel_icd.x86_64.json', []],
      [undefined, undefined, []],
    ];
    for (const [icd, files, want] of cases) {
      setDrivers(icd, files);
      expect(dawnFlags(), `VK_ICD_FILENAMES=${icd} VK_DRIVER_FILES=${files}`).toEqual(want);
    }
  });
});

describe('workgroup memory on the test device', () => {
  it('starts at zero in every workgroup, though each one leaves garbage behind', async () => {
    const { device } = await testGpu();
    const N = 2048, WG = 64, GROUPS = 96;
    const module = device.createShaderModule({
      code: /* wgsl */ `
var<workgroup> w: array<u32, ${N}>;
var<workgroup> v: array<vec4<f32>, ${N / 4}>;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var nonzero = 0u;
  for (var i = lid; i < ${N}u; i += ${WG}u) { nonzero += select(0u, 1u, w[i] != 0u); }
  for (var i = lid; i < ${N / 4}u; i += ${WG}u) { nonzero += select(0u, 1u, any(v[i] != vec4<f32>(0.0))); }
  workgroupBarrier();
  for (var i = lid; i < ${N}u; i += ${WG}u) { w[i] = 0xdeadbeefu + i + wg.x; }
  for (var i = lid; i < ${N / 4}u; i += ${WG}u) { v[i] = vec4<f32>(f32(wg.x) + 1.5); }
  out[wg.x * ${WG}u + lid] = nonzero;
}`,
    });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const out = createBuffer(device, GROUPS * WG * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'nonzero counts');
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] }));
    pass.dispatchWorkgroups(GROUPS);
    pass.end();
    device.queue.submit([enc.finish()]);
    const got = await readU32(device, out, GROUPS * WG);
    out.destroy();
    const bad = got.findIndex((n) => n !== 0);
    expect(bad, bad < 0 ? '' : `workgroup ${Math.floor(bad / WG)}, invocation ${bad % WG} read ${got[bad]} nonzero workgroup words before writing any (flags: ${dawnFlags().join(' ') || 'none'})`).toBe(-1);
  });
});
