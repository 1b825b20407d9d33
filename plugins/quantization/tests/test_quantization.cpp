// Tests of the shared quantization math (against a plain per-element reference) and of the QuantizationModifier plugin driven by a session.
#include "plugin_harness.hpp"

#include <modkit/plugin_quant/quant.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/demo_models.hpp>

#include "tensor_operators.hpp"
#include <ATen/ops/randn.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using modkit::EventType;
using modkit::Model;
using modkit::Params;
using modkit::Session;
using modkit::StageModifiers;
namespace q = modkit::quant;

namespace {

// ---- the reference: compressed-tensors' formulas written out one element at a time ----

struct Reference {
  std::vector<float> scale;     // per row and group, row-major
  std::vector<int> zero_point;  // same
  std::vector<int> q;           // per element, row-major
  std::vector<float> value;     // (q - zero_point) * scale
};

// `group` columns share a scale; group == cols is per channel; per_tensor uses one scale for everything.
Reference reference(const at::Tensor& weight, int bits, bool symmetric, int64_t group, bool per_tensor = false) {
  const at::Tensor w = weight.contiguous().to(at::kFloat);
  const int64_t rows = w.size(0), cols = w.size(1);
  const float* p = w.data_ptr<float>();
  const float qmin = -std::pow(2.0f, bits - 1), qmax = std::pow(2.0f, bits - 1) - 1;
  const float eps = std::numeric_limits<float>::epsilon();
  auto params_of = [&](float mn, float mx, float& s, float& z) {
    mn = std::min(mn, 0.0f);
    mx = std::max(mx, 0.0f);
    if (symmetric) {
      s = std::max(std::fabs(mn), std::fabs(mx)) / ((qmax - qmin) / 2.0f);
      if (s < eps) s = eps;
      z = 0;
    } else {
      s = (mx - mn) / (qmax - qmin);
      if (s < eps) s = eps;
      z = std::nearbyint(std::min(std::max(qmin - mn / s, qmin), qmax));
    }
  };
  Reference ref;
  float ts = 0, tz = 0;
  if (per_tensor) {
    float mn = p[0], mx = p[0];
    for (int64_t i = 0; i < rows * cols; ++i) mn = std::min(mn, p[i]), mx = std::max(mx, p[i]);
    params_of(mn, mx, ts, tz);
    group = cols;
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g0 = 0; g0 < cols; g0 += group) {
      float s = ts, z = tz;
      if (!per_tensor) {
        float mn = p[r * cols + g0], mx = mn;
        for (int64_t c = g0; c < g0 + group; ++c) mn = std::min(mn, p[r * cols + c]), mx = std::max(mx, p[r * cols + c]);
        params_of(mn, mx, s, z);
        ref.scale.push_back(s);
        ref.zero_point.push_back(static_cast<int>(z));
      }
      for (int64_t c = g0; c < g0 + group; ++c) {
        const float x = p[r * cols + c];
        const float qv = std::min(std::max(std::nearbyint(x / s + z), qmin), qmax);
        ref.q.push_back(static_cast<int>(qv));
        ref.value.push_back((qv - z) * s);
      }
    }
  }
  if (per_tensor) {
    ref.scale.push_back(ts);
    ref.zero_point.push_back(static_cast<int>(tz));
  }
  return ref;
}

