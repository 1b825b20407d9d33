// Tests of sdk/examples/training_loop: real training steps through a session prune on schedule, hold the zeros, and still learn.
#include "training_loop.hpp"

#include <modkit/core/recipe.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

// The ramp of the recipe's MagnitudePruningModifier, read from the recipe the example runs.
struct Ramp {
  double init_sparsity, final_sparsity, start, end, update;

  explicit Ramp(const modkit::Params& p)
      : init_sparsity(p.at("init_sparsity").get<double>()),
        final_sparsity(p.at("final_sparsity").get<double>()),
        start(p.at("start").get<double>()),
        end(p.at("end").get<double>()),
        update(p.at("update").get<double>()) {}

  // The cubic schedule of plugins/magnitude_pruning/README.md, written out independently of the plugin.
  double sparsity_at(double t) const {
    const double p = std::clamp((t - start) / (end - start), 0.0, 1.0);
    return final_sparsity + (init_sparsity - final_sparsity) * std::pow(1.0 - p, 3);
  }

  // The sparsity in force after step t: none before start, s at the last update
  // (start + k * update) during the ramp, final_sparsity from end on.
  double in_force(int64_t t) const {
    if (t < start) return 0.0;
    if (t >= end) return final_sparsity;
    return sparsity_at(start + std::floor((t - start) / update) * update);
  }
};

int64_t zeros_for(double sparsity, int64_t numel) {
  return static_cast<int64_t>(std::llround(sparsity * static_cast<double>(numel)));
}

modkit::Recipe example_recipe() {
  return modkit::Recipe::parse_toml(training_loop::default_recipe_toml(), "<built-in recipe>");
}

training_loop::Options options_for(modkit::Recipe recipe) {
  training_loop::Options options;
  options.recipe = std::move(recipe);
  options.plugin_dirs = {MODKIT_TEST_PLUGIN_DIR};
  options.default_plugin_dirs = false;
  options.seed = 0;
  return options;
}

// The example's run with its own recipe, shared by the test cases (it is deterministic).
const training_loop::Result& example_run() {
  static const training_loop::Result result = training_loop::train(options_for(example_recipe()));
  return result;
}

const modkit::Params& magnitude_params(const modkit::Recipe& recipe) {
  REQUIRE(recipe.stages.size() == 2);
  REQUIRE(recipe.stages[0].modifiers.size() == 1);
  REQUIRE(recipe.stages[0].modifiers[0].type == "MagnitudePruningModifier");
  return recipe.stages[0].modifiers[0].params;
}

}  // namespace

TEST_CASE("the example's recipe ramps with MagnitudePruningModifier and holds with ConstantPruningModifier from the end of the ramp") {
  const modkit::Recipe recipe = example_recipe();
  const Ramp ramp(magnitude_params(recipe));
  CHECK(recipe.stages[0].modifiers[0].params.at("update_scheduler") == "cubic");
  CHECK(recipe.stages[0].modifiers[0].params.at("leave_enabled") == false);
  REQUIRE(recipe.stages[1].modifiers.size() == 1);
  CHECK(recipe.stages[1].modifiers[0].type == "ConstantPruningModifier");
  CHECK(recipe.stages[1].modifiers[0].params.at("start").get<double>() == ramp.end);
  CHECK(ramp.start > 0);
  CHECK(ramp.end + 100 <= training_loop::Options{}.steps);  // training goes on well after the ramp
}

TEST_CASE("every step's count of zeros per layer follows the cubic schedule") {
  const Ramp ramp(magnitude_params(example_recipe()));
  const auto& run = example_run();
  REQUIRE(run.steps.size() == 300);
  REQUIRE(run.layers.size() == 2);
  CHECK(run.layers[0].name == "fc1");
  CHECK(run.layers[0].numel == 64 * 16);
  CHECK(run.layers[1].name == "fc2");
  CHECK(run.layers[1].numel == 4 * 64);

  SUBCASE("at chosen steps") {
    const int64_t start = static_cast<int64_t>(ramp.start), end = static_cast<int64_t>(ramp.end);
    const int64_t update = static_cast<int64_t>(ramp.update);
    for (const int64_t t : {start - 1, start, start + 1, start + update - 1, start + update, start + 3 * update,
                            start + 5 * update + 3, end - 1, end, end + 1, int64_t{299}}) {
      for (size_t i = 0; i < run.layers.size(); ++i) {
        CAPTURE(t);
        CAPTURE(run.layers[i].name);
        CHECK(run.steps[t].zeros[i] == zeros_for(ramp.in_force(t), run.layers[i].numel));
      }
    }
    // Spelled out for fc1 (1024 weights): 10 % at start, 70 % from end on.
    CHECK(run.steps[start - 1].zeros[0] == 0);
    CHECK(run.steps[start].zeros[0] == 102);
    CHECK(run.steps[end].zeros[0] == 717);
    // Half way through the ramp the cubic schedule is at s_f + (s_i - s_f) / 8 = 0.625.
    CHECK(ramp.sparsity_at((ramp.start + ramp.end) / 2) == doctest::Approx(0.625));
    CHECK(run.steps[(start + end) / 2].zeros[0] == zeros_for(0.625, 1024));
  }

  SUBCASE("at every step") {
    int mismatches = 0;
    for (const auto& s : run.steps) {
      for (size_t i = 0; i < run.layers.size(); ++i) {
        if (s.zeros[i] != zeros_for(ramp.in_force(s.step), run.layers[i].numel)) {
          ++mismatches;
          MESSAGE("step " << s.step << " " << run.layers[i].name << ": " << s.zeros[i] << " zeros, expected "
                          << zeros_for(ramp.in_force(s.step), run.layers[i].numel));
        }
      }
    }
    CHECK(mismatches == 0);
  }

  SUBCASE("the zero pattern changes only at mask updates") {
    for (const auto& s : run.steps) {
      const bool update_step = s.step >= ramp.start && s.step <= ramp.end &&
                               std::fmod(static_cast<double>(s.step) - ramp.start, ramp.update) == 0;
      if (update_step) continue;
      for (size_t i = 0; i < run.layers.size(); ++i) {
        CAPTURE(s.step);
        CAPTURE(run.layers[i].name);
        CHECK(s.flipped[i] == 0);
      }
    }
  }
}

