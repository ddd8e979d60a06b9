/**
 * An OpenAI-compatible HTTP server over an Engine (Node's http module): /v1/chat/completions
 * (JSON and SSE), /v1/responses, /v1/models and /health. Requests queue for the GPU in the
 * engine (one generation at a time, none dropped); a client that disconnects mid-stream
 * aborts its generation. Every error is an OpenAI-style JSON body with a 4xx/5xx status.
 * Local by default: see security.ts for the Host, CORS, Content-Type and key checks.
 * When the GPU device is lost, the server reloads the model (engine.recover()) and answers 503
 * meanwhile, /health included.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CreateOptions, Engine } from '../engine/api/engine.ts';
import { checkStream } from '../engine/api/params.ts';
import { ApiError, type ChatCompletionChunk, type ChatCompletionCreateParams } from '../engine/api/types.ts';
import { disconnectSignal, logWhenDone, MethodNotAllowed, readJson, sendError, sendJson, sendSse } from './http-io.ts';
import { responsesToChat, responseObject, streamResponseEvents, type ResponsesRequest } from './responses.ts';
import { answerOptions, apiKeyCheck, applyCors, checkJsonContentType, hostGuard, isLoopback, misdirected, parseCorsOrigins } from './security.ts';

/** The largest max_tokens a request may ask for, and the answer's length when it names none. */
export const DEFAULT_MAX_TOKENS_CAP = 4096;
/** Seconds a generation may hold the GPU. */
export const DEFAULT_REQUEST_TIMEOUT = 600;

export interface ServeOptions {
  port?: number;
  /** Default 127.0.0.1. A public address (0.0.0.0, ::, a LAN address) turns the Host check off. */
  host?: string;
  /** Every request but /health and CORS preflights then needs `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Origins whose pages may call the server ("*": any); default none, so no CORS headers. */
  cors?: string | readonly string[];
  /** Default 4096: a larger max_tokens is a 400, a request without one gets min(cap, context left). */
  maxTokensCap?: number;
  /** Default 600 s (0: none): then the generation stops and ends with finish_reason "length". */
  requestTimeout?: number;
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
  /** One line per request: method, path, status, time; errors and aborted requests included. */
  log?: (line: string) => void;
  /** Warnings (a public address without an API key); default stderr. */
  warn?: (line: string) => void;
}

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

interface Config {
  engine: Engine;
  options: ServeOptions;
  host: ((host: string | undefined) => boolean) | null;
  cors: string[] | undefined;
  key: ((authorization: string | undefined) => boolean) | undefined;
  cap: number;
  run: CreateOptions;
}

const ROUTES: Record<string, readonly string[]> = {
  '/health': ['GET', 'HEAD'],
  '/v1/models': ['GET', 'HEAD'],
  '/v1/chat/completions': ['POST'],
  '/v1/responses': ['POST'],
};