template <class T>
std::vector<T> values(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

std::vector<int> ints(const at::Tensor& t) { return values<int>(t.to(at::kInt)); }

at::Tensor random_weight(int64_t rows, int64_t cols, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor w = at::randn({rows, cols});
  // outliers and an all-zero row exercise the clamping and the epsilon floor
  w[0][3] = 9.0f;
  w[1][5] = -7.0f;
  w[2].zero_();
  w[3] = w[3].abs() + 0.5f;  // all positive: min is clamped to 0
  return w;
}

void check_against_reference(const at::Tensor& weight, const q::QuantArgs& a) {
  const int64_t group = a.strategy == q::Strategy::Group ? a.group_size : weight.size(1);
  const Reference ref = reference(weight, a.num_bits, a.symmetric, group, a.strategy == q::Strategy::Tensor);

  const q::QParams qp = q::compute_qparams(weight, a);
  CHECK(values<float>(qp.scale) == ref.scale);
  CHECK(ints(qp.zero_point) == ref.zero_point);
  CHECK(ints(q::quantize(weight, qp, a)) == ref.q);
  CHECK(values<float>(q::dequantize(q::quantize(weight, qp, a), qp, a)) == ref.value);

  at::Tensor fake = weight.clone(), codes;
  q::fake_quantize_(fake, qp, a, &codes);
  CHECK(values<float>(fake) == ref.value);
  CHECK(ints(codes) == ref.q);

  at::Tensor fused = weight.clone(), fused_codes;
  const q::QParams fqp = q::quantize_rtn_(fused, a, &fused_codes);
  CHECK(fqp.scale.equal(qp.scale));
  CHECK(fqp.zero_point.equal(qp.zero_point));
  CHECK(fused.equal(fake));
  CHECK(fused_codes.equal(codes));
}

// ---- plugin harness ----

std::unique_ptr<modkit::Modifier> create(const Params& params) {
  return modkit::test::make_modifier("QuantizationModifier", params);
}

// The shared harness, plus oneshot's data-free calibration events.
struct Run : modkit::test::PluginRun {
  using PluginRun::PluginRun;
  void oneshot(const Params& params) {
    initialize(create(params));
    session.event(EventType::CalibrationStart);
    session.event(EventType::CalibrationEnd);
    session.finalize();
  }
};

using modkit::test::message_of;
using modkit::test::relative_error;


// Every weight of `module` equals scale * (q - zero_point) with q an integer in range.
void check_on_grid(const Run& run, const std::string& module, const q::QuantArgs& a) {
  CAPTURE(module);
  const at::Tensor w = run.tensor(module, "weight");
  const at::Tensor scale = run.tensor(module, "weight_scale");
  const at::Tensor zp = run.tensor(module, "weight_zero_point");
  CHECK((zp.scalar_type() == at::kChar));
  CHECK((scale.scalar_type() == w.scalar_type()));
  const int64_t rows = w.size(0), cols = w.size(1);
  const int64_t group = a.strategy == q::Strategy::Group ? a.group_size : cols;
  const std::vector<float> wv = values<float>(w), sv = values<float>(scale);
  const std::vector<int> zv = ints(zp);
  const int qmin = -(1 << (a.num_bits - 1)), qmax = (1 << (a.num_bits - 1)) - 1;
  int64_t bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = a.strategy == q::Strategy::Tensor ? 0 : r * (cols / group) + c / group;
      const float s = sv[i];
      const int z = zv[i];
      const float x = wv[r * cols + c];
      const float qv = std::nearbyint(x / s) + z;  // the integer this value encodes
      const bool ok = qv >= qmin && qv <= qmax && (qv - z) * s == x;
      bad += ok ? 0 : 1;
    }
  }
  CHECK(bad == 0);
}

}  // namespace

// ================= the shared math =================

TEST_CASE("compute_qparams, quantize, dequantize and fake_quantize_ match the per-element reference") {
  const at::Tensor w = random_weight(8, 256, 1);
  for (const int bits : {2, 3, 4, 8}) {
    for (const bool symmetric : {true, false}) {
      CAPTURE(bits);
      CAPTURE(symmetric);
      check_against_reference(w, {bits, symmetric, q::Strategy::Tensor, 0});
      check_against_reference(w, {bits, symmetric, q::Strategy::Channel, 0});
      check_against_reference(w, {bits, symmetric, q::Strategy::Group, 128});
      // groups of 20 and rows of 60: lengths that are not a multiple of 8
      check_against_reference(random_weight(5, 60, 2), {bits, symmetric, q::Strategy::Group, 20});
      check_against_reference(random_weight(5, 60, 2), {bits, symmetric, q::Strategy::Channel, 0});
    }
  }
}

