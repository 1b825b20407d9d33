// Benchmarks round-to-nearest weight quantization (W4A16, W8A16) of a 4096x4096 float weight against the copy bandwidth.
#include <modkit/plugin_quant/quant.hpp>

#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/randn.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>

// Figures: GB/s of weight bytes read and written (2 x 64 MiB per call), next to
// the copy bandwidth of the same 64 MiB measured in the same iterations at the
// same thread count, and their ratio (mean and best iteration). Buffers are allocated once: no call maps fresh
// memory (glibc serves blocks of 32 MiB and more with a new mmap every time).
namespace {

namespace q = modkit::quant;

constexpr int64_t kRows = 4096, kCols = 4096;
constexpr double kWeightBytes = kRows * kCols * sizeof(float);

at::Tensor& weight() {
  static at::Tensor w = [] {
    at::manual_seed(0);
    return at::randn({kRows, kCols});
  }();
  return w;
}

at::Tensor& copy_target() {
  static at::Tensor t = at::empty({kRows, kCols});
  return t;
}

// Seconds of one copy of the weight (64 MiB read, 64 MiB written).
double time_copy() {
  const auto t0 = std::chrono::steady_clock::now();
  copy_target().copy_(weight());
  benchmark::ClobberMemory();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Mean and best-iteration rates; the ratio compares them with copies timed in
// the same iterations, so a machine shared with other work slows both alike.
struct Timing {
  double total = 0, best = 1e30;
  void add(double s) {
    total += s;
    best = std::min(best, s);
  }
};

void report(benchmark::State& state, const Timing& run, const Timing& copy) {
  const double n = static_cast<double>(state.iterations()), bytes = 2 * kWeightBytes;
  state.counters["GB/s"] = bytes * n / run.total / 1e9;
  state.counters["best_GB/s"] = bytes / run.best / 1e9;
  state.counters["copy_GB/s"] = bytes * n / copy.total / 1e9;
  state.counters["copy_best_GB/s"] = bytes / copy.best / 1e9;
  state.counters["ratio"] = copy.total / run.total;
  state.counters["best_ratio"] = copy.best / run.best;
  state.counters["threads"] = at::get_num_threads();
}

void BM_copy(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  time_copy();  // first touch outside the timing
  Timing copy;
  for (auto _ : state) copy.add(time_copy());
  report(state, copy, copy);
}

// compute_qparams + fake_quantize_ (two passes over the weight) or quantize_rtn_ (one),
// each iteration preceded by one timed copy of the same 64 MiB.
void BM_rtn(benchmark::State& state, const std::string& preset, bool fused) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  const q::QuantArgs args = q::preset(preset).weights;
  at::Tensor& w = weight();
  time_copy();
  Timing run, copy;
  for (auto _ : state) {
    copy.add(time_copy());
    const auto t0 = std::chrono::steady_clock::now();
    if (fused) {
      q::QParams qp = q::quantize_rtn_(w, args);
      benchmark::DoNotOptimize(qp.scale.data_ptr());
    } else {
      q::QParams qp = q::compute_qparams(w, args);
      q::fake_quantize_(w, qp, args);
      benchmark::DoNotOptimize(qp.scale.data_ptr());
    }
    benchmark::ClobberMemory();
    run.add(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.SetLabel(preset + (fused ? " quantize_rtn_" : " compute_qparams+fake_quantize_"));
  report(state, run, copy);
}

}  // namespace

BENCHMARK(BM_copy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W4A16_two_calls, std::string("W4A16"), false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W4A16_fused, std::string("W4A16"), true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W8A16_two_calls, std::string("W8A16"), false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W8A16_fused, std::string("W8A16"), true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
