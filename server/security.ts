/**
 * What keeps a local server to its user: web pages the user visits can reach 127.0.0.1 too.
 * - Host: on a loopback address only Host names of this machine are answered (421 otherwise),
 *   so a DNS-rebinding page (evil.example resolving to 127.0.0.1) is refused.
 * - CORS: no Access-Control-* headers unless origins were listed; then only those are reflected.
 * - Content-Type: POST bodies must be application/json, which a page can only send cross-origin
 *   after a preflight; text/plain and form posts (no preflight) are refused with 415.
 * - API keys are compared in constant time (sha256 digests through timingSafeEqual).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { ApiError } from '../engine/api/types.ts';

/** 127.0.0.0/8, ::1, ::ffff:127.x.x.x, localhost: reachable from this machine only. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (a === 'localhost' || a.endsWith('.localhost')) return true;
  if (isIP(a) === 4) return a.startsWith('127.');
  if (isIP(a) === 6) return a === '::1' || /^(0:){7}1$/.test(a) || /^::ffff:127\./.test(a);
  return false;
}

/** The Host header check; null when the server listens on a public address (any name may reach it). */
export function hostGuard(boundAddress: string, port: number, hostOption: string): ((host: string | undefined) => boolean) | null {
  if (!isLoopback(boundAddress)) return null;
  const bracket = (a: string) => (isIP(a) === 6 ? `[${a}]` : a);
  const names = new Set(['localhost', '127.0.0.1', '[::1]', bracket(boundAddress), bracket(hostOption)].map((n) => n.toLowerCase()));
  const allowed = new Set<string>();
  for (const n of names) {
    allowed.add(`${n}:${port}`);
    if (port === 80) allowed.add(n);
  }
  return (host) => host !== undefined && allowed.has(host.toLowerCase());
}

export function misdirected(host: string | undefined): ApiError {
  return new ApiError(421, `this server answers only to localhost, 127.0.0.1 or [::1] with its port, not to Host ${JSON.stringify(host ?? '')} (start it with --host to serve other names)`,
    'invalid_request_error', null, 'misdirected_request');
}

/** "http://localhost:5173, https://app.example" -> normalized origins; "*" allows any. */
export function parseCorsOrigins(value: string | readonly string[]): string[] {
  const list = (typeof value === 'string' ? value.split(',') : [...value]).map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new RangeError('cors needs at least one origin, such as http://localhost:5173');
  return list.map((o) => {
    if (o === '*') return o;
    let url: URL;
    try {
      url = new URL(o);
    } catch {
      throw new RangeError(`cors origin ${JSON.stringify(o)} is not an origin such as http://localhost:5173`);
    }
    if (url.origin === 'null' || o.replace(/\/$/, '').toLowerCase() !== url.origin.toLowerCase()) {
      throw new RangeError(`cors origin ${JSON.stringify(o)} must be scheme://host[:port] with no path, such as ${url.origin}`);
    }
    return url.origin;
  });
}

const ALLOWED_HEADERS = ['authorization', 'content-type'];
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Sets the CORS headers for an allowed Origin (none otherwise) and says whether it was allowed.
 * With origins configured every response varies by Origin, so caches keep them apart.
 */
export function applyCors(origins: readonly string[] | undefined, req: IncomingMessage, res: ServerResponse): boolean {
  if (!origins) return false;
  res.setHeader('vary', 'Origin');
  const origin = req.headers.origin;
  if (!origin || !(origins.includes('*') || origins.includes(origin))) return false;
  res.setHeader('access-control-allow-origin', origin);
  return true;
}

/** The answer to an OPTIONS request: Allow, and for an allowed origin's preflight the CORS grant. */
export function answerOptions(req: IncomingMessage, res: ServerResponse, methods: readonly string[], corsAllowed: boolean): void {
  const allow = [...methods, 'OPTIONS'].join(', ');
  const headers: Record<string, string> = { allow, 'content-length': '0' };
  if (corsAllowed) {
    // Headers the page asks for beyond these (e.g. the openai client's x-stainless-*) are granted
    // too: the origin is trusted, and the API key still guards every request.
    const asked = String(req.headers['access-control-request-headers'] ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => TOKEN.test(h));
    headers['access-control-allow-methods'] = allow;
    headers['access-control-allow-headers'] = [...new Set([...ALLOWED_HEADERS, ...asked])].join(', ');
    headers['access-control-max-age'] = '600';
  }
  res.writeHead(204, headers);
  res.end();
}

/** POST bodies: application/json, optionally with charset=utf-8; anything else is a 415. */
export function checkJsonContentType(req: IncomingMessage): void {
  const raw = req.headers['content-type'];
  const [type, ...params] = (raw ?? '').split(';').map((s) => s.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/^"(.*)"$/, '$1');
  if (type === 'application/json' && (charset === undefined || charset === 'utf-8' || charset === 'utf8')) return;
  throw new ApiError(415, `the request body must be JSON sent as Content-Type: application/json, not ${raw === undefined ? 'no Content-Type' : JSON.stringify(raw)}`,
    'invalid_request_error', null, 'unsupported_media_type');
}

/** Checks `Authorization: Bearer KEY` in constant time: equal-length digests, compared whole. */
export function apiKeyCheck(key: string): (authorization: string | undefined) => boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  const want = digest(key);
  return (authorization) => {
    const m = /^Bearer\s+(.*)$/i.exec(authorization ?? '');
    const ok = timingSafeEqual(digest(m?.[1] ?? ''), want);
    return ok && m !== null;
  };
}
