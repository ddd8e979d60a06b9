/**
 * The server's guards against web pages and other machines, over real HTTP (node:http, which
 * can set Host and Origin as a browser or a DNS-rebinding page would): no CORS headers unless
 * origins are listed, JSON-only POST bodies (415), the Host check (421), CORS for listed origins
 * and their preflights, a warning for a public address without a key, API keys, HEAD and 405
 * on GET routes, and one log line per request including errors and aborted requests.
 * The engine is a stand-in that answers at once (or waits for the abort), since none of this
 * touches generation.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../engine/api/engine.ts';
import type { ChatCompletion, ChatCompletionCreateParams } from '../engine/api/types.ts';
import { serve, type RunningServer, type ServeOptions } from '../server/openai-server.ts';

const KEY = 'sk-local-0123456789';
const APP = 'http://app.example:3000';
const BODY = JSON.stringify({ model: 'stub', messages: [{ role: 'user', content: 'hi' }] });

/** An Engine that answers "ok" at once; model "hang" waits until the request is aborted. */
function stubEngine() {
  const calls: ChatCompletionCreateParams[] = [];
  const aborted: unknown[] = [];
  const engine = {
    backend: 'local', modelId: 'stub', pending: 0, state: 'ready', onDeviceLost: () => () => {}, recover: async () => {},
    chat: { completions: { create: async (p: ChatCompletionCreateParams, o?: { signal?: AbortSignal }) => {
      calls.push(p);
      if (p.model === 'hang') {
        await new Promise((_, reject) => o?.signal?.addEventListener('abort', () => {
          aborted.push(o.signal!.reason);
          reject(o.signal!.reason);
        }));
      }
      const c: ChatCompletion = {
        id: 'chatcmpl-stub', object: 'chat.completion', created: 0, model: 'stub', system_fingerprint: 'stub',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, finish_reason: 'stop', logprobs: null }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      };
      return c;
    } } },
    createSession() {
      throw new Error('no sessions');
    },
    async dispose() {},
  };
  return { engine: engine as unknown as Engine, calls, aborted };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request to 127.0.0.1 with exactly these headers (Host included: node:http lets us set it). */
