/**
 * The HTTP loader against misbehaving servers (real local HTTP servers): one that accepts the
 * connection and never answers, one that stops mid-body, 416 answers to the size probe, and
 * servers that ignore Range (the file must be downloaded once, not once per chunk).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { httpSource } from '../loader/source-http.ts';
import { directorySource } from '../loader/source-node.ts';
import { expectLoadError, SHARDED_DIR, TINY_DIR } from './helpers/loader-fixtures.ts';
import { startTestServer } from './helpers/http-server.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, path: string) => void | Promise<void>;

const servers: Server[] = [];

async function serve(handler: Handler): Promise<{ base: string; requests: { path: string; range?: string }[] }> {
  const requests: { path: string; range?: string }[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({ path, range: req.headers.range });
    void Promise.resolve(handler(req, res, path)).catch(() => res.destroy());
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, requests };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** Serves files of `dir`: Range honoured except where `answer` decides otherwise. */
function fileHandler(dir: string, answer?: (range: string | undefined, size: number, res: ServerResponse) => boolean): Handler {
  return async (req, res, path) => {
    const file = join(dir, path);
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) return void res.writeHead(404).end();
    if (answer?.(req.headers.range, st.size, res)) return;
    const data = await readFile(file);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(200, { 'Content-Length': String(data.length) }).end(data);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), st.size - 1);
    if (start >= st.size) return void res.writeHead(416, { 'Content-Range': `bytes */${st.size}` }).end();
    res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${st.size}`, 'Content-Length': String(end - start + 1) });
    res.end(data.subarray(start, end + 1));
  };
}

/** A fetch that counts requests and the body bytes the client actually received. */
function countingFetch(): { fetch: typeof fetch; requests: number; bytes: number } {
  const c = { requests: 0, bytes: 0, fetch: undefined as unknown as typeof fetch };
  c.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    c.requests++;
    const res = await fetch(input, init);
    if (!res.body) return res;
    const counted = res.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        c.bytes += chunk.byteLength;
        ctl.enqueue(chunk);
      },
    }));
    return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
  }) as typeof fetch;
  return c;
}

let local: Checkpoint;
beforeAll(async () => {
  local = await Checkpoint.open(await directorySource(TINY_DIR));
});
afterAll(async () => {
  await local?.close();
});

/** Reads every tensor in 1000-byte chunks and compares with the local copy. */
async function readAllInSmallChunks(ck: Checkpoint): Promise<number> {
  let chunks = 0;
  for (const ref of local.allTensors()) {
    const parts: Uint8Array[] = [];
    for await (const c of ck.stream(ck.tensor(ref.param, ref.layer), 1000)) {
      parts.push(c);
      chunks++;
    }
    expect(Buffer.concat(parts).equals(await local.read(ref)), ref.name).toBe(true);
  }
  return chunks;
}

describe('timeouts', () => {
  it('a server that accepts the connection and never answers: a timeout naming the URL, in about retries x timeout', async () => {
    const s = await serve(() => {});
    const c = countingFetch();
    const t0 = performance.now();
    const err = await expectLoadError(Checkpoint.open(httpSource(s.base, { fetch: c.fetch, timeoutMs: 200, retries: 2, retryDelayMs: 10 })), 'http');
    const ms = performance.now() - t0;
    expect(err.message).toBe(`no answer from ${s.base}config.json within 0.2 s (gave up after 2 attempts)`);
    expect(err.file).toBe('config.json');
    expect(c.requests).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(390);
    expect(ms).toBeLessThan(3000);
  });

  it('a server that stops sending in the middle of a body: an idle timeout between chunks', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '1000' });
      res.write('{"model_type":');
    });
    const err = await expectLoadError(Checkpoint.open(httpSource(s.base, { timeoutMs: 500, retries: 1 })), 'http');
    expect(err.message).toBe(`${s.base}config.json sent no data for 0.5 s (after 14 bytes of the body)`);
  });

  it('a slow but steady body is not a timeout: the timer restarts with every chunk', async () => {
    const s = await serve((_req, res) => {
      const body = Buffer.from(JSON.stringify({ hello: 'x'.repeat(40) }));
      res.writeHead(200, { 'Content-Length': String(body.length) });
      let at = 0;
      const tick = setInterval(() => {
        res.write(body.subarray(at, at + 10));
        at += 10;
        if (at >= body.length) {
          clearInterval(tick);
          res.end();
        }
      }, 150);
    });
    // 5 chunks 150 ms apart: 750 ms in all, each gap well within the 400 ms timeout.
    const f = await httpSource(s.base, { timeoutMs: 400, retries: 1 }).open('slow.json');
    expect(JSON.parse(new TextDecoder().decode(await f.read(0, f.size)))).toEqual({ hello: 'x'.repeat(40) });
  });

  it('retries wait with exponential backoff', async () => {
    const s = await serve(() => {});
    const c = countingFetch();
    const t0 = performance.now();
    await expectLoadError(httpSource(s.base, { fetch: c.fetch, timeoutMs: 50, retries: 3, retryDelayMs: 100 }).open('config.json'), 'http');
    // 3 x 50 ms of waiting for answers + 100 + 200 ms between the attempts.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(440);
    expect(c.requests).toBe(3);
  });
});

describe('416 on the size probe', () => {
  it('a 416 without a size is asked again without Range, and the model loads', async () => {
    const s = await serve(fileHandler(TINY_DIR, (range, _size, res) => {
      if (range !== 'bytes=0-0') return false;
      res.writeHead(416).end();
      return true;
    }));
    const ck = await Checkpoint.open(httpSource(s.base));
    try {
      expect(ck.config).toEqual(local.config);
      await readAllInSmallChunks(ck);
    } finally {
      await ck.close();
    }
  });

  it('416 with "bytes */0" is an empty file, not a missing size', async () => {
    const s = await serve((_req, res) => void res.writeHead(416, { 'Content-Range': 'bytes */0' }).end());
    const f = await httpSource(s.base).open('empty.json');
    expect(f.size).toBe(0);
  });

  it('a server answering 416 to everything is an http error naming the file', async () => {
    const s = await serve((_req, res) => void res.writeHead(416, 'Range Not Satisfiable').end());
    const err = await expectLoadError(Checkpoint.open(httpSource(s.base)), 'http');
    expect(err.message).toBe(`HTTP 416 Range Not Satisfiable for ${s.base}config.json (asked without Range after a 416 answer to bytes=0-0)`);
    expect(err.file).toBe('config.json');
  });
});

describe('a server that ignores Range', () => {
  it('downloads each file once, however many chunks are read', async () => {
    const server = await startTestServer(TINY_DIR, { mode: 'no-range' });
    try {
      const c = countingFetch();
      const ck = await Checkpoint.open(httpSource(server.baseUrl, { fetch: c.fetch }));
      let chunks: number;
      try {
        chunks = await readAllInSmallChunks(ck);
      } finally {
        await ck.close();
      }
      const sizes = (await Promise.all(['config.json', 'model.safetensors'].map((f) => stat(join(TINY_DIR, f))))).map((s) => s.size);
      expect(chunks).toBeGreaterThan(100);
      // config.json, the index probe (404), model.safetensors probed (exists) and opened.
      expect(c.requests).toBeLessThanOrEqual(4);
      expect(c.bytes).toBeLessThanOrEqual(sizes[0]! + 2 * sizes[1]!);
    } finally {
      await server.close();
    }
  });

  it('the sharded model: one download per shard', async () => {
    const server = await startTestServer(SHARDED_DIR, { mode: 'no-range' });
    try {
      const c = countingFetch();
      const ck = await Checkpoint.open(httpSource(server.baseUrl, { fetch: c.fetch }));
      try {
        for (const ref of ck.allTensors()) for await (const _ of ck.stream(ref, 512));
      } finally {
        await ck.close();
      }
      // config, index probe + open, two shards probed (exists) and opened.
      expect(c.requests).toBeLessThanOrEqual(7);
      expect(server.log.filter((r) => r.path.endsWith('.safetensors')).length).toBeLessThanOrEqual(4);
    } finally {
      await server.close();
    }
  });

  it('a file too large to keep in memory is refused at open, before any read', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100000000' });
      res.write(Buffer.alloc(1000));
    });
    const err = await expectLoadError(httpSource(s.base, { timeoutMs: 2000 }).open('model.safetensors'), 'http');
    expect(err.message).toBe(`${s.base}model.safetensors ignores Range requests, needed to stream a 100000000-byte file (it would be downloaded again for every read)`);
    expect(s.requests).toHaveLength(1);
  });
});
