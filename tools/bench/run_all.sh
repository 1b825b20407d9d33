#!/usr/bin/env bash
# Runs every benchmark against a build tree and prints the figures BENCHMARKS.md quotes.
#   tools/bench/run_all.sh [BUILD_DIR]     (default ./build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
work="$build/bench-work"
python=/usr/bin/python3
mkdir -p "$work"

echo "== machine"
echo "cores: $(nproc); BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"

if [[ ! -f "$work/plugins/.built" ]]; then
  echo "== generating and building 200 plugins x 5 modifiers (once)"
  "$python" "$root/tools/bench/gen_plugins.py" --plugins 200 --modifiers 5 --out "$work/gen" \
    --plugin-dir "$work/plugins" --build --jobs "$(nproc)" >/dev/null
  touch "$work/plugins/.built"
fi
if [[ ! -d "$work/pypkg" ]]; then
  "$python" "$root/tools/bench/python_walk.py" --mode generate --dir "$work/pypkg" --modules 200 --classes 5 >/dev/null
fi

echo "== discovery"
"$build/tools/bench/bench_discovery" --plugin-dir "$work/plugins" --modkit "$build/tools/cli/modkit" \
  --python-walk "$root/tools/bench/python_walk.py" --python-package "$work/pypkg" --python "$python" --runs 9

echo "== dispatch (1 thread)"
"$build/tools/bench/bench_dispatch" --benchmark_min_time=0.5
"$python" "$root/tools/bench/python_dispatch.py"

echo "== round-to-nearest quantization of a 4096x4096 weight vs copy bandwidth"
"$build/tools/bench/bench_quant"

echo "== Wanda's metric and mask on a 4096x4096 weight vs copy bandwidth and llmcompressor's ATen sort"
"$build/tools/bench/bench_wanda" --benchmark_min_time=0.5

echo "== GPTQ and SparseGPT on one 4096x4096 layer, 32k tokens, vs sgemm and llmcompressor's code in plain ATen"
"$build/tools/bench/bench_obs"

echo "== peak memory of GPTQ over 8 blocks: sequential pipeline against basic"
"$build/tools/bench/bench_pipeline_memory" --plugin-dir "$build/plugins"
