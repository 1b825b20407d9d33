// Benchmarks round-to-nearest weight quantization (W4A16, W8A16) of a 4096x4096 float weight against the copy bandwidth.
#include <modkit/plugin_quant/quant.hpp>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>

// Figures: GB/s of weight bytes read and written (2 x 64 MiB per call), next to
// the copy bandwidth of the same 64 MiB measured in the same process at the same
// thread count, and their ratio. Buffers are allocated once: no call maps fresh
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

// Best of several copies of the weight: bytes read + written per second.
double copy_bandwidth() {
  double best = 1e30;
  for (int i = 0; i < 8; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    copy_target().copy_(weight());
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return 2 * kWeightBytes / best;
}

void report(benchmark::State& state, double seconds, double copy) {
  const double rate = 2 * kWeightBytes * static_cast<double>(state.iterations()) / seconds;
  state.counters["GB/s"] = rate / 1e9;
  state.counters["copy_GB/s"] = copy / 1e9;
  state.counters["ratio"] = rate / copy;
  state.counters["threads"] = at::get_num_threads();
}

void BM_copy(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  weight();
  copy_target().copy_(weight());  // first touch outside the timing
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    copy_target().copy_(weight());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::ClobberMemory();
  }
  const double rate = 2 * kWeightBytes * static_cast<double>(state.iterations()) / seconds;
  state.counters["GB/s"] = rate / 1e9;
  state.counters["threads"] = at::get_num_threads();
}

// compute_qparams + fake_quantize_ (two passes over the weight) or quantize_rtn_ (one).
void BM_rtn(benchmark::State& state, const std::string& preset, bool fused) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  const q::QuantArgs args = q::preset(preset).weights;
  at::Tensor& w = weight();
  const double copy = copy_bandwidth();
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (fused) {
      q::QParams qp = q::quantize_rtn_(w, args);
      benchmark::DoNotOptimize(qp.scale.data_ptr());
    } else {
      q::QParams qp = q::compute_qparams(w, args);
      q::fake_quantize_(w, qp, args);
      benchmark::DoNotOptimize(qp.scale.data_ptr());
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::ClobberMemory();
  }
  state.SetLabel(preset + (fused ? " quantize_rtn_" : " compute_qparams+fake_quantize_"));
  report(state, seconds, copy);
}

}  // namespace

BENCHMARK(BM_copy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W4A16_two_calls, std::string("W4A16"), false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W4A16_fused, std::string("W4A16"), true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W8A16_two_calls, std::string("W8A16"), false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_rtn, W8A16_fused, std::string("W8A16"), true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
