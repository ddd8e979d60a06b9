import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Checkpoint } from '../loader/checkpoint.ts';
import { httpSource, huggingFaceUrl } from '../loader/source-http.ts';
import { directorySource } from '../loader/source-node.ts';
import { expectLoadError, removeTemp, SHARDED_DIR, tempCopy } from './helpers/loader-fixtures.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';

const SHARD1 = 'model-00001-of-00001.safetensors';

let server: TestServer;
let local: Checkpoint;
let broken: TestServer | undefined;
let brokenDir = '';

beforeAll(async () => {
  server = await startTestServer(SHARDED_DIR);
  local = await Checkpoint.open(await directorySource(SHARDED_DIR));
});

afterAll(async () => {
  await local?.close();
  await server?.close();
  await broken?.close();
  if (brokenDir) await removeTemp(brokenDir);
});

async function expectSameAsLocal(ck: Checkpoint): Promise<void> {
  expect(ck.config).toEqual(local.config);
  expect(ck.allTensors().map((r) => [r.name, r.file, r.begin, r.end])).toEqual(local.allTensors().map((r) => [r.name, r.file, r.begin, r.end]));
  for (const ref of local.allTensors()) {
    const want = Buffer.from(await local.read(ref));
    const got = await ck.read(ck.tensor(ref.param, ref.layer));
    expect(want.equals(got), ref.name).toBe(true);
  }
}

describe('httpSource', () => {
  it('loads the sharded golden model with Range requests', async () => {
    server.mode = 'range';
    server.log.length = 0;
    const ck = await Checkpoint.open(httpSource(server.baseUrl));
    try {
      expect(ck.headers).toHaveLength(2);
      await expectSameAsLocal(ck);
      // Streaming in odd chunks over HTTP reassembles too.
      const ref = ck.tensor('gate_up_blocks', 0);
      const parts: Uint8Array[] = [];
      for await (const c of ck.stream(ref, 1000)) parts.push(c);
      expect(Buffer.concat(parts).equals(await local.read(local.tensor('gate_up_blocks', 0)))).toBe(true);
    } finally {
      await ck.close();
    }
    expect(server.log.some((r) => r.status === 206)).toBe(true);
    expect(server.log.every((r) => r.status === 206)).toBe(true);
  });

  it('works without a trailing slash in the base URL', async () => {
    server.mode = 'range';
    const ck = await Checkpoint.open(httpSource(server.baseUrl.replace(/\/$/, '')));
    await ck.close();
  });

  it('loads from a server without Range support (200, full body)', async () => {
    server.mode = 'no-range';
    server.log.length = 0;
    try {
      const ck = await Checkpoint.open(httpSource(server.baseUrl));
      try {
        await expectSameAsLocal(ck);
      } finally {
        await ck.close();
      }
      expect(server.log.every((r) => r.status === 200)).toBe(true);
    } finally {
      server.mode = 'range';
    }
  });

  it('retries a 500 answer', async () => {
    server.mode = 'range';
    server.log.length = 0;
    server.failNext = 1;
    const ck = await Checkpoint.open(httpSource(server.baseUrl));
    await ck.close();
    expect(server.log[0]!.status).toBe(500);
    expect(server.log.slice(1).every((r) => r.status === 206)).toBe(true);
  });

  it('gives up with an http error after the last retry', async () => {
    server.failNext = 5;
    try {
      const err = await expectLoadError(Checkpoint.open(httpSource(server.baseUrl, { retries: 2 })), 'http');
      expect(err.message).toContain('500');
      expect(err.file).toBe('config.json');
    } finally {
      server.failNext = 0;
    }
  });

  it('a short range answer is a short-read naming the file', async () => {
    const src = httpSource(server.baseUrl);
    server.mode = 'short';
    try {
      const f = await src.open(SHARD1);
      const err = await expectLoadError(f.read(8, 100), 'short-read');
      expect(err.file).toBe(SHARD1);
      expect(err.message).toContain(SHARD1);
      await expectLoadError(Checkpoint.open(src), 'short-read');
    } finally {
      server.mode = 'range';
    }
  });

  it('a connection cut mid-body is a ModelLoadError naming the file', async () => {
    const src = httpSource(server.baseUrl, { retries: 1 });
    const f = await src.open(SHARD1);
    server.mode = 'cut';
    try {
      const err = await expectLoadError(f.read(0, 50_000), 'http');
      expect(err.message).toContain(SHARD1);
    } finally {
      server.mode = 'range';
    }
  });

  it('reads outside the file are refused before any request', async () => {
    const f = await httpSource(server.baseUrl).open(SHARD1);
    server.log.length = 0;
    await expectLoadError(f.read(f.size - 10, 11), 'truncated');
    expect(server.log).toHaveLength(0);
    expect(await f.read(5, 0)).toHaveLength(0);
  });

  it('404s: missing-file and missing-shard', async () => {
    const src = httpSource(server.baseUrl);
    expect(await src.exists('config.json')).toBe(true);
    expect(await src.exists('nope.json')).toBe(false);
    const err = await expectLoadError(src.open('nope.json'), 'missing-file');
    expect(err.message).toContain('nope.json');

    brokenDir = await tempCopy(SHARDED_DIR);
    await rm(join(brokenDir, SHARD1));
    broken = await startTestServer(brokenDir);
    const e2 = await expectLoadError(Checkpoint.open(httpSource(broken.baseUrl)), 'missing-shard');
    expect(e2.file).toBe(SHARD1);
    await rm(join(brokenDir, 'config.json'));
    await expectLoadError(Checkpoint.open(httpSource(broken.baseUrl)), 'missing-file');
  });

  it('an unreachable server is an http error', async () => {
    const dead = await startTestServer(SHARDED_DIR);
    const url = dead.baseUrl;
    await dead.close();
    await expectLoadError(Checkpoint.open(httpSource(url, { retries: 1 })), 'http');
  });

  it('builds Hugging Face resolve URLs', () => {
    expect(huggingFaceUrl('openai/gpt-oss-20b')).toBe('https://huggingface.co/openai/gpt-oss-20b/resolve/main');
    expect(huggingFaceUrl('openai/gpt-oss-20b', 'abc')).toBe('https://huggingface.co/openai/gpt-oss-20b/resolve/abc');
  });
});
