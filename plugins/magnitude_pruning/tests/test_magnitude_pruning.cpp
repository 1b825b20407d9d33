// Tests of MagnitudePruningModifier, loaded from the build tree's plugins and driven by a session over a TorchScript model.
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

// The schedule the README documents, written out independently of the plugin.
double scheduled(const std::string& scheduler, double si, double sf, double start, double end, double t) {
  double p = (t - start) / (end - start);
  p = std::min(1.0, std::max(0.0, p));
  if (scheduler == "linear") return si + (sf - si) * p;
  return sf + (si - sf) * std::pow(1.0 - p, 3);
}

Params magnitude_params(const std::string& scheduler) {
  return Params{{"init_sparsity", 0.05}, {"final_sparsity", 0.9}, {"start", 2}, {"end", 10},
                {"update", 2},           {"update_scheduler", scheduler}};
}

}  // namespace

TEST_CASE("MagnitudePruningModifier is discovered in the build tree's plugin directory") {
  const auto entry = modkit::test::built_plugins().find("MagnitudePruningModifier");
  REQUIRE(entry);
  CHECK(entry->experimental == false);
}

TEST_CASE("magnitude pruning follows its schedule with the exact count of zeros per layer") {
  for (const std::string scheduler : {"linear", "cubic"}) {
    CAPTURE(scheduler);
    Run run(modkit::demo_models::make_mlp(16, 32, 8, 7));
    run.initialize(make_modifier("MagnitudePruningModifier", magnitude_params(scheduler)));
    const double start = 2, end = 10, update = 2;
    for (int64_t t = 0; t <= 12; ++t) {
      run.step(t);
      CAPTURE(t);
      for (const auto& layer : kMlpLayers) {
        CAPTURE(layer);
        const int64_t numel = run.weight(layer).numel();
        int64_t expected = 0;
        if (t >= start) {
          // masks move at start + k * update and reach the final sparsity at end
          const double boundary = std::min(end, start + std::floor((t - start) / update) * update);
          expected = expected_zeros(scheduled(scheduler, 0.05, 0.9, start, end, boundary), numel);
        }
        CHECK(run.zeros(layer) == expected);
      }
    }
    CHECK(run.zeros("fc1") == expected_zeros(0.9, 512));
    run.session.finalize();
  }
}

TEST_CASE("the cubic schedule prunes early, the linear one evenly") {
  // Zhu & Gupta: most of the sparsity arrives in the first part of the ramp.
  CHECK(scheduled("cubic", 0.0, 0.8, 0, 10, 5) == doctest::Approx(0.7));
  CHECK(scheduled("linear", 0.0, 0.8, 0, 10, 5) == doctest::Approx(0.4));
  Run cubic(modkit::demo_models::make_mlp(16, 32, 8, 3));
  cubic.initialize(make_modifier("MagnitudePruningModifier",
                          Params{{"init_sparsity", 0.0}, {"final_sparsity", 0.8}, {"start", 0}, {"end", 10},
                                 {"update", 1}}));
  for (int64_t t = 0; t <= 5; ++t) cubic.step(t);
  CHECK(cubic.zeros("fc1") == expected_zeros(0.8 + (0.0 - 0.8) * std::pow(0.5, 3), 512));
}

TEST_CASE("magnitude pruning removes the smallest weights") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 11));
  const at::Tensor original = run.weight("fc1").abs().clone();
  run.initialize(make_modifier("MagnitudePruningModifier",
                        Params{{"init_sparsity", 0.5}, {"final_sparsity", 0.5}, {"start", 0}, {"end", 4},
                               {"update", 1}, {"targets", "fc1"}}));
  const at::Tensor pruned = run.weight("fc1").eq(0);
  CHECK(pruned.sum().item<int64_t>() == 256);
  CHECK(original.masked_select(pruned).max().item<float>() <=
        original.masked_select(pruned.logical_not()).min().item<float>());
  CHECK(run.zeros("fc2") == 0);  // not a target
}

TEST_CASE("2:4 masks leave exactly two zeros in every group of four input weights") {
  Run run(modkit::demo_models::make_tiny_transformer(1, 16, 5));
  run.initialize(make_modifier("MagnitudePruningModifier",
                        Params{{"init_sparsity", 0.0}, {"final_sparsity", 0.5}, {"start", 0}, {"end", 4},
                               {"update", 1}, {"mask_structure", "2:4"}, {"ignore", "lm_head"}}));
  const std::vector<std::string> layers{"layers.0.self_attn.q_proj", "layers.0.mlp.fc1", "layers.0.mlp.fc2"};
  // sparsity 0 at start: no N:M mask yet
  for (const auto& layer : layers) CHECK(run.zeros(layer) == 0);
  run.step(0);
  for (const auto& layer : layers) CHECK(run.zeros(layer) == 0);
  for (int64_t t = 1; t <= 5; ++t) {
    run.optimizer_step(t, layers);
    CAPTURE(t);
    for (const auto& layer : layers) {
      CAPTURE(layer);
      const at::Tensor per_group = run.weight(layer).reshape({-1, 4}).eq(0).sum(1);
      CHECK(per_group.eq(2).all().item<bool>());
    }
  }
  CHECK(run.zeros("lm_head") == 0);  // ignored
}

