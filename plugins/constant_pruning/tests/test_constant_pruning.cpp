// Tests of ConstantPruningModifier, loaded from the build tree's plugins and driven by a session over a TorchScript model.
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

}  // namespace

TEST_CASE("ConstantPruningModifier is discovered in the build tree's plugin directory") {
  const auto entry = modkit::test::built_plugins().find("ConstantPruningModifier");
  REQUIRE(entry);
  CHECK(entry->experimental == false);
}

TEST_CASE("constant pruning keeps an existing zero pattern") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 19));
  const at::NoGradGuard no_grad;
  // a pattern from an earlier pruning run: every third weight of fc1 is zero
  at::Tensor w = run.weight("fc1");
  w.view({-1}).slice(0, 0, w.numel(), 3).zero_();
  const at::Tensor pattern = w.eq(0);
  const int64_t zeros = pattern.sum().item<int64_t>();
  REQUIRE(zeros == (512 + 2) / 3);

  run.initialize(make_modifier("ConstantPruningModifier", Params{{"targets", "fc1"}}));
  for (int64_t t = 0; t < 3; ++t) {
    run.optimizer_step(t, kMlpLayers);
    CHECK(run.weight("fc1").eq(0).equal(pattern));
    CHECK(run.zeros("fc2") == 0);
  }
  run.session.finalize();
}

TEST_CASE("constant pruning stops at end unless leave_enabled") {
  for (const bool leave_enabled : {true, false}) {
    CAPTURE(leave_enabled);
    const at::NoGradGuard no_grad;
    Run run(modkit::demo_models::make_mlp(16, 32, 8, 23));
    run.weight("fc2").view({-1}).slice(0, 0, 100).zero_();
    run.initialize(make_modifier("ConstantPruningModifier",
                          Params{{"start", 1}, {"end", 3}, {"leave_enabled", leave_enabled}}));
    run.optimizer_step(0, kMlpLayers);  // before start: nothing recorded, nothing held
    CHECK(run.zeros("fc2") == 0);
    run.weight("fc2").view({-1}).slice(0, 0, 100).zero_();
    for (int64_t t = 1; t < 3; ++t) {
      run.optimizer_step(t, kMlpLayers);
      CHECK(run.zeros("fc2") == 100);
    }
    run.step(3);  // end
    run.optimizer_step(4, kMlpLayers);
    CHECK(run.zeros("fc2") == (leave_enabled ? 100 : 0));
  }
}

TEST_CASE("targets that match nothing are named in the error") {
  Run run(modkit::demo_models::make_mlp(16, 32, 8, 37));
  Params p = Params::object();
  p["targets"] = {"Conv2d", "re:.*q_proj"};
  const std::string m = message_of<modkit::PluginError>([&] { run.initialize(make_modifier("ConstantPruningModifier", p)); });
  CHECK(m == "ConstantPruningModifier.on_initialize failed: targets [\"Conv2d\", \"re:.*q_proj\"] match no module");
  CHECK_FALSE(run.session.initialized());
  Params q = Params{{"targets", "Linear"}, {"ignore", {"fc1", "fc2"}}};
  CHECK(message_of<modkit::PluginError>([&] { run.initialize(make_modifier("ConstantPruningModifier", q)); })
            .find("targets [\"Linear\"] match no module once ignore [\"fc1\", \"fc2\"] is applied") !=
        std::string::npos);
}
