// Tests of the shared OBS solvers (Hessian, inverse Cholesky, GPTQ, SparseGPT) against naive float64 references written out here.
#include <modkit/plugin_obs/obs.hpp>
#include <modkit/plugin_quant/quant.hpp>

#include "tensor_operators.hpp"
#include <ATen/ops/cat.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/eye.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/linalg_cholesky.h>
#include <ATen/ops/linalg_inv.h>
#include <ATen/ops/linspace.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/randperm.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

namespace obs = modkit::obs;
namespace q = modkit::quant;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

// Calibration inputs [tokens, cols] whose features have distinct, well separated
// scales (so that activation ordering is the same in float32 and float64) and
// mild correlations; `dead` features are always zero.
at::Tensor inputs(int64_t tokens, int64_t cols, uint64_t seed, const std::vector<int64_t>& dead = {}) {
  at::manual_seed(seed);
  at::Tensor scales = at::linspace(0.5, 2.0, cols, kF64).index_select(0, at::randperm(cols, at::kLong));
  at::Tensor mix = at::eye(cols, kF64) + 0.2 * at::randn({cols, cols}, kF64) / std::sqrt(static_cast<double>(cols));
  at::Tensor x = at::randn({tokens, cols}, kF64).matmul(mix) * scales;
  for (int64_t d : dead) x.select(1, d).zero_();
  return x.to(at::kFloat);
}

// The float64 Hessian the plugins accumulate: H = 2/n Σ XᵀX with n samples.
at::Tensor hessian64(const at::Tensor& x, int64_t samples) {
  const at::Tensor xd = x.to(at::kDouble);
  return xd.t().matmul(xd) * (2.0 / static_cast<double>(samples));
}

// Accumulates `x` in `batches` 3-D batches of one sample each ([1, tokens/batches, cols]).
obs::Hessian accumulate(const at::Tensor& x, int64_t batches) {
  obs::Hessian h(x.size(1));
  for (const at::Tensor& part : x.chunk(batches, 0)) h.add(part.unsqueeze(0));
  return h;
}

// llmcompressor's factor written out: dead columns get H_ii = 1, damp = frac * mean(diag),
// U = cholesky(inverse(H + damp I), upper), all in float64.
at::Tensor reference_u(at::Tensor h, double frac) {
  h = h.clone();
  const int64_t n = h.size(0);
  for (int64_t i = 0; i < n; ++i) {
    if (h[i][i].item<double>() == 0.0) h[i][i] = 1.0;
  }
  const double damp = frac * h.diagonal().mean().item<double>();
  h = h + damp * at::eye(n, kF64);
  return at::linalg_cholesky(at::linalg_inv(h), /*upper=*/true);
}

struct Collect {
  std::vector<std::string> lines;
  obs::Warn warn() {
    return [this](const std::string& s) { lines.push_back(s); };
  }
};

// ---- GPTQ reference: the column loop without lazy batching, in float64 ----

// compressed-tensors' min-max qparams of one group, written out (float arithmetic, as stored).
void qparams_of(const float* v, int64_t n, const q::QuantArgs& a, float& s, float& z) {
  float mn = 0, mx = 0;
  for (int64_t i = 0; i < n; ++i) {
    mn = std::min(mn, v[i]);
    mx = std::max(mx, v[i]);
  }
  const float lo = static_cast<float>(q::qmin(a)), hi = static_cast<float>(q::qmax(a));
  const float eps = std::numeric_limits<float>::epsilon();
  if (a.symmetric) {
    s = std::max(std::fabs(mn), std::fabs(mx)) / ((hi - lo) / 2.0f);
    s = std::max(s, eps);
    z = 0;
  } else {
    s = std::max((mx - mn) / (hi - lo), eps);
    z = std::nearbyint(std::min(std::max(lo - mn / s, lo), hi));
  }
}

struct Agreement {
  int64_t compared = 0;
  int64_t disagreements = 0;     // decisions that differ from the reference's
  double worst_tie_distance = 0; // the largest distance from a rounding tie among them (in steps)
  double weight_error = 0;       // max |impl weight - reference weight| / max |reference weight|
};

