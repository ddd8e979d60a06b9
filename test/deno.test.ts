/**
 * Deno runs the same engine source on its built-in WebGPU (wgpu, not Dawn): a synthetic tiny
 * model with the real vocabulary loads and greedy-generates the CPU reference's tokens.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { directorySource } from '../loader/source-node.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { loadReferenceModel } from '../engine/reference/model.ts';
import { referenceGreedy } from './helpers/reference-greedy.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const PROMPT = [200006, 17360, 200008, 3575, 553, 17554, 162016, 11];
const N = 12;

describe('Deno', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads a tiny model and generates the reference tokens', async () => {
    dir = await mkdtemp(join(tmpdir(), 'gptoss-deno-'));
    const model = join(dir, 'tiny');
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 21, outDir: model });
    const ck = await Checkpoint.open(await directorySource(model));
    const want = referenceGreedy(await loadReferenceModel(ck), PROMPT, N);
    await ck.close();

    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(DENO, ['run', '-A', '--unstable-webgpu', 'test/deno/generate.ts', model, String(N), PROMPT.join(',')],
        { cwd: ROOT, maxBuffer: 8 << 20, timeout: 240_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
    expect(out.code, `deno failed:\n${out.stderr}`).toBe(0);
    const line = out.stdout.trim().split('\n').pop()!;
    const res = JSON.parse(line) as { deno: string; adapter: { description: string }; tokens: number[]; progressCalls: number };
    console.log(`deno ${res.deno} on ${res.adapter.description}: ${res.tokens.join(',')}`);
    expect(res.tokens, 'Deno greedy tokens vs the CPU reference').toEqual(want);
    expect(res.progressCalls).toBeGreaterThan(0);
  });
});
