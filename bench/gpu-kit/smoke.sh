#!/usr/bin/env bash
# A dry run of the GPU kit on this machine: copies the files the device tool would send (tracked
# and untracked-not-ignored files, and .gpukit) into a fresh folder, with no node_modules, dist
# or ../shared, and runs run.sh --smoke there (a tiny model, a short sweep; SwiftShader when
# there is no GPU). Results: $OUT (default out/gpukit-smoke in this repo).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ -f "$ROOT/.gpukit/manifest.json" ] || { echo "smoke: no .gpukit: run bench/gpu-kit/pack.sh first" >&2; exit 1; }
export OUT=${OUT:-$ROOT/out/gpukit-smoke}
rm -rf "$OUT"
tmp=$(mktemp -d /tmp/gpukit-smoke.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/repo"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/repo")
cp -R "$ROOT/.gpukit" "$tmp/repo/"
bash "$tmp/repo/bench/gpu-kit/run.sh" --smoke
