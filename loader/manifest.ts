/**
 * Checksum manifests in `sha256sum` format: one `<64 hex digits>  <file name>` line per file
 * (`*name` for binary mode is accepted too), names relative to the model folder. What
 * `gptoss manifest DIR` writes and `sha256sum -c` checks.
 */
import { ModelLoadError } from './errors.ts';

export const MANIFEST_FILE = 'manifest.sha256';

/** file name -> lowercase hex sha256. */
export type Manifest = Map<string, string>;

/** Parses a manifest; `name` (its path or URL) is named in errors. */
export function parseManifest(text: string, name = MANIFEST_FILE): Manifest {
  const out: Manifest = new Map();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) {
      throw new ModelLoadError('bad-manifest', `line ${i + 1} is not "<sha256 hex>  <file name>": ${JSON.stringify(line.slice(0, 120))}`, { file: name });
    }
    const file = m[2]!.replace(/^\.\//, '');
    const prev = out.get(file);
    const hex = m[1]!.toLowerCase();
    if (prev !== undefined && prev !== hex) throw new ModelLoadError('bad-manifest', `line ${i + 1} gives ${file} a second, different sha256`, { file: name });
    out.set(file, hex);
  });
  if (out.size === 0) throw new ModelLoadError('bad-manifest', 'the manifest lists no files', { file: name });
  return out;
}

/** The manifest's text, files in name order. */
export function formatManifest(entries: Iterable<[file: string, sha256: string]>): string {
  return [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([f, h]) => `${h}  ${f}\n`).join('');
}
