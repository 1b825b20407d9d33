#!/usr/bin/env bash
# Builds the test suite with AddressSanitizer + UndefinedBehaviorSanitizer (leak checking on) into its
# own directory and runs it.
#
#   tools/ci/sanitize.sh          every test, LibTorch suites included (the default, CI; ~12 min on 2 cores)
#   tools/ci/sanitize.sh --core   only the tests that need no LibTorch (~13 min from scratch)
#
# The build directory is $MODKIT_SANITIZE_BUILD_DIR (default build-asan-full, build-asan with --core).
# Any sanitizer report fails the test that produced it; the script exits non-zero when a test fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../generator.sh
source "$root/tools/generator.sh"
full=1
if [[ "${1:-}" == "--core" ]]; then full=0; shift; fi
if [[ $# -gt 0 ]]; then
  sed -n '3,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
default_build="$root/build-asan-full"
if [[ $full == 0 ]]; then default_build="$root/build-asan"; fi
build="${MODKIT_SANITIZE_BUILD_DIR:-$default_build}"
jobs="$(nproc)"

# The suites that need no LibTorch: the loader, registry and cache, lifecycle, recipes, CLI and the fuzz
# corpus replays, over the deliberately broken and hostile fixture plugins (built with the sanitizers too).
core_tests=(test_abi test_cache test_stress test_cli test_factory test_isolation test_lifecycle test_recipe
            replay_recipe_toml replay_recipe_yaml replay_elf_metadata replay_registry_cache)
core_regex='^(test_abi|test_cache|test_stress|test_cli|test_factory|register_class_rejects_non_modifier|test_isolation|test_lifecycle|test_recipe|fuzz_replay_(recipe_toml|recipe_yaml|elf_metadata|registry_cache))$'

# -O1 -g1: compiles about twice as fast as RelWithDebInfo and keeps file:line in every report
flags="-O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$root" -B "$build" $(generator_args "$build") -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" -DMODKIT_BUILD_BENCHMARKS=OFF >/dev/null
if [[ $full == 1 ]]; then
  cmake --build "$build" -j "$jobs"
else
  cmake --build "$build" -j "$jobs" --target "${core_tests[@]}"
fi

# detect_leaks: leaks fail the process that leaks (test executables, the modkit CLI, the scanner child).
# handle_segv=0: the hostile fixtures crash on purpose inside the scanner child, and the tests check that
# the parent records the signal ("crashed with SIGSEGV"); ASan's handler would turn it into an exit status.
# LibTorch's own one-time allocations are suppressed in tools/ci/lsan.supp (each line says why).
export ASAN_OPTIONS="detect_leaks=1:handle_segv=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tools/ci/lsan.supp:print_suppressions=0"
ctest_args=(--test-dir "$build" --output-on-failure -j "$jobs")
if [[ $full == 0 ]]; then ctest_args+=(-R "$core_regex"); fi
ctest "${ctest_args[@]}"
