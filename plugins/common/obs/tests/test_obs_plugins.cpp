// Tests of GPTQModifier and SparseGPTModifier loaded from the build tree's plugins and run on TorchScript models through their hooks.
#include "plugin_harness.hpp"

#include <modkit/core/errors.hpp>
#include <modkit/core/recipe.hpp>
#include <modkit/core/session.hpp>
#include <modkit/plugin_obs/obs.hpp>
#include <modkit/plugin_quant/quant.hpp>
#include <modkit/plugin_quant/scheme.hpp>
#include <modkit/torch/calibration.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/oneshot.hpp>
#include <modkit/torch/demo_models.hpp>

#include "tensor_operators.hpp"
#include <ATen/ops/allclose.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/randn.h>
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using modkit::EventType;
using modkit::Model;
using modkit::Params;
namespace obs = modkit::obs;
namespace q = modkit::quant;
namespace models = modkit::demo_models;

namespace {

// Every message the plugins log, through a copy of the model host whose log records them.
std::vector<std::string>& logged() {
  static std::vector<std::string> lines;
  return lines;
}
const modkit_host* recording_host() {
  static const modkit_host host = [] {
    modkit_host h = *Model::host();
    h.log = [](const modkit_host*, int32_t level, const char* source, const char* message) {
      logged().push_back(std::to_string(level) + " " + source + ": " + message);
    };
    return h;
  }();
  return &host;
}

// The shared harness over the recording host: the plugin driven through the calibration events.
struct Run : modkit::test::PluginRun {
  explicit Run(torch::jit::Module m) : PluginRun(std::move(m), recording_host()) { logged().clear(); }
};

// What a module's forward-pre hook sees, accumulated the way the plugins do, until stopped.
class Inputs {
 public:
  Inputs(Model& model, const std::string& module) {
    id_ = model.add_hook(module, modkit::HookKind::ForwardPre, [this](const modkit::HookCall& c) {
      if (!hessian_) hessian_ = std::make_unique<obs::Hessian>(c.inputs.at(0).toTensor().size(-1));
      hessian_->add(c.inputs.at(0).toTensor());
    });
  }
  ~Inputs() { stop(); }
  void stop() {
    Model::remove_hook(id_);
    id_ = 0;
  }
  at::Tensor hessian() { return hessian_->take_symmetric(); }

