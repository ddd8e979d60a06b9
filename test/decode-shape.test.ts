/**
 * The shape of a decode step, measured from the WebGPU calls of `gptoss generate --gpu-trace`
 * and of the library's generate() (any adapter, SwiftShader included): one submit and one 4-byte read-back per token, nothing
 * created per token, at most 8 dispatches per layer plus 4, and token N+1 submitted before
 * token N's id is read back.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { decodeShape, GpuCallTrace, type DecodeShape } from '../engine/gpu/call-trace.ts';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { GpuModel } from '../engine/gpu-model.ts';
import { GpuSession } from '../engine/gpu-session.ts';
import { generate } from '../engine/generate.ts';
import { testGpu } from './gpu/node-device.ts';

const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));

/** The figures the issue asks of every decode step, for a trace of `generated` tokens. */
function expectShape(s: DecodeShape, layers: number, generated: number): void {
  // The first token comes from the prompt's draw; every later one from a decode step.
  expect(s.steps, 'decode steps').toBe(generated - 1);
  expect(s.submitsPerStep, 'submits per token').toBe(1);
  expect(s.encodersPerStep, 'command encoders per token').toBe(1);
  expect(s.createdPerStep, 'GPU objects created per token (buffers, bind groups, pipelines...)').toBe(0);
  expect(s.mapsPerStep, 'read-backs per token').toBe(1);
  expect(s.bytesReadPerStep, 'bytes read back per token').toBe(4);
  expect(s.dispatchesPerStep.max, `dispatches per token (limit 8 per layer + 4 = ${8 * layers + 4})`).toBeLessThanOrEqual(8 * layers + 4);
  expect(s.dispatchesPerStep.max, 'today: 7 per layer + embedding, lm_head, sampler').toBe(7 * layers + 3);
  // Every step but the last had the next one submitted before its id came back (or came back
  // with the previous id, when the GPU outran the host); an engine that waits for each id
  // before recording the next step scores 0 on both.
  expect(s.pipelined + s.overtaken, 'steps submitted behind one still running').toBe(s.steps - 1);
  expect(s.pipelined, 'steps whose id came back after the next step was submitted').toBeGreaterThan(0);
  // Per token the host writes only the Step and SampleParams uniforms (16 + 32 bytes).
  expect(s.bytesWrittenPerStep, 'bytes written per token').toBeLessThanOrEqual(48);
}

describe('decode step shape', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-shape-'));
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 3, outDir: join(dir, 'tiny'), overrides: { layers: 3 } });
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 3, outDir: join(dir, 'small'), overrides: { layers: 3, vocab: 1024 } });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gptoss generate --gpu-trace: one submit, one 4-byte read-back, nothing created, 7 dispatches per layer, pipelined', async () => {
    const out = join(dir, 'trace.json');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'generate', '--model', join(dir, 'tiny'), '--prompt', 'Hello there', '--max-tokens', '6', '--gpu-trace', out],
        (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    console.log(r.stderr.split('\n').filter((l) => l.startsWith('[gpu trace')).join('\n'));
    const t = JSON.parse(await readFile(out, 'utf8')) as { layers: number; generated: number; decode: DecodeShape };
    expect(t.layers).toBe(3);
    expectShape(t.decode, t.layers, t.generated);
  });

  // The same trace around the library's generate(), for the other draws (the sampler differs).
  for (const sampling of [{ temperature: 0.8, topK: 0, topP: 1, seed: 7 }, { temperature: 0.8, topK: 40, topP: 0.9, seed: 7 }]) {
    it(`holds for temperature ${sampling.temperature}, top-k ${sampling.topK}, top-p ${sampling.topP}`, async () => {
      const ck = await Checkpoint.open(await directorySource(join(dir, 'small')));
      const model = await GpuModel.load(ck, await testGpu(), { maxBatch: 8, contextLimit: 64 });
      const session = new GpuSession(model);
      const trace = new GpuCallTrace(model.gpu.device);
      const res = await generate(session, [1, 2, 3, 4, 5], { maxTokens: 8, sampling });
      trace.stop();
      expectShape(decodeShape(trace.events), 3, res.tokens.length);
      session.dispose();
      model.dispose();
      await ck.close();
    });
  }
});
