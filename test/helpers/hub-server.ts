/**
 * A stand-in for the Hugging Face hub on 127.0.0.1, serving one model folder as repo `repo` at
 * `revision`: the tree API (`/api/models/{repo}/tree/{revision}`: `lfs.oid` = sha256 for
 * .safetensors and tokenizer.json, Git blob ids for the rest) and `/{repo}/resolve/{revision}/{file}`.
 * mode 'linked': no tree API (404); LFS files answer `resolve/` with a 302 carrying
 * `X-Linked-ETag` to `/blobs/{file}`, as the hub's redirect to its storage does. The hashes are
 * those of `hashesOf` (default: the folder's files when the server starts), so a test can change
 * a file afterwards. With `token`, every hub request without `Authorization: Bearer token` is a 401.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './http-server.ts';

export interface HubServerOptions {
  repo: string;
  revision: string;
  mode?: 'tree' | 'linked';
  token?: string;
  /** The folder the server serves (default `dir`) and where the model's files are in it (default its root). */
  root?: string;
  modelPath?: string;
}

const isLfs = (f: string) => f.endsWith('.safetensors') || f === 'tokenizer.json';

export async function startHubServer(dir: string, o: HubServerOptions): Promise<TestServer & { hashes: Map<string, { sha256: string; gitOid: string; size: number }> }> {
  const hashes = new Map<string, { sha256: string; gitOid: string; size: number }>();
  for (const f of (await readdir(dir)).sort()) {
    const b = await readFile(join(dir, f));
    const git = createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');
    hashes.set(f, { sha256: createHash('sha256').update(b).digest('hex'), gitOid: git, size: b.byteLength });
  }
  const rev = encodeURIComponent(o.revision);
  const treePath = `/api/models/${o.repo}/tree/${o.revision}`;
  const resolvePrefix = `/${o.repo}/resolve/${o.revision}/`;
  const at = o.modelPath ? `/${o.modelPath.replace(/^\/+|\/+$/g, '')}` : '';
  const server = await startTestServer(o.root ?? dir, {
    intercept(req, res, path) {
      const raw = new URL(req.url ?? '/', 'http://x').pathname;
      const onHub = path === treePath || path.startsWith(resolvePrefix);
      if (onHub && o.token !== undefined && req.headers.authorization !== `Bearer ${o.token}`) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"Invalid credentials"}');
        return true;
      }
      if (path === treePath) {
        if (!raw.endsWith(`/tree/${rev}`)) throw new Error(`the revision is not URL-encoded in ${raw}`);
        if (o.mode === 'linked') {
          res.writeHead(404).end('not found');
          return true;
        }
        const body = JSON.stringify([...hashes].map(([f, h]) => ({
          type: 'file', path: f, size: h.size, oid: h.gitOid, ...(isLfs(f) ? { lfs: { oid: h.sha256, size: h.size, pointerSize: 134 } } : {}),
        })));
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
        return true;
      }
      if (path.startsWith(resolvePrefix)) {
        const file = path.slice(resolvePrefix.length);
        if (o.mode === 'linked' && isLfs(file) && hashes.has(file)) {
          res.writeHead(302, { Location: `/blobs/${file}`, 'X-Linked-ETag': `"${hashes.get(file)!.sha256}"`, 'Content-Length': '0' }).end();
          return true;
        }
        return `${at}/${file}`;
      }
      if (path.startsWith('/blobs/')) return `${at}/${path.slice('/blobs/'.length)}`;
      return undefined;
    },
  });
  return Object.assign(server, { hashes });
}
