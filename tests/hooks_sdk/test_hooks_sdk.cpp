// Tests of the SDK's hooks through a real plugin: registration, what hooks see in each pipeline, removal, failures.
#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/core/signals.hpp>
#include <modkit/torch/oneshot.hpp>
#include <modkit/torch/demo_models.hpp>

#include <ATen/core/Tensor.h>
#include <doctest/doctest.h>

#include "child_process.hpp"
#include "plugin_harness.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using modkit::CalibrationData;
using modkit::Model;
using modkit::PipelineKind;

namespace {

modkit::ModifierFactory& factory() {
  static modkit::ModifierFactory f([] {
    modkit::FactoryOptions o;
    o.plugin_dirs = {MODKIT_PROBE_PLUGIN_DIR};
    o.use_environment = false;
    o.use_install_dir = false;
    return o;
  }());
  static const bool refreshed = (f.refresh(), true);
  (void)refreshed;
  return f;
}

modkit::Recipe probe_recipe(const std::string& fail_on = "", bool keep_hooks = false) {
  return modkit::Recipe::parse_toml("[[stage]]\nname = \"probe\"\n[[stage.modifiers]]\ntype = \"HookProbeModifier\"\n"
                                    "fail_on = \"" + fail_on + "\"\nkeep_hooks = " + (keep_hooks ? "true" : "false") + "\n",
                                    "probe.toml");
}

// oneshot's options for calibrating on `data` (with `pipeline` forced when given).
modkit::OneshotOptions calibrating_on(const CalibrationData& data, std::optional<PipelineKind> pipeline = std::nullopt) {
  modkit::OneshotOptions options;
  options.calibration = &data;
  options.pipeline = pipeline;
  return options;
}

// [forwards before, forwards after, rows seen, output sum, epoch-end order] of a probed module.
std::vector<double> probe(const Model& model, const std::string& module) {
  const at::Tensor t = model.get_tensor(module, "probe");
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

std::vector<std::string> linears(const Model& model) {
  std::vector<std::string> out;
  for (const auto& m : model.modules()) {
    if (m.class_name == "Linear") out.push_back(m.name);
  }
  return out;
}

using modkit::test::message_of;

}  // namespace

TEST_CASE("a plugin's hooks see every sample of the sequential pipeline, block by block, and are gone afterwards") {
  REQUIRE(factory().errors().empty());
  Model model(modkit::demo_models::make_tiny_transformer(3, 16, 2));
  const CalibrationData data = CalibrationData::synthetic(4, {2, 5, 16}, 9);
  const modkit::OneshotOptions options = calibrating_on(data);
  const auto stages = modkit::oneshot(model, probe_recipe(), factory(), options);
  REQUIRE(stages.size() == 1);
  CHECK(stages[0].pipeline == PipelineKind::Sequential);  // what HookProbeModifier declares
  CHECK(stages[0].blocks.size() == 3);
  CHECK(stages[0].samples == 4);
  CHECK(model.hook_count() == 0);

  for (const std::string& m : linears(model)) {
    const std::vector<double> p = probe(model, m);
    CHECK_MESSAGE(p[0] == 4, m);   // one forward per sample before its epoch end...
    CHECK_MESSAGE(p[1] == 4, m);   // ...and the forward hook after each
    CHECK_MESSAGE(p[2] == 40, m);  // 4 samples x 2 x 5 rows
    // block b's modules are compressed at epoch end b + 1; the head comes after the blocks
    const double expected = m == "lm_head" ? 4 : 1 + (m[7] - '0');
    CHECK_MESSAGE(p[4] == expected, m);
  }
  // lm_head computes the model's output, and the probe changes no weight
  double sum = 0;
  for (const auto& s : data.samples) sum += model.forward(s.args).toTensor().sum().item<double>();
  CHECK(probe(model, "lm_head")[3] == doctest::Approx(sum).epsilon(1e-4));
}

TEST_CASE("the basic pipeline runs the whole model once per sample") {
  Model model(modkit::demo_models::make_tiny_transformer(2, 16, 2));
  const CalibrationData data = CalibrationData::synthetic(3, {1, 4, 16}, 9);
  const modkit::OneshotOptions options = calibrating_on(data, PipelineKind::Basic);
  const auto stages = modkit::oneshot(model, probe_recipe(), factory(), options);
  CHECK(stages[0].pipeline == PipelineKind::Basic);
  for (const std::string& m : linears(model)) {
    CHECK_MESSAGE(probe(model, m)[0] == 3, m);
    CHECK_MESSAGE(probe(model, m)[4] == 1, m);  // one epoch end for every module
  }
}

TEST_CASE("hooks left registered are removed when the modifier finalizes") {
  Model model(modkit::demo_models::make_tiny_transformer(2, 16, 2));
  const CalibrationData data = CalibrationData::synthetic(2, {1, 4, 16}, 9);
  const modkit::OneshotOptions options = calibrating_on(data);
  modkit::Recipe recipe = probe_recipe("", true);
  std::vector<modkit::StageModifiers> stages = modkit::build_stages(recipe, factory());
  modkit::State state;
  state.host = Model::host();
  state.model = model.handle();
  modkit::Session session(state);
  session.initialize(std::move(stages));
  CHECK(model.hook_count() == 26);  // 13 Linear x (pre, post)
  modkit::PipelineRun run;
  run.model = &model;
  run.session = &session;
  run.data = &data;
  for (const auto& m : model.modules()) run.modules.push_back(m.name);
  modkit::run_pipeline(PipelineKind::Sequential, run);
  CHECK(model.hook_count() == 26);  // kept through the epoch ends
  session.finalize();
  CHECK(model.hook_count() == 0);
}

TEST_CASE("a calibrating stage without samples is refused before the model is touched") {
  Model model(modkit::demo_models::make_tiny_transformer(1, 16, 2));
  CHECK(message_of([&] { modkit::oneshot(model, probe_recipe(), factory()); }) ==
        "probe.toml:3:1: stage 'probe' needs calibration data: HookProbeModifier calibrates (pipeline 'sequential') "
        "(give calibration samples, e.g. modkit apply --calib FILE)");
  CHECK(model.hook_count() == 0);
}

TEST_CASE("a hook that fails stops the run with its message, and no hook outlives the run") {
  Model model(modkit::demo_models::make_tiny_transformer(2, 16, 2));
  const CalibrationData data = CalibrationData::synthetic(2, {1, 4, 16}, 9);
  const modkit::OneshotOptions options = calibrating_on(data);
  CHECK(message_of([&] { modkit::oneshot(model, probe_recipe("layers.1.mlp.fc1"), factory(), options); }) ==
        "probe.toml:1:1: stage 'probe': HookProbeModifier's forward-pre hook on 'layers.1.mlp.fc1' failed: probe refuses "
        "'layers.1.mlp.fc1'");
  CHECK(model.hook_count() == 0);
}

TEST_CASE("a plugin that crashes in a hook is named with the hook and the module") {
  const modkit::test::ChildResult r = modkit::test::in_child([] {
    modkit::install_signal_handlers("modkit");
    Model model(modkit::demo_models::make_tiny_transformer(2, 16, 2));
    const CalibrationData data = CalibrationData::synthetic(2, {1, 4, 16}, 9);
    const modkit::OneshotOptions options = calibrating_on(data);
    const modkit::Recipe recipe = modkit::Recipe::parse_toml(
        "[[stage]]\nname = \"probe\"\n[[stage.modifiers]]\ntype = \"HookProbeModifier\"\nabort_on = \"layers.1.mlp.fc1\"\n",
        "probe.toml");
    modkit::oneshot(model, recipe, factory(), options);
  });
  CHECK(r.signal == SIGABRT);
  CHECK(r.err == "modkit: aborted (SIGABRT) in HookProbeModifier's forward-pre hook on 'layers.1.mlp.fc1'\n");
}

TEST_CASE("hooks registered for a stage that runs no forward pass are reported, not silently idle") {
  Model model(modkit::demo_models::make_tiny_transformer(1, 16, 2));
  const CalibrationData data = CalibrationData::synthetic(2, {1, 4, 16}, 9);
  const modkit::OneshotOptions options = calibrating_on(data, PipelineKind::Datafree);
  const auto stages = modkit::oneshot(model, probe_recipe(), factory(), options);
  REQUIRE(stages.size() == 1);
  // two hooks on each of the 7 Linear modules
  CHECK(stages[0].pipeline_note ==
        "14 forward hooks were registered, but the datafree pipeline runs no forward pass, so they saw nothing (a "
        "modifier that calibrates declares the basic or sequential pipeline)");
}

TEST_CASE("a plugin that registers hooks but declares abi_min_minor 0 is told what to declare") {
  Model model(modkit::demo_models::make_tiny_transformer(1, 16, 2));
  const CalibrationData data = CalibrationData::synthetic(2, {1, 4, 16}, 9);
  const modkit::OneshotOptions options = calibrating_on(data);
  const modkit::Recipe recipe = modkit::Recipe::parse_toml(
      "[[stage]]\nname = \"s\"\n[[stage.modifiers]]\ntype = \"UnderDeclaredProbeModifier\"\n", "u.toml");
  CHECK(message_of([&] { modkit::oneshot(model, recipe, factory(), options); }) ==
        "u.toml:3:1: stage 's': UnderDeclaredProbeModifier.on_initialize failed: UnderDeclaredProbeModifier calls hook_add, a "
        "service of ABI 1.1, but declares abi_min_minor = 0: declare `static constexpr uint16_t abi_min_minor = 1;` "
        "in the class, so that older hosts refuse it at load");
  CHECK(model.hook_count() == 0);
}

TEST_CASE("sdk::CalibratingModifier compresses each unit once, at its block's epoch end, after reduce") {
  Model model(modkit::demo_models::make_tiny_transformer(3, 16, 2));
  const CalibrationData data = CalibrationData::synthetic(4, {2, 5, 16}, 9);
  const modkit::Recipe recipe = modkit::Recipe::parse_toml(
      "[[stage]]\nname = \"c\"\n[[stage.modifiers]]\ntype = \"CalibrationProbeModifier\"\n", "c.toml");
  modkit::oneshot(model, recipe, factory(), calibrating_on(data));
  CHECK(model.hook_count() == 0);
  std::vector<double> order;
  for (const std::string& m : linears(model)) {
    const at::Tensor t = model.get_tensor(m, "calibration");
    const std::vector<double> c(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
    CHECK_MESSAGE(c[0] == 4, m);   // the hook is gone once compressed: later blocks' forwards are not counted
    CHECK_MESSAGE(c[1] == 40, m);  // 4 samples x 2 x 5 rows
    CHECK_MESSAGE(c[2] == 1, m);   // reduce ran before compress
    order.push_back(c[3]);
  }
  // model order: each block's units are compressed at its epoch end, the head after the blocks
  for (size_t i = 0; i < order.size(); ++i) CHECK(order[i] == static_cast<double>(i + 1));
}

TEST_CASE("sdk::CalibratingModifier: units without data are an error at CALIBRATION_END, or warnings") {
  const CalibrationData data = CalibrationData::synthetic(2, {1, 4, 16}, 9);
  for (const bool require : {true, false}) {
    CAPTURE(require);
    Model model(modkit::demo_models::make_tiny_transformer(1, 16, 2));
    const modkit::Recipe recipe = modkit::Recipe::parse_toml(
        std::string("[[stage]]\nname = \"c\"\n[[stage.modifiers]]\ntype = \"CalibrationProbeModifier\"\n"
                    "require_data = ") + (require ? "true" : "false") + "\n",
        "c.toml");
    // the datafree pipeline runs no forward pass: no unit sees data
    const std::string error = message_of([&] {
      modkit::oneshot(model, recipe, factory(), calibrating_on(data, PipelineKind::Datafree));
    });
    CHECK(error == (require ? "c.toml:1:1: stage 'c': CalibrationProbeModifier.on_event failed: none of 7 units saw data" : ""));
    CHECK(model.hook_count() == 0);
    for (const std::string& m : linears(model)) {
      bool compressed = false;
      for (const auto& t : model.tensors(m)) compressed = compressed || t.name == "calibration";
      CHECK_MESSAGE(!compressed, m);
    }
  }
}