// Replays GPTQ in float64 with the implementation's integers (teacher forcing: each column's
// error propagates from the integers the implementation chose, so one near-tie cannot cascade)
// and reports where the implementation's integer differs from round-to-nearest of the reference's
// pre-quantization value. Also checks the stored qparams, g_idx and dequantized weight exactly.
Agreement replay_gptq(const at::Tensor& weight, const at::Tensor& h64, const q::QuantArgs& a, double frac,
                      const obs::GptqResult& r) {
  const int64_t rows = weight.size(0), cols = weight.size(1);
  std::vector<int64_t> order(cols);
  std::iota(order.begin(), order.end(), 0);
  if (a.actorder != q::ActOrder::None) {
    const at::Tensor d = h64.diagonal().contiguous();
    const double* dp = d.data_ptr<double>();
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return dp[x] > dp[y]; });
  }
  const bool grouped = a.strategy == q::Strategy::Group;
  const int64_t gs = grouped ? a.group_size : (a.strategy == q::Strategy::Channel ? cols : rows * cols);
  // the weight in processing order, float32, and the column each processing position came from
  const at::Tensor wf = weight.to(at::kFloat).contiguous();
  std::vector<float> wp(rows * cols);
  for (int64_t r0 = 0; r0 < rows; ++r0) {
    for (int64_t p = 0; p < cols; ++p) wp[r0 * cols + p] = wf[r0][order[p]].item<float>();
  }
  // qparams: of the original column groups (none, weight) or of the permuted ones (group)
  const bool permuted_groups = a.actorder == q::ActOrder::Group;
  auto group_of_position = [&](int64_t p) { return (permuted_groups ? p : order[p]) / (grouped ? gs : cols); };
  const int64_t groups = grouped ? cols / gs : 1;
  std::vector<float> scale(rows * groups), zero(rows * groups);
  if (a.strategy == q::Strategy::Tensor) {
    float s, z;
    qparams_of(wf.data_ptr<float>(), rows * cols, a, s, z);
    std::fill(scale.begin(), scale.end(), s);
    std::fill(zero.begin(), zero.end(), z);
  } else {
    for (int64_t r0 = 0; r0 < rows; ++r0) {
      for (int64_t g = 0; g < groups; ++g) {
        std::vector<float> v;
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t gc = grouped ? c / gs : 0;
          if (gc != g) continue;
          v.push_back(permuted_groups ? wp[r0 * cols + c] : wf[r0][c].item<float>());
        }
        qparams_of(v.data(), static_cast<int64_t>(v.size()), a, scale[r0 * groups + g], zero[r0 * groups + g]);
      }
    }
  }
  // the stored qparams are exactly these
  const at::Tensor ss = r.qparams.scale.to(at::kFloat).contiguous().reshape({-1});
  const at::Tensor zz = r.qparams.zero_point.to(at::kFloat).contiguous().reshape({-1});
  for (int64_t i = 0; i < ss.numel(); ++i) {
    REQUIRE(ss[i].item<float>() == scale[a.strategy == q::Strategy::Tensor ? 0 : i]);
    REQUIRE(zz[i].item<float>() == zero[a.strategy == q::Strategy::Tensor ? 0 : i]);
  }
  if (a.actorder == q::ActOrder::Group) {
    REQUIRE(r.g_idx.defined());
    for (int64_t p = 0; p < cols; ++p) CHECK(r.g_idx[order[p]].item<int32_t>() == p / gs);
  } else {
    CHECK_FALSE(r.g_idx.defined());
  }
  // U in processing order, float64
  const at::Tensor perm = at::tensor(order, at::TensorOptions().dtype(at::kLong));
  const at::Tensor u = reference_u(h64.index_select(0, perm).index_select(1, perm), frac).contiguous();
  const double* U = u.data_ptr<double>();
  // dead columns are zeroed; a weight >= 5 % zeros keeps them
  std::vector<double> w(wp.begin(), wp.end());
  const at::Tensor hd = h64.diagonal().contiguous();
  for (int64_t p = 0; p < cols; ++p) {
    if (hd[order[p]].item<double>() == 0.0) {
      for (int64_t r0 = 0; r0 < rows; ++r0) w[r0 * cols + p] = 0.0;
    }
  }
  int64_t zeros = 0;
  for (float v : wp) zeros += v == 0.0f ? 1 : 0;
  const bool preserve = static_cast<double>(zeros) / static_cast<double>(rows * cols) >= 0.05;
  std::vector<uint8_t> nz(rows * cols, 1);
  if (preserve) {
    for (int64_t i = 0; i < rows * cols; ++i) nz[i] = std::fabs(wp[i]) > 1e-8f ? 1 : 0;
  }
  CHECK(r.preserved_zeros == preserve);
  const double lo = q::qmin(a), hi = q::qmax(a);
  Agreement out;
  const at::Tensor qi = r.q.to(at::kInt).contiguous();
  const at::Tensor wi = r.weight.to(at::kFloat).contiguous();
  double ref_max = 0, err_max = 0;
  for (int64_t p = 0; p < cols; ++p) {
    const int64_t g = group_of_position(p);
    const double d = U[p * cols + p];
    for (int64_t r0 = 0; r0 < rows; ++r0) {
      const int64_t gi = a.strategy == q::Strategy::Tensor ? 0 : r0 * groups + g;
      const double s = scale[gi], z = zero[gi];
      const double x = nz[r0 * cols + p] != 0 ? w[r0 * cols + p] : 0.0;
      const double y = x / s + z;
      const double clamped = std::min(std::max(y, lo), hi);
      const double ref = std::nearbyint(clamped);
      const int impl = qi[r0][order[p]].item<int>();
      ++out.compared;
      if (impl != ref) {
        ++out.disagreements;
        const double frac_part = clamped - std::floor(clamped);
        out.worst_tie_distance = std::max(out.worst_tie_distance, std::fabs(frac_part - 0.5));
      }
      // the stored weight is exactly the dequantized integer
      const float dq = (static_cast<float>(impl) - static_cast<float>(z)) * static_cast<float>(s);
      CHECK(wi[r0][order[p]].item<float>() == dq);
      ref_max = std::max(ref_max, std::fabs((ref - z) * s));
      err_max = std::max(err_max, std::fabs(static_cast<double>(dq) - (ref - z) * s));
      // teacher forcing: the error of the implementation's integer propagates
      const double e = (x - (impl - z) * s) / d;
      for (int64_t k = p + 1; k < cols; ++k) {
        if (nz[r0 * cols + k] != 0) w[r0 * cols + k] -= e * U[p * cols + k];
      }
    }
  }
  out.weight_error = err_max / std::max(ref_max, 1e-30);
  return out;
}