TEST_CASE("N of N:M counts the pruned weights, as in llmcompressor's SparseGPT and Wanda") {
  // 1:4 prunes the smallest |w| of every group of four; "unstructured" and "0:0" are both unstructured
  Run run(modkit::demo_models::make_tiny_transformer(1, 16, 5));
  const std::string layer = "layers.0.mlp.fc1";
  const at::Tensor before = run.weight(layer).clone();
  run.initialize(make_modifier("MagnitudePruningModifier",
                        Params{{"init_sparsity", 0.5}, {"final_sparsity", 0.5}, {"start", 0}, {"end", 1},
                               {"update", 1}, {"mask_structure", "1:4"}, {"targets", layer}}));
  run.step(0);
  const at::Tensor groups = run.weight(layer).reshape({-1, 4});
  CHECK(groups.eq(0).sum(1).eq(1).all().item<bool>());
  const at::Tensor smallest = std::get<1>(before.reshape({-1, 4}).abs().min(1));
  CHECK(groups.gather(1, smallest.unsqueeze(1)).eq(0).all().item<bool>());
  for (const char* unstructured : {"unstructured", "0:0"}) {
    Params p = magnitude_params("cubic");
    p["mask_structure"] = unstructured;
    CHECK_NOTHROW(make_modifier("MagnitudePruningModifier", p));
  }
}

TEST_CASE("masks hold through optimizer steps, after end only with leave_enabled") {
  for (const bool leave_enabled : {true, false}) {
    CAPTURE(leave_enabled);
    Run run(modkit::demo_models::make_mlp(16, 32, 8, 13));
    Params params = magnitude_params("linear");
    params["leave_enabled"] = leave_enabled;
    run.initialize(make_modifier("MagnitudePruningModifier", params));
    for (int64_t t = 0; t <= 10; ++t) run.step(t);
    const at::Tensor pattern = run.weight("fc1").eq(0);
    REQUIRE(pattern.sum().item<int64_t>() == expected_zeros(0.9, 512));

    // the optimizer moves every weight; OPTIM_POST_STEP puts the pruned ones back to zero
    run.optimizer_step(11, kMlpLayers);
    if (leave_enabled) {
      CHECK(run.weight("fc1").eq(0).equal(pattern));
      CHECK(run.zeros("fc2") == expected_zeros(0.9, 256));
    } else {
      CHECK(run.zeros("fc1") == 0);
    }
    run.session.finalize();
  }
}

TEST_CASE("magnitude masks hold through optimizer steps between updates") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 17));
  run.initialize(make_modifier("MagnitudePruningModifier", magnitude_params("cubic")));
  for (int64_t t = 0; t <= 2; ++t) run.step(t);
  const at::Tensor pattern = run.weight("fc2").eq(0);
  REQUIRE(pattern.sum().item<int64_t>() == expected_zeros(0.05, 256));
  run.optimizer_step(3, kMlpLayers);  // no mask update at 3 (update = 2)
  CHECK(run.weight("fc2").eq(0).equal(pattern));
}

TEST_CASE("N:M pruning needs a last dimension divisible by M") {
  Run run(modkit::demo_models::make_mlp(6, 8, 8, 41));
  Params p = magnitude_params("cubic");
  p["mask_structure"] = "2:4";
  CHECK(message_of<modkit::PluginError>([&] { run.initialize(make_modifier("MagnitudePruningModifier", p)); })
            .find("weight of 'fc1': mask_structure '2:4' needs a last dimension that is a multiple of 4, found 6") !=
        std::string::npos);
}

TEST_CASE("magnitude pruning on an epoch schedule updates at fractional epochs") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 43));
  run.initialize(make_modifier("MagnitudePruningModifier",
                        Params{{"init_sparsity", 0.2}, {"final_sparsity", 0.6}, {"start", 0.5}, {"end", 2},
                               {"update", 0.5}, {"update_scheduler", "linear"}}));
  const int64_t steps_per_epoch = 4;
  for (int64_t t = 0; t <= 9; ++t) {
    run.session.event(EventType::BatchStart, t, std::nullopt, {}, steps_per_epoch);
    run.session.event(EventType::BatchEnd, t, std::nullopt, {}, steps_per_epoch);
    CAPTURE(t);
    // updates at epochs 0.5, 1.0, 1.5, 2.0 = steps 2, 4, 6, 8
    const double epoch = t < 2 ? -1 : std::min(2.0, 0.5 * std::floor(t / 2.0));
    const double s = epoch < 0 ? 0 : scheduled("linear", 0.2, 0.6, 0.5, 2, epoch);
    CHECK(run.zeros("fc1") == expected_zeros(s, 512));
  }
}