 private:
  modkit::HookId id_ = 0;
  std::unique_ptr<obs::Hessian> hessian_;
};

using modkit::test::message_of;

bool has_tensor(const Model& model, const std::string& module, const std::string& name) {
  for (const auto& t : model.tensors(module)) {
    if (t.name == name) return true;
  }
  return false;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("the calibration plugins are discovered and declare the sequential pipeline") {
  for (const char* type : {"GPTQModifier", "SparseGPTModifier"}) {
    const auto info = modkit::test::built_plugins().find(type);
    REQUIRE(info);
    CHECK_FALSE(info->experimental);
  }
}

TEST_CASE("GPTQModifier quantizes each block when the pipeline says it was calibrated, as the library does on the same inputs") {
  Run run(models::make_tiny_transformer(2, 128, 3));
  const std::string first = "layers.0.mlp.fc1", second = "layers.1.self_attn.q_proj";
  const at::Tensor w_first = run.weight(first).clone(), w_second = run.weight(second).clone();
  Inputs in_first(*run.model, first), in_second(*run.model, second);
  run.start("GPTQModifier", Params{{"scheme", "W4A16"}, {"ignore", std::vector<std::string>{"lm_head"}}});
  at::manual_seed(5);
  for (int i = 0; i < 3; ++i) run.forward(at::randn({2, 16, 128}));
  in_first.stop();
  run.session.event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, run.block("layers.0"));
  CHECK_FALSE(at::equal(run.weight(first), w_first));  // block 0 is done
  CHECK(at::equal(run.weight(second), w_second));      // block 1 waits for its event
  const int64_t hooks_after_block0 = run.model->hook_count();
  for (int i = 0; i < 2; ++i) run.forward(at::randn({2, 16, 128}));  // block 0 accumulates no more
  run.session.event(EventType::CalibrationEnd);
  run.session.finalize();
  CHECK(run.model->hook_count() < hooks_after_block0);

  obs::GptqOptions o;
  o.args = q::preset("W4A16").weights;
  o.args.actorder = q::ActOrder::Weight;  // the plugin's default for group schemes ("static")
  const obs::GptqResult expected_first = obs::gptq_quantize(w_first, in_first.hessian(), o, nullptr);
  const obs::GptqResult expected_second = obs::gptq_quantize(w_second, in_second.hessian(), o, nullptr);
  CHECK(at::equal(run.weight(first), expected_first.weight));
  CHECK(at::equal(run.weight(second), expected_second.weight));
  CHECK(at::equal(run.model->get_tensor(first, "weight_scale"), expected_first.qparams.scale));
  CHECK(at::equal(run.model->get_tensor(first, "weight_zero_point"), expected_first.qparams.zero_point));
  CHECK(at::equal(run.model->get_tensor(first, "weight_quant_args"), q::args_buffer(o.args)));
  // every targeted Linear except lm_head got its quantization buffers
  for (const modkit::ModuleInfo& m : run.model->modules()) {
    if (m.class_name != "Linear") continue;
    CHECK(has_tensor(*run.model, m.name, "weight_scale") == (m.name != "lm_head"));
  }
  bool logged_first = false;
  for (const std::string& line : logged()) logged_first = logged_first || contains(line, first + ": weight int4 symmetric group 128, actorder weight");
  CHECK(logged_first);
}

TEST_CASE("GPTQModifier with actorder group stores weight_g_idx, the group of every input column") {
  Run run(models::make_tiny_transformer(1, 128, 4));
  const std::string fc2 = "layers.0.mlp.fc2";
  run.start("GPTQModifier",
                 Params{{"config_groups", Params::object({{"g", Params::object({{"targets", std::vector<std::string>{"re:.*mlp.*"}},
                                                                                {"weights", Params::object({{"num_bits", 4}, {"strategy", "group"}, {"group_size", 64}, {"actorder", "group"}})}})}})}});
  at::manual_seed(6);
  for (int i = 0; i < 4; ++i) run.forward(at::randn({1, 32, 128}));
  run.session.event(EventType::CalibrationEnd);
  run.session.finalize();
  const at::Tensor g = run.model->get_tensor(fc2, "weight_g_idx");
  REQUIRE(g.numel() == 256);
  CHECK((g.scalar_type() == at::kInt));
  CHECK(at::equal(at::bincount(g.to(at::kLong)), at::full({4}, 64, at::kLong)));  // 4 groups of 64 columns
  CHECK_FALSE(at::equal(g, at::arange(256, at::kInt).div(64, "floor")));     // permuted by activation order
  // each column is on the grid of its group's scale
  const at::Tensor w = run.weight(fc2), s = run.model->get_tensor(fc2, "weight_scale").to(at::kFloat);
  const at::Tensor ratio = w / s.index_select(1, g.to(at::kLong));
  CHECK(at::allclose(ratio, ratio.round(), 0, 1e-3));
}

TEST_CASE("SparseGPTModifier prunes to llmcompressor's counts: 50 % per block plus one, or exactly 2 of every 4") {
  for (const char* structure : {"0:0", "2:4"}) {
    CAPTURE(std::string(structure));
    Run run(models::make_tiny_transformer(1, 128, 5));
    const std::string fc2 = "layers.0.mlp.fc2";  // 128 x 256: two blocks of 128 columns
    const at::Tensor w0 = run.weight(fc2).clone();
    Inputs inputs(*run.model, fc2);
    run.start("SparseGPTModifier", Params{{"mask_structure", structure}, {"targets", std::vector<std::string>{"re:.*mlp.*"}}});
    at::manual_seed(7);
    for (int i = 0; i < 4; ++i) run.forward(at::randn({2, 16, 128}));
    run.session.event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, run.block("layers.0"));
    run.session.event(EventType::CalibrationEnd);
    run.session.finalize();
    const at::Tensor w = run.weight(fc2);
    if (std::string(structure) == "0:0") {
      CHECK(w.eq(0).sum().item<int64_t>() == 2 * (128 * 128 / 2 + 1));
    } else {
      const at::Tensor zeros = w.eq(0).reshape({128, 64, 4}).sum(2);
      CHECK(at::equal(zeros, at::full_like(zeros, 2)));
    }
    obs::SparseGptOptions o;
    o.prune_n = std::string(structure) == "2:4" ? 2 : 0;
    o.prune_m = std::string(structure) == "2:4" ? 4 : 0;
    CHECK(at::equal(w, obs::sparsegpt_prune(w0, inputs.hessian(), o, nullptr).weight));
    CHECK(run.weight("layers.0.self_attn.q_proj").eq(0).sum().item<int64_t>() == 0);  // not targeted
  }
}

