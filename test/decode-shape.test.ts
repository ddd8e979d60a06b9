/**
 * The shape of a decode step, measured from the WebGPU calls of `gptoss generate --gpu-trace`
 * (any adapter, SwiftShader included): one submit and one 4-byte read-back per token, nothing
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
import type { DecodeShape } from '../engine/gpu/call-trace.ts';

const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));

describe('decode step shape (gptoss generate --gpu-trace)', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-shape-'));
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 3, outDir: join(dir, 'tiny'), overrides: { layers: 3 } });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const sampling of [[], ['--temperature', '0.8', '--seed', '7'], ['--temperature', '0.8', '--top-k', '40', '--seed', '7']]) {
    it(`holds for ${sampling.length ? sampling.join(' ') : 'greedy'} decoding`, async () => {
      const out = join(dir, `trace-${sampling.length}.json`);
      const gen = 10;
      const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, 'generate', '--model', join(dir, 'tiny'), '--prompt', 'Hello there', '--max-tokens', String(gen), '--gpu-trace', out, ...sampling],
          (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr }));
      });
      expect(r.code, r.stderr).toBe(0);
      console.log(r.stderr.split('\n').filter((l) => l.startsWith('[gpu trace')).join('\n'));
      const t = JSON.parse(await readFile(out, 'utf8')) as { layers: number; generated: number; decode: DecodeShape };
      const s = t.decode;
      expect(t.layers).toBe(3);
      // The first token comes from the prompt's draw; every later one from a decode step.
      expect(s.steps, 'decode steps').toBe(t.generated - 1);
      expect(s.submitsPerStep, 'submits per token').toBe(1);
      expect(s.encodersPerStep, 'command encoders per token').toBe(1);
      expect(s.createdPerStep, 'GPU objects created per token (buffers, bind groups, pipelines...)').toBe(0);
      expect(s.mapsPerStep, 'read-backs per token').toBe(1);
      expect(s.bytesReadPerStep, 'bytes read back per token').toBe(4);
      expect(s.dispatchesPerStep.max, `dispatches per token (limit 8 per layer + 4 = ${8 * t.layers + 4})`).toBeLessThanOrEqual(8 * t.layers + 4);
      expect(s.dispatchesPerStep.max, 'today: 7 per layer + embedding, lm_head, sampler').toBe(7 * t.layers + 3);
      expect(s.pipelined, 'steps whose id came back after the next step was submitted').toBe(s.steps - 1);
      // Per token the host writes only the Step and SampleParams uniforms (16 + 32 bytes).
      expect(s.bytesWrittenPerStep, 'bytes written per token').toBeLessThanOrEqual(48);
    });
  }
});