// ---- SparseGPT reference: the same replay, checking the masks ----

struct MaskAgreement {
  int64_t blocks_or_groups = 0;
  int64_t count_mismatches = 0;  // pruned counts that differ from llmcompressor's rule
  int64_t order_violations = 0;  // a pruned score above a kept one by more than float noise
  double value_error = 0;        // max |impl - reference| of the kept weights, relative to max |w|
};

MaskAgreement replay_sparsegpt(const at::Tensor& weight, const at::Tensor& h64, const obs::SparseGptOptions& o,
                               const at::Tensor& result) {
  const int64_t rows = weight.size(0), cols = weight.size(1);
  const at::Tensor u = reference_u(h64, o.dampening_frac).contiguous();
  const double* U = u.data_ptr<double>();
  const at::Tensor wf = weight.to(at::kDouble).contiguous();
  std::vector<double> w(wf.data_ptr<double>(), wf.data_ptr<double>() + rows * cols);
  const at::Tensor hd = h64.diagonal().contiguous();
  for (int64_t c = 0; c < cols; ++c) {
    if (hd[c].item<double>() == 0.0) {
      for (int64_t r0 = 0; r0 < rows; ++r0) w[r0 * cols + c] = 0.0;
    }
  }
  std::vector<uint8_t> pre(rows * cols, 0);
  if (o.preserve_sparsity_mask) {
    for (int64_t i = 0; i < rows * cols; ++i) pre[i] = w[i] == 0.0 ? 1 : 0;
  }
  const at::Tensor rf = result.to(at::kFloat).contiguous();
  const float* R = rf.data_ptr<float>();
  auto pruned = [&](int64_t r0, int64_t c) { return R[r0 * cols + c] == 0.0f; };
  auto score = [&](int64_t r0, int64_t c) {
    if (pre[r0 * cols + c] != 0) return 0.0;
    const double d = U[c * cols + c];
    return w[r0 * cols + c] * w[r0 * cols + c] / (d * d);
  };
  constexpr double kTol = 1e-4;  // relative: float32 against float64 scores
  MaskAgreement out;
  double wmax = 0, err = 0;
  for (double v : w) wmax = std::max(wmax, std::fabs(v));
  // checks that the pruned set is `expected` elements, all with the smallest scores
  auto check_set = [&](const std::vector<std::pair<int64_t, int64_t>>& cells, int64_t expected) {
    ++out.blocks_or_groups;
    double max_pruned = 0, min_kept = std::numeric_limits<double>::infinity();
    int64_t n = 0;
    for (const auto& [r0, c] : cells) {
      if (pruned(r0, c)) {
        ++n;
        max_pruned = std::max(max_pruned, score(r0, c));
      } else {
        min_kept = std::min(min_kept, score(r0, c));
      }
    }
    if (n != expected) ++out.count_mismatches;
    if (max_pruned > min_kept * (1 + kTol)) ++out.order_violations;
  };
  for (int64_t i1 = 0; i1 < cols; i1 += o.block_size) {
    const int64_t i2 = std::min(cols, i1 + o.block_size);
    if (o.prune_m == 0) {
      std::vector<std::pair<int64_t, int64_t>> cells;
      for (int64_t r0 = 0; r0 < rows; ++r0) {
        for (int64_t c = i1; c < i2; ++c) cells.emplace_back(r0, c);
      }
      // llmcompressor: score <= the value of rank int(numel * sparsity): one more than that many
      const int64_t k = static_cast<int64_t>(static_cast<double>(cells.size()) * o.sparsity);
      check_set(cells, k + 1);
    }
    for (int64_t c = i1; c < i2; ++c) {
      if (o.prune_m > 0 && (c - i1) % o.prune_m == 0) {
        for (int64_t r0 = 0; r0 < rows; ++r0) {
          std::vector<std::pair<int64_t, int64_t>> cells;
          int64_t preset = 0;
          for (int64_t k = 0; k < o.prune_m; ++k) {
            cells.emplace_back(r0, c + k);
            preset += pre[r0 * cols + c + k];
          }
          check_set(cells, std::max(o.prune_n, preset));
        }
      }
      const double d = U[c * cols + c];
      for (int64_t r0 = 0; r0 < rows; ++r0) {
        const double x = w[r0 * cols + c];
        const double qv = pruned(r0, c) ? 0.0 : x;
        if (!pruned(r0, c)) err = std::max(err, std::fabs(x - R[r0 * cols + c]));
        const double e = (x - qv) / d;
        for (int64_t k = c + 1; k < cols; ++k) {
          // llmcompressor: updates reach preserved zeros inside the block, not across blocks
          if (pre[r0 * cols + k] != 0 && k >= i2) continue;
          w[r0 * cols + k] -= e * U[c * cols + k];
        }
      }
    }
    // preserved zeros of later blocks got no updates: reset them as llmcompressor never moved them
  }
  out.value_error = err / wmax;
  return out;
}

