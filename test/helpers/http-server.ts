/**
 * A small static file server for tests: serves a directory on 127.0.0.1 (port 0) with HTTP
 * Range support, plus switchable misbehaviours to exercise the HTTP loader's error paths.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { open, readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

export type ServerMode =
  | 'range' // 206 + Content-Range for Range requests, 200 otherwise
  | 'no-range' // ignores Range: always 200 with the full body
  | 'short' // range answers carry one byte fewer than asked (honest Content-Length)
  | 'cut'; // range answers promise the full length but the connection is cut half way

export interface TestServerOptions {
  mode?: ServerMode;
  /** The first N requests are answered 500 (to test retries). */
  failFirst?: number;
  /** Extra response headers, e.g. CORS or COOP/COEP for browser tests. */
  headers?: Record<string, string>;
  /**
   * Sees each request first (its decoded path): answers it itself and returns true, or returns a
   * path to serve instead (e.g. a Hugging Face `resolve/` URL mapped to the file), or undefined.
   */
  intercept?: (req: IncomingMessage, res: ServerResponse, path: string) => boolean | string | undefined | Promise<boolean | string | undefined>;
}

export interface TestServer {
  /** Base URL with trailing slash, e.g. http://127.0.0.1:12345/ */
  readonly baseUrl: string;
  mode: ServerMode;
  /** Requests still to answer with 500. */
  failNext: number;
  /**
   * A dropped connection: `count` more Range requests under `prefix` are answered (each one
   * decrements it), then every later one is closed without an answer (a network error), until
   * this is set back to undefined.
   */
  dropAfter?: { prefix: string; count: number };
  /** Every request seen: method, path, Range and Authorization headers, status (set by intercept for its own answers). */
  readonly log: { method: string; path: string; range?: string; auth?: string; status: number }[];
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
};

async function readRange(file: string, begin: number, end: number): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const out = new Uint8Array(end - begin);
    for (let off = 0; off < out.length; ) {
      const { bytesRead } = await fh.read(out, off, out.length - off, begin + off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return out;
  } finally {
    await fh.close();
  }
}

export async function startTestServer(root: string, options: TestServerOptions = {}): Promise<TestServer> {
  const rootDir = normalize(root);
  let server: Server;
  const state = {
    baseUrl: '',
    mode: options.mode ?? 'range',
    failNext: options.failFirst ?? 0,
    dropAfter: undefined as TestServer['dropAfter'],
    log: [] as TestServer['log'],
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };

  server = createServer(async (req, res) => {
    const range = req.headers.range;
    let path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const entry: TestServer['log'][number] = { method: req.method ?? 'GET', path, range, auth: req.headers.authorization, status: 0 };
    state.log.push(entry);
    const send = (status: number, body: Uint8Array | string = '', headers: Record<string, string> = {}) => {
      entry.status = status;
      const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      res.writeHead(status, { ...options.headers, 'Content-Length': String(b.byteLength), ...headers });
      res.end(req.method === 'HEAD' ? undefined : b);
    };
    try {
      if (state.failNext > 0) {
        state.failNext--;
        return send(500, 'injected failure');
      }
      const seen = await options.intercept?.(req, res, path);
      if (seen === true) {
        entry.status = res.statusCode;
        return;
      }
      if (typeof seen === 'string') path = seen;
      const drop = state.dropAfter;
      if (drop && range && path.startsWith(drop.prefix)) {
        if (drop.count <= 0) {
          entry.status = -1;
          return void res.destroy();
        }
        drop.count--;
      }
      const file = normalize(join(rootDir, path));
      if (file !== rootDir && !file.startsWith(rootDir.endsWith(sep) ? rootDir : rootDir + sep)) return send(403, 'forbidden');
      const st = await stat(file).catch(() => null);
      if (!st || !st.isFile()) return send(404, 'not found');
      const size = st.size;
      const type = { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' };
      const m = range && state.mode !== 'no-range' ? /^bytes=(\d*)-(\d*)$/.exec(range) : null;
      if (!m) return send(200, new Uint8Array(await readFile(file)), { ...type, ...(state.mode === 'no-range' ? {} : { 'Accept-Ranges': 'bytes' }) });
      let start: number;
      let end: number;
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
        end = size - 1;
      } else {
        start = Number(m[1]);
        end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
      }
      if (start >= size || start > end) {
        return send(416, '', { 'Content-Range': `bytes */${size}` });
      }
      // Only the asked range is read: files may be far larger than memory (sparse test checkpoints).
      const data = await readRange(file, start, end + 1);
      const headers = { ...type, 'Accept-Ranges': 'bytes', 'Content-Range': `bytes ${start}-${end}/${size}` };
      if (state.mode === 'short' && end > start) return send(206, data.subarray(0, end - start), headers);
      if (state.mode === 'cut' && end > start) {
        entry.status = 206;
        res.writeHead(206, { ...options.headers, ...headers, 'Content-Length': String(end - start + 1) });
        res.write(Buffer.from(data.subarray(0, Math.floor((end - start + 1) / 2))));
        setTimeout(() => res.destroy(), 5);
        return;
      }
      return send(206, data, headers);
    } catch (e) {
      if (!res.headersSent) send(500, String(e));
      else res.destroy();
    }
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.baseUrl = `http://127.0.0.1:${port}/`;
  return state;
}
