/** `gptoss tokenize` as a user runs it: the built bin/gptoss.js in a child process. */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenizerFiles } from '../loader/synth-writer-node.ts';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));
const TINY = fileURLToPath(new URL('../../shared/golden/tiny/model', import.meta.url));

interface Run { code: number; stdout: string; stderr: string }

function gptoss(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('gptoss tokenize', () => {
  it('encodes text with the shipped tokenizer, specials allowed or not', async () => {
    const r = await gptoss('tokenize', '<|start|>user<|message|>What is 2 + 2?<|end|>');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('200006,1428,200008,4827,382,220,17,659,220,17,30,200007\n');
    const plain = await gptoss('tokenize', '--no-special', '<|start|>');
    expect(plain.stdout).toBe('27,91,5236,91,29\n');
  });

  it('decodes ids back to text', async () => {
    const r = await gptoss('tokenize', '--decode', '200006,1428,200008,4827,382,220,17,659,220,17,30,200007');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('<|start|>user<|message|>What is 2 + 2?<|end|>\n');
    const emoji = await gptoss('tokenize', 'Grüße 世界 👩‍🔬');
    const back = await gptoss('tokenize', '--decode', emoji.stdout.trim());
    expect(back.stdout).toBe('Grüße 世界 👩‍🔬\n');
  });

  it('uses a checkpoint directory with --model and rejects bad input', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gptoss-tok-'));
    try {
      for (const f of tokenizerFiles()) await copyFile(f.path, join(dir, f.name));
      const r = await gptoss('tokenize', '--model', dir, 'hello world');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('24912,2375\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const noTok = await gptoss('tokenize', '--model', TINY, 'hi');
    expect(noTok.code).toBe(1);
    expect(noTok.stderr).toContain('tokenizer.json');
    const bad = await gptoss('tokenize', '--decode', '1,x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--decode');
    const none = await gptoss('tokenize');
    expect(none.code).toBe(2);
    const missing = await gptoss('tokenize', '--model', '/nonexistent-dir-gptoss', 'hi');
    expect(missing.code).toBe(1);
  });
});
