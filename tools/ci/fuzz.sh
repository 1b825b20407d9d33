#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into their own directory and runs each for a bounded time.
#
#   tools/ci/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to $MODKIT_FUZZ_SECONDS or 60; targets default to all of tests/fuzz
# (recipe_toml recipe_yaml elf_metadata registry_cache calibration). Each run starts from the seeds
# in tests/fuzz/corpus/<target> and the inputs that once crashed, tests/fuzz/regressions/<target>;
# what it learns stays in $MODKIT_FUZZ_BUILD_DIR/corpus/<target> for the next run. A crash, leak,
# timeout or broken property is written to $MODKIT_FUZZ_BUILD_DIR/artifacts/<target>/ and makes the
# script exit 1 once every target has run. To keep a crash as a regression test: fix it, then copy
# the artifact into tests/fuzz/regressions/<target>/ (ctest's fuzz_replay_<target> replays it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../generator.sh
source "$root/tools/generator.sh"
build="${MODKIT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-${MODKIT_FUZZ_SECONDS:-60}}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(recipe_toml recipe_yaml elf_metadata registry_cache calibration); fi
cc="${MODKIT_FUZZ_CC:-clang-14}"
cxx="${MODKIT_FUZZ_CXX:-clang++-14}"

# -O1 -gline-tables-only: what libFuzzer's documentation suggests, and quick to compile
sanitize="-O1 -gline-tables-only -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$root" -B "$build" $(generator_args "$build") -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_C_FLAGS="$sanitize" -DCMAKE_CXX_FLAGS="$sanitize" \
  -DMODKIT_FUZZ=ON -DMODKIT_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

# UBSan findings are errors; LibTorch's own one-time allocations are not ours (see tools/ci/lsan.supp)
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="abort_on_error=0:detect_odr_violation=0"
export LSAN_OPTIONS="suppressions=$root/tools/ci/lsan.supp:print_suppressions=0"

failed=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  seeds=("$root/tests/fuzz/corpus/$t")
  [[ -d "$root/tests/fuzz/regressions/$t" ]] && seeds+=("$root/tests/fuzz/regressions/$t")
  echo "== fuzz $t for ${seconds} s"
  # new inputs go to the first corpus directory; the others are read-only seeds
  if "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}" >"$build/fuzz_$t.log" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::new_units_added)" "$build/fuzz_$t.log" | tr '\n' ' '
    echo
  else
    echo "fuzz $t FAILED; last lines of $build/fuzz_$t.log:"
    tail -n 40 "$build/fuzz_$t.log"
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzzing found problems in: ${failed[*]} (inputs in $build/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: no problems in ${targets[*]}"