export async function serve(engine: Engine, options: ServeOptions = {}): Promise<RunningServer> {
  const hostOption = options.host ?? '127.0.0.1';
  const cap = options.maxTokensCap ?? DEFAULT_MAX_TOKENS_CAP;
  const timeout = options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT;
  if (!Number.isSafeInteger(cap) || cap < 1) throw new RangeError(`maxTokensCap must be an integer >= 1, got ${cap}`);
  if (!Number.isFinite(timeout) || timeout < 0) throw new RangeError(`requestTimeout must be a number of seconds >= 0, got ${timeout}`);
  if (options.apiKey === '') throw new RangeError('apiKey must not be empty');
  const cfg: Config = {
    engine, options, host: null, cap,
    cors: options.cors === undefined ? undefined : parseCorsOrigins(options.cors),
    key: options.apiKey === undefined ? undefined : apiKeyCheck(options.apiKey),
    run: { defaultMaxTokens: cap, ...(timeout > 0 ? { timeLimitMs: timeout * 1000 } : {}) },
  };
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
    handle(cfg, req, res).catch((e) => sendError(res, e));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, hostOption, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  cfg.host = hostGuard(addr.address, addr.port, hostOption);
  if (!isLoopback(addr.address) && options.apiKey === undefined) {
    (options.warn ?? ((l) => process.stderr.write(`${l}\n`)))(
      `warning: listening on ${addr.address}, which other machines can reach, with no API key: anyone who can connect can use the model (set --api-key)`);
  }
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

async function handle(c: Config, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (c.options.log) logWhenDone(req, res, path, c.options.log);
  if (c.host && !c.host(req.headers.host)) throw misdirected(req.headers.host);
  const corsAllowed = applyCors(c.cors, req, res);
  const methods = ROUTES[path];
  if (req.method === 'OPTIONS' && methods) return answerOptions(req, res, methods, corsAllowed);
  if (path !== '/health' && c.key && !c.key(req.headers.authorization)) {
    throw new ApiError(401, 'invalid or missing API key (send Authorization: Bearer <key>)', 'authentication_error', null, 'invalid_api_key');
  }
  if (!methods) throw new ApiError(404, `no route ${req.method} ${path}`, 'not_found_error', null, 'unknown_url');
  if (!methods.includes(req.method ?? '')) throw new MethodNotAllowed(path, req.method, methods.join(', '));
  const engine = c.engine;
  if (path === '/health') {
    const state = engine.state;
    // 'recovering' while the model is reloaded after a device loss ('lost' only if that failed).
    const status = state === 'ready' ? 'ok' : state;
    sendJson(res, state === 'ready' ? 200 : 503, { status, model: engine.modelId, backend: engine.backend, pending: engine.pending });
  } else if (path === '/v1/models') {
    sendJson(res, 200, { object: 'list', data: [{ id: engine.modelId, object: 'model', created: 0, owned_by: 'gpt-oss-webgpu' }] });
  } else {
    checkJsonContentType(req);
    const body = await readJson(req, c.options.maxBodyBytes);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object');
    await (path === '/v1/chat/completions' ? chatCompletions : responses)(c, body as Record<string, unknown>, req, res);
  }
}

/** A max_tokens above the server's cap is refused rather than cut down silently. */
function checkCap(value: unknown, param: string, cap: number): void {
  if (typeof value === 'number' && value > cap) {
    throw new ApiError(400, `${param} ${value} exceeds this server's cap of ${cap} tokens (gptoss serve --max-tokens-cap)`, 'invalid_request_error', param, 'invalid_value');
  }
}

async function chatCompletions(c: Config, body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const params = body as unknown as ChatCompletionCreateParams;
  checkStream(params.stream);
  checkCap(params.max_tokens, 'max_tokens', c.cap);
  checkCap(params.max_completion_tokens, 'max_completion_tokens', c.cap);
  const opts = { ...c.run, signal: disconnectSignal(req, res) };
  if (!params.stream) {
    sendJson(res, 200, await c.engine.chat.completions.create({ ...params, stream: false }, opts));
    return;
  }
  const stream = await c.engine.chat.completions.create({ ...params, stream: true }, opts);
  await sendSse(res, stream, (x: ChatCompletionChunk) => `data: ${JSON.stringify(x)}\n\n`, 'data: [DONE]\n\n');
}

/** Chat-completions parameter names in errors, as a Responses request spells them. */
const RESPONSES_PARAM: Record<string, string> = { max_tokens: 'max_output_tokens', reasoning_effort: 'reasoning.effort' };

function asResponsesError(e: unknown): unknown {
  const name = e instanceof ApiError && e.param ? RESPONSES_PARAM[e.param] : undefined;
  if (!name) return e;
  const err = e as ApiError;
  return new ApiError(err.status, err.message.replaceAll(err.param!, name), err.type, name, err.code);
}

async function responses(c: Config, body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const r = body as unknown as ResponsesRequest;
  const chat = responsesToChat(r);
  checkCap(r.max_output_tokens, 'max_output_tokens', c.cap);
  const opts = { ...c.run, signal: disconnectSignal(req, res) };
  try {
    if (!r.stream) {
      sendJson(res, 200, responseObject(await c.engine.chat.completions.create({ ...chat, stream: false }, opts)));
      return;
    }
    const stream = await c.engine.chat.completions.create({ ...chat, stream: true }, opts);
    await sendSse(res, streamResponseEvents(stream), (e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
  } catch (e) {
    throw asResponsesError(e);
  }
}