TEST_CASE("a pruned model saves with its zeros and without extra tensors") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 47));
  run.initialize(make_modifier("MagnitudePruningModifier",
                        Params{{"init_sparsity", 0.7}, {"final_sparsity", 0.7}, {"start", 0}, {"end", 1},
                               {"update", 1}}));
  run.session.finalize();
  const std::string path = std::string(MODKIT_TEST_BINARY_DIR) + "/tests/plugins/magnitude_pruning/pruned_mlp.pt";
  run.model->save(path);
  const Model loaded = Model::load(path);
  for (const auto& layer : kMlpLayers) {
    CAPTURE(layer);
    const at::Tensor w = loaded.get_tensor(layer, "weight");
    CHECK(w.eq(0).sum().item<int64_t>() == expected_zeros(0.7, w.numel()));
    CHECK(loaded.tensors(layer).size() == 2);  // weight and bias: the masks live in the plugin
  }
  std::remove(path.c_str());
}
TEST_CASE("bad parameters are refused with clear messages") {
  SUBCASE("final_sparsity out of range: the core's schema check") {
    Params p = magnitude_params("cubic");
    p["final_sparsity"] = 1.5;
    CHECK(message_of<modkit::ValueError>([&] { make_modifier("MagnitudePruningModifier", p); })
              .rfind("MagnitudePruningModifier parameter 'final_sparsity': 1.5 is out of range [0, 1]", 0) == 0);
  }
  SUBCASE("unknown scheduler: the core's choices check") {
    Params p = magnitude_params("quadratic");
    CHECK(message_of<modkit::ValueError>([&] { make_modifier("MagnitudePruningModifier", p); })
              .rfind("MagnitudePruningModifier parameter 'update_scheduler': \"quadratic\" is not one of", 0) == 0);
  }
  SUBCASE("missing init_sparsity") {
    Params p = magnitude_params("cubic");
    p.erase("init_sparsity");
    CHECK(message_of<modkit::ValueError>([&] { make_modifier("MagnitudePruningModifier", p); })
              .rfind("MagnitudePruningModifier is missing required parameter 'init_sparsity'", 0) == 0);
  }
  SUBCASE("mask_structure 3:2: the plugin's message") {
    Params p = magnitude_params("cubic");
    p["mask_structure"] = "3:2";
    const std::string m = message_of<modkit::PluginError>([&] { make_modifier("MagnitudePruningModifier", p); });
    CHECK(m == "MagnitudePruningModifier.create failed: mask_structure '3:2': expected 'unstructured', '0:0' or "
               "'N:M' with 0 < N < M (prune N of every M consecutive weights, e.g. '2:4'), found N=3 and M=2");
  }
  SUBCASE("mask_structure that is not N:M") {
    Params p = magnitude_params("cubic");
    p["mask_structure"] = "2-4";
    CHECK(message_of<modkit::PluginError>([&] { make_modifier("MagnitudePruningModifier", p); })
              .find("mask_structure '2-4': expected 'unstructured', '0:0' or 'N:M'") != std::string::npos);
  }
  SUBCASE("update 0") {
    Params p = magnitude_params("cubic");
    p["update"] = 0;
    CHECK(message_of<modkit::PluginError>([&] { make_modifier("MagnitudePruningModifier", p); })
              .find("update: expected a value greater than 0, found 0") != std::string::npos);
  }
  SUBCASE("end before start") {
    Params p = magnitude_params("cubic");
    p["end"] = 1;
    CHECK(message_of<modkit::PluginError>([&] { make_modifier("MagnitudePruningModifier", p); })
              .find("end: expected a value greater than start (2), found 1") != std::string::npos);
  }
}

TEST_CASE("targets that match nothing are named in the error") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 37));
  Params p = magnitude_params("cubic");
  p["targets"] = {"Conv2d", "re:.*q_proj"};
  const std::string m = message_of<modkit::PluginError>([&] { run.initialize(make_modifier("MagnitudePruningModifier", p)); });
  CHECK(m == "MagnitudePruningModifier.on_initialize failed: targets [\"Conv2d\", \"re:.*q_proj\"] match no module");
  CHECK_FALSE(run.session.initialized());
}
