// Lists the node_modules folders (relative to the repo root) that the given packages need at
// run time: each package and its dependencies and installed optional dependencies, recursively,
// resolved the way Node resolves them. Used by pack.sh; plain Node, no dependencies.
//   node bench/gpu-kit/deps.mjs ROOT PACKAGE...
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const [root, ...names] = process.argv.slice(2);
if (!root || names.length === 0) {
  console.error('usage: node deps.mjs ROOT PACKAGE...');
  process.exit(2);
}
const seen = new Set();

function find(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const p = join(dir, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (dirname(dir) === dir) return undefined;
  }
}

function walk(name, from, optional) {
  const p = find(name, from);
  if (!p) {
    if (optional) return; // an optional dependency for another platform
    throw new Error(`${name} (needed from ${relative(root, from) || '.'}) is not installed: run npm install`);
  }
  if (seen.has(p)) return;
  seen.add(p);
  const pj = JSON.parse(readFileSync(join(p, 'package.json'), 'utf8'));
  for (const d of Object.keys(pj.dependencies ?? {})) walk(d, p, false);
  for (const d of Object.keys(pj.optionalDependencies ?? {})) walk(d, p, true);
  for (const [d, meta] of Object.entries(pj.peerDependenciesMeta ?? {})) if (!meta.optional && pj.peerDependencies?.[d]) walk(d, p, true);
}

for (const n of names) walk(n, root, false);
console.log([...seen].map((p) => relative(root, p)).sort().join('\n'));
