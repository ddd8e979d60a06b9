#!/usr/bin/env bash
# Benchmarks gpt-oss-webgpu on a GPU machine that has no network and no Node, from a copy of
# the repo whose .gpukit/ was made by bench/gpu-kit/pack.sh. Run from the repo root there:
#
#   bash bench/gpu-kit/run.sh            # full: gpt-oss-20b shape, GPU tests, ~7 minutes
#   bash bench/gpu-kit/run.sh --smoke    # a tiny model and short sweep (a dry run, e.g. on SwiftShader)
#
# Steps: the Vulkan loader from the kit's .debs (skipped when libvulkan.so.1 is there), an ICD
# fallback for NVIDIA, Node and node_modules/dist unpacked into the repo root, nvidia-smi, the
# GPU test subset (kernels, golden logits, generation), then `gptoss bench --synthetic 20b`
# with the pp/tg/depth sweep, the ceiling and the per-kernel profile, bounded by what is left of
# the time budget. Everything lands in $OUT (default out/gpukit): run.log, tests.json,
# bench.json, bench.md, nvidia-smi.txt, and result.json with all of it (GPU, driver, date, commit).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KIT="$ROOT/.gpukit"
MODE=full
case "${1:-}" in
  --smoke) MODE=smoke ;;
  '') ;;
  *) echo "usage: bash bench/gpu-kit/run.sh [--smoke]" >&2; exit 2 ;;
esac
OUT=${OUT:-$ROOT/out/gpukit}
BUDGET_S=${BUDGET_S:-450}   # the whole run, unpacking to the last number (the device tool allows 600 s a call)
WORK=$(mktemp -d /tmp/gpukit-run.XXXXXX)
T0=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
cd "$ROOT"

say() { printf '\n== %s (%ds)\n' "$*" "$(($(date +%s) - T0))"; }
die() { echo "run.sh: $*"; exit 1; }
[ -f "$KIT/manifest.json" ] || die "no kit at $KIT: run bench/gpu-kit/pack.sh where npm works, and carry .gpukit"

# xz may be missing on the GPU machine: fall back to Python's lzma, then to the kit's xz-utils .deb.
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"
  elif command -v python3 >/dev/null; then python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  else
    [ -x "$WORK/xz/usr/bin/xz" ] || dpkg -x "$KIT"/debs/xz-utils_*.deb "$WORK/xz"
    "$WORK/xz/usr/bin/xz" -dc "$1" >"$2"
  fi
}

say "Vulkan"
if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  echo "libvulkan.so.1 is installed"
else
  for f in "$KIT"/debs/libvulkan1_*.deb; do dpkg -x "$f" /; done
  ldconfig
  ldconfig -p | grep 'libvulkan\.so\.1' || die "the Vulkan loader did not install"
fi
ls /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  elif [ "$MODE" = smoke ] && [ -f /usr/lib/chromium/vk_swiftshader_icd.json ]; then
    export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json # no GPU here: SwiftShader (Debian's chromium)
  fi
fi
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"

say "Node and the package"
unxz_to "$KIT/node.xz" "$WORK/node" && chmod +x "$WORK/node" || die "cannot unpack Node"
NODE="$WORK/node"
"$NODE" --version || die "the kit's Node does not run here"
if [ -e node_modules ] && [ ! -e node_modules/.gpukit ]; then
  die "node_modules exists and is not the kit's: run this from a fresh copy of the repo (see bench/gpu-kit/smoke.sh)"
fi
rm -rf node_modules dist
unxz_to "$KIT/pkg.tar.xz" "$WORK/pkg.tar" && tar -xf "$WORK/pkg.tar" -C "$ROOT" && rm "$WORK/pkg.tar" || die "cannot unpack the package"
if [ ! -d "$ROOT/../shared/golden" ] && [ -f "$KIT/golden.tar.xz" ]; then
  mkdir -p "$ROOT/../shared"
  unxz_to "$KIT/golden.tar.xz" "$WORK/golden.tar" && tar -xf "$WORK/golden.tar" -C "$ROOT/../shared"
fi

say "GPU"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi | tee "$OUT/nvidia-smi.txt"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory,clocks.max.sm --format=csv >"$WORK/gpu.csv" || true
else
  echo "no nvidia-smi" | tee "$OUT/nvidia-smi.txt"
fi

say "GPU tests (kernels, golden logits at every batch size, 8-bit weights, generation)"
# On a GPU the engine runs the tiled kernels (subgroup reductions where offered, f16 where granted):
# these files check them against the reference where CI, on SwiftShader, runs the simple ones.
TESTS=(test/kernels.test.ts test/engine-gpu-golden.test.ts test/engine-gpu-batches.test.ts test/engine-gpu-prefill.test.ts
  test/weights-q8.test.ts test/engine-gpu-generate.test.ts)
TESTS_TIMEOUT_S=240
# A CPU adapter needs minutes for the kernel cases: the smoke run checks the mechanics with two files.
[ "$MODE" = smoke ] && TESTS=(test/engine-gpu-golden.test.ts test/engine-gpu-generate.test.ts) && TESTS_TIMEOUT_S=600
tests_t0=$(date +%s)
timeout "$TESTS_TIMEOUT_S" "$NODE" node_modules/vitest/vitest.mjs run "${TESTS[@]}" --reporter=default --reporter=json --outputFile.json="$OUT/tests.json"
tests_rc=$?
tests_s=$(($(date +%s) - tests_t0))

say "bench"
if [ "$MODE" = smoke ]; then
  BENCH=(--synthetic tiny --vocab 2048 --prompt-len 8,16 --gen 4 --depth 0,24 --repeat 2 --ceiling-size 16MiB)
else
  BENCH=(--synthetic 20b --prompt-len 128,1024 --gen 64 --depth 0,4096,16384 --repeat 3)
fi
left=$((BUDGET_S - ($(date +%s) - T0) - 15))
[ "$left" -ge 60 ] || left=60
bench_t0=$(date +%s)
"$NODE" bin/gptoss.js bench "${BENCH[@]}" --profile --time-limit "$left" --json "$OUT/bench.json"
bench_rc=$?
bench_s=$(($(date +%s) - bench_t0))

say "collect"
"$NODE" bench/gpu-kit/collect.mjs --out "$OUT" --kit "$KIT" --mode "$MODE" --gpu-csv "$WORK/gpu.csv" \
  --tests-rc "$tests_rc" --tests-s "$tests_s" --bench-rc "$bench_rc" --bench-s "$bench_s" --total-s "$(($(date +%s) - T0))"
collect_rc=$?
rm -rf "$WORK"
say "done: tests rc $tests_rc, bench rc $bench_rc; results in $OUT"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && [ "$collect_rc" -eq 0 ]
