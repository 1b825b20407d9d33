// Tests of WandaPruningModifier: its kernels and the plugin through a session against a naive reference, N:M masks, quality on outlier activations, bad input.
#include "plugin_harness.hpp"

#include <modkit/torch/demo_models.hpp>

#include "tensor_operators.hpp"
#include <ATen/ops/allclose.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/round.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <doctest/doctest.h>

#include "wanda.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <vector>

using Calibration = modkit::test::PluginRun;
using modkit::test::make_modifier;
using modkit::test::message_of;
using modkit::test::Recorder;
using modkit::test::relative_error;
using modkit::HookKind;
using modkit::Params;
namespace models = modkit::demo_models;

namespace {

// ||X_j||_2 over every token, in double, straight from the definition.
std::vector<double> column_norms(const at::Tensor& tokens) {
  const at::Tensor x = tokens.to(at::kDouble).contiguous();
  std::vector<double> out(static_cast<size_t>(x.size(1)), 0.0);
  const auto a = x.accessor<double, 2>();
  for (int64_t t = 0; t < x.size(0); ++t) {
    for (int64_t j = 0; j < x.size(1); ++j) out[j] += a[t][j] * a[t][j];
  }
  for (double& v : out) v = std::sqrt(v);
  return out;
}

// Wanda's mask written out directly: metric |W_ij| * norms[j]; in each row (or in each group of
// m consecutive columns when m > 0) the indices are stably sorted by metric and the first
// `k` (or n) pruned. True where pruned.
at::Tensor reference_mask(const at::Tensor& weight, const std::vector<double>& norms, int64_t k, int64_t n = 0,
                          int64_t m = 0) {
  const at::Tensor w = weight.to(at::kDouble).contiguous();
  const int64_t rows = w.size(0), cols = w.size(1);
  at::Tensor mask = at::zeros({rows, cols}, at::kBool);
  const auto a = w.accessor<double, 2>();
  auto out = mask.accessor<bool, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> metric(static_cast<size_t>(cols));
    for (int64_t j = 0; j < cols; ++j) metric[j] = std::fabs(a[r][j]) * norms[j];
    const int64_t group = m > 0 ? m : cols, prune = m > 0 ? n : k;
    for (int64_t g = 0; g < cols; g += group) {
      std::vector<int64_t> idx(static_cast<size_t>(group));
      std::iota(idx.begin(), idx.end(), g);
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t i, int64_t j) { return metric[i] < metric[j]; });
      for (int64_t i = 0; i < prune; ++i) out[r][idx[i]] = true;
    }
  }
  return mask;
}

// Activations with the structure LLM.int8 describes: mildly uneven channels plus a few fixed
// outlier channels about 20-40x larger than the rest, [tokens, features].
at::Tensor outlier_activations(int64_t tokens, int64_t features, const std::vector<int64_t>& outliers, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor scale = at::exp(0.5 * at::randn({features}, gen));
  for (size_t i = 0; i < outliers.size(); ++i) scale[outliers[i]] = 20.0 + 20.0 * static_cast<double>(i) / outliers.size();
  return at::randn({tokens, features}, gen) * scale;
}

// A model whose only layer is the Linear "proj" (in -> out, with bias).
torch::jit::Module single_linear(int64_t in, int64_t out, uint64_t seed) {
  torch::jit::Module root(c10::QualifiedName("__torch__.SingleLinear"));
  root.register_module("proj", models::make_linear("Linear", in, out, true, seed));
  root.define("def forward(self, x):\n    return self.proj.forward(x)\n");
  return root;
}

const std::vector<std::string> kLinears{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.fc1",          "mlp.fc2"};

}  // namespace

TEST_CASE("row scalars are llmcompressor's running mean of squared column norms") {
  at::manual_seed(3);
  modkit::wanda::RowScalars s(5);
  const at::Tensor a = at::randn({2, 7, 5}), b = at::randn({3, 4, 5}), c = at::randn({6, 5}).t().contiguous().t();
  s.add(a);
  s.add(b.to(at::kBFloat16));
  s.add(c);  // a 2-d input is one sample; a transposed view is read as it is
  CHECK(s.samples() == 2 + 3 + 1);
  CHECK(s.tokens() == 14 + 12 + 6);
  const at::Tensor all = at::cat({a.reshape({-1, 5}), b.to(at::kBFloat16).to(at::kFloat).reshape({-1, 5}), c}, 0);
  const std::vector<double> norms = column_norms(all);
  for (int64_t j = 0; j < 5; ++j) {
    CAPTURE(j);
    CHECK(s.values()[j] == doctest::Approx(norms[j] * norms[j] / 6.0).epsilon(1e-6));
    CHECK(s.column_norms()[j] == doctest::Approx(norms[j] / std::sqrt(6.0)).epsilon(1e-6));
  }
  CHECK(message_of<std::invalid_argument>([&] { s.add(at::randn({2, 4})); }) ==
        "expected an input with 5 features in its last dimension, found shape [2, 4]");
}

