#!/usr/bin/env bash
# Prints where a build spent its time, from the .ninja_log of a Ninja build directory: the slowest
# translation units and links with their seconds, and the totals per kind.
#
#   tools/ci/compile_times.sh [BUILD_DIR] [N]         report on an existing build (default ./build, top 25)
#   tools/ci/compile_times.sh --cold BUILD_DIR [N] [-- CMAKE_ARGS...]
#                                                     configure BUILD_DIR afresh, build it with ccache off
#                                                     (what a first build costs), then report
#
# Times are wall-clock seconds of each step as Ninja ran it (with -j$(nproc), so steps overlap; the
# sum is core-seconds). Each output counts once, with the time of its latest build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cold=0
if [[ "${1:-}" == "--cold" ]]; then cold=1; shift; fi
build="${1:-$root/build}"
top="${2:-25}"
shift $(( $# >= 2 ? 2 : $# ))
if [[ "${1:-}" == "--" ]]; then shift; fi

if [[ $cold == 1 ]]; then
  rm -rf "$build"
  start=$SECONDS
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${MODKIT_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
  CCACHE_DISABLE=1 cmake --build "$build" -j "$(nproc)" >/dev/null
  echo "cold build of $build: $((SECONDS - start)) s wall on $(nproc) cores (configure included)"
fi

log="$build/.ninja_log"
if [[ ! -f "$log" ]]; then
  echo "compile_times.sh: no $log (configure with -G Ninja; tools/dev.sh does)" >&2
  exit 1
fi

# .ninja_log v5: start_ms end_ms mtime output hash; a rebuilt output appears again further down
awk -v top="$top" '
  NR == 1 { next }
  { ms[$4] = $2 - $1 }
  END {
    for (o in ms) {
      kind = (o ~ /\.o$/) ? "compile" : (o ~ /\.(so|so\.[0-9.]+|a)$/ || o !~ /\./) ? "link" : "other"
      sum[kind] += ms[o]; n[kind]++
      printf "%8.1f  %s\n", ms[o] / 1000, o | "sort -rn | head -n " top
    }
    close("sort -rn | head -n " top)
    printf "\n"
    for (k in sum) printf "%-8s %4d steps %8.1f core-seconds\n", k, n[k], sum[k] / 1000
  }' "$log"
