/**
 * The memory plan agrees with what is really allocated (SwiftShader): the bytes of the GPU
 * buffers a model creates for its weights, and a session for its KV cache and activations,
 * metered by wrapping device.createBuffer, against engine/memory-plan.ts's numbers.
 *
 * Tolerance: createBuffer rounds every size up to 4 bytes (at most 3 bytes per buffer), and the
 * plan leaves out the session's uniform and read-back buffers (a few dozen bytes each):
 * SMALL_BUFFERS bytes in all.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { syntheticSource } from '../loader/source-synthetic.ts';
import { GpuModel, type ModelOptions } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { meterBuffers } from '../engine/gpu/buffer-meter.ts';
import { testGpu } from './gpu/node-device.ts';

const SMALL_BUFFERS = 1024;

describe('memory plan vs GPU buffers actually created', () => {
  const open: { ck?: Checkpoint; model?: GpuModel; session?: GpuSession }[] = [];
  afterAll(async () => {
    for (const o of open) {
      o.session?.dispose();
      o.model?.dispose();
      await o.ck?.close();
    }
  });

  const cases: { name: string; options: ModelOptions; allLogits?: boolean }[] = [
    { name: 'q8 cache, context 256, batch 16', options: { kvFormat: 'q8', contextLimit: 256, maxBatch: 16 } },
    { name: "q8 weights (qkv, o, lm_head), context 64, batch 8", options: { kvFormat: 'q8', contextLimit: 64, maxBatch: 8, weights: 'q8' } },
    { name: 'f32 cache, context 100, batch 8, every position\'s logits', options: { kvFormat: 'f32', contextLimit: 100, maxBatch: 8, allLogits: true }, allLogits: true },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const gpu = await testGpu();
      const o: (typeof open)[number] = {};
      open.push(o);
      // Tiny shape with a 4096-token vocabulary: embedding and lm_head are 512 kB each.
      o.ck = await Checkpoint.open(syntheticSource({ preset: 'tiny', overrides: { vocab: 4096, layers: 3 }, seed: 0 }));
      const meter = meterBuffers(gpu.device);
      try {
        const before = meter.liveBytes;
        const createdBefore = meter.created;
        o.model = await GpuModel.load(o.ck, gpu, c.options);
        const plan = o.model.plan;
        const weights = meter.liveBytes - before;
        const weightBuffers = meter.created - createdBefore;
        expect(weightBuffers, 'one buffer per planned weight or row chunk').toBe(plan.weights.reduce((a, w) => a + (w.chunks?.length ?? 1), 0));
        expect(weights - plan.weightBytes, `weights: allocated ${weights}, planned ${plan.weightBytes}`).toBeGreaterThanOrEqual(0);
        expect(weights - plan.weightBytes, `weights: allocated ${weights}, planned ${plan.weightBytes}`).toBeLessThanOrEqual(3 * weightBuffers);
        expect(o.model.weightBufferBytes, 'GpuModel.weightBufferBytes').toBe(weights);

        const afterModel = meter.liveBytes;
        o.session = new GpuSession(o.model, { allLogits: c.allLogits });
        const sessionBytes = meter.liveBytes - afterModel;
        const planned = plan.kvBytes + plan.scratchBytes;
        console.log(`${c.name}: weights ${weights} (plan ${plan.weightBytes}), session ${sessionBytes} (plan KV ${plan.kvBytes} + scratch ${plan.scratchBytes})`);
        expect(sessionBytes - planned, `session: allocated ${sessionBytes}, planned KV ${plan.kvBytes} + scratch ${plan.scratchBytes}`).toBeGreaterThanOrEqual(0);
        expect(sessionBytes - planned, `session: allocated ${sessionBytes}, planned KV ${plan.kvBytes} + scratch ${plan.scratchBytes}`).toBeLessThanOrEqual(SMALL_BUFFERS);
        expect(meter.liveBytes - before - plan.totalBytes, 'model + session vs plan total').toBeLessThanOrEqual(SMALL_BUFFERS + 3 * weightBuffers);

        // A forward pass allocates nothing that stays (read-back staging is destroyed).
        await o.session.append([1, 2, 3], 'last');
        expect(meter.liveBytes - afterModel, 'live bytes after a forward pass').toBe(sessionBytes);
        o.session.dispose();
        o.model.dispose();
        expect(meter.liveBytes, 'everything is released after dispose').toBe(before);
      } finally {
        meter.stop();
      }
    });
  }
});
