/**
 * An OpenAI-compatible HTTP server over an Engine (Node's http module): /v1/chat/completions
 * (JSON and SSE), /v1/responses, /v1/models and /health. Requests queue for the GPU in the
 * engine (one generation at a time, none dropped); a client that disconnects mid-stream
 * aborts its generation. Every error is an OpenAI-style JSON body with a 4xx/5xx status.
 * When the GPU device is lost, the server reloads the model (engine.recover()) and answers 503
 * meanwhile, /health included.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Engine } from '../engine/api/engine.ts';
import { ApiError, type ChatCompletionChunk, type ChatCompletionCreateParams } from '../engine/api/types.ts';
import { DeviceLostError } from '../engine/gpu/device-lost.ts';
import { responsesToChat, responseObject, streamResponseEvents, type ResponsesRequest } from './responses.ts';

export interface ServeOptions {
  port?: number;
  /** Default 127.0.0.1: never listen on other interfaces unless asked to. */
  host?: string;
  apiKey?: string;
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function serve(engine: Engine, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const recover = () => {
    if (engine.state !== 'lost') return;
    options.log?.('the GPU device was lost: re-creating it and reloading the model');
    engine.recover().then(
      () => options.log?.('recovered from the GPU device loss: serving again'),
      (e: unknown) => options.log?.(`recovery from the GPU device loss failed (retried on the next request): ${(e as Error)?.message ?? e}`),
    );
  };
  const unsubscribe = engine.onDeviceLost(recover);
  const server = createServer((req, res) => {
    recover(); // after a failed recovery, each request tries again
    handle(engine, options, req, res).catch((e) => sendError(res, e));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  return {
    server,
    url,
    close: () => new Promise<void>((resolve) => {
      unsubscribe();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

async function handle(engine: Engine, o: ServeOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  res.setHeader('access-control-allow-origin', '*');
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers': 'authorization, content-type',
    });
    res.end();
    return;
  }
  if (path === '/health') {
    const state = engine.state;
    // 'recovering' while the model is reloaded after a device loss ('lost' only if that failed).
    const status = state === 'ready' ? 'ok' : state;
    sendJson(res, state === 'ready' ? 200 : 503, { status, model: engine.modelId, backend: engine.backend, pending: engine.pending });
    return;
  }
  if (o.apiKey !== undefined && req.headers.authorization !== `Bearer ${o.apiKey}`) {
    throw new ApiError(401, 'invalid or missing API key (send Authorization: Bearer <key>)', 'authentication_error', null, 'invalid_api_key');
  }
  const t0 = performance.now();
  if (path === '/v1/models') {
    expectMethod(req, 'GET');
    sendJson(res, 200, { object: 'list', data: [{ id: engine.modelId, object: 'model', created: 0, owned_by: 'gpt-oss-webgpu' }] });
  } else if (path === '/v1/chat/completions') {
    expectMethod(req, 'POST');
    await chatCompletions(engine, await readJson(req, o.maxBodyBytes), req, res);
  } else if (path === '/v1/responses') {
    expectMethod(req, 'POST');
    await responses(engine, await readJson(req, o.maxBodyBytes), req, res);
  } else {
    throw new ApiError(404, `no route ${req.method} ${path}`, 'not_found_error', null, 'unknown_url');
  }
  o.log?.(`${req.method} ${path} ${res.statusCode} ${(performance.now() - t0).toFixed(0)} ms`);
}

function expectMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) throw new ApiError(405, `${req.url} takes ${method}, not ${req.method}`, 'invalid_request_error', null, 'method_not_allowed');
}

/** Aborted when the client goes away before the response is complete. */
function disconnectSignal(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(new DOMException('the client disconnected', 'AbortError'));
  });
  req.on('aborted', () => ac.abort(new DOMException('the client disconnected', 'AbortError')));
  return ac.signal;
}

async function chatCompletions(engine: Engine, body: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const params = body as ChatCompletionCreateParams;
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new ApiError(400, 'the request body must be a JSON object');
  const signal = disconnectSignal(req, res);
  if (!params.stream) {
    sendJson(res, 200, await engine.chat.completions.create({ ...params, stream: false }, { signal }));
    return;
  }
  const stream = await engine.chat.completions.create({ ...params, stream: true }, { signal });
  await sendSse(res, stream, (c: ChatCompletionChunk) => `data: ${JSON.stringify(c)}\n\n`, 'data: [DONE]\n\n');
}

async function responses(engine: Engine, body: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const r = body as ResponsesRequest;
  const chat = responsesToChat(r);
  const signal = disconnectSignal(req, res);
  if (!r.stream) {
    sendJson(res, 200, responseObject(await engine.chat.completions.create({ ...chat, stream: false }, { signal })));
    return;
  }
  const stream = await engine.chat.completions.create({ ...chat, stream: true }, { signal });
  await sendSse(res, streamResponseEvents(stream), (e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
}

async function sendSse<T>(res: ServerResponse, stream: AsyncIterable<T>, format: (item: T) => string, last?: string): Promise<void> {
  const it = stream[Symbol.asyncIterator]();
  // The first item comes before the headers, so a failure to start is still a plain JSON error.
  let first = await it.next();
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  try {
    while (!first.done) {
      if (res.destroyed) break;
      res.write(format(first.value));
      first = await it.next();
    }
    if (!res.destroyed && last) res.write(last);
  } catch (e) {
    if (!res.destroyed) {
      const err = e instanceof ApiError ? e : e instanceof DeviceLostError ? deviceLost(e) : new ApiError(500, (e as Error).message, 'server_error');
      res.write(`data: ${JSON.stringify(err.toJSON())}\n\n`);
    }
  } finally {
    await it.return?.();
    res.end();
  }
}

async function readJson(req: IncomingMessage, maxBytes = 16 << 20): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > maxBytes) throw new ApiError(413, `the request body exceeds ${maxBytes} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** 503 while the model is reloaded onto a new device. */
function deviceLost(e: DeviceLostError): ApiError {
  return new ApiError(503, `the GPU device was lost (${e.reason}${e.deviceMessage ? `: ${e.deviceMessage}` : ''}); the model is being reloaded, retry shortly`, 'server_error', null, 'device_lost');
}

function sendError(res: ServerResponse, e: unknown): void {
  if (e instanceof DeviceLostError) e = deviceLost(e);
  const err = e instanceof ApiError
    ? e
    : (e as Error)?.name === 'AbortError'
      ? new ApiError(499, 'the request was aborted', 'invalid_request_error')
      : new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error');
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, err.status, err.toJSON());
}
