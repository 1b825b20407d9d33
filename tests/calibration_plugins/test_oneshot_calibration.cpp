// Tests of SmoothQuantModifier and WandaPruningModifier run by modkit::oneshot's calibration pipelines (basic and sequential) on a TorchScript transformer.
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

#include <modkit/core/recipe.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/oneshot.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

using modkit::test::built_plugins;
using modkit::test::Recorder;
using modkit::test::relative_error;
using modkit::HookKind;
using modkit::Model;
namespace models = modkit::demo_models;

namespace {

const std::string kSmoothing = R"(
[[stage]]
name = "smoothing"
  [[stage.modifiers]]
  type = "SmoothQuantModifier"
  smoothing_strength = 0.5
  mappings = [[["re:.*q_proj", "re:.*k_proj", "re:.*v_proj"], "re:.*input_layernorm"],
              [["re:.*fc1"], "re:.*post_attention_layernorm"]]
)";
const std::string kWanda24 = R"(
[[stage]]
name = "sparsity"
  [[stage.modifiers]]
  type = "WandaPruningModifier"
  mask_structure = "2:4"
  ignore = ["lm_head"]
)";

std::vector<std::string> linears(const Model& model) {
  std::vector<std::string> out;
  for (const modkit::ModuleInfo& m : model.modules()) {
    if (m.class_name == "Linear" && m.name != "lm_head") out.push_back(m.name);
  }
  return out;
}

// Wanda's 2:4 mask from the definition: in each group of 4 columns the 2 lowest |W| * ||X_j||.
at::Tensor reference_2_4(const at::Tensor& w, const at::Tensor& tokens) {
  const at::Tensor norms = tokens.to(at::kDouble).pow(2).sum(0).sqrt();
  const at::Tensor metric = (w.to(at::kDouble).abs() * norms.view({1, -1})).contiguous();
  at::Tensor mask = at::zeros(w.sizes(), at::kBool);
  const auto a = metric.accessor<double, 2>();
  auto out = mask.accessor<bool, 2>();
  for (int64_t r = 0; r < w.size(0); ++r) {
    for (int64_t g = 0; g < w.size(1); g += 4) {
      std::vector<int64_t> idx{g, g + 1, g + 2, g + 3};
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t i, int64_t j) { return a[r][i] < a[r][j]; });
      out[r][idx[0]] = out[r][idx[1]] = true;
    }
  }
  return mask;
}

}  // namespace

TEST_CASE("SmoothQuant then Wanda 2:4 through oneshot's sequential pipeline: every block smoothed, then pruned") {
  Model model(models::make_tiny_transformer(2, 64, 17));
  const at::Tensor norm0 = model.get_tensor("layers.0.input_layernorm", "weight").clone();
  const modkit::CalibrationData data = modkit::CalibrationData::synthetic(4, {1, 32, 64}, 5);
  modkit::OneshotOptions options;
  options.calibration = &data;
  const auto summaries = modkit::oneshot(model, modkit::Recipe::parse_toml(kSmoothing + kWanda24), built_plugins(), options);
  REQUIRE(summaries.size() == 2);
  for (const auto& s : summaries) {
    CHECK((s.pipeline == modkit::PipelineKind::Sequential));
    CHECK(s.blocks == std::vector<std::string>{"layers.0", "layers.1"});
  }
  CHECK_FALSE(at::equal(model.get_tensor("layers.0.input_layernorm", "weight"), norm0));
  for (const std::string& name : linears(model)) {
    CAPTURE(name);
    const at::Tensor w = model.get_tensor(name, "weight");
    const at::Tensor zeros = w.eq(0).reshape({w.size(0), -1, 4}).sum(2);
    CHECK(at::equal(zeros, at::full_like(zeros, 2)));
  }
  CHECK(model.get_tensor("lm_head", "weight").eq(0).sum().item<int64_t>() == 0);
  CHECK(model.hook_count() == 0);
}

TEST_CASE("Wanda in the sequential pipeline prunes each layer by the inputs it saw while its block calibrated") {
  Model model(models::make_tiny_transformer(2, 64, 19));
  std::map<std::string, at::Tensor> original;
  std::map<std::string, std::unique_ptr<Recorder>> inputs;
  for (const std::string& name : linears(model)) {
    original[name] = model.get_tensor(name, "weight").clone();
    inputs[name] = std::make_unique<Recorder>(model, name, HookKind::ForwardPre);
  }
  const modkit::CalibrationData data = modkit::CalibrationData::synthetic(3, {2, 16, 64}, 7);
  modkit::OneshotOptions options;
  options.calibration = &data;
  const modkit::Recipe recipe = modkit::Recipe::parse_toml(kWanda24);
  modkit::oneshot(model, recipe, built_plugins(), options);
  for (const std::string& name : linears(model)) {
    CAPTURE(name);
    REQUIRE(inputs[name]->calls() >= 3);
    const at::Tensor w = model.get_tensor(name, "weight");
    // what the recorder saw while the block calibrated: the first 3 calls (one per sample)
    CHECK(at::equal(w.eq(0), reference_2_4(original[name], inputs[name]->tokens().slice(0, 0, 3 * 2 * 16))));
  }
}

TEST_CASE("SmoothQuant through oneshot's basic and sequential pipelines keeps the model's output") {
  for (const auto pipeline : {modkit::PipelineKind::Basic, modkit::PipelineKind::Sequential}) {
    const std::string name = modkit::to_string(pipeline);
    CAPTURE(name);
    Model model(models::make_tiny_transformer(2, 64, 23));
    {
      const at::NoGradGuard no_grad;
      at::Generator gen = at::detail::createCPUGenerator(29);
      for (const std::string norm : {"layers.0.input_layernorm", "layers.1.post_attention_layernorm"}) {
        model.get_tensor(norm, "weight").copy_(0.5 + at::rand({64}, gen));
        model.get_tensor(norm, "weight").slice(0, 0, 3).mul_(20.0);  // three outlier channels
        model.get_tensor(norm, "bias").copy_(0.1 * at::randn({64}, gen));
      }
    }
    const at::Tensor held_out = at::randn({2, 16, 64});
    const at::NoGradGuard no_grad;
    const at::Tensor before = model.forward({held_out}).toTensor();
    const modkit::CalibrationData data = modkit::CalibrationData::synthetic(4, {1, 32, 64}, 11);
    modkit::OneshotOptions options;
    options.calibration = &data;
    options.pipeline = pipeline;
    const auto summaries = modkit::oneshot(model, modkit::Recipe::parse_toml(kSmoothing), built_plugins(), options);
    CHECK((summaries.at(0).pipeline == pipeline));
    const double change = relative_error(model.forward({held_out}).toTensor(), before);
    MESSAGE(name << " pipeline: relative output change " << change);
    CHECK(change < 1e-5);
    CHECK(model.get_tensor("layers.0.input_layernorm", "weight")[0].item<double>() < 20.0);  // the outliers moved
  }
}