q::QuantArgs int_args(int bits, bool symmetric, q::Strategy strategy, int64_t group = 0,
                      q::ActOrder actorder = q::ActOrder::None) {
  q::QuantArgs a;
  a.num_bits = bits;
  a.symmetric = symmetric;
  a.strategy = strategy;
  a.group_size = group;
  a.actorder = actorder;
  return a;
}

}  // namespace

TEST_CASE("the hessian is 2/n times the sum of XᵀX over every batch, n counting samples as llmcompressor") {
  const int64_t cols = 48;
  const at::Tensor a = inputs(40, cols, 1), b = inputs(30, cols, 2), c = inputs(24, cols, 3);
  obs::Hessian h(cols);
  h.add(a.reshape({2, 20, cols}));                    // 2 samples
  h.add(b);                                           // a 2-D input is one sample
  h.add(c.t().contiguous().t().to(at::kBFloat16));    // another dtype and layout: converted
  h.add(c.reshape({3, 8, cols}).transpose(0, 1));     // a non-contiguous 3-D view: 8 samples
  CHECK(h.samples() == 2 + 1 + 1 + 8);
  CHECK(h.tokens() == 40 + 30 + 24 + 24);
  const at::Tensor cb = c.to(at::kBFloat16).to(at::kFloat);
  const at::Tensor all = at::cat({a, b, cb, c}, 0);
  const at::Tensor expected = hessian64(all, 12);
  at::Tensor got = h.take_symmetric();
  const double rel = (got.to(at::kDouble) - expected).abs().max().item<double>() / expected.abs().max().item<double>();
  CHECK(rel < 1e-5);
  CHECK(at::equal(got, got.t()));
  CHECK_THROWS_WITH_AS(obs::Hessian(4).add(at::ones({3, 5})),
                       "hessian input: expected a tensor of shape [..., 4], found [3, 5]", std::invalid_argument);
}