TEST_CASE("after the ramp the sparsity stays at final_sparsity while training keeps changing the weights") {
  const Ramp ramp(magnitude_params(example_recipe()));
  const auto& run = example_run();
  const size_t end = static_cast<size_t>(ramp.end);
  for (size_t i = 0; i < run.layers.size(); ++i) {
    CAPTURE(run.layers[i].name);
    const int64_t expected = zeros_for(ramp.final_sparsity, run.layers[i].numel);
    int held = 0, moved = 0;
    for (size_t t = end; t < run.steps.size(); ++t) {
      const auto& s = run.steps[t];
      // The final mask lands at end itself; from then on no element changes state.
      if (s.zeros[i] == expected && (t == end || s.flipped[i] == 0)) ++held;
      else if (held == static_cast<int>(t - end)) {  // report the first step that breaks it
        MESSAGE("step " << t << ": " << s.zeros[i] << " zeros (" << s.flipped[i] << " flipped), expected "
                        << expected << " and none flipped");
      }
      // Training went on: the surviving weights moved at every step.
      if (t > end && s.moved[i] > 0) ++moved;
    }
    CHECK(held == static_cast<int>(run.steps.size() - end));
    CHECK(moved == static_cast<int>(run.steps.size() - end - 1));
  }
  // The loss kept falling after the ramp (pruning costs some of it; training wins it back).
  double at_end = 0, last = 0;
  for (size_t t = end; t < end + 10; ++t) at_end += run.steps[t].loss / 10;
  for (size_t t = run.steps.size() - 10; t < run.steps.size(); ++t) last += run.steps[t].loss / 10;
  MESSAGE("mean training loss " << at_end << " at the end of the ramp, " << last << " at the last steps");
  CHECK(last < at_end);
}

TEST_CASE("the pruned model still learns the task") {
  const auto& run = example_run();
  MESSAGE("evaluation loss " << run.initial_loss << " before, " << run.final_loss << " after training");
  CHECK(std::isfinite(run.final_loss));
  CHECK(run.final_loss < 0.5 * run.initial_loss);
  // Also on the training batches: the last ten steps against the first.
  double last10 = 0;
  for (size_t t = run.steps.size() - 10; t < run.steps.size(); ++t) last10 += run.steps[t].loss / 10;
  CHECK(last10 < 0.5 * run.steps.front().loss);
}

TEST_CASE("without ConstantPruningModifier the optimizer revives pruned weights once the ramp ends") {
  // The same ramp alone (leave_enabled = false, as llmcompressor): nothing puts the zeros back after end,
  // which is what the "hold" stage of the example's recipe is for.
  modkit::Recipe recipe = example_recipe();
  recipe.stages.pop_back();
  const Ramp ramp(recipe.stages[0].modifiers[0].params);
  training_loop::Options options = options_for(recipe);
  options.steps = static_cast<int64_t>(ramp.end) + 5;
  const training_loop::Result run = training_loop::train(options);
  const size_t end = static_cast<size_t>(ramp.end);
  for (size_t i = 0; i < run.layers.size(); ++i) {
    CAPTURE(run.layers[i].name);
    const int64_t expected = zeros_for(ramp.final_sparsity, run.layers[i].numel);
    CHECK(run.steps[end - 1].zeros[i] == zeros_for(ramp.in_force(static_cast<int64_t>(end) - 1), run.layers[i].numel));
    CHECK(run.steps.back().zeros[i] < expected / 2);
  }
}