TEST_CASE("the kernel prunes exactly what a stable sort of |W| * ||X_j|| selects") {
  at::manual_seed(11);
  struct Shape {
    int64_t rows, cols;
  };
  for (const Shape shape : {Shape{5, 64}, Shape{33, 300}, Shape{8, 4096}, Shape{3, 7}, Shape{1, 1}}) {
    for (const double sparsity : {0.1, 0.3, 0.5, 0.9, 1.0}) {
      CAPTURE(shape.rows);
      CAPTURE(shape.cols);
      CAPTURE(sparsity);
      const at::Tensor x = outlier_activations(96, shape.cols, {0, shape.cols / 2}, 5);
      modkit::wanda::RowScalars stats(shape.cols);
      for (int64_t b = 0; b < 3; ++b) stats.add(x.slice(0, 32 * b, 32 * (b + 1)).reshape({4, 8, shape.cols}));
      const at::Tensor original = at::randn({shape.rows, shape.cols});
      const int64_t k = static_cast<int64_t>(static_cast<double>(shape.cols) * sparsity);  // Python's int()
      CHECK(modkit::wanda::pruned_per_row(shape.cols, sparsity) == k);
      const at::Tensor expected = reference_mask(original, column_norms(x), k);

      at::Tensor w = original.clone();
      CHECK(modkit::wanda::prune_(w, stats.column_norms(), sparsity) == shape.rows * k);
      CHECK(at::equal(w.eq(0), expected));
      CHECK(at::equal(w.masked_select(expected.logical_not()), original.masked_select(expected.logical_not())));

      SUBCASE("a transposed view and other dtypes give the same mask") {
        at::Tensor t = original.t().contiguous().t();  // column-major strides
        modkit::wanda::prune_(t, stats.column_norms(), sparsity);
        CHECK(at::equal(t.eq(0), expected));
        at::Tensor d = original.to(at::kDouble);
        modkit::wanda::prune_(d, stats.column_norms(), sparsity);
        CHECK(at::equal(d.eq(0), expected));
        const at::Tensor h = original.to(at::kBFloat16);
        at::Tensor hp = h.clone();
        modkit::wanda::prune_(hp, stats.column_norms(), sparsity);
        CHECK(at::equal(hp.eq(0), reference_mask(h, column_norms(x), k)));
      }
    }
  }
}

TEST_CASE("rows that defeat the kernel's bracket predictions still get the exact mask") {
  // The selection guesses where each row's threshold lies from the previous row and from
  // every 4th column; these rows make both guesses wrong, and the result must not change.
  at::manual_seed(7);
  const int64_t rows = 64, cols = 512;
  at::Tensor row_scale = at::ones({rows, 1});
  for (int64_t r = 0; r < rows; r += 2) row_scale[r][0] = 1000.0;  // neighbours differ 1000x
  at::Tensor col_scale = at::ones({1, cols});
  for (int64_t c = 0; c < cols; c += 4) col_scale[0][c] = 1e4;  // the sampled columns are not typical
  const at::Tensor original = at::randn({rows, cols}) * row_scale * col_scale;
  std::vector<float> norms(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) norms[c] = 0.5f + static_cast<float>(c % 7);
  const std::vector<double> norms_d(norms.begin(), norms.end());
  const int default_threads = at::get_num_threads();
  for (const int threads : {1, 2}) {
    at::set_num_threads(threads);
    for (const double sparsity : {0.05, 0.5, 0.95}) {
      CAPTURE(threads);
      CAPTURE(sparsity);
      at::Tensor w = original.clone();
      modkit::wanda::prune_(w, norms, sparsity);
      CHECK(at::equal(w.eq(0), reference_mask(original, norms_d, static_cast<int64_t>(cols * sparsity))));
    }
  }
  at::set_num_threads(default_threads);
}