TEST_CASE("the inverse Cholesky factor is llmcompressor's chol(inv(H + damp I), upper), dead columns included") {
  const int64_t cols = 160;
  const at::Tensor x = inputs(640, cols, 4, {7, 100});
  obs::Hessian acc = accumulate(x, 5);
  at::Tensor h = acc.take_symmetric();
  const at::Tensor expected = reference_u(hessian64(x, 5), 0.01);
  obs::InverseReport report;
  Collect warnings;
  obs::inverse_cholesky_(h, 0.01, report, warnings.warn());
  CHECK(report.dead == std::vector<int64_t>{7, 100});
  CHECK(report.attempts == 1);
  CHECK_FALSE(report.identity);
  CHECK(warnings.lines.empty());
  CHECK(at::equal(h.tril(-1), at::zeros_like(h)));  // upper triangular
  const double rel = (h.to(at::kDouble) - expected).abs().max().item<double>() / expected.abs().max().item<double>();
  CHECK(rel < 1e-4);
}

TEST_CASE("a hessian that is not positive definite is retried with more dampening, then falls back to the identity") {
  SUBCASE("rank one without dampening: the retry at 0.01 succeeds") {
    const at::Tensor v = at::randn({32, 1});
    at::Tensor h = v.matmul(v.t()).contiguous();
    obs::InverseReport report;
    Collect warnings;
    obs::inverse_cholesky_(h, 0.0, report, warnings.warn());
    CHECK(report.attempts == 2);
    CHECK(report.dampening_frac == doctest::Approx(0.01));
    CHECK_FALSE(report.identity);
    REQUIRE(warnings.lines.size() == 1);
    CHECK(warnings.lines[0].find("hessian with dampening_frac 0 is not positive definite") == 0);
    CHECK(warnings.lines[0].find("retrying with dampening_frac 0.01") != std::string::npos);
    const at::Tensor expected = reference_u(h.to(at::kDouble).zero_() + v.matmul(v.t()).to(at::kDouble), 0.01);
    CHECK((h.to(at::kDouble) - expected).abs().max().item<double>() / expected.abs().max().item<double>() < 1e-3);
  }
  SUBCASE("negative definite: identity after four attempts, each reported") {
    at::Tensor h = (-at::eye(8)).contiguous();
    obs::InverseReport report;
    Collect warnings;
    obs::inverse_cholesky_(h, 0.01, report, warnings.warn());
    CHECK(report.identity);
    CHECK(report.attempts == 4);
    CHECK(at::equal(h, at::eye(8)));
    REQUIRE(warnings.lines.size() == 5);
    CHECK(warnings.lines[1].find("hessian with dampening_frac 0.1 is not positive definite") == 0);
    CHECK(warnings.lines[4].find("falling back to the identity") != std::string::npos);
  }
  SUBCASE("non-finite statistics are an error") {
    at::Tensor h = at::eye(4).contiguous();
    h[2][2] = std::numeric_limits<float>::quiet_NaN();
    obs::InverseReport report;
    CHECK_THROWS_WITH_AS(obs::inverse_cholesky_(h, 0.01, report, nullptr),
                         "hessian: diagonal entry 2 is nan: the calibration inputs contain inf or nan",
                         std::invalid_argument);
  }
}