TEST_CASE("qparams have compressed-tensors' shapes, dtypes and formulas") {
  const at::Tensor w = random_weight(6, 256, 3);
  const q::QParams tensor = q::compute_qparams(w, {4, true, q::Strategy::Tensor, 0});
  const q::QParams channel = q::compute_qparams(w, {8, true, q::Strategy::Channel, 0});
  const q::QParams group = q::compute_qparams(w, {4, false, q::Strategy::Group, 128});
  CHECK(tensor.scale.sizes() == at::IntArrayRef{1});
  CHECK(channel.scale.sizes() == at::IntArrayRef{6, 1});
  CHECK(group.scale.sizes() == at::IntArrayRef{6, 2});
  CHECK(group.zero_point.sizes() == at::IntArrayRef{6, 2});
  CHECK((group.zero_point.scalar_type() == at::kChar));
  // symmetric int4: absmax / 7.5; int8: absmax / 127.5
  CHECK(tensor.scale.item<float>() == 9.0f / 7.5f);
  CHECK(channel.scale[1][0].item<float>() == w[1].abs().max().item<float>() / 127.5f);
  // the all-zero row gets the epsilon floor, an all-positive row a zero point at qmin
  CHECK(channel.scale[2][0].item<float>() == std::numeric_limits<float>::epsilon());
  CHECK(group.zero_point[3][0].item<int>() == -8);
  CHECK(group.scale[3][0].item<float>() == w[3].slice(0, 0, 128).max().item<float>() / 15.0f);
  // asymmetric zero points are integers inside [qmin, qmax], not all zero
  CHECK(group.zero_point.ne(0).any().item<bool>());
  CHECK(group.zero_point.ge(-8).all().item<bool>());
  CHECK(group.zero_point.le(7).all().item<bool>());
}

TEST_CASE("fake_quantize_ works on a column view with that column's qparams, as GPTQ calls it") {
  const at::Tensor original = random_weight(16, 256, 4);
  const q::QuantArgs group{4, true, q::Strategy::Group, 128};
  const q::QParams qp = q::compute_qparams(original, group);
  at::Tensor expected = original.clone();
  q::fake_quantize_(expected, qp, group);

  at::Tensor w = original.clone();
  const q::QuantArgs column{4, true, q::Strategy::Channel, 0};
  for (int64_t j = 0; j < 256; ++j) {
    at::Tensor col = w.slice(1, j, j + 1);  // [16, 1], row stride 256
    const int64_t g = j / 128;
    q::fake_quantize_(col, q::QParams{qp.scale.slice(1, g, g + 1), qp.zero_point.slice(1, g, g + 1)}, column);
  }
  CHECK(w.equal(expected));

  // a block of one group, and a non-contiguous (transposed) weight
  at::Tensor block_w = original.clone();
  at::Tensor block = block_w.slice(1, 128, 256);
  q::fake_quantize_(block, q::QParams{qp.scale.slice(1, 1, 2), qp.zero_point.slice(1, 1, 2)}, group);
  CHECK(block_w.slice(1, 128, 256).equal(expected.slice(1, 128, 256)));
  CHECK(block_w.slice(1, 0, 128).equal(original.slice(1, 0, 128)));
  // a group's qparams from its block of columns, per row
  const q::QParams block_qp = q::compute_qparams(original.slice(1, 128, 256), column);
  CHECK(block_qp.scale.equal(qp.scale.slice(1, 1, 2)));
  CHECK(block_qp.zero_point.equal(qp.zero_point.slice(1, 1, 2)));

  at::Tensor t = original.t().contiguous().t();  // column-major storage
  q::fake_quantize_(t, qp, group);
  CHECK(t.equal(expected));
}

TEST_CASE("reduced-precision weights are quantized with their rounded scale") {
  const at::Tensor w = random_weight(4, 128, 5).to(at::kBFloat16);
  const q::QuantArgs a{4, true, q::Strategy::Group, 64};
  at::Tensor fq = w.clone();
  const q::QParams qp = q::quantize_rtn_(fq, a);
  CHECK((qp.scale.scalar_type() == at::kBFloat16));
  // dequantize(quantize) with the stored scale gives the same weight
  CHECK(q::dequantize(q::quantize(w, qp, a), qp, a).equal(fq));
}

