/**
 * Verified loads through createEngine, on a synthetic tiny checkpoint in three shards: a
 * manifest.sha256 beside a local folder (written by `gptoss manifest`), a manifest from elsewhere
 * for an HTTP folder, and the Hugging Face hub's hashes (tree API, or the X-Linked-ETag of its
 * redirect) from a stand-in hub that wants an access token and a revision. A flipped byte in a
 * shard fails the load with IntegrityError naming the file and both hashes, and no buffer of the
 * model is left on the GPU. The token reaches every hub request and nothing printed or thrown.
 * A reload after a GPU device loss checks the shards again. `gptoss verify` says OK / FAILED per file.
 */
import { cp, mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main.ts';
import { createEngine, type CreateEngineOptions, type LoadProgress } from '../engine/api/engine.ts';
import { getGpu } from '../engine/gpu/device.ts';
import { IntegrityError, ModelLoadError } from '../loader/errors.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { startHubServer } from './helpers/hub-server.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';
import { LossyGpu } from './helpers/lossy-gpu.ts';
import { meteredGpu } from './helpers/metered-gpu.ts';

const TOKEN = 'hf_secretToken_4ZQ9xw';
const REPO = 'test-org/tiny-gptoss';
const REVISION = 'v1.0-test';
/** The shard whose byte is flipped: the first one (embedding, layer tensors follow in others). */
let SHARD = '';
let tmp = '';
let clean = '';

async function copyModel(name: string): Promise<string> {
  const dir = join(tmp, name);
  await cp(clean, dir, { recursive: true });
  return dir;
}

/** Flips one byte in the middle of a shard's data (a weight the model uses). */
async function flipByte(dir: string, file = SHARD): Promise<void> {
  const f = await open(join(dir, file), 'r+');
  try {
    const size = (await f.stat()).size;
    const at = Math.floor(size * 0.6);
    const b = new Uint8Array(1);
    await f.read(b, 0, 1, at);
    b[0] ^= 0x10;
    await f.write(b, 0, 1, at);
  } finally {
    await f.close();
  }
}

/** Loads expecting IntegrityError; checks it names the file and both hashes, and that no buffer is left. */
async function expectIntegrityError(opts: CreateEngineOptions, file = SHARD): Promise<IntegrityError> {
  const metered = meteredGpu(await getGpu());
  const err = await createEngine({ contextLimit: 64, ...opts, gpu: metered.gpu }).then(
    async (e) => {
      await e.dispose();
      return new Error('the load succeeded with a corrupted file');
    },
    (e: unknown) => e,
  );
  if (!(err instanceof IntegrityError)) throw new Error(`expected IntegrityError, got ${String((err as Error)?.stack ?? err)}`);
  expect(err).toBeInstanceOf(ModelLoadError);
  expect(err.code).toBe('integrity');
  expect(err.file, 'the file named').toBe(file);
  expect(err.expected).toMatch(/^[0-9a-f]{40,64}$/);
  expect(err.actual).toMatch(/^[0-9a-f]{40,64}$/);
  expect(err.actual).not.toBe(err.expected);
  expect(err.message).toContain(file);
  expect(err.message).toContain(err.expected);
  expect(err.message).toContain(err.actual);
  expect(metered.meters.length, 'a device was created').toBeGreaterThan(0);
  const live = metered.liveLabels();
  expect(live, `GPU buffers left alive after the failed load: ${live.join(', ')}`).toEqual([]);
  expect(metered.meters.map((m) => m.liveBytes), 'live GPU bytes per device after the failed load').toEqual(metered.meters.map(() => 0));
  return err;
}

/** Runs `gptoss` in-process; returns its exit code and what it printed. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(args);
    return { code, out: lines.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    stderr.mockRestore();
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-integrity-'));
  clean = join(tmp, 'clean');
  await writeSyntheticCheckpoint({ preset: 'tiny', seed: 5, outDir: clean, maxShardBytes: 12 << 20 });
  const shards = (await readdir(clean)).filter((f) => f.endsWith('.safetensors')).sort();
  expect(shards.length, 'the synthetic checkpoint has several shards').toBeGreaterThan(1);
  SHARD = shards[0]!;
}, 300_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('a local folder with manifest.sha256 beside its files', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await copyModel('local');
    const r = await cli(['manifest', dir]);
    expect(r.code, r.out).toBe(0);
  });

  it('loads, every file verified, phases in order, no warning', async () => {
    const warnings: string[] = [];
    const events: LoadProgress[] = [];
    const engine = await createEngine({ model: dir, contextLimit: 64, onWarning: (m) => warnings.push(m), onProgress: (p) => events.push(p) });
    try {
      expect(warnings).toEqual([]);
      const files = engine.integrity!.files;
      // Every file the loader reads (generation_config.json is not one).
      const read = (await readdir(dir)).filter((f) => f !== 'manifest.sha256' && f !== 'generation_config.json').sort();
      expect(Object.keys(files).sort()).toEqual(read);
      expect(Object.values(files).every((s) => s === 'verified'), JSON.stringify(files)).toBe(true);
      expect(engine.integrity!.hashSource).toMatch(/manifest\.sha256/);
      const phases = events.map((e) => e.phase).filter((p, i, a) => i === 0 || a[i - 1] !== p);
      expect(phases, 'progress phases, in order').toEqual(['tokenizer', 'compile', 'weights', 'verify']);
      expect(events.filter((e) => e.phase === 'tokenizer').map((e) => e.file)).toContain('tokenizer.json');
      const weights = events.filter((e) => e.phase === 'weights');
      expect(weights.at(-1)!.bytesDone).toBe(weights.at(-1)!.bytesTotal);
      expect(weights.some((e) => e.file === SHARD)).toBe(true);
      expect(events.every((e, i) => i === 0 || e.elapsedMs >= events[i - 1]!.elapsedMs), 'elapsedMs never goes back').toBe(true);
      expect(events.every((e) => e.fromCache === false), 'nothing comes from a browser cache here').toBe(true);
      // Per-response timings in usage.extra, beside OpenAI's counts.
      const r = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0 });
      const u = r.usage;
      expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
      expect(u.extra!.time_to_first_token_s).toBeGreaterThan(0);
      expect(u.extra!.e2e_latency_s).toBeGreaterThanOrEqual(u.extra!.time_to_first_token_s);
      expect(u.extra!.prefill_tokens_per_s).toBeGreaterThan(0);
      if (u.completion_tokens > 1) expect(u.extra!.decode_tokens_per_s).toBeGreaterThan(0);
    } finally {
      await engine.dispose();
    }
  }, 300_000);

  it('a flipped byte in a shard: IntegrityError naming it, nothing left on the GPU', async () => {
    const bad = await copyModel('local-bad');
    await cp(join(dir, 'manifest.sha256'), join(bad, 'manifest.sha256'));
    await flipByte(bad);
    const err = await expectIntegrityError({ model: bad });
    expect(err.from).toMatch(/manifest\.sha256/);
  }, 300_000);

  it('a changed config.json fails before anything is uploaded', async () => {
    const bad = await copyModel('local-config');
    await cp(join(dir, 'manifest.sha256'), join(bad, 'manifest.sha256'));
    const f = await open(join(bad, 'config.json'), 'a');
    await f.write(' ');
    await f.close();
    await expectIntegrityError({ model: bad }, 'config.json');
  }, 300_000);

  it('a reload after a GPU device loss checks the shards again, and fails on a changed one', async () => {
    const d = await copyModel('reload');
    await cp(join(dir, 'manifest.sha256'), join(d, 'manifest.sha256'));
    const lossy = new LossyGpu(await getGpu());
    const engine = await createEngine({ model: d, gpu: lossy.gpu, contextLimit: 64 });
    try {
      const first = engine.integrity!.hashedBytes;
      const shardBytes = (await Promise.all((await readdir(d)).filter((f) => f.endsWith('.safetensors')).map((f) => stat(join(d, f)))))
        .reduce((a, s) => a + s.size, 0);
      lossy.device.destroy();
      await vi.waitFor(() => expect(engine.state).toBe('lost'), { timeout: 10_000 });
      await engine.recover();
      expect(engine.integrity!.hashedBytes - first, 'bytes hashed by the reload: every shard once').toBe(shardBytes);
      await flipByte(d);
      lossy.device.destroy();
      await vi.waitFor(() => expect(engine.state).toBe('lost'), { timeout: 10_000 });
      const err = await engine.recover().then(() => undefined, (e: unknown) => e);
      expect(err, 'the reload of a changed shard').toBeInstanceOf(IntegrityError);
      expect((err as IntegrityError).file).toBe(SHARD);
      expect(engine.state).toBe('lost');
    } finally {
      await engine.dispose();
    }
  }, 600_000);

  it('gptoss verify: OK per file, then FAILED for the flipped shard (exit 1)', async () => {
    const ok = await cli(['verify', '--model', dir]);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(new RegExp(`OK +${SHARD.replace(/\./g, '\\.')}`));
    const bad = await copyModel('verify-bad');
    await cp(join(dir, 'manifest.sha256'), join(bad, 'manifest.sha256'));
    await flipByte(bad);
    const r = await cli(['verify', '--model', bad]);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain(`FAILED     ${SHARD}`);
  }, 300_000);
});

describe('without any hash source', () => {
  it('loads and says so once', async () => {
    const dir = await copyModel('unchecked');
    const warnings: string[] = [];
    const engine = await createEngine({ model: dir, contextLimit: 64, onWarning: (m) => warnings.push(m) });
    await engine.dispose();
    expect(warnings.length, warnings.join('\n')).toBe(1);
    expect(warnings[0]).toMatch(/no sha256/);
    expect(engine.integrity!.hashedBytes).toBe(0);
  }, 300_000);
});

describe('over HTTP with a manifest from elsewhere', () => {
  let server: TestServer | undefined;
  let manifests: TestServer | undefined;
  afterAll(async () => {
    await server?.close();
    await manifests?.close();
  });

  it('a flipped byte in a shard: IntegrityError, nothing left on the GPU', async () => {
    const good = await copyModel('http-good');
    const mdir = join(tmp, 'manifests');
    await mkdir(mdir);
    expect((await cli(['manifest', good, '--out', join(mdir, 'tiny.sha256')])).code).toBe(0);
    const bad = await copyModel('http-bad');
    await flipByte(bad);
    server = await startTestServer(bad);
    manifests = await startTestServer(mdir);
    const err = await expectIntegrityError({ model: server.baseUrl, manifest: `${manifests.baseUrl}tiny.sha256` });
    expect(err.from).toContain('tiny.sha256');
  }, 300_000);
});

describe('the Hugging Face hub (a stand-in on 127.0.0.1)', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  /** Everything printed while `fn` runs (console and stderr). */
  async function captured<T>(fn: () => Promise<T>): Promise<{ value: T | undefined; error: unknown; printed: string }> {
    const out: string[] = [];
    const spies = (['log', 'warn', 'error', 'info', 'debug'] as const).map((k) =>
      vi.spyOn(console, k).mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' '))));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((c: unknown) => (out.push(String(c)), true));
    try {
      return { value: await fn(), error: undefined, printed: out.join('\n') };
    } catch (e) {
      return { value: undefined, error: e, printed: out.join('\n') };
    } finally {
      for (const s of spies) s.mockRestore();
      stderr.mockRestore();
    }
  }

  const hubOptions = (s: TestServer, token: string | null = TOKEN) => ({ huggingFace: { hubUrl: s.baseUrl, revision: REVISION, token: token ?? undefined } });

  it('tree API: every file checked (LFS sha256, Git blob ids), the token and revision on every request, never printed', async () => {
    const hub = await startHubServer(clean, { repo: REPO, revision: REVISION, token: TOKEN });
    servers.push(hub);
    const r = await captured(() => createEngine({ model: REPO, contextLimit: 64, ...hubOptions(hub) }));
    if (r.error) throw r.error;
    const engine = r.value!;
    try {
      expect(engine.integrity!.hashSource).toMatch(/Hugging Face hub/);
      const files = engine.integrity!.files;
      expect(Object.values(files).every((s) => s === 'verified'), JSON.stringify(files)).toBe(true);
      expect(files['config.json']).toBe('verified');
      expect(JSON.stringify(engine.integrity)).not.toContain(TOKEN);
    } finally {
      await engine.dispose();
    }
    expect(hub.log.length).toBeGreaterThan(5);
    const paths = hub.log.map((l) => l.path);
    expect(paths).toContain(`/api/models/${REPO}/tree/${REVISION}`);
    const withoutToken = hub.log.filter((l) => l.auth !== `Bearer ${TOKEN}`);
    expect(withoutToken.map((l) => `${l.path} ${l.range ?? ''}`), 'requests without the token').toEqual([]);
    const offRevision = paths.filter((p) => !p.includes(`/${REVISION}`));
    expect(offRevision, 'requests not for the revision').toEqual([]);
    expect(hub.log.some((l) => l.range !== undefined && l.path.endsWith('.safetensors')), 'Range reads of the shards').toBe(true);
    expect(r.printed).not.toContain(TOKEN);
  }, 300_000);

  it('tree API: a flipped shard byte is an IntegrityError; without the token, a 401 that says why', async () => {
    const bad = await copyModel('hub-bad');
    const hub = await startHubServer(clean, { repo: REPO, revision: REVISION, token: TOKEN });
    servers.push(hub);
    // The hub publishes the clean hashes; its storage serves the flipped copy.
    await flipByte(bad);
    const mixed = await startTestServer(bad, {
      intercept: async (req, res, path) => {
        if (path.startsWith('/api/')) {
          const r = await fetch(hub.baseUrl + path.slice(1), { headers: { authorization: String(req.headers.authorization ?? '') } });
          res.writeHead(r.status, { 'Content-Type': 'application/json' }).end(await r.text());
          return true;
        }
        if (req.headers.authorization !== `Bearer ${TOKEN}`) {
          res.writeHead(401).end();
          return true;
        }
        const prefix = `/${REPO}/resolve/${REVISION}/`;
        return path.startsWith(prefix) ? `/${path.slice(prefix.length)}` : undefined;
      },
    });
    servers.push(mixed);
    const r = await captured(() => expectIntegrityError({ model: REPO, ...hubOptions(mixed) }));
    if (r.error) throw r.error;
    expect(r.value!.from).toMatch(/tree API/);
    expect(r.value!.message).not.toContain(TOKEN);
    expect(r.printed).not.toContain(TOKEN);

    const denied = await captured(() => createEngine({ model: REPO, contextLimit: 64, ...hubOptions(hub, null) }));
    expect(denied.error).toBeInstanceOf(ModelLoadError);
    expect((denied.error as Error).message).toMatch(/401.*gated or private/);
    const wrong = await captured(() => createEngine({ model: REPO, contextLimit: 64, ...hubOptions(hub, 'hf_wrongToken') }));
    expect((wrong.error as Error).message).toMatch(/401/);
    expect((wrong.error as Error).message).not.toContain('hf_wrongToken');
    expect(wrong.printed).not.toContain('hf_wrongToken');
  }, 300_000);

  it('X-Linked-ETag of the redirect (no tree API): LFS files checked, the others said once; a flipped byte fails', async () => {
    const hub = await startHubServer(clean, { repo: REPO, revision: REVISION, mode: 'linked' });
    servers.push(hub);
    const warnings: string[] = [];
    const engine = await createEngine({ model: REPO, contextLimit: 64, ...hubOptions(hub, null), onWarning: (m) => warnings.push(m) });
    const files = engine.integrity!.files;
    await engine.dispose();
    expect(files[SHARD]).toBe('verified');
    expect(files['tokenizer.json']).toBe('verified');
    expect(files['config.json']).toBe('unchecked');
    expect(warnings.length, warnings.join('\n')).toBe(1);
    expect(warnings[0]).toMatch(/no hash for .*config\.json/);
    expect(hub.log.some((l) => l.status === 302)).toBe(true);

    const bad = await copyModel('linked-bad');
    const badHub = await startHubServer(bad, { repo: REPO, revision: REVISION, mode: 'linked' });
    servers.push(badHub);
    await flipByte(bad); // after the hub took its hashes
    const err = await expectIntegrityError({ model: REPO, ...hubOptions(badHub, null), onWarning: () => {} });
    expect(err.from).toMatch(/X-Linked-ETag/);
  }, 300_000);
});