TEST_CASE("GPTQ chooses the integers of the column-by-column float64 reference") {
  const int64_t rows = 48, cols = 256;
  struct Case {
    const char* name;
    q::QuantArgs args;
    int64_t block;
    double zero_fraction;
    std::vector<int64_t> dead;
  };
  const std::vector<Case> cases{
      {"int4 symmetric group 32, block 64", int_args(4, true, q::Strategy::Group, 32), 64, 0, {}},
      {"int4 asymmetric group 64, block 96 (blocks straddle groups)", int_args(4, false, q::Strategy::Group, 64), 96, 0, {3}},
      {"int8 channel, block 128", int_args(8, true, q::Strategy::Channel), 128, 0, {}},
      {"int4 tensor, block 40", int_args(4, true, q::Strategy::Tensor), 40, 0, {}},
      {"int4 group 32, actorder weight", int_args(4, true, q::Strategy::Group, 32, q::ActOrder::Weight), 64, 0, {200}},
      {"int4 group 32, actorder group", int_args(4, true, q::Strategy::Group, 32, q::ActOrder::Group), 64, 0, {}},
      {"int4 group 64 on a half-sparse weight: zeros stay zero", int_args(4, true, q::Strategy::Group, 64), 128, 0.5, {}},
  };
  for (const Case& c : cases) {
    SUBCASE(c.name) {
      const at::Tensor x = inputs(1024, cols, 11, c.dead);
      at::manual_seed(12);
      at::Tensor w = at::randn({rows, cols}) / 16.0;
      if (c.zero_fraction > 0) w.masked_fill_(at::rand({rows, cols}).lt(c.zero_fraction), 0.0);
      obs::GptqOptions o;
      o.args = c.args;
      o.block_size = c.block;
      Collect warnings;
      const obs::GptqResult r = obs::gptq_quantize(w, accumulate(x, 8).take_symmetric(), o, warnings.warn(), true);
      CHECK(warnings.lines.empty());
      CHECK(r.inverse.dead == c.dead);
      const Agreement a = replay_gptq(w, hessian64(x, 8), c.args, 0.01, r);
      CHECK(a.compared == rows * cols);
      // float32 against float64: an integer may differ only where the reference value lies
      // within float noise of a rounding tie (x.5); on this data that happens at most a few times
      INFO("disagreements " << a.disagreements << ", worst distance from a tie " << a.worst_tie_distance);
      CHECK(a.disagreements <= rows * cols / 2000);
      CHECK(a.worst_tie_distance < 1e-3);
      for (int64_t d : c.dead) CHECK(at::equal(r.weight.select(1, d), at::zeros({rows})));
      if (c.zero_fraction > 0) CHECK(at::equal(r.weight.eq(0).logical_and(w.eq(0)), w.eq(0)));  // zeros stay
    }
  }
}

TEST_CASE("GPTQ keeps the weight's dtype and rejects what it cannot quantize") {
  const at::Tensor x = inputs(256, 64, 21);
  const at::Tensor w = at::randn({16, 64}).to(at::kBFloat16);
  obs::GptqOptions o;
  o.args = int_args(4, true, q::Strategy::Group, 32);
  const obs::GptqResult r = obs::gptq_quantize(w, accumulate(x, 2).take_symmetric(), o, nullptr);
  CHECK((r.weight.scalar_type() == at::kBFloat16));
  CHECK((r.qparams.scale.scalar_type() == at::kBFloat16));
  CHECK_THROWS_WITH_AS(obs::gptq_quantize(at::randn({4, 2, 32}), at::eye(64), o, nullptr),
                       "weight: expected a 2-D [out_features, in_features] matrix, found [4, 2, 32]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(obs::gptq_quantize(at::randn({4, 64}), at::eye(32), o, nullptr),
                       "hessian: expected a contiguous float32 CPU matrix [64, 64], found Float [32, 32]",
                       std::invalid_argument);
  o.args.group_size = 48;
  CHECK_THROWS_WITH_AS(obs::gptq_quantize(at::randn({4, 64}), at::eye(64), o, nullptr),
                       "group_size 48 does not divide the 64 columns of a weight of shape [4, 64]",
                       std::invalid_argument);
}

