/** The GPU memory plan: sizes of the real 20b and the errors that stop a load before any upload. */
import { describe, expect, it } from 'vitest';
import { planMemory, planMemoryAuto, ModelTooLargeError } from '../engine/memory-plan.ts';
import { synthConfig, synthShape } from '../loader/synth.ts';

const GiB = 1024 ** 3;
const c20b = synthConfig(synthShape('20b'));
const c120b = synthConfig(synthShape('120b'));
const limits = { maxBufferSize: GiB, maxStorageBufferBindingSize: GiB };
const opts = (contextLimit: number) => ({ contextLimit, maxBatch: 128, kvFormat: 'q8' as const, logitRows: 1 });

describe('memory plan', () => {
  it('puts the real 20b under 16 GB at 32k context with the 8-bit cache', () => {
    const p = planMemory(c20b, limits, opts(32768));
    expect(p.weightBytes).toBe(13_761_264_768); // the published total_size
    // 12 full layers x 32768 positions x 8 kv heads x (64 int8 + 4-byte scale) x (k, v)
    const full = 12 * 32768 * 8 * 68 * 2;
    // 12 sliding layers keep window + batch - 1 = 255 positions
    const sliding = 12 * 255 * 8 * 68 * 2;
    expect(p.kvBytes).toBe(full + sliding);
    expect(p.totalBytes).toBeLessThan(16e9);
    console.log(`20b at 32k: weights ${p.weightBytes}, KV ${p.kvBytes}, scratch ${p.scratchBytes}, total ${p.totalBytes}`);
  });

  it("sizes the 8-bit qkv, o and lm_head of weights 'q8' (1.125 bytes per value, router and the rest as stored)", () => {
    const bf16 = planMemory(c20b, limits, opts(4096));
    const q8 = planMemory(c20b, limits, { ...opts(4096), weights: 'q8' });
    // 24 layers x (qkv 5120 x 2880 + o 2880 x 4096) and lm_head 201088 x 2880, at 2 - 1.125 bytes saved each
    const saved = 0.875 * (24 * (5120 * 2880 + 2880 * 4096) + 201088 * 2880);
    expect(bf16.weightBytes - q8.weightBytes).toBe(saved);
    expect(q8.weightBytes).toBe(12_697_139_328);
    for (const param of ['qkv_w', 'o_w', 'lm_head']) {
      for (const w of q8.weights.filter((x) => x.param === param)) expect(w.q8Cols, `${w.name} q8Cols`).toBe(param === 'o_w' ? 4096 : 2880);
    }
    expect(q8.weights.filter((x) => x.q8Cols !== undefined).length, 'q8 matrices: qkv and o per layer, lm_head').toBe(2 * 24 + 1);
    console.log(`20b weights: bf16 ${bf16.weightBytes}, q8 ${q8.weightBytes} (${(saved / 1e9).toFixed(3)} GB less)`);
  });

  it('splits the embedding and lm_head past the binding limit', () => {
    const limit = 512 * 2 ** 20;
    const p = planMemory(c20b, { maxBufferSize: limit, maxStorageBufferBindingSize: limit }, opts(4096));
    for (const param of ['embed', 'lm_head']) {
      const w = p.weights.find((x) => x.param === param)!;
      expect(w.chunks!.length).toBe(Math.ceil((201088 * 2880 * 2) / limit));
      expect(w.chunks!.reduce((a, ch) => a + ch.rows, 0)).toBe(201088);
      for (const ch of w.chunks!) expect(ch.bytes).toBeLessThanOrEqual(limit);
    }
  });

  it('refuses a tensor larger than the adapter can bind, naming it', () => {
    // The WebGPU default limit (128 MiB) cannot hold one layer's gate_up blocks (32 x 5760 x 90 x 16 bytes).
    const small = { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 128 * 2 ** 20 };
    expect(() => planMemory(c20b, small, opts(4096))).toThrow(ModelTooLargeError);
    expect(() => planMemory(c20b, small, opts(4096))).toThrow(/model\.layers\.0\.mlp\.experts\.gate_up_proj_blocks needs one 265\.4 MB buffer, but this adapter binds at most 134\.2 MB/);
    // 120b: 128 x 5760 x 90 x 16 = 1.06 GB per layer fits a 1 GiB binding, not a 1 GB one.
    expect(planMemory(c120b, limits, opts(4096)).weightBytes).toBeGreaterThan(60e9);
    expect(() => planMemory(c120b, { maxBufferSize: 1e9, maxStorageBufferBindingSize: 1e9 }, opts(4096))).toThrow(/gate_up_proj_blocks needs one 1\.06 GB buffer/);
  });

  it('refuses a model larger than the stated GPU memory, with needed and available sizes', () => {
    try {
      planMemory(c20b, { ...limits, memoryLimit: 8e9 }, opts(32768));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ModelTooLargeError);
      expect((e as ModelTooLargeError).neededBytes).toBeGreaterThan(8e9);
      expect((e as ModelTooLargeError).availableBytes).toBe(8e9);
      expect((e as Error).message).toMatch(/needs 14\.\d\d GB .* only 8\.00 GB is available/);
    }
  });

  it('picks the largest default prefill batch (512, 256, ...) that the plan allows', () => {
    const auto = (l: typeof limits & { memoryLimit?: number }, contextLimit: number, allLogits = false) =>
      planMemoryAuto(c20b, l, { contextLimit, kvFormat: 'q8', allLogits }).options.maxBatch;
    expect(auto(limits, 4096)).toBe(512);
    expect(auto(limits, 100)).toBe(100); // never more than the context
    // Every position's logits: 512 rows of 201088 are 412 MB, over a 256 MiB binding; 256 rows fit.
    const mid = { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 256 * 2 ** 20 };
    expect(auto(mid, 4096, true)).toBe(256);
    // Memory for batch 256 but not 512 (the KV cache and MoE scratch grow with the batch).
    const at256 = planMemory(c20b, limits, { ...opts(4096), maxBatch: 256 }).totalBytes;
    expect(auto({ ...limits, memoryLimit: at256 }, 4096)).toBe(256);
    // Scratch of 512 tokens: the grouped MoE's per-slot outputs (512 x 4 x 2880 f32) are counted.
    const p = planMemoryAuto(c20b, limits, { contextLimit: 4096, kvFormat: 'q8', allLogits: false });
    expect(p.scratchBytes).toBeGreaterThan(2 * 512 * 4 * 2880 * 4);
    expect(() => planMemoryAuto(c20b, { ...limits, memoryLimit: 1e9 }, { contextLimit: 4096, kvFormat: 'q8', allLogits: false })).toThrow(ModelTooLargeError);
  });

  it('refuses a context beyond the model maximum', () => {
    expect(() => planMemory(c20b, limits, opts(131073))).toThrow(/contextLimit 131073 must be between 1 and the model's max_position_embeddings 131072/);
  });
});