TEST_CASE("GPTQ after SparseGPT 2:4 through modkit::oneshot's sequential pipeline keeps the 2:4 zeros") {
  Model model(models::make_tiny_transformer(2, 128, 8));
  const modkit::Recipe recipe = modkit::Recipe::parse_toml(R"(
[[stage]]
name = "sparsity"
  [[stage.modifiers]]
  type = "SparseGPTModifier"
  mask_structure = "2:4"
  ignore = ["lm_head"]
[[stage]]
name = "quantization"
  [[stage.modifiers]]
  type = "GPTQModifier"
  scheme = "W4A16"
  ignore = ["lm_head"]
)");
  const modkit::CalibrationData data = modkit::CalibrationData::synthetic(4, {1, 32, 128}, 9);
  modkit::OneshotOptions options;
  options.calibration = &data;
  const auto summaries = modkit::oneshot(model, recipe, modkit::test::built_plugins(), options);
  REQUIRE(summaries.size() == 2);
  for (const auto& s : summaries) {
    CHECK((s.pipeline == modkit::PipelineKind::Sequential));
    CHECK(s.blocks == std::vector<std::string>{"layers.0", "layers.1"});
  }
  for (const modkit::ModuleInfo& m : model.modules()) {
    if (m.class_name != "Linear" || m.name == "lm_head") continue;
    const at::Tensor w = model.get_tensor(m.name, "weight");
    const at::Tensor zeros = w.eq(0).reshape({w.size(0), -1, 4}).sum(2);
    CHECK_MESSAGE(zeros.ge(2).all().item<bool>(), m.name);  // GPTQ kept every pruned weight at zero
    CHECK(has_tensor(model, m.name, "weight_scale"));
  }
}