TEST_CASE("SparseGPT prunes the weights of the column-by-column float64 reference") {
  const int64_t rows = 48, cols = 256;
  struct Case {
    const char* name;
    obs::SparseGptOptions o;
    double preset;  // fraction of weights zero beforehand
  };
  auto opts = [](double s, int64_t n, int64_t m, int64_t block, bool preserve) {
    obs::SparseGptOptions o;
    o.sparsity = s;
    o.prune_n = n;
    o.prune_m = m;
    o.block_size = block;
    o.preserve_sparsity_mask = preserve;
    return o;
  };
  const std::vector<Case> cases{
      {"unstructured 50 %, block 64", opts(0.5, 0, 0, 64, false), 0},
      {"unstructured 70 %, block 100 (a short last block)", opts(0.7, 0, 0, 100, false), 0},
      {"2:4, block 128", opts(0.5, 2, 4, 128, false), 0},
      {"4:8, block 64", opts(0.5, 4, 8, 64, false), 0},
      {"unstructured 60 % preserving a 30 % mask", opts(0.6, 0, 0, 64, true), 0.3},
      {"2:4 preserving a 20 % mask", opts(0.5, 2, 4, 64, true), 0.2},
  };
  for (const Case& c : cases) {
    SUBCASE(c.name) {
      const at::Tensor x = inputs(1024, cols, 31);
      at::manual_seed(32);
      at::Tensor w = at::randn({rows, cols});
      if (c.preset > 0) w.masked_fill_(at::rand({rows, cols}).lt(c.preset), 0.0);
      const obs::SparseGptResult r = obs::sparsegpt_prune(w, accumulate(x, 4).take_symmetric(), c.o, nullptr);
      const MaskAgreement a = replay_sparsegpt(w, hessian64(x, 4), c.o, r.weight);
      INFO("sets " << a.blocks_or_groups << ", count mismatches " << a.count_mismatches << ", order violations "
                   << a.order_violations << ", value error " << a.value_error);
      CHECK(a.blocks_or_groups > 0);
      CHECK(a.count_mismatches == 0);
      CHECK(a.order_violations == 0);
      CHECK(a.value_error < 1e-4);
      if (c.o.prune_m > 0 && c.preset == 0) {
        // exact N:M: every group of M consecutive weights of a row has exactly N zeros
        const at::Tensor zeros = r.weight.eq(0).reshape({rows, cols / c.o.prune_m, c.o.prune_m}).sum(2);
        CHECK(at::equal(zeros, at::full_like(zeros, c.o.prune_n)));
      }
      if (c.o.preserve_sparsity_mask) CHECK(at::equal(r.weight.eq(0).logical_and(w.eq(0)), w.eq(0)));
    }
  }
}

TEST_CASE("SparseGPT rejects a target below the weight's own sparsity and N:M that does not fit") {
  const at::Tensor h = at::eye(64);
  obs::SparseGptOptions o;
  o.preserve_sparsity_mask = true;
  o.sparsity = 0.2;
  at::Tensor w = at::randn({8, 64});
  w.narrow(1, 0, 32).zero_();
  CHECK_THROWS_WITH_AS(obs::sparsegpt_prune(w, h.clone(), o, nullptr),
                       "preserve_sparsity_mask: the weight is already 0.5 sparse, above the target sparsity 0.2: "
                       "raise sparsity or set preserve_sparsity_mask = false",
                       std::invalid_argument);
  obs::SparseGptOptions nm;
  nm.prune_n = 2;
  nm.prune_m = 3;
  CHECK_THROWS_WITH_AS(obs::sparsegpt_prune(at::randn({8, 64}), h.clone(), nm, nullptr),
                       "mask_structure 2:3: M must divide in_features (64) and block_size (128)", std::invalid_argument);
}
