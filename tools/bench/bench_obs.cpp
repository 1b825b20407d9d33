// Benchmarks the OBS solvers (plugins/common/obs) on one 4096x4096 layer with 32k calibration tokens, next to sgemm and a plain ATen transliteration of llmcompressor.
#include <modkit/plugin_obs/blas.hpp>
#include <modkit/plugin_obs/obs.hpp>
#include <modkit/plugin_quant/quant.hpp>

#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/cholesky_inverse.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/linalg_cholesky.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/round.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

// Every rate is GFLOP/s of useful work (XᵀX counts 2·n²·tokens although the
// rank-k update computes half of it), printed next to the sgemm rate measured
// in the same run at the same thread count, because the machine is shared.
// Inputs, weights and Hessians are allocated once outside the timed regions.
namespace {

namespace obs = modkit::obs;
namespace q = modkit::quant;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
  int64_t n = 4096, rows = 4096, tokens = 32768, batch = 2048;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool plain = true;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_obs: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (a == "--threads") o.threads = static_cast<int>(next());
    else if (a == "--size") o.n = o.rows = next();
    else if (a == "--tokens") o.tokens = next();
    else if (a == "--no-plain") o.plain = false;
    else {
      std::fprintf(stderr, "usage: bench_obs [--threads N] [--size N] [--tokens N] [--no-plain]\n");
      std::exit(2);
    }
  }
  return o;
}

double gf(double flops, double s) { return flops / s / 1e9; }

// The best of `reps` sgemm runs of C[n, n] = A[n, k] B[k, n] (k = n / 2).
double sgemm_rate(int64_t n, int reps) {
  const int64_t k = n / 2;
  const at::Tensor a = at::randn({n, k}), b = at::randn({k, n});
  at::Tensor c = at::zeros({n, n});
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    obs::blas::gemm(n, n, k, 1.0f, a.data_ptr<float>(), k, b.data_ptr<float>(), n, 0.0f, c.data_ptr<float>(), n);
    best = std::min(best, since(t0));
  }
  return gf(2.0 * n * n * k, best);
}

// ---- llmcompressor's gptq_quantize.py / sgpt_sparsify.py written plainly with ATen ops ----

struct PlainTimes {
  double cholesky = 0, inverse = 0, loop = 0;
};

// accumulate_hessian: H *= n / (n + m); inp = sqrt(2 / n) inp; H += inp.t() @ inp
void plain_accumulate(at::Tensor& h, int64_t& samples, const at::Tensor& inp) {
  const int64_t added = 1;
  h.mul_(static_cast<double>(samples) / static_cast<double>(samples + added));
  samples += added;
  const at::Tensor x = inp.reshape({-1, inp.size(-1)}).t().mul(std::sqrt(2.0 / static_cast<double>(samples)));
  h.add_(x.matmul(x.t()));
}

// dead columns, dampening, cholesky -> cholesky_inverse -> cholesky(upper)
at::Tensor plain_hinv(at::Tensor h, at::Tensor& w, double percdamp, PlainTimes& t) {
  const at::Tensor dead = h.diagonal().eq(0);
  h.diagonal().masked_fill_(dead, 1.0);
  w.masked_fill_(dead.unsqueeze(0), 0.0);
  const double damp = percdamp * h.diagonal().mean().item<double>();
  h.diagonal().add_(damp);
  auto t0 = Clock::now();
  h = at::linalg_cholesky(h);
  t.cholesky += since(t0);
  t0 = Clock::now();
  h = at::cholesky_inverse(h);
  t.inverse += since(t0);
  t0 = Clock::now();
  h = at::linalg_cholesky(h, /*upper=*/true);
  t.cholesky += since(t0);
  return h;
}

at::Tensor plain_fake_quantize(const at::Tensor& x, const at::Tensor& s, const at::Tensor& z, double lo, double hi) {
  return at::clamp(at::round(x.div(s).add(z)), lo, hi).sub(z).mul(s);
}