function send(server: RunningServer, o: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Reply> {
  const port = Number(new URL(server.url).port);
  return new Promise((resolve, reject) => {
    const length = o.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(o.body)) };
    const req = request({ host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, headers: { host: `127.0.0.1:${port}`, ...length, ...o.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const portOf = (s: RunningServer) => new URL(s.url).port;
const errorOf = (r: Reply) => (JSON.parse(r.body) as { error: { type: string; param: string | null; message: string } }).error;

let stub: ReturnType<typeof stubEngine>;
let open: RunningServer;
let keyed: RunningServer;
let cors: RunningServer;
const logs: string[] = [];
const servers: RunningServer[] = [];

async function start(o: ServeOptions): Promise<RunningServer> {
  const s = await serve(stub.engine, { port: 0, ...o });
  servers.push(s);
  return s;
}

beforeAll(async () => {
  stub = stubEngine();
  open = await start({ log: (l) => logs.push(l) });
  keyed = await start({ apiKey: KEY, log: (l) => logs.push(l) });
  cors = await start({ cors: [APP], apiKey: KEY });
});

afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('a keyless local server and the web pages of its user', () => {
  it('sends no CORS headers by default', async () => {
    const r = await send(open, { path: '/v1/models', headers: { origin: 'http://evil.example' } });
    expect(r.status, r.body).toBe(200);
    expect(r.headers['access-control-allow-origin'], 'a page of any origin may read the answer').toBeUndefined();
    const pre = await send(open, { method: 'OPTIONS', path: '/v1/chat/completions', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    expect(pre.headers['access-control-allow-origin'], 'the preflight grants a page of any origin').toBeUndefined();
    expect(pre.headers['access-control-allow-methods'], 'the preflight grants methods to any origin').toBeUndefined();
  });

  it('refuses POST bodies that are not application/json (a cross-origin simple request) with 415', async () => {
    const before = stub.calls.length;
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1']) {
      const r = await send(open, { method: 'POST', path: '/v1/chat/completions', headers: { origin: 'http://evil.example', 'content-type': type }, body: BODY });
      expect(r.status, `a ${type} body: ${r.body}`).toBe(415);
      expect(errorOf(r).type, 'OpenAI error shape').toBe('invalid_request_error');
      expect(errorOf(r).message).toMatch(/application\/json/);
    }
    const none = await send(open, { method: 'POST', path: '/v1/responses', body: JSON.stringify({ input: 'hi' }) });
    expect(none.status, `a body without Content-Type: ${none.body}`).toBe(415);
    expect(stub.calls.length, 'the model ran for a refused request').toBe(before);
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"']) {
      const ok = await send(open, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': type }, body: BODY });
      expect(ok.status, `a ${type} body: ${ok.body}`).toBe(200);
    }
  });

  it('refuses a Host that is not this machine (DNS rebinding) with 421, answers localhost, 127.0.0.1 and [::1]', async () => {
    const port = portOf(open);
    for (const host of ['evil.example', `evil.example:${port}`, `localhost:${Number(port) + 1}`, `192.168.1.10:${port}`]) {
      const r = await send(open, { path: '/v1/models', headers: { host } });
      expect(r.status, `Host ${host}: ${r.body}`).toBe(421);
      expect(errorOf(r).message).toMatch(/Host/);
      const post = await send(open, { method: 'POST', path: '/v1/chat/completions', headers: { host, 'content-type': 'application/json' }, body: BODY });
      expect(post.status, `POST with Host ${host}`).toBe(421);
    }
    // ... and still answers the names of this machine, with its port.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      const r = await send(open, { path: '/v1/models', headers: { host } });
      expect(r.status, `Host ${host}: ${r.body}`).toBe(200);
    }
  });

  it('with --cors reflects a listed origin only, and answers its preflight', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    const ok = await send(cors, { path: '/v1/models', headers: { origin: APP, ...auth } });
    expect(ok.status, ok.body).toBe(200);
    expect(ok.headers['access-control-allow-origin'], 'the listed origin').toBe(APP);
    expect(ok.headers.vary, 'answers that differ by Origin must say so to caches').toMatch(/Origin/);
    const other = await send(cors, { path: '/v1/models', headers: { origin: 'http://evil.example', ...auth } });
    expect(other.headers['access-control-allow-origin'], 'an origin not listed').toBeUndefined();
    const pre = await send(cors, {
      method: 'OPTIONS', path: '/v1/chat/completions',
      headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-stainless-os' },
    });
    expect(pre.status, `preflight without a key: ${pre.body}`).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(APP);
    expect(String(pre.headers['access-control-allow-methods']).split(/,\s*/)).toContain('POST');
    const allowed = String(pre.headers['access-control-allow-headers']).split(/,\s*/);
    for (const h of ['authorization', 'content-type', 'x-stainless-os']) expect(allowed, `preflight allows ${h}`).toContain(h);
    const denied = await send(cors, { method: 'OPTIONS', path: '/v1/chat/completions', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    expect(denied.headers['access-control-allow-origin'], 'preflight from an origin not listed').toBeUndefined();
    const error = await send(cors, { path: '/v1/models', headers: { origin: APP } });
    expect([error.status, error.headers['access-control-allow-origin']], 'the listed page can read an error too').toEqual([401, APP]);
  });

  it('warns when it listens on a public address without a key, and then checks no Host', async () => {
    const warnings: string[] = [];
    const pub = await start({ host: '0.0.0.0', warn: (l) => warnings.push(l) });
    expect(warnings.join('\n'), 'warning for 0.0.0.0 without an API key').toMatch(/warning: .*0\.0\.0\.0.*API key/);
    const r = await send(pub, { path: '/v1/models', headers: { host: `my-box.lan:${portOf(pub)}` } });
    expect(r.status, `a public server answers names of its own: ${r.body}`).toBe(200);
    const quiet: string[] = [];
    await start({ host: '0.0.0.0', apiKey: KEY, warn: (l) => quiet.push(l) });
    await start({ host: 'localhost', warn: (l) => quiet.push(l) });
    expect(quiet, 'a key, or a loopback address, needs no warning').toEqual([]);
  });

  it('checks the API key: right key 200, wrong keys of the same or another length 401', async () => {
    const models = (authorization?: string) => send(keyed, { path: '/v1/models', headers: authorization ? { authorization } : {} });
    expect((await models(`Bearer ${KEY}`)).status, 'the right key').toBe(200);
    expect((await models(`bearer ${KEY}`)).status, 'the auth scheme is case-insensitive (RFC 9110)').toBe(200);
    const wrongSameLength = KEY.slice(0, -1) + (KEY.endsWith('9') ? '8' : '9');
    for (const a of [`Bearer ${wrongSameLength}`, `Bearer ${KEY}0`, 'Bearer x', `Basic ${KEY}`, KEY, undefined]) {
      const r = await models(a);
      expect(r.status, `Authorization ${JSON.stringify(a)}`).toBe(401);
      expect(errorOf(r).type).toBe('authentication_error');
    }
  });
});

describe('HTTP methods and the request log', () => {
  it('answers HEAD on GET routes with the same headers and no body', async () => {
    for (const path of ['/v1/models', '/health']) {
      const get = await send(open, { path });
      const head = await send(open, { method: 'HEAD', path });
      expect(head.status, `HEAD ${path}`).toBe(200);
      expect(head.body, `HEAD ${path} has a body`).toBe('');
      expect(head.headers['content-type']).toBe(get.headers['content-type']);
      expect(head.headers['content-length'], `HEAD ${path} Content-Length`).toBe(get.headers['content-length']);
    }
  });

  it('answers other methods with 405 and Allow', async () => {
    for (const [method, path, allow] of [['POST', '/health', 'GET, HEAD'], ['DELETE', '/health', 'GET, HEAD'], ['PUT', '/v1/models', 'GET, HEAD'], ['GET', '/v1/chat/completions', 'POST']] as const) {
      const r = await send(open, { method, path, headers: { 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
      expect(r.status, `${method} ${path}: ${r.body}`).toBe(405);
      expect(r.headers.allow, `${method} ${path} Allow`).toBe(allow);
      expect(errorOf(r).type).toBe('invalid_request_error');
    }
  });

  it('logs one line for each request, errors and aborted ones included', async () => {
    logs.length = 0;
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 50 && !logs.some((l) => re.test(l)); i++) await new Promise((r) => setTimeout(r, 100));
      return logs.find((l) => re.test(l));
    };
    await send(open, { path: '/v1/nothing' });
    await send(open, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'text/plain' }, body: BODY });
    await send(open, { path: '/v1/models', headers: { host: 'evil.example' } });
    await send(keyed, { path: '/v1/models' });
    await send(open, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{"messages":' });
    for (const re of [/^GET \/v1\/nothing 404 \d+ ms$/, /^POST \/v1\/chat\/completions 415 \d+ ms$/, /^GET \/v1\/models 421 \d+ ms$/, /^GET \/v1\/models 401 \d+ ms$/, /^POST \/v1\/chat\/completions 400 \d+ ms$/]) {
      expect(await waitFor(re), `a log line like ${re} in:\n${logs.join('\n')}`).toBeDefined();
    }
    // A client that leaves while its request waits: the engine sees the abort, the log says so.
    const port = Number(portOf(open));
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } });
    req.on('error', () => {});
    req.end(JSON.stringify({ model: 'hang', messages: [{ role: 'user', content: 'hi' }] }));
    for (let i = 0; i < 50 && stub.calls.at(-1)?.model !== 'hang'; i++) await new Promise((r) => setTimeout(r, 50));
    req.destroy();
    expect(await waitFor(/^POST \/v1\/chat\/completions 499 \d+ ms aborted$/), `an aborted-request line in:\n${logs.join('\n')}`).toBeDefined();
    expect(stub.aborted.length, 'the engine saw the abort').toBeGreaterThan(0);
    expect(logs.length, `one line per request:\n${logs.join('\n')}`).toBe(6);
  });
});