TEST_CASE("presets are compressed-tensors' schemes") {
  const q::Scheme w4 = q::preset("W4A16");
  CHECK(w4.weights.num_bits == 4);
  CHECK(w4.weights.symmetric);
  CHECK(w4.weights.strategy == q::Strategy::Group);
  CHECK(w4.weights.group_size == 128);
  CHECK_FALSE(w4.input_activations);
  CHECK_FALSE(q::preset("w4a16_asym").weights.symmetric);
  const q::Scheme w8 = q::preset("W8A16");
  CHECK(w8.weights.num_bits == 8);
  CHECK(w8.weights.strategy == q::Strategy::Channel);
  const q::Scheme w8a8 = q::preset("W8A8");
  REQUIRE(w8a8.input_activations);
  CHECK(w8a8.input_activations->strategy == q::Strategy::Token);
  CHECK(w8a8.input_activations->dynamic);
  CHECK(w8a8.input_activations->symmetric);
  CHECK(w8a8.input_activations->num_bits == 8);
  CHECK(w8a8.targets == std::vector<std::string>{"Linear"});
  CHECK(std::string(message_of<std::invalid_argument>([] { q::preset("W3A16"); }))
            .rfind("unknown quantization preset 'W3A16': expected one of W8A16, W4A16", 0) == 0);
}

TEST_CASE("the math refuses what it cannot quantize") {
  const at::Tensor w = at::randn({4, 96});
  CHECK(message_of<std::invalid_argument>([&] { q::compute_qparams(w, {4, true, q::Strategy::Group, 128}); }) ==
        "group_size 128 does not divide the 96 columns of a weight of shape [4, 96]");
  CHECK(message_of<std::invalid_argument>([&] { q::compute_qparams(w, {9, true, q::Strategy::Channel, 0}); }) ==
        "num_bits: expected 2 to 8 (integer quantization stored in int8), found 9");
  const q::QParams qp = q::compute_qparams(w, {8, true, q::Strategy::Channel, 0});
  at::Tensor other = at::randn({5, 96});
  CHECK(message_of<std::invalid_argument>([&] { q::fake_quantize_(other, qp, {8, true, q::Strategy::Channel, 0}); })
            .rfind("quantization parameters for a channel strategy over a [5, 96] weight: expected 5", 0) == 0);
}

// ================= the plugin =================

TEST_CASE("QuantizationModifier is discovered in the main registry") {
  const auto info = modkit::test::built_plugins().find("QuantizationModifier");
  REQUIRE(info);
  CHECK_FALSE(info->experimental);
}

TEST_CASE("each preset puts every targeted weight on its grid and the model still runs") {
  struct Case {
    std::string preset;
    q::QuantArgs weights;
    double max_error;
  };
  for (const Case& c : {Case{"W8A16", {8, true, q::Strategy::Channel, 0}, 0.01},
                        Case{"W4A16", {4, true, q::Strategy::Group, 128}, 0.15},
                        Case{"W4A16_ASYM", {4, false, q::Strategy::Group, 128}, 0.15},
                        Case{"W8A8", {8, true, q::Strategy::Channel, 0}, 0.01}}) {
    CAPTURE(c.preset);
    Run run(modkit::demo_models::make_mlp(256, 128, 64, 7));
    const at::Tensor x = at::randn({4, 256}, at::TensorOptions().dtype(at::kFloat));
    const at::Tensor before = run.forward(x);
    const at::Tensor fc1 = run.tensor("fc1", "weight").clone();
    run.oneshot(Params{{"scheme", c.preset}});
    for (const std::string module : {"fc1", "fc2"}) check_on_grid(run, module, c.weights);
    // the plugin's scales and values are exactly the reference's
    const int64_t group = c.weights.strategy == q::Strategy::Group ? 128 : 256;
    const Reference ref = reference(fc1, c.weights.num_bits, c.weights.symmetric, group);
    CHECK(values<float>(run.tensor("fc1", "weight_scale")) == ref.scale);
    CHECK(ints(run.tensor("fc1", "weight_zero_point")) == ref.zero_point);
    CHECK(values<float>(run.tensor("fc1", "weight")) == ref.value);
    CHECK(relative_error(run.forward(x), before) < c.max_error);
    CHECK(relative_error(run.forward(x), before) > 0);
    const std::vector<int64_t> args = values<int64_t>(run.tensor("fc1", "weight_quant_args"));
    CHECK(args == std::vector<int64_t>{c.weights.num_bits, c.weights.symmetric,
                                       static_cast<int64_t>(c.weights.strategy), c.weights.group_size, 0});
    if (c.preset == "W8A8") {
      CHECK(values<int64_t>(run.tensor("fc2", "input_quant_args")) == std::vector<int64_t>{8, 1, 3, 0, 1});
    } else {
      CHECK(run.model->tensors("fc2").size() == 5);  // weight, bias, scale, zero point, args
    }
  }
}

