#!/usr/bin/env bash
# Developer and CI entry point: install dependencies (Debian 12, as root), build, run the demo or the tests.
#
#   tools/dev.sh demo    install what is missing, build, list/inspect the plugins, prune and quantize generated models
#   tools/dev.sh test    install what is missing, build, run every test suite (CTest)
#   tools/dev.sh deps    only install the Debian packages
#   tools/dev.sh build   only configure and build (into ./build, or $MODKIT_BUILD_DIR)
#   tools/dev.sh bench   build and run the benchmarks (see BENCHMARKS.md)
#   tools/dev.sh ci-deps also install what CI's fuzz and sanitizer jobs need (clang, compiler-rt)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MODKIT_BUILD_DIR:-$root/build}"
jobs="$(nproc)"
# shellcheck source=generator.sh
source "$root/tools/generator.sh"

packages=(
  build-essential cmake ninja-build ccache binutils file
  libboost1.81-dev libboost-filesystem1.81-dev
  libtorch-dev libopenblas0-pthread libdlpack-dev
  libtomlplusplus-dev libspdlog-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev
  doctest-dev libbenchmark-dev
  python3 python3-torch
)
# tools/ci/fuzz.sh (libFuzzer, ASan and UBSan runtimes, llvm-symbolizer for readable reports);
# tools/ci/sanitize.sh uses gcc's own sanitizer runtimes (libasan, libubsan: part of build-essential)
ci_packages=(clang-14 libclang-rt-14-dev llvm-14)

deps() {
  local missing=()
  for p in "${packages[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
      echo "dev.sh: installing packages needs root (run as root or with sudo)" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# ccache keeps its own directory (~/.cache/ccache unless CCACHE_DIR says otherwise): shared by every
# clone and every build kind, so a fresh clone on a used machine does not start cold.
build() {
  # shellcheck disable=SC2046  # no argument, or the two words -G Ninja
  cmake -S "$root" -B "$build" $(generator_args "$build") -DCMAKE_BUILD_TYPE="${MODKIT_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
  cmake --build "$build" -j "$jobs"
}

modkit() { "$build/tools/cli/modkit" --plugin-dir "$build/plugins" "$@"; }

case "${1:-}" in
  deps) deps ;;
  ci-deps) deps "${ci_packages[@]}" ;;
  build) deps && build ;;
  demo)
    deps && build
    echo "== modkit list"; modkit list
    echo; echo "== modkit inspect MagnitudePruningModifier"; modkit inspect MagnitudePruningModifier
    echo; echo "== modkit demo (training loop with real steps)"; modkit demo
    echo; echo "== modkit apply (oneshot: default recipe on a generated model)"; modkit apply
    ;;
  test)
    deps && build
    ctest --test-dir "$build" --output-on-failure -j "$jobs"
    ;;
  bench)
    deps && build
    "$root/tools/bench/run_all.sh" "$build"
    ;;
  *)
    sed -n '3,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