// quantize_weight's column loop, group strategy, no activation ordering
at::Tensor plain_gptq(const at::Tensor& weight, at::Tensor h, const q::QuantArgs& a, int64_t block, PlainTimes& t) {
  at::Tensor w = weight.clone();
  const q::QParams qp = q::compute_qparams(w, a);
  at::Tensor hinv = plain_hinv(std::move(h), w, 0.01, t);
  const auto t0 = Clock::now();
  const int64_t cols = w.size(1);
  const double lo = q::qmin(a), hi = q::qmax(a);
  const at::Tensor scale = qp.scale.to(at::kFloat), zero = qp.zero_point.to(at::kFloat);
  for (int64_t i1 = 0; i1 < cols; i1 += block) {
    const int64_t i2 = std::min(i1 + block, cols), count = i2 - i1;
    at::Tensor w1 = w.slice(1, i1, i2).clone();
    at::Tensor q1 = at::zeros_like(w1), err1 = at::zeros_like(w1);
    const at::Tensor hinv1 = hinv.slice(0, i1, i2).slice(1, i1, i2);
    for (int64_t i = 0; i < count; ++i) {
      const at::Tensor col = w1.select(1, i);
      const at::Tensor d = hinv1[i][i];
      const int64_t g = (i1 + i) / a.group_size;
      const at::Tensor qc = plain_fake_quantize(col, scale.select(1, g), zero.select(1, g), lo, hi);
      q1.select(1, i).copy_(qc);
      const at::Tensor e = col.sub(qc).div(d);
      w1.slice(1, i).sub_(e.unsqueeze(1).matmul(hinv1.select(0, i).slice(0, i).unsqueeze(0)));
      err1.select(1, i).copy_(e);
    }
    w.slice(1, i1, i2).copy_(q1);
    if (i2 < cols) w.slice(1, i2).sub_(err1.matmul(hinv.slice(0, i1, i2).slice(1, i2)));
  }
  t.loop += since(t0);
  return w;
}

// sparsify_weight's column loop, unstructured
at::Tensor plain_sparsegpt(const at::Tensor& weight, at::Tensor h, double sparsity, int64_t block, PlainTimes& t) {
  at::Tensor w = weight.clone();
  at::Tensor hinv = plain_hinv(std::move(h), w, 0.01, t);
  const auto t0 = Clock::now();
  const int64_t cols = w.size(1);
  for (int64_t i1 = 0; i1 < cols; i1 += block) {
    const int64_t i2 = std::min(i1 + block, cols), count = i2 - i1;
    at::Tensor w1 = w.slice(1, i1, i2).clone();
    at::Tensor q1 = at::zeros_like(w1), err1 = at::zeros_like(w1);
    const at::Tensor hinv1 = hinv.slice(0, i1, i2).slice(1, i1, i2);
    const at::Tensor tmp = w1.pow(2).div(hinv1.diagonal().reshape({1, -1}).pow(2));
    const at::Tensor thresh =
        std::get<0>(at::sort(tmp.flatten()))[static_cast<int64_t>(static_cast<double>(tmp.numel()) * sparsity)];
    const at::Tensor mask1 = tmp.le(thresh);
    for (int64_t i = 0; i < count; ++i) {
      const at::Tensor col = w1.select(1, i);
      const at::Tensor d = hinv1[i][i];
      at::Tensor qc = col.clone();
      qc.masked_fill_(mask1.select(1, i), 0.0);
      q1.select(1, i).copy_(qc);
      const at::Tensor e = col.sub(qc).div(d);
      w1.slice(1, i).sub_(e.unsqueeze(1).matmul(hinv1.select(0, i).slice(0, i).unsqueeze(0)));
      err1.select(1, i).copy_(e);
    }
    w.slice(1, i1, i2).copy_(q1);
    if (i2 < cols) w.slice(1, i2).sub_(err1.matmul(hinv.slice(0, i1, i2).slice(1, i2)));
  }
  t.loop += since(t0);
  return w;
}

