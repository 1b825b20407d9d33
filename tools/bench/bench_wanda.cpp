// Benchmarks Wanda's metric and mask (plugins/wanda_pruning) on a 4096x4096 weight against the copy bandwidth and against llmcompressor's ATen version.
#include "wanda.hpp"

#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/norm.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

// Figures: GB/s of weight bytes read and written (2 x 64 MiB per call: the
// weight is pruned in place), next to the copy bandwidth of the same 64 MiB
// measured in the same iterations at the same thread count, and their ratio
// (mean and best iteration). The timed copy is also what restores the
// pristine weight before each pruning, so every call prunes a dense weight.
// The statistics benchmark reads a 2048 x 4096 float batch (32 MiB) per call
// and compares with a copy of that batch (read + written).
namespace {

constexpr int64_t kRows = 4096, kCols = 4096, kTokens = 2048;
constexpr double kWeightBytes = kRows * kCols * sizeof(float);

struct Data {
  at::Tensor pristine, weight;
  at::Tensor uneven;  // the same with row scales exp(0.5 N(0, 1)), as the rows of trained weights differ
  std::vector<float> norms;
  at::Tensor norms_tensor;  // the same norms for the ATen version
  at::Tensor batch, batch_copy;
};

Data& data() {
  static Data d = [] {
    at::manual_seed(0);
    Data d;
    d.pristine = at::randn({kRows, kCols});
    d.weight = d.pristine.clone();
    d.uneven = d.pristine.mul(at::randn({kRows, 1}).mul(0.5).exp());
    // input statistics with LLM-like structure: uneven channels and a few 30x outliers
    at::Tensor scale = at::randn({kCols}).mul(0.5).exp();
    for (int64_t c : {11, 700, 1501, 2222, 3030, 4000}) scale[c] = 30.0;
    d.batch = at::randn({kTokens, kCols}).mul(scale);
    d.batch_copy = at::empty_like(d.batch);
    modkit::wanda::RowScalars stats(kCols);
    stats.add(d.batch);
    d.norms = stats.column_norms();
    d.norms_tensor = at::tensor(d.norms);
    return d;
  }();
  return d;
}

template <class F>
double seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  benchmark::ClobberMemory();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Seconds of one copy of a pristine weight over the working one (64 MiB read, 64 MiB written).
double restore_weight(bool uneven = false) {
  return seconds([uneven] { data().weight.copy_(uneven ? data().uneven : data().pristine); });
}

struct Timing {
  double total = 0, best = 1e30;
  void add(double s) {
    total += s;
    best = std::min(best, s);
  }
};

void report(benchmark::State& state, double bytes, const Timing& run, double copy_bytes, const Timing& copy) {
  const double n = static_cast<double>(state.iterations());
  state.counters["GB/s"] = bytes * n / run.total / 1e9;
  state.counters["best_GB/s"] = bytes / run.best / 1e9;
  state.counters["copy_GB/s"] = copy_bytes * n / copy.total / 1e9;
  state.counters["copy_best_GB/s"] = copy_bytes / copy.best / 1e9;
  state.counters["ratio"] = (bytes * n / run.total) / (copy_bytes * n / copy.total);
  state.counters["best_ratio"] = (bytes / run.best) / (copy_bytes / copy.best);
  state.counters["threads"] = at::get_num_threads();
  state.counters["ms"] = run.total / n * 1e3;
}

void BM_copy(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  restore_weight();  // first touch outside the timing
  Timing copy;
  for (auto _ : state) copy.add(restore_weight());
  report(state, 2 * kWeightBytes, copy, 2 * kWeightBytes, copy);
}

// Times `prune` on a dense copy of the weight each iteration, next to the copy that restores it.
template <class F>
void time_pruning(benchmark::State& state, const std::string& label, F&& prune, bool uneven = false) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  restore_weight(uneven);
  Timing run, copy;
  for (auto _ : state) {
    copy.add(restore_weight(uneven));
    run.add(seconds(prune));
  }
  state.SetLabel(label);
  report(state, 2 * kWeightBytes, run, 2 * kWeightBytes, copy);
}

std::string structure(int64_t n, int64_t m) {
  return m == 0 ? std::string("unstructured 50%") : std::to_string(n) + ":" + std::to_string(m);
}

// modkit::wanda::prune_ (metric, per-row selection, in-place zeros), sparsity 0.5 or N:M;
// `uneven`: rows of different scales, so the previous row's threshold predicts less.
void BM_wanda(benchmark::State& state, int64_t n, int64_t m, bool uneven) {
  Data& d = data();
  time_pruning(
      state, structure(n, m) + (uneven ? ", uneven rows" : ""),
      [&] { benchmark::DoNotOptimize(modkit::wanda::prune_(d.weight, d.norms, 0.5, n, m)); }, uneven);
}

// llmcompressor's sparsify_weight written with ATen: |W| * sqrt(S), a stable sort per row, a
// scatter into a bool mask and W[mask] = 0 (unstructured); for N:M its loop over column
// groups with topk(largest=False).
void BM_aten(benchmark::State& state, int64_t n, int64_t m) {
  Data& d = data();
  time_pruning(state, structure(n, m) + (m == 0 ? " (sort)" : " (topk loop)"), [&] {
    const at::Tensor metric = d.weight.abs().mul(d.norms_tensor.view({1, -1}));
    at::Tensor mask = at::zeros_like(metric, at::kBool);
    if (m == 0) {
      const at::Tensor idx = std::get<1>(at::sort(metric, /*stable=*/true, -1, false));
      mask.scatter_(1, idx.slice(1, 0, kCols / 2), true);
    } else {
      for (int64_t c = 0; c < kCols; c += m) {
        mask.scatter_(1, std::get<1>(at::topk(metric.slice(1, c, c + m), n, 1, /*largest=*/false)).add(c), true);
      }
    }
    d.weight.masked_fill_(mask, 0.0);
  });
}

// Statistics of one 2048-token batch: RowScalars::add, or llmcompressor's torch.norm(x.t(), 2, 1)^2.
void BM_stats(benchmark::State& state, bool aten) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  Data& d = data();
  const double bytes = static_cast<double>(d.batch.numel() * sizeof(float));
  auto copy_batch = [&] { return seconds([&] { d.batch_copy.copy_(d.batch); }); };
  copy_batch();
  modkit::wanda::RowScalars stats(kCols);
  at::Tensor row_scalars = at::zeros({kCols});
  Timing run, copy;
  for (auto _ : state) {
    copy.add(copy_batch());
    run.add(seconds([&] {
      if (aten) {
        row_scalars.mul_(0.5).add_(at::norm(d.batch.t(), 2, {1}).pow(2), 0.5);  // its running mean
      } else {
        stats.add(d.batch);
      }
    }));
  }
  state.SetLabel(aten ? "torch.norm(x.t(), 2, 1)^2" : "RowScalars::add");
  report(state, bytes, run, 2 * bytes, copy);
}

}  // namespace

BENCHMARK(BM_copy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_wanda, unstructured, 0, 0, false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_wanda, unstructured_uneven_rows, 0, 0, true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_wanda, 2_4, 2, 4, false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_aten, unstructured, 0, 0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_aten, 2_4, 2, 4)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_stats, modkit, false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_stats, aten, true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
