/** The `gptoss` command as a user runs it: the built bin/gptoss.js in a child process. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLogitsClose } from './helpers/compare.ts';

const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));
const GOLDEN = fileURLToPath(new URL('../../shared/golden/', import.meta.url));

interface Run { code: number; stdout: string; stderr: string }

function gptoss(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('gptoss logits', () => {
  for (const name of ['tiny', 'sharded']) {
    for (const oneByOne of [false, true]) {
      it(`${name}${oneByOne ? ' --one-by-one' : ''} matches the golden logits`, async () => {
        const expected = JSON.parse(await readFile(join(GOLDEN, name, 'expected.json'), 'utf8')) as { tokens: number[]; shape: [number, number] };
        const out = join(tmp, `${name}-${oneByOne}.f32`);
        const args = ['logits', '--model', join(GOLDEN, name, 'model'), '--tokens', expected.tokens.join(','), '--out', out, '--backend', 'cpu'];
        if (oneByOne) args.push('--one-by-one');
        const r = await gptoss(...args);
        expect(r.code, r.stderr).toBe(0);
        const got = new Float32Array(new Uint8Array(await readFile(out)).buffer);
        const want = new Float32Array(new Uint8Array(await readFile(join(GOLDEN, name, 'logits.f32'))).buffer);
        expect(got.length).toBe(expected.shape[0] * expected.shape[1]);
        assertLogitsClose(`cli logits ${name}`, want, got, expected.shape[1], 1e-3);
      });
    }
  }

  it('rejects bad input with a clear message and no output file', async () => {
    const out = join(tmp, 'bad.f32');
    const missing = await gptoss('logits', '--model', join(tmp, 'nope'), '--tokens', '1,2', '--out', out);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope');
    const badTokens = await gptoss('logits', '--model', join(GOLDEN, 'tiny', 'model'), '--tokens', '1,x', '--out', out);
    expect(badTokens.code).toBe(2);
    expect(badTokens.stderr).toContain('--tokens');
    const outside = await gptoss('logits', '--model', join(GOLDEN, 'tiny', 'model'), '--tokens', '1,256', '--out', out);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toContain('vocab_size 256');
    const backend = await gptoss('logits', '--model', join(GOLDEN, 'tiny', 'model'), '--tokens', '1', '--out', out, '--backend', 'tpu');
    expect(backend.code).toBe(2);
    expect(backend.stderr).toContain('--backend');
    await expect(readFile(out)).rejects.toThrow();
  });
});

describe('gptoss synth and info', () => {
  it('writes the tiny preset with the real tokenizer, and info validates it', async () => {
    const out = join(tmp, 'tiny');
    const r = await gptoss('synth', '--preset', 'tiny', '--seed', '5', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const files = (await readdir(out)).sort();
    expect(files).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const info = await gptoss('info', '--model', out);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain('2 layers, 8 experts (top 4), hidden 64');
    expect(info.stdout).toContain('vocab 201088');
    const logits = await gptoss('logits', '--model', out, '--tokens', '200006,17360,200008', '--out', join(tmp, 'tiny.f32'));
    expect(logits.code, logits.stderr).toBe(0);
    expect((await readFile(join(tmp, 'tiny.f32'))).byteLength).toBe(3 * 201088 * 4);
  });

  it('shards past --shard-size with hub numbering', async () => {
    const out = join(tmp, 'sharded');
    const r = await gptoss('synth', '--preset', 'tiny', '--vocab', '512', '--layers', '3', '--seed', '1', '--out', out, '--shard-size', '100KB');
    expect(r.code, r.stderr).toBe(0);
    const shards = (await readdir(out)).filter((f) => f.endsWith('.safetensors')).sort();
    expect(shards.length).toBeGreaterThan(2);
    const last = shards.length - 1;
    expect(shards).toEqual(shards.map((_, i) => `model-${String(i).padStart(5, '0')}-of-${String(last).padStart(5, '0')}.safetensors`));
    const info = await gptoss('info', '--model', out, '--tensors');
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain('model.layers.2.mlp.experts.down_proj_blocks');
  });

  it('rejects an invalid shape with the reason', async () => {
    const r = await gptoss('synth', '--preset', 'tiny', '--hidden', '100', '--seed', '1', '--out', join(tmp, 'bad'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hidden');
    const p = await gptoss('synth', '--preset', 'huge', '--seed', '1', '--out', join(tmp, 'bad'));
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('--preset');
  });

  it('prints help and rejects unknown commands', async () => {
    const h = await gptoss('--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/synth[\s\S]*logits/);
    const u = await gptoss('frobnicate');
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('unknown command');
  });
});