TEST_CASE("W4A16 scales are absmax / 7.5 per group of 128 input columns") {
  Run run(modkit::demo_models::make_mlp(256, 128, 64, 11));
  const at::Tensor w = run.tensor("fc1", "weight").clone();
  run.oneshot(Params{{"scheme", "W4A16"}});
  const at::Tensor scale = run.tensor("fc1", "weight_scale");
  REQUIRE(scale.sizes() == at::IntArrayRef{128, 2});
  const std::vector<float> absmax = values<float>(w.abs().reshape({128, 2, 128}).amax(2));
  const std::vector<float> s = values<float>(scale);
  int64_t bad = 0;
  for (size_t i = 0; i < s.size(); ++i) bad += s[i] == absmax[i] / 7.5f ? 0 : 1;
  CHECK(bad == 0);
  CHECK(run.tensor("fc1", "weight_zero_point").eq(0).all().item<bool>());
}

TEST_CASE("config_groups choose per-module arguments: tensor, channel and asymmetric groups") {
  Run run(modkit::demo_models::make_mlp(256, 128, 64, 13));
  const at::Tensor fc1 = run.tensor("fc1", "weight").clone(), fc2 = run.tensor("fc2", "weight").clone();
  run.oneshot(Params::parse(R"({"config_groups": {
      "first": {"targets": ["fc1"], "weights": {"num_bits": 4, "type": "int", "symmetric": false,
                                                "strategy": "group", "group_size": 64}},
      "second": {"targets": ["re:fc2$"], "weights": {"num_bits": 6, "strategy": "tensor"},
                 "input_activations": {"num_bits": 8, "strategy": "token", "dynamic": true}}}})"));
  check_on_grid(run, "fc1", {4, false, q::Strategy::Group, 64});
  check_on_grid(run, "fc2", {6, true, q::Strategy::Tensor, 0});
  const Reference r1 = reference(fc1, 4, false, 64);
  CHECK(values<float>(run.tensor("fc1", "weight_scale")) == r1.scale);
  CHECK(ints(run.tensor("fc1", "weight_zero_point")) == r1.zero_point);
  CHECK(std::any_of(r1.zero_point.begin(), r1.zero_point.end(), [](int z) { return z != 0; }));
  const Reference r2 = reference(fc2, 6, true, 0, true);
  CHECK(run.tensor("fc2", "weight_scale").sizes() == at::IntArrayRef{1});
  CHECK(values<float>(run.tensor("fc2", "weight")) == r2.value);
  CHECK(values<int64_t>(run.tensor("fc2", "input_quant_args")) == std::vector<int64_t>{8, 1, 3, 0, 1});
  // strategy inferred from group_size, as compressed-tensors does
  Run inferred(modkit::demo_models::make_mlp(256, 128, 64, 13));
  inferred.oneshot(Params::parse(
      R"({"config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 4, "group_size": 128}}}})"));
  CHECK(inferred.tensor("fc1", "weight_scale").sizes() == at::IntArrayRef{128, 2});
}

