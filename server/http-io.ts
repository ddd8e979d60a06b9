/**
 * The HTTP plumbing of the server: JSON bodies in and out, server-sent events, OpenAI-style
 * errors, a signal for a client that goes away, and one log line per request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../engine/api/types.ts';
import { DeviceLostError } from '../engine/gpu/device-lost.ts';

/** Aborted when the client goes away before the response is complete. */
export function disconnectSignal(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(new DOMException('the client disconnected', 'AbortError'));
  });
  req.on('aborted', () => ac.abort(new DOMException('the client disconnected', 'AbortError')));
  return ac.signal;
}

/**
 * Logs `METHOD /path STATUS N ms` once the response is done, or `... aborted` when the client
 * left first (status 499 when nothing was sent yet). Successful /health polls are not logged.
 */
export function logWhenDone(req: IncomingMessage, res: ServerResponse, path: string, log: (line: string) => void): void {
  const t0 = performance.now();
  res.once('close', () => {
    const aborted = !res.writableFinished;
    const status = aborted && !res.headersSent ? 499 : res.statusCode;
    if (!aborted && status < 400 && path === '/health') return;
    log(`${req.method} ${path} ${status} ${(performance.now() - t0).toFixed(0)} ms${aborted ? ' aborted' : ''}`);
  });
}

export async function sendSse<T>(res: ServerResponse, stream: AsyncIterable<T>, format: (item: T) => string, last?: string): Promise<void> {
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

export async function readJson(req: IncomingMessage, maxBytes = 16 << 20): Promise<unknown> {
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

/** A JSON answer; HEAD requests get the same headers and no body (Node drops it). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** 503 while the model is reloaded onto a new device. */
function deviceLost(e: DeviceLostError): ApiError {
  return new ApiError(503, `the GPU device was lost (${e.reason}${e.deviceMessage ? `: ${e.deviceMessage}` : ''}); the model is being reloaded, retry shortly`, 'server_error', null, 'device_lost');
}

export function sendError(res: ServerResponse, e: unknown): void {
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
  sendJson(res, err.status, err.toJSON(), err instanceof MethodNotAllowed ? { allow: err.allow } : {});
}

/** 405, with the Allow header the status requires. */
export class MethodNotAllowed extends ApiError {
  constructor(path: string, method: string | undefined, readonly allow: string) {
    super(405, `${path} takes ${allow}, not ${method}`, 'invalid_request_error', null, 'method_not_allowed');
  }
}
