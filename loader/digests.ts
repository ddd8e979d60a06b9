/**
 * Where the expected hash of each model file comes from: a manifest the caller names, the
 * Hugging Face hub (loader/hub.ts), or a `manifest.sha256` beside the files. The first that
 * knows a file wins, in that order. A manifest beside the files comes from the same place as the
 * bytes: it catches corruption and truncation, not a server that lies about both; a manifest
 * from elsewhere, or the hub's LFS hashes, catch that too.
 */
import { ModelLoadError } from './errors.ts';
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest.ts';
import { readText, type ModelSource } from './source.ts';

export interface Digest {
  /** 'git-sha1': a Git blob id, sha1("blob <size>\0" + bytes), for files kept outside LFS. */
  algorithm: 'sha256' | 'git-sha1';
  /** Lowercase hex. */
  hex: string;
  /** Where the hash came from, for messages ("manifest.sha256 beside the model", "the Hugging Face hub"). */
  from: string;
}

/** Something that publishes hashes for a model's files. */
export interface DigestSource {
  readonly description: string;
  /** The expected hash of `file`, or undefined when this source has none for it. */
  digest(file: string): Promise<Digest | undefined>;
}

/** A manifest: its path or URL, or its entries (file name -> sha256 hex). */
export type ManifestOption = string | URL | Manifest | Record<string, string>;

export function manifestDigests(manifest: Manifest, from: string): DigestSource {
  return {
    description: from,
    async digest(file) {
      const hex = manifest.get(file);
      return hex === undefined ? undefined : { algorithm: 'sha256', hex, from };
    },
  };
}

/** Reads a manifest from a path (Node, Deno) or an http(s) URL (anywhere). */
export async function loadManifest(where: string | URL, fetchImpl: typeof fetch = globalThis.fetch.bind(globalThis)): Promise<Manifest> {
  const name = String(where);
  const isUrl = where instanceof URL || /^https?:\/\//i.test(name) || typeof process === 'undefined' || !process.versions?.node;
  let text: string;
  if (isUrl) {
    const url = new URL(name, typeof location === 'undefined' ? undefined : location.href);
    let res: Response;
    try {
      res = await fetchImpl(url);
    } catch (e) {
      throw new ModelLoadError('bad-manifest', `cannot fetch the manifest: ${(e as Error).message}`, { file: name, cause: e });
    }
    if (!res.ok) throw new ModelLoadError('bad-manifest', `HTTP ${res.status} ${res.statusText} for the manifest ${url}`.trim(), { file: name });
    text = await res.text();
  } else {
    const fs = await import('node:fs/promises');
    try {
      text = await fs.readFile(name, 'utf8');
    } catch (e) {
      throw new ModelLoadError('bad-manifest', `cannot read the manifest: ${(e as Error).message}`, { file: name, cause: e });
    }
  }
  return parseManifest(text, name);
}

/** The first source that knows a file answers for it. */
export function firstOf(sources: DigestSource[]): DigestSource | undefined {
  if (sources.length === 0) return undefined;
  if (sources.length === 1) return sources[0];
  return {
    description: sources.map((s) => s.description).join(', then '),
    async digest(file) {
      for (const s of sources) {
        const d = await s.digest(file);
        if (d) return d;
      }
      return undefined;
    },
  };
}

/**
 * The hash sources of a model: `manifest` (the caller's), the source's own publisher (the hub),
 * then a manifest.sha256 beside the files. Undefined when there is none.
 */
export async function findDigests(source: ModelSource, manifest?: ManifestOption): Promise<DigestSource | undefined> {
  const found: DigestSource[] = [];
  if (manifest !== undefined) {
    if (typeof manifest === 'string' || manifest instanceof URL) {
      found.push(manifestDigests(await loadManifest(manifest), `the manifest ${String(manifest)}`));
    } else {
      const m = manifest instanceof Map ? manifest : new Map(Object.entries(manifest));
      for (const [f, h] of m) {
        if (!/^[0-9a-fA-F]{64}$/.test(h)) throw new ModelLoadError('bad-manifest', `the sha256 given for ${f} is not 64 hex digits`, { file: f });
      }
      found.push(manifestDigests(new Map([...m].map(([f, h]) => [f, h.toLowerCase()])), 'the manifest option'));
    }
  }
  if (source.digests) found.push(source.digests);
  if (await source.exists(MANIFEST_FILE)) {
    found.push(manifestDigests(parseManifest(await readText(source, MANIFEST_FILE), MANIFEST_FILE), `${MANIFEST_FILE} beside the model`));
  }
  return firstOf(found);
}