TEST_CASE("ignore leaves modules untouched") {
  Run run(modkit::demo_models::make_tiny_transformer(1, 128, 17));
  const at::Tensor head = run.tensor("lm_head", "weight").clone();
  const at::Tensor q_proj = run.tensor("layers.0.self_attn.q_proj", "weight").clone();
  run.oneshot(Params{{"scheme", "W4A16"}, {"ignore", {"lm_head"}}});
  CHECK(run.tensor("lm_head", "weight").equal(head));
  CHECK_FALSE(run.tensor("layers.0.self_attn.q_proj", "weight").equal(q_proj));
  check_on_grid(run, "layers.0.mlp.fc2", {4, true, q::Strategy::Group, 128});
  const auto names = run.model->tensors("lm_head");
  CHECK(std::none_of(names.begin(), names.end(), [](const auto& t) { return t.name == "weight_scale"; }));
  const at::Tensor y = run.forward(at::randn({2, 3, 128}));
  CHECK(y.isfinite().all().item<bool>());
}

TEST_CASE("a group size that does not divide in_features is explained") {
  Run run(modkit::demo_models::make_mlp(96, 128, 64, 19));
  const std::string m = message_of<modkit::PluginError>([&] { run.initialize(create(Params{{"scheme", "W4A16"}})); });
  CHECK(m == "QuantizationModifier.on_initialize failed: group_size 128 of the scheme does not divide the in_features "
             "of 'fc1' (in_features 96): add it to ignore, or choose a group_size that divides every targeted "
             "in_features (16, 32)");
  CHECK_FALSE(run.session.initialized());
  // ignoring it works
  Run ignored(modkit::demo_models::make_mlp(96, 128, 64, 19));
  ignored.oneshot(Params{{"scheme", "W4A16"}, {"ignore", {"fc1"}}});
  check_on_grid(ignored, "fc2", {4, true, q::Strategy::Group, 128});
}

TEST_CASE("a Linear without output features is refused by name, before any change") {
  // fc1 is Linear(64 -> 0): dividing its element count by its rows was a SIGFPE
  Run run(modkit::demo_models::make_mlp(64, 0, 64, 37));
  const std::string m = message_of<modkit::PluginError>([&] { run.initialize(create(Params{{"scheme", "W8A16"}})); });
  CHECK(m == "QuantizationModifier.on_initialize failed: weight of 'fc1' is empty (shape [0, 64]): there is nothing "
             "to quantize; add it to ignore");
  CHECK_FALSE(run.session.initialized());
}

TEST_CASE("bad parameters are refused with clear messages") {
  SUBCASE("scheme and config_groups both given") {
    const std::string m = message_of<modkit::PluginError>([] {
      create(Params::parse(R"({"scheme": "W8A16", "config_groups": {"g": {"targets": ["Linear"], "weights": {}}}})"));
    });
    CHECK(m.rfind("QuantizationModifier.create failed: scheme and config_groups are both given", 0) == 0);
  }
  SUBCASE("neither given") {
    CHECK(message_of<modkit::PluginError>([] { create(Params::object()); })
              .rfind("QuantizationModifier.create failed: neither scheme nor config_groups is given", 0) == 0);
  }
  SUBCASE("num_bits 9") {
    const std::string m = message_of<modkit::PluginError>([] {
      create(Params::parse(R"({"config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 9}}}})"));
    });
    CHECK(m == "QuantizationModifier.create failed: config_groups.g.weights.num_bits: 9 is out of range [2, 8] "
               "(integer quantization stored in int8)");
  }
  SUBCASE("unknown preset") {
    CHECK(message_of<modkit::PluginError>([] { create(Params{{"scheme", "W3A16"}}); })
              .rfind("QuantizationModifier.create failed: scheme: unknown quantization preset 'W3A16'", 0) == 0);
  }
  SUBCASE("float type, unknown key, static activations, group without size") {
    auto fails_with = [](const std::string& json, const std::string& start) {
      CAPTURE(json);
      const std::string m = message_of<modkit::PluginError>([&] { create(Params::parse(json)); });
      CHECK(m.rfind("QuantizationModifier.create failed: " + start, 0) == 0);
    };
    fails_with(R"({"config_groups": {"g": {"targets": ["Linear"], "weights": {"type": "float"}}}})",
               "config_groups.g.weights.type: expected \"int\"");
    fails_with(R"({"config_groups": {"g": {"targets": ["Linear"], "weights": {"bits": 4}}}})",
               "config_groups.g.weights: unknown key 'bits', expected one of num_bits, type");
    fails_with(R"({"config_groups": {"g": {"targets": ["Linear"], "weights": {},
                   "input_activations": {"strategy": "token"}}}})",
               "config_groups.g.input_activations: static input activation scales need calibration data");
    fails_with(R"({"config_groups": {"g": {"targets": ["Linear"], "weights": {"strategy": "group"}}}})",
               "config_groups.g.weights.group_size: the group strategy needs a positive group_size");
    fails_with(R"({"config_groups": {"g": {"weights": {}}}})", "config_groups.g.targets: required");
  }
}

