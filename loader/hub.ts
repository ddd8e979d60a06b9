/**
 * The Hugging Face hub: repo URLs for a revision, and the hashes the hub publishes for a repo's
 * files. The tree API (`/api/models/{repo}/tree/{revision}`) gives each LFS file's sha256
 * (`lfs.oid`) and each Git file's blob id (`oid`); where it is not served, the `X-Linked-ETag`
 * of the hub's redirect to the file's storage gives the sha256 (a redirect only: seen in Node and
 * Deno, opaque to pages). Either way the hash comes from the hub, the bytes from its storage.
 * The access token travels in the request headers only: never in a URL, a cache key or a message.
 */
import type { Digest, DigestSource } from './digests.ts';
import { ModelLoadError } from './errors.ts';
import { retryable, timedFetch, withRetries, type HttpRequestOptions } from './http-fetch.ts';

export const HF_HUB = 'https://huggingface.co';

export interface HuggingFaceOptions {
  /** Branch, tag or commit (default 'main'). */
  revision?: string;
  /** Access token for gated or private repos: sent as `Authorization: Bearer` to the hub only. */
  token?: string;
  /** The hub's address (default https://huggingface.co); a mirror or a test server. */
  hubUrl?: string;
}

export interface HubRepo {
  hubUrl: string;
  repo: string;
  revision: string;
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

/** The `resolve/{revision}/` base URL of a repo's files, with a trailing slash. */
export function hubResolveUrl(r: HubRepo): string {
  return `${trimSlash(r.hubUrl)}/${r.repo}/resolve/${encodeURIComponent(r.revision)}/`;
}

/** `https://huggingface.co/org/name/resolve/rev[/]` -> the repo; undefined for other URLs. */
export function parseHubUrl(url: string, hubUrl = HF_HUB): HubRepo | undefined {
  const hub = trimSlash(hubUrl);
  if (!url.startsWith(hub + '/')) return undefined;
  const m = /^([^/]+\/[^/]+)\/resolve\/([^/]+)\/?$/.exec(url.slice(hub.length + 1));
  if (!m) return undefined;
  return { hubUrl: hub, repo: m[1]!, revision: decodeURIComponent(m[2]!) };
}

/** Whether `url` is on the hub (the only place a token is sent). */
export function isHubUrl(url: string, hubUrl = HF_HUB): boolean {
  try {
    return new URL(url).origin === new URL(hubUrl).origin;
  } catch {
    return false;
  }
}

interface TreeEntry {
  type?: string;
  path?: string;
  oid?: string;
  lfs?: { oid?: string };
}

const FROM_TREE = 'the Hugging Face hub (tree API)';
const FROM_LINK = 'the Hugging Face hub (X-Linked-ETag)';

/** The hub's hashes for a repo's files; `o` carries the fetch, the token header and the timeouts. */
export function hubDigests(r: HubRepo, o: HttpRequestOptions): DigestSource {
  const treeUrl = hubTreeUrl(r);
  let tree: Promise<Map<string, Digest> | null> | undefined;

  async function page(url: string): Promise<{ entries: TreeEntry[]; next?: string } | null> {
    return withRetries(o, async () => {
      const res = await timedFetch(url, 'tree', { Accept: 'application/json' }, o);
      const s = res.res.status;
      if (s === 404) {
        await res.cancel();
        return null;
      }
      if (s === 401 || s === 403) {
        await res.cancel();
        throw new ModelLoadError('http', `HTTP ${s} for ${url}: ${r.repo} is gated or private, or the access token does not open it (huggingFace.token; HF_TOKEN for the CLI)`, { file: 'tree' });
      }
      if (s >= 500 || s === 429) {
        await res.cancel();
        throw retryable(new ModelLoadError('http', `HTTP ${s} for ${url}`, { file: 'tree' }));
      }
      if (s !== 200) {
        await res.cancel();
        throw new ModelLoadError('http', `HTTP ${s} for ${url}`, { file: 'tree' });
      }
      const text = new TextDecoder().decode(await res.bytes(64 << 20));
      let entries: unknown;
      try {
        entries = JSON.parse(text);
      } catch (e) {
        throw new ModelLoadError('http', `${url} did not answer JSON: ${(e as Error).message}`, { file: 'tree', cause: e });
      }
      if (!Array.isArray(entries)) throw new ModelLoadError('http', `${url} did not answer a list of files`, { file: 'tree' });
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.res.headers.get('link') ?? '')?.[1];
      return { entries: entries as TreeEntry[], next: next && new URL(next, url).toString() };
    });
  }

  async function loadTree(): Promise<Map<string, Digest> | null> {
    const out = new Map<string, Digest>();
    let url: string | undefined = treeUrl;
    for (let n = 0; url !== undefined && n < 1000; n++) {
      const p = await page(url);
      if (p === null) return n === 0 ? null : out;
      for (const e of p.entries) {
        if (e.type !== 'file' || typeof e.path !== 'string') continue;
        const lfs = e.lfs?.oid;
        if (typeof lfs === 'string' && /^[0-9a-f]{64}$/i.test(lfs)) out.set(e.path, { algorithm: 'sha256', hex: lfs.toLowerCase(), from: FROM_TREE });
        else if (typeof e.oid === 'string' && /^[0-9a-f]{40}$/i.test(e.oid)) out.set(e.path, { algorithm: 'git-sha1', hex: e.oid.toLowerCase(), from: FROM_TREE });
      }
      url = p.next;
    }
    return out;
  }

  /** The sha256 in the X-Linked-ETag of the hub's redirect to the file's storage. */
  async function linked(file: string): Promise<Digest | undefined> {
    const url = hubResolveUrl(r) + file.split('/').map(encodeURIComponent).join('/');
    const res = await withRetries(o, () => timedFetch(url, file, { Range: 'bytes=0-0' }, o, 'manual'));
    await res.cancel();
    const { status } = res.res;
    if (status < 300 || status >= 400) return undefined;
    const tag = (res.res.headers.get('x-linked-etag') ?? '').replace(/^W\//, '').replace(/"/g, '').trim();
    return /^[0-9a-f]{64}$/i.test(tag) ? { algorithm: 'sha256', hex: tag.toLowerCase(), from: FROM_LINK } : undefined;
  }

  return {
    description: `the Hugging Face hub (${r.repo} at ${r.revision})`,
    async digest(file) {
      tree ??= loadTree();
      const t = await tree;
      return t ? t.get(file) : linked(file);
    },
  };
}

/** The tree API URL of a repo (stored with the model in the download cache, deleted with it). */
export function hubTreeUrl(r: HubRepo): string {
  return `${trimSlash(r.hubUrl)}/api/models/${r.repo}/tree/${encodeURIComponent(r.revision)}`;
}