// ---- reports ----

struct SolveFlops {
  double cholesky, invert, trailing, block;
};

// The flops of one solve of a [rows, n] weight: Cholesky n³/3, triangular inverse n³/3, the
// trailing updates (Σ over blocks of 2·rows·B·(n - i2) ≈ rows·n²) and the in-block rank-1
// updates (≈ rows·B·n).
SolveFlops solve_flops(double rows, double n, double block) {
  return {n * n * n / 3.0, n * n * n / 3.0, rows * n * (n - block), rows * block * n};
}

void print_solve(const char* name, const obs::InverseReport& inv, const obs::SweepReport& sw, double prepare,
                 const SolveFlops& f, double sgemm) {
  const double total = prepare + inv.seconds_cholesky + inv.seconds_invert + inv.seconds_other + sw.seconds;
  std::printf("%s: %.3f s total (target <= 1.5 s for GPTQ)\n", name, total);
  auto row = [&](const char* phase, double s, double flops) {
    if (flops > 0) {
      std::printf("  %-34s %7.3f s  %5.1f%%  %6.1f GFLOP/s  %.2f x sgemm\n", phase, s, 100 * s / total, gf(flops, s),
                  gf(flops, s) / sgemm);
    } else {
      std::printf("  %-34s %7.3f s  %5.1f%%\n", phase, s, 100 * s / total);
    }
  };
  row("prepare (copies, qparams)", prepare, 0);
  row("dead columns, damping, reversals", inv.seconds_other, 0);
  row("cholesky (spotrf)", inv.seconds_cholesky, f.cholesky);
  row("triangular inverse (strtri)", inv.seconds_invert, f.invert);
  row("column sweep (wall)", sw.seconds, f.trailing + f.block);
  row("  of which trailing sgemm (per thread)", sw.seconds_gemm, f.trailing);
  row("  of which in-block kernel (per thread)", sw.seconds_block, f.block);
  if (sw.seconds_select > 0) row("  of which mask selection", sw.seconds_select, 0);
}