TEST_CASE("targets that match nothing, and modules in two groups, are errors") {
  Run run(modkit::demo_models::make_mlp(64, 64, 64, 23));
  CHECK(message_of<modkit::PluginError>([&] { run.initialize(create(Params{{"scheme", "W8A16"}, {"targets", "Conv2d"}})); }) ==
        "QuantizationModifier.on_initialize failed: targets [\"Conv2d\"] match no module with a weight");
  Run twice(modkit::demo_models::make_mlp(64, 64, 64, 23));
  CHECK(message_of<modkit::PluginError>([&] {
          twice.initialize(create(Params::parse(R"({"config_groups": {
              "a": {"targets": ["Linear"], "weights": {}}, "b": {"targets": ["fc2"], "weights": {}}}})")));
        }).find("module 'fc2' is matched by config groups 'a' and 'b'") != std::string::npos);
}

TEST_CASE("in a training recipe it quantizes at start and again after the optimizer moved the weights") {
  Run run(modkit::demo_models::make_mlp(64, 64, 32, 29));
  const at::Tensor original = run.tensor("fc1", "weight").clone();
  run.initialize(create(Params{{"scheme", "W8A16"}, {"start", 0}}));
  CHECK_FALSE(run.tensor("fc1", "weight").equal(original));  // start 0: quantized at initialize
  check_on_grid(run, "fc1", {8, true, q::Strategy::Channel, 0});
  {
    const at::NoGradGuard no_grad;
    run.session.event(EventType::BatchStart, 0);
    run.session.event(EventType::OptimPreStep, 0);
    run.tensor("fc1", "weight").add_(1e-3);
    run.session.event(EventType::OptimPostStep, 0);
    run.session.event(EventType::BatchEnd, 0);
  }
  run.session.finalize();
  check_on_grid(run, "fc1", {8, true, q::Strategy::Channel, 0});
}

TEST_CASE("a quantized model saves, loads and runs with its scales") {
  Run run(modkit::demo_models::make_mlp(256, 128, 64, 31));
  run.oneshot(Params{{"scheme", "W4A16_ASYM"}});
  const at::Tensor x = at::randn({3, 256});
  const at::Tensor y = run.forward(x);
  const std::string path = std::string(MODKIT_TEST_BINARY_DIR) + "/tests/plugins/quantization/quantized_mlp.pt";
  run.model->save(path);
  Model loaded = Model::load(path);
  CHECK(loaded.module().forward({x}).toTensor().equal(y));
  CHECK(loaded.get_tensor("fc1", "weight_scale").equal(run.tensor("fc1", "weight_scale")));
  CHECK(loaded.get_tensor("fc2", "weight_zero_point").equal(run.tensor("fc2", "weight_zero_point")));
  std::remove(path.c_str());
}
