// Tests of GlobalMagnitudePruningModifier (experimental), loaded from the build tree's plugins and driven by a session.
#include "plugin_harness.hpp"

#include <modkit/torch/demo_models.hpp>

#include <ATen/core/Tensor.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

using modkit::EventType;
using modkit::Model;
using modkit::Params;
using modkit::test::make_modifier;
using modkit::test::message_of;
using Run = modkit::test::PluginRun;

namespace {

const std::vector<std::string> kMlpLayers{"fc1", "fc2"};

int64_t expected_zeros(double sparsity, int64_t numel) {
  return static_cast<int64_t>(std::llround(sparsity * static_cast<double>(numel)));
}

}  // namespace

TEST_CASE("GlobalMagnitudePruningModifier is discovered in the build tree's plugin directory") {
  const auto entry = modkit::test::built_plugins().find("GlobalMagnitudePruningModifier");
  REQUIRE(entry);
  CHECK(entry->experimental == true);
  CHECK(message_of<modkit::ValueError>([] {
          modkit::test::built_plugins().create("GlobalMagnitudePruningModifier", true, false, Params{{"sparsity", 0.5}});
        }).find("experimental") != std::string::npos);
}

TEST_CASE("global magnitude pruning reaches the global sparsity with one threshold") {
  Run run(modkit::demo_models::make_tiny_transformer(2, 16, 29));
  std::vector<std::string> layers;
  for (const auto& m : run.model->modules()) {
    if (m.class_name == "Linear") layers.push_back(m.name);
  }
  REQUIRE(layers.size() == 13);
  std::vector<at::Tensor> original;
  int64_t total = 0;
  for (const auto& layer : layers) {
    original.push_back(run.weight(layer).abs().clone());
    total += original.back().numel();
  }
  run.initialize(make_modifier("GlobalMagnitudePruningModifier", Params{{"sparsity", 0.6}}));
  CHECK(run.zeros(layers[0]) == 0);  // one-shot: waits for calibration
  run.session.event(EventType::CalibrationStart);
  run.session.event(EventType::CalibrationEnd);

  int64_t zeros = 0;
  float largest_pruned = 0, smallest_kept = 1e9f;
  std::vector<int64_t> per_layer;
  for (size_t i = 0; i < layers.size(); ++i) {
    const at::Tensor pruned = run.weight(layers[i]).eq(0);
    per_layer.push_back(pruned.sum().item<int64_t>());
    zeros += per_layer.back();
    if (per_layer.back() > 0) largest_pruned = std::max(largest_pruned, original[i].masked_select(pruned).max().item<float>());
    if (per_layer.back() < pruned.numel()) {
      smallest_kept = std::min(smallest_kept, original[i].masked_select(pruned.logical_not()).min().item<float>());
    }
  }
  CHECK(zeros == expected_zeros(0.6, total));
  CHECK(largest_pruned <= smallest_kept);
  // one global threshold: layers with larger weights keep more (fc2 has 2x fan-in, smaller init)
  CHECK(std::adjacent_find(per_layer.begin(), per_layer.end(), std::not_equal_to<>()) != per_layer.end());
  run.session.finalize();
  CHECK(run.zeros(layers[0]) == per_layer[0]);  // pruned once, not again at finalize
}

TEST_CASE("global magnitude pruning is exact with tied magnitudes and prunes at finalize without calibration") {
  const at::NoGradGuard no_grad;
  Run run(modkit::demo_models::make_mlp(8, 8, 8, 31));
  for (const auto& layer : kMlpLayers) run.weight(layer).fill_(0.25);  // every magnitude ties
  run.initialize(make_modifier("GlobalMagnitudePruningModifier", Params{{"sparsity", 0.3}}));
  run.session.finalize();
  CHECK(run.zeros("fc1") + run.zeros("fc2") == expected_zeros(0.3, 128));
}

TEST_CASE("a sparsity out of range is refused by the core's schema check") {
    CHECK(message_of<modkit::ValueError>([&] {
            make_modifier("GlobalMagnitudePruningModifier", Params{{"sparsity", -0.1}});
          }).rfind("GlobalMagnitudePruningModifier parameter 'sparsity': -0.1 is out of range [0, 1]", 0) == 0);
}

TEST_CASE("targets that match nothing are named in the error") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 37));
  Params p = Params{{"sparsity", 0.5}};
  p["targets"] = {"Conv2d", "re:.*q_proj"};
  const std::string m = message_of<modkit::PluginError>([&] { run.initialize(make_modifier("GlobalMagnitudePruningModifier", p)); });
  CHECK(m == "GlobalMagnitudePruningModifier.on_initialize failed: targets [\"Conv2d\", \"re:.*q_proj\"] match no module");
  CHECK_FALSE(run.session.initialized());
}
