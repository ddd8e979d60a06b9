/**
 * Every `gptoss` failure is one line on stderr naming what is wrong (file, flag, field), a
 * non-zero exit code and no stack trace: bad paths, bad flag values, bad config values and an
 * HTTP server that never answers, across the subcommands.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Largest finite f32, and the smallest normal one (2^-126). */
const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 2 ** -126;

const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));
const GOLDEN = fileURLToPath(new URL('../../shared/golden/', import.meta.url));
const TINY = join(GOLDEN, 'tiny', 'model');
const SHARDED = join(GOLDEN, 'sharded', 'model');

interface Run { code: number; stdout: string; stderr: string; ms: number }

function gptoss(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete childEnv.GPTOSS_DEBUG;
    execFile(process.execPath, [BIN, ...args], { env: childEnv, maxBuffer: 16 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Exactly one line, the expected one, with no stack frames; and the expected exit code. */
function expectOneLine(r: Run, line: string, code: number): void {
  expect(r.stderr, r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).toBe(`${line}\n`);
  expect(r.code, r.stderr).toBe(code);
}

let tmp = '';
let stall: Server;
let stallUrl = '';

/** A copy of the tiny model with `change` applied to its directory. */
async function tinyCopy(name: string, change: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(tmp, name);
  await cp(TINY, dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) await chmod(join(dir, f), 0o644);
  await change(dir);
  return dir;
}

async function setConfig(dir: string, patch: Record<string, unknown>): Promise<void> {
  const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...c, ...patch }));
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-cli-faults-'));
  stall = createServer(() => {}); // accepts, reads the request, never answers
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
  stallUrl = `http://127.0.0.1:${(stall.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  stall?.closeAllConnections();
  await new Promise((r) => stall?.close(r));
  await rm(tmp, { recursive: true, force: true });
});

describe('model files that are not what they should be', () => {
  it('config.json is a directory', async () => {
    const dir = await tinyCopy('config-dir', async (d) => {
      await rm(join(d, 'config.json'));
      await mkdir(join(d, 'config.json'));
    });
    expectOneLine(await gptoss(['info', '--model', dir]), `gptoss info: ${dir}/config.json: is a directory`, 1);
  });

  it('model.safetensors is a directory', async () => {
    const dir = await tinyCopy('weights-dir', async (d) => {
      await rm(join(d, 'model.safetensors'));
      await mkdir(join(d, 'model.safetensors'));
    });
    expectOneLine(await gptoss(['info', '--model', dir]), `gptoss info: ${dir}/model.safetensors: is a directory`, 1);
  });

  it('model.safetensors is a symlink loop', async () => {
    const dir = await tinyCopy('weights-loop', async (d) => {
      await rm(join(d, 'model.safetensors'));
      await symlink('model.safetensors', join(d, 'model.safetensors'));
    });
    expectOneLine(await gptoss(['info', '--model', dir]), `gptoss info: ${dir}/model.safetensors: is a symlink loop`, 1);
  });

  it('model.safetensors is a broken symlink', async () => {
    const dir = await tinyCopy('weights-dangling', async (d) => {
      await rm(join(d, 'model.safetensors'));
      await symlink('gone.safetensors', join(d, 'model.safetensors'));
    });
    expectOneLine(await gptoss(['info', '--model', dir]), `gptoss info: ${dir}/model.safetensors: is a broken symlink`, 1);
  });

  it('a shard is a directory', async () => {
    const dir = join(tmp, 'shard-dir');
    await cp(SHARDED, dir, { recursive: true });
    await rm(join(dir, 'model-00001-of-00001.safetensors'));
    await mkdir(join(dir, 'model-00001-of-00001.safetensors'));
    expectOneLine(await gptoss(['info', '--model', dir]), `gptoss info: ${dir}/model-00001-of-00001.safetensors: is a directory`, 1);
  });

  it.skipIf(process.getuid?.() === 0)('model.safetensors without read permission', async () => {
    const dir = await tinyCopy('weights-unreadable', async (d) => chmod(join(d, 'model.safetensors'), 0o000));
    expectOneLine(await gptoss(['info', '--model', dir]), `gptoss info: ${dir}/model.safetensors: permission denied`, 1);
  });

  it('the model path is a file', async () => {
    expectOneLine(await gptoss(['info', '--model', join(TINY, 'config.json')]), `gptoss info: model directory ${JSON.stringify(join(TINY, 'config.json'))} is a file, not a directory`, 1);
  });

  it('generate, chat and serve say the same, after opening the GPU', async () => {
    const dir = join(tmp, 'config-dir');
    for (const cmd of [['generate', '--prompt', 'hi'], ['chat'], ['serve', '--port', '0']]) {
      expectOneLine(await gptoss([cmd[0]!, '--model', dir, ...cmd.slice(1)]), `gptoss ${cmd[0]}: ${dir}/config.json: is a directory`, 1);
    }
  });
});

describe('config values the GPU cannot run', () => {
  it('sliding_window 2^40', async () => {
    const dir = await tinyCopy('window', (d) => setConfig(d, { sliding_window: 2 ** 40 }));
    for (const args of [['info', '--model', dir], ['logits', '--model', dir, '--tokens', '1,2', '--out', join(tmp, 'w.f32'), '--backend', 'gpu']]) {
      expectOneLine(await gptoss(args), `gptoss ${args[0]}: config.json: sliding_window must be an integer between 1 and 4294967295, got 1099511627776`, 1);
    }
  });

  it('rms_norm_eps 1e308', async () => {
    const dir = await tinyCopy('eps', (d) => setConfig(d, { rms_norm_eps: 1e308 }));
    expectOneLine(
      await gptoss(['logits', '--model', dir, '--tokens', '1,2', '--out', join(tmp, 'e.f32'), '--backend', 'gpu']),
      `gptoss logits: config.json: rms_norm_eps must be a number between ${F32_MIN_NORMAL} and 1 (a finite f32), got 1e+308`, 1,
    );
  });

  it('swiglu_limit beyond f32', async () => {
    const dir = await tinyCopy('swiglu', (d) => setConfig(d, { swiglu_limit: 1e39 }));
    expectOneLine(
      await gptoss(['plan', '--model', dir]),
      `gptoss plan: config.json: swiglu_limit must be a number between ${F32_MIN_NORMAL} and ${F32_MAX} (a finite f32), got 1e+39`, 1,
    );
  });
});

describe('bad flags and output paths', () => {
  it('plan --binding-limit 0', async () => {
    expectOneLine(await gptoss(['plan', '--preset', 'tiny', '--binding-limit', '0']),
      'gptoss plan: --binding-limit must be at least 128MiB (the WebGPU minimum), got "0" (gptoss plan --help lists the options)', 2);
  });

  it('plan --memory too large to count', async () => {
    expectOneLine(await gptoss(['plan', '--preset', 'tiny', '--memory', '99999999999999TB']),
      'gptoss plan: --memory is too large, got "99999999999999TB" (gptoss plan --help lists the options)', 2);
  });

  it('logits --out in a directory that does not exist, checked before any work', async () => {
    const out = join(tmp, 'no', 'such', 'file.f32');
    expectOneLine(await gptoss(['logits', '--model', TINY, '--tokens', '1,2', '--out', out]),
      `gptoss logits: --out ${out}: the directory ${join(tmp, 'no', 'such')} does not exist`, 1);
  });

  it('logits --out that is a directory', async () => {
    expectOneLine(await gptoss(['logits', '--model', TINY, '--tokens', '1,2', '--out', tmp]), `gptoss logits: --out ${tmp}: is a directory`, 1);
  });

  it('bench --json in a missing directory fails before the benchmark', async () => {
    const out = join(tmp, 'none', 'b.json');
    expectOneLine(await gptoss(['bench', '--model', TINY, '--json', out]), `gptoss bench: --json ${out}: the directory ${join(tmp, 'none')} does not exist`, 1);
  });

  it('render --request missing or a directory', async () => {
    const missing = join(tmp, 'nope.json');
    expectOneLine(await gptoss(['render', '--request', missing]), `gptoss render: --request ${missing}: does not exist`, 1);
    expectOneLine(await gptoss(['render', '--request', tmp]), `gptoss render: --request ${tmp}: is a directory`, 1);
  });

  it('tokenize --decode an id outside the vocabulary', async () => {
    expectOneLine(await gptoss(['tokenize', '--decode', '99999999999']),
      'gptoss tokenize: --decode: token id 99999999999 is not in the tokenizer\'s vocabulary (gptoss tokenize --help lists the options)', 2);
  });

  it('synth --shard-size 0 and a vocabulary past u32', async () => {
    expectOneLine(await gptoss(['synth', '--preset', 'tiny', '--seed', '1', '--out', join(tmp, 's1'), '--shard-size', '0']),
      'gptoss synth: --shard-size must be at least 1 byte, got "0" (gptoss synth --help lists the options)', 2);
    expectOneLine(await gptoss(['synth', '--preset', 'tiny', '--seed', '1', '--out', join(tmp, 's2'), '--vocab', '99999999999']),
      'gptoss synth: invalid synthetic shape: config.json: vocab_size must be an integer between 1 and 4294967295, got 99999999999 (gptoss synth --help lists the options)', 2);
  });

  it('synth --out that is a file', async () => {
    const file = join(TINY, 'config.json');
    expectOneLine(await gptoss(['synth', '--preset', 'tiny', '--seed', '1', '--out', file]), `gptoss synth: ${file} exists and is not a directory`, 1);
  });

  it('an unknown flag or command', async () => {
    expectOneLine(await gptoss(['info', '--model', TINY, '--bogus']), 'gptoss info: unknown option --bogus (gptoss info --help lists the options)', 2);
    expectOneLine(await gptoss(['info', '--model']), 'gptoss info: Option \'--model <value>\' argument missing (gptoss info --help lists the options)', 2);
    expectOneLine(await gptoss(['frobnicate']), 'gptoss: unknown command "frobnicate"; gptoss --help lists the commands', 2);
  });
});

describe('HTTP', () => {
  it('a server that never answers: info fails within the GPTOSS_HTTP_TIMEOUT, naming the URL', async () => {
    const r = await gptoss(['info', '--model', stallUrl], { GPTOSS_HTTP_TIMEOUT: '0.3' });
    expectOneLine(r, `gptoss info: no answer from ${stallUrl}config.json within 0.3 s (gave up after 3 attempts)`, 1);
    // 3 x 0.3 s + 0.25 + 0.5 s of backoff, plus starting node.
    expect(r.ms).toBeLessThan(15_000);
  });

  it('GPTOSS_HTTP_TIMEOUT must be a positive number', async () => {
    expectOneLine(await gptoss(['info', '--model', stallUrl], { GPTOSS_HTTP_TIMEOUT: 'soon' }),
      'gptoss info: GPTOSS_HTTP_TIMEOUT must be a number of seconds > 0, got "soon" (gptoss info --help lists the options)', 2);
  });
});