TEST_CASE("ties go to the lower column, as llmcompressor's stable sort") {
  at::manual_seed(13);
  // small integers and equal norms: every row is full of equal metrics
  const at::Tensor original = at::randint(-3, 4, {16, 96}).to(at::kFloat);
  const std::vector<float> ones(96, 1.0f);
  const std::vector<double> ones_d(96, 1.0);
  for (const double sparsity : {0.25, 0.5, 0.75}) {
    CAPTURE(sparsity);
    at::Tensor w = original.clone();
    modkit::wanda::prune_(w, ones, sparsity);
    const at::Tensor expected = reference_mask(original, ones_d, static_cast<int64_t>(96 * sparsity));
    // zeros already in the weight may be pruned or kept: compare the selection on the rest, and the count
    CHECK(at::equal(w.eq(0).logical_or(original.eq(0)), expected.logical_or(original.eq(0))));
  }
  for (const int64_t m : {4, 8, 12}) {
    CAPTURE(m);
    at::Tensor w = at::randint(1, 3, {16, 96}).to(at::kFloat);  // 1 or 2, no zeros: the selection is exact
    const at::Tensor expected = reference_mask(w, ones_d, 0, m / 2, m);
    modkit::wanda::prune_(w, ones, 0.0, m / 2, m);
    CHECK(at::equal(w.eq(0), expected));
  }
}

TEST_CASE("N:M masks prune exactly N of every M consecutive weights, the N lowest by metric") {
  at::manual_seed(17);
  const at::Tensor x = outlier_activations(64, 256, {3, 100, 200}, 9);
  const std::vector<double> norms = column_norms(x);
  std::vector<float> norms_f(norms.begin(), norms.end());
  struct NM {
    int64_t n, m;
  };
  for (const NM s : {NM{2, 4}, NM{1, 4}, NM{3, 4}, NM{4, 8}, NM{1, 2}, NM{8, 16}, NM{16, 32}, NM{5, 64}}) {
    CAPTURE(s.n);
    CAPTURE(s.m);
    const at::Tensor original = at::randn({24, 256});
    at::Tensor w = original.clone();
    CHECK(modkit::wanda::prune_(w, norms_f, 0.5, s.n, s.m) == 24 * (256 / s.m) * s.n);
    const at::Tensor zeros = w.eq(0).reshape({24, 256 / s.m, s.m}).sum(-1);
    CHECK(at::equal(zeros, at::full_like(zeros, s.n)));
    CHECK(at::equal(w.eq(0), reference_mask(original, norms, 0, s.n, s.m)));
  }
  at::Tensor w = at::randn({2, 6});
  CHECK(message_of<std::invalid_argument>([&] { modkit::wanda::prune_(w, std::vector<float>(6, 1.0f), 0.5, 2, 4); }) ==
        "N:M 2:4 needs a number of columns that is a multiple of 4, found 6");
}

TEST_CASE("NaN metrics rank above every number") {
  at::Tensor w = at::tensor({0.5f, NAN, 0.1f, 0.3f, 0.2f, 0.4f}).reshape({1, 6});
  modkit::wanda::prune_(w, std::vector<float>(6, 1.0f), 5.0 / 6.0);
  CHECK(w.eq(0).sum().item<int64_t>() == 5);
  CHECK(std::isnan(w[0][1].item<float>()));
}

TEST_CASE("the plugin prunes each block at its SEQUENTIAL_EPOCH_END with the reference masks") {
  at::manual_seed(19);
  Calibration run(models::make_tiny_transformer(2, 32, 23));
  std::map<std::string, std::unique_ptr<Recorder>> inputs;
  std::map<std::string, at::Tensor> original;
  for (const std::string layer : {"layers.0.", "layers.1."}) {
    for (const std::string& l : kLinears) {
      inputs[layer + l] = std::make_unique<Recorder>(*run.model, layer + l, HookKind::ForwardPre);
      original[layer + l] = run.tensor(layer + l).clone();
    }
  }
  const size_t recorders = run.model->hook_count();
  run.start(make_modifier("WandaPruningModifier", Params{{"sparsity", 0.5}, {"ignore", {"lm_head"}}}));
  CHECK(run.model->hook_count() == recorders + 12);  // one forward-pre hook per targeted linear
  for (int b = 0; b < 4; ++b) run.forward(at::randn({2, 8, 32}));

  run.epoch_end(run.block("layers.0"));
  for (const std::string& l : kLinears) {
    const std::string name = "layers.0." + l;
    CAPTURE(name);
    const at::Tensor w = run.tensor(name);
    const int64_t k = w.size(1) / 2;
    CHECK(at::equal(w.eq(0), reference_mask(original[name], column_norms(inputs[name]->tokens()), k)));
    CHECK(run.tensor("layers.1." + l).eq(0).sum().item<int64_t>() == 0);  // its block has not ended
  }
  CHECK(run.model->hook_count() == recorders + 6);  // layers.0's hooks are gone

  run.forward(at::randn({2, 8, 32}));  // layers.1 goes on calibrating; layers.0 no longer counts
  run.epoch_end(run.block("layers.1"));
  for (const std::string& l : kLinears) {
    const std::string name = "layers.1." + l;
    CAPTURE(name);
    CHECK(at::equal(run.tensor(name).eq(0),
                    reference_mask(original[name], column_norms(inputs[name]->tokens()), run.tensor(name).size(1) / 2)));
  }
  CHECK(run.model->hook_count() == recorders);
  run.end();
  CHECK(run.tensor("lm_head").eq(0).sum().item<int64_t>() == 0);
}