TEST_CASE("the calibration plugins name what is wrong with their input") {
  SUBCASE("a group size that does not divide in_features") {
    Run run(models::make_tiny_transformer(1, 96, 1));
    CHECK(contains(message_of([&] { run.start("GPTQModifier", Params{{"scheme", "W4A16"}}); }),
                   "group_size 128 of the scheme does not divide the in_features of 'layers.0.self_attn.q_proj' "
                   "(in_features 96)"));
  }
  SUBCASE("targets that match nothing") {
    Run run(models::make_tiny_transformer(1, 128, 1));
    CHECK(contains(message_of([&] { run.start("GPTQModifier", Params{{"scheme", "W8A16"}, {"targets", std::vector<std::string>{"Conv2d"}}}); }),
                   "targets [\"Conv2d\"] match no module with a weight"));
    Run run2(models::make_tiny_transformer(1, 128, 1));
    CHECK(contains(message_of([&] { run2.start("SparseGPTModifier", Params{{"targets", std::vector<std::string>{"Conv2d"}}}); }),
                   "targets [\"Conv2d\"] match no module"));
  }
  SUBCASE("a weight that is not 2-D") {
    Run run(models::make_tiny_transformer(1, 128, 1));
    CHECK(contains(message_of([&] { run.start("SparseGPTModifier", Params{{"targets", std::vector<std::string>{"LayerNorm"}}}); }),
                   "weight of 'layers.0.input_layernorm' has shape [128]: SparseGPTModifier prunes Linear weights"));
    Run run2(models::make_tiny_transformer(1, 128, 1));
    CHECK(contains(message_of([&] { run2.start("GPTQModifier", Params{{"scheme", "W8A16"}, {"targets", std::vector<std::string>{"LayerNorm"}}}); }),
                   "weight of 'layers.0.input_layernorm' has 1 dimension(s); the channel strategy needs"));
  }
  SUBCASE("mask structures that cannot work") {
    CHECK(contains(message_of([&] { modkit::test::built_plugins().create("SparseGPTModifier", true, false, Params{{"mask_structure", "4:2"}}); }),
                   "mask_structure '4:2': expected '0:0' (unstructured) or 'N:M' with 0 < N < M (prune N of every M "
                   "consecutive weights, e.g. '2:4'), found N=4 and M=2"));
    CHECK(contains(message_of([&] { modkit::test::built_plugins().create("SparseGPTModifier", true, false, Params{{"mask_structure", "2:128"}}); }),
                   "mask_structure '2:128': M = 128 is above 64, the largest group SparseGPTModifier prunes"));
    // llmcompressor's SparseGPT splits mask_structure at ':': "unstructured" is magnitude pruning's word only
    CHECK(contains(message_of([&] { modkit::test::built_plugins().create("SparseGPTModifier", true, false, Params{{"mask_structure", "unstructured"}}); }),
                   "mask_structure 'unstructured': expected '0:0' (unstructured) or 'N:M'"));
    CHECK(contains(message_of([&] { modkit::test::built_plugins().create("SparseGPTModifier", true, false, Params{{"mask_structure", "2:3"}}); }),
                   "block_size 128 is not a multiple of M = 3 of mask_structure '2:3'"));
    Run run(models::make_tiny_transformer(1, 96, 1));
    CHECK(contains(message_of([&] { run.start("SparseGPTModifier", Params{{"mask_structure", "2:64"}, {"block_size", 64}}); }),
                   "needs in_features that are a multiple of 64, found 96"));
  }
  SUBCASE("actorder that conflicts with a config group's") {
    CHECK(contains(message_of([&] {
                     modkit::test::built_plugins().create("GPTQModifier", true, false,
                                      Params{{"actorder", "weight"},
                                             {"config_groups", Params::object({{"g", Params::object({{"targets", std::vector<std::string>{"Linear"}},
                                                                                                    {"weights", Params::object({{"num_bits", 4}, {"group_size", 64}, {"actorder", "group"}})}})}})}});
                   }),
                   "actorder: cannot resolve activation ordering when both GPTQModifier.actorder and config group 'g'"));
    CHECK(contains(message_of([&] {
                     modkit::test::built_plugins().create("QuantizationModifier", true, false,
                                      Params{{"config_groups", Params::object({{"g", Params::object({{"targets", std::vector<std::string>{"Linear"}},
                                                                                                    {"weights", Params::object({{"num_bits", 4}, {"group_size", 64}, {"actorder", "group"}})}})}})}});
                   }),
                   "config_groups.g.weights.actorder: activation ordering needs calibration data (GPTQModifier)"));
  }
}

TEST_CASE("a hessian that needs more dampening is a warning in the log, not a failure") {
  Run run(models::make_tiny_transformer(1, 128, 2));
  run.start("SparseGPTModifier", Params{{"dampening_frac", 0.0}, {"targets", std::vector<std::string>{"layers.0.self_attn.v_proj"}}});
  // one token: a rank-one Hessian, not positive definite without dampening
  run.forward(at::randn({1, 1, 128}));
  run.session.event(EventType::CalibrationEnd);
  run.session.finalize();
  bool warned = false;
  for (const std::string& line : logged()) {
    warned = warned || (line.rfind("3 SparseGPTModifier: 'layers.0.self_attn.v_proj': hessian with dampening_frac 0 is not "
                                   "positive definite", 0) == 0 &&
                        contains(line, "retrying with dampening_frac 0.01"));
  }
  CHECK(warned);
  CHECK(run.weight("layers.0.self_attn.v_proj").eq(0).sum().item<int64_t>() == 128 * 64 + 1);
}