void print_plain(const char* name, const PlainTimes& t, double n, double rows, double block, double sgemm) {
  const double total = t.cholesky + t.inverse + t.loop;
  std::printf("%s (plain ATen, llmcompressor's code): %.3f s total\n", name, total);
  const double chol = 2 * n * n * n / 3.0, inv = 2 * n * n * n / 3.0;  // two Cholesky; cholesky_inverse (potri)
  std::printf("  %-34s %7.3f s  %5.1f%%  %6.1f GFLOP/s  %.2f x sgemm\n", "cholesky x2", t.cholesky,
              100 * t.cholesky / total, gf(chol, t.cholesky), gf(chol, t.cholesky) / sgemm);
  std::printf("  %-34s %7.3f s  %5.1f%%  %6.1f GFLOP/s  %.2f x sgemm\n", "cholesky_inverse", t.inverse,
              100 * t.inverse / total, gf(inv, t.inverse), gf(inv, t.inverse) / sgemm);
  const SolveFlops f = solve_flops(rows, n, block);
  std::printf("  %-34s %7.3f s  %5.1f%%  %6.1f GFLOP/s  %.2f x sgemm\n", "column loop", t.loop, 100 * t.loop / total,
              gf(f.trailing + f.block, t.loop), gf(f.trailing + f.block, t.loop) / sgemm);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  at::set_num_threads(o.threads);
  obs::blas::set_threads(o.threads);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("machine: %u hardware threads; ATen threads %d; BLAS: %s\n", std::thread::hardware_concurrency(),
              at::get_num_threads(), obs::blas::describe().c_str());
  std::printf("OPENBLAS_CORETYPE=%s; layer %lld x %lld, %lld calibration tokens in batches of %lld\n",
              coretype != nullptr ? coretype : "unset", static_cast<long long>(o.rows), static_cast<long long>(o.n),
              static_cast<long long>(o.tokens), static_cast<long long>(o.batch));

  at::manual_seed(0);
  const at::Tensor x = at::randn({o.tokens, o.n});
  const at::Tensor w = at::randn({o.rows, o.n}).div(std::sqrt(static_cast<double>(o.n)));
  const double sgemm = sgemm_rate(o.n, 3);
  std::printf("\nsgemm %lld x %lld x %lld: %.1f GFLOP/s (best of 3)\n\n", static_cast<long long>(o.n),
              static_cast<long long>(o.n), static_cast<long long>(o.n / 2), sgemm);

  // Hessian accumulation, batch by batch as the hooks see it
  const double hflops = 2.0 * static_cast<double>(o.n) * static_cast<double>(o.n) * static_cast<double>(o.tokens);
  obs::Hessian hessian(o.n);
  auto t0 = Clock::now();
  for (int64_t b = 0; b < o.tokens; b += o.batch) hessian.add(x.slice(0, b, std::min(o.tokens, b + o.batch)).unsqueeze(0));
  const double th = since(t0);
  std::printf("hessian accumulation (ssyrk): %.3f s, %.1f GFLOP/s useful = %.2f x sgemm (target >= 0.75)\n", th,
              gf(hflops, th), gf(hflops, th) / sgemm);
  if (o.plain) {
    at::Tensor hp = at::zeros({o.n, o.n});
    int64_t samples = 0;
    t0 = Clock::now();
    for (int64_t b = 0; b < o.tokens; b += o.batch) plain_accumulate(hp, samples, x.slice(0, b, std::min(o.tokens, b + o.batch)));
    const double tp = since(t0);
    std::printf("hessian accumulation (plain ATen: H *= n/(n+m); H += XᵀX by matmul): %.3f s, %.1f GFLOP/s useful = "
                "%.2f x sgemm\n",
                tp, gf(hflops, tp), gf(hflops, tp) / sgemm);
  }
  const at::Tensor h = hessian.take_symmetric();
  std::printf("\n");

  const SolveFlops f = solve_flops(static_cast<double>(o.rows), static_cast<double>(o.n), 128);
  {
    obs::GptqOptions go;
    go.args = q::preset("W4A16").weights;
    for (q::ActOrder order : {q::ActOrder::None, q::ActOrder::Weight}) {
      go.args.actorder = order;
      const obs::GptqResult r = obs::gptq_quantize(w, h.clone(), go, nullptr);
      const std::string name = std::string("GPTQ W4A16 g128, actorder ") + q::to_string(order);
      print_solve(name.c_str(), r.inverse, r.sweep, r.seconds_prepare, f, sgemm);
    }
    if (o.plain) {
      PlainTimes t;
      plain_gptq(w, h.clone(), q::preset("W4A16").weights, 128, t);
      print_plain("GPTQ W4A16 g128", t, static_cast<double>(o.n), static_cast<double>(o.rows), 128, sgemm);
    }
  }
  std::printf("\n");
  {
    obs::SparseGptOptions so;
    so.sparsity = 0.5;
    const obs::SparseGptResult r = obs::sparsegpt_prune(w, h.clone(), so, nullptr);
    print_solve("SparseGPT 50% unstructured", r.inverse, r.sweep, r.seconds_prepare, f, sgemm);
    so.prune_n = 2;
    so.prune_m = 4;
    const obs::SparseGptResult r24 = obs::sparsegpt_prune(w, h.clone(), so, nullptr);
    print_solve("SparseGPT 2:4", r24.inverse, r24.sweep, r24.seconds_prepare, f, sgemm);
    if (o.plain) {
      PlainTimes t;
      plain_sparsegpt(w, h.clone(), 0.5, 128, t);
      print_plain("SparseGPT 50% unstructured", t, static_cast<double>(o.n), static_cast<double>(o.rows), 128, sgemm);
    }
  }
  std::printf("\nsgemm again at the end: %.1f GFLOP/s\n", sgemm_rate(o.n, 2));
  return 0;
}