TEST_CASE("CALIBRATION_END prunes every calibrated module no epoch end listed, 2:4 through the plugin") {
  at::manual_seed(29);
  Calibration run(models::make_tiny_transformer(1, 32, 31));
  Recorder fc2(*run.model, "layers.0.mlp.fc2", HookKind::ForwardPre);
  const at::Tensor original = run.tensor("layers.0.mlp.fc2").clone();
  run.start(make_modifier("WandaPruningModifier", Params{{"mask_structure", "2:4"}, {"targets", {"re:.*mlp\\.fc\\d$"}}}));
  for (int b = 0; b < 3; ++b) run.forward(at::randn({3, 5, 32}));
  run.epoch_end({"layers.0.self_attn"});  // lists none of the targets: nothing happens yet
  CHECK(run.tensor("layers.0.mlp.fc2").eq(0).sum().item<int64_t>() == 0);
  run.end();
  const at::Tensor w = run.tensor("layers.0.mlp.fc2");
  const at::Tensor zeros = w.eq(0).reshape({w.size(0), -1, 4}).sum(-1);
  CHECK(at::equal(zeros, at::full_like(zeros, 2)));
  CHECK(at::equal(w.eq(0), reference_mask(original, column_norms(fc2.tokens()), 0, 2, 4)));
  CHECK(run.tensor("layers.0.mlp.fc1").eq(0).sum().item<int64_t>() == run.tensor("layers.0.mlp.fc1").numel() / 2);
  CHECK(run.tensor("layers.0.self_attn.q_proj").eq(0).sum().item<int64_t>() == 0);  // not a target
}

TEST_CASE("with outlier channels Wanda's held-out output error is at most half of magnitude pruning's") {
  const int64_t in = 512, out = 256;
  const std::vector<int64_t> outliers{7, 64, 129, 200, 311, 402, 450, 501};  // 1.6 % of the channels, 20-37.5x
  const at::Tensor calib = outlier_activations(8 * 256, in, outliers, 41);
  const at::Tensor held_out = outlier_activations(4096, in, outliers, 43);  // same channels, fresh tokens
  struct Case {
    std::string mask;
    int64_t n, m;
  };
  for (const Case& c : {Case{"0:0", 0, 0}, Case{"2:4", 2, 4}}) {
    CAPTURE(c.mask);
    Calibration run(single_linear(in, out, 47));
    const at::Tensor w0 = run.tensor("proj").clone();
    run.start(make_modifier("WandaPruningModifier", Params{{"sparsity", 0.5}, {"mask_structure", c.mask}}));
    for (int64_t b = 0; b < 8; ++b) run.forward(calib.slice(0, 256 * b, 256 * (b + 1)).reshape({2, 128, in}));
    run.epoch_end(run.all());
    run.end();
    const at::Tensor wanda = run.tensor("proj").clone();

    // magnitude pruning with the same structure (|W| alone), per row and, unstructured, per tensor
    const std::vector<double> ones(static_cast<size_t>(in), 1.0);
    const at::Tensor magnitude_row = w0.masked_fill(reference_mask(w0, ones, in / 2, c.n, c.m), 0);
    auto error = [&](const at::Tensor& w) {
      return relative_error(at::matmul(held_out, w.t()), at::matmul(held_out, w0.t()));
    };
    const double e_wanda = error(wanda), e_row = error(magnitude_row);
    MESSAGE("mask " << c.mask << ": held-out relative output error, wanda " << e_wanda << ", magnitude per row "
                    << e_row << " (ratio " << e_wanda / e_row << ")");
    CHECK(wanda.eq(0).sum().item<int64_t>() == w0.numel() / 2);
    CHECK(e_wanda <= 0.5 * e_row);
    if (c.m == 0) {
      const at::Tensor flat = w0.abs().reshape({-1});
      const at::Tensor order = std::get<1>(at::sort(flat, /*stable=*/true, 0, false));
      at::Tensor magnitude_tensor = w0.clone().reshape({-1});
      magnitude_tensor.index_fill_(0, order.slice(0, 0, flat.numel() / 2), 0);
      const double e_tensor = error(magnitude_tensor.reshape(w0.sizes()));
      MESSAGE("mask 0:0: magnitude per tensor " << e_tensor << " (ratio " << e_wanda / e_tensor << ")");
      CHECK(e_wanda <= 0.5 * e_tensor);
    }
  }
}

TEST_CASE("without calibration data the modifier says so instead of pruning nothing") {
  Calibration run(models::make_mlp(8, 16, 4, 53));
  run.start(make_modifier("WandaPruningModifier", Params::object()));
  run.epoch_end(run.all());
  CHECK(message_of<modkit::PluginError>([&] { run.session.event(modkit::EventType::CalibrationEnd); }) ==
        "WandaPruningModifier.on_event failed: no calibration data reached any of the 2 modules targeted by "
        "[\"Linear\"]: WandaPruningModifier needs calibration samples run through the model");
}

TEST_CASE("a session finalized without CALIBRATION_END still prunes what was calibrated") {
  Calibration run(models::make_mlp(8, 16, 4, 59));
  run.start(make_modifier("WandaPruningModifier", Params{{"targets", "fc2"}}));
  run.forward(at::randn({4, 8}));
  CHECK(run.model->hook_count() == 1);
  run.session.finalize();
  CHECK(run.tensor("fc2").eq(0).sum().item<int64_t>() == run.tensor("fc2").numel() / 2);
  CHECK(run.tensor("fc1").eq(0).sum().item<int64_t>() == 0);
  CHECK(run.model->hook_count() == 0);
}

TEST_CASE("bad Wanda parameters are refused with messages naming them") {
  const std::string expected =
      "WandaPruningModifier.create failed: mask_structure '%': expected '0:0' (unstructured) or 'N:M' with 0 < N < "
      "M (prune N of every M consecutive weights, e.g. '2:4'), found ";
  auto create_message = [](const std::string& mask) {
    return message_of<modkit::PluginError>([&] { make_modifier("WandaPruningModifier", Params{{"mask_structure", mask}}); });
  };
  auto with = [&](const std::string& mask, const std::string& found) {
    std::string m = expected;
    m.replace(m.find('%'), 1, mask);
    return m + found;
  };
  CHECK(create_message("2-4") == with("2-4", "no ':'"));
  CHECK(create_message("4:2") == with("4:2", "N=4 and M=2"));
  CHECK(create_message("0:4") == with("0:4", "N=0 and M=4"));
  CHECK(create_message("2:x") == with("2:x", "N='2' and M='x'"));
  CHECK(create_message("unstructured") == with("unstructured", "no ':'"));  // llmcompressor's Wanda splits at ':' too
  CHECK(message_of<modkit::ValueError>([] { make_modifier("WandaPruningModifier", Params{{"sparsity", 1.5}}); })
            .rfind("WandaPruningModifier parameter 'sparsity': 1.5 is out of range [0, 1]", 0) == 0);

  SUBCASE("N:M over in_features that M does not divide") {
    Calibration run(models::make_mlp(6, 8, 8, 61));
    CHECK(message_of<modkit::PluginError>([&] { run.initialize(make_modifier("WandaPruningModifier", Params{{"mask_structure", "2:4"}})); }) ==
          "WandaPruningModifier.on_initialize failed: weight of 'fc1': mask_structure '2:4' needs in_features that is "
          "a multiple of 4, found 6");
  }
  SUBCASE("targets that match nothing") {
    Calibration run(models::make_mlp(8, 8, 8, 67));
    CHECK(message_of<modkit::PluginError>([&] {
            run.initialize(make_modifier("WandaPruningModifier", Params{{"targets", {"Conv2d"}}, {"ignore", {"fc1"}}}));
          }) == "WandaPruningModifier.on_initialize failed: targets [\"Conv2d\"] match no module once ignore [\"fc1\"] "
                "is applied");
  }
}
