// Tests of the calibration pipelines: which forwards run, what hooks see, and when the session hears of it.
#include <modkit/core/session.hpp>
#include <modkit/torch/pipeline.hpp>
#include <modkit/torch/targets.hpp>
#include <modkit/torch/demo_models.hpp>

#include "torch_test_support.hpp"

#include <ATen/core/Tensor.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/randn.h>

#include <map>
#include <string>
#include <vector>

using modkit::CalibrationData;
using modkit::EventType;
using modkit::HookCall;
using modkit::HookKind;
using modkit::Model;
using modkit::PipelineKind;
using modkit::PipelineRun;
namespace models = modkit::demo_models;

namespace {

// A host-side modifier that hooks the Linear modules, counts the forwards they
// see, keeps the last input of each and "compresses" (halves) a module's
// weight at the epoch end that names it, as GPTQ would.
class Recorder final : public modkit::Modifier {
 public:
  std::map<std::string, int> calls;  // forwards seen per module
  std::map<std::string, at::Tensor> last_input;
  std::vector<std::vector<std::string>> epochs;  // the modules of each SEQUENTIAL_EPOCH_END
  std::vector<std::string> log;                  // events and compressions in order
  std::map<std::string, int> calls_at_compression;

  std::string type_name() const override { return "Recorder"; }

 protected:
  bool on_initialize(modkit::State& state) override {
    Model* model = Model::from_handle(state.model);
    for (const auto& m : modkit::match_modules(*model, {"Linear"}, {})) {
      model->add_hook(m.name, HookKind::ForwardPre, [this](const HookCall& c) {
        ++calls[c.module];
        last_input[c.module] = c.inputs[0].toTensor().clone();
      });
    }
    return true;
  }
  void on_event(modkit::State& state, const modkit::Event& e) override {
    if (e.type == EventType::CalibrationStart) log.push_back("start");
    if (e.type == EventType::CalibrationEnd) log.push_back("end");
    if (e.type != EventType::SequentialEpochEnd) return;
    epochs.push_back(e.modules);
    Model* model = Model::from_handle(state.model);
    for (const std::string& m : e.modules) {
      if (calls.count(m) == 0) continue;
      model->get_tensor(m, "weight").mul_(0.5);
      calls_at_compression[m] = calls[m];
      log.push_back("compress " + m);
    }
  }
};

struct Fixture {
  Model model{models::make_tiny_transformer(3, 16, 11)};
  CalibrationData data = CalibrationData::synthetic(4, {2, 5, 16}, 3);
  Recorder* recorder = nullptr;
  modkit::Session session;

  Fixture() {
    modkit::State state;
    state.host = Model::host();
    state.model = model.handle();
    session = modkit::Session(state);
    modkit::StageModifiers stage;
    auto r = std::make_unique<Recorder>();
    recorder = r.get();
    stage.modifiers.push_back(std::move(r));
    std::vector<modkit::StageModifiers> stages;
    stages.push_back(std::move(stage));
    session.initialize(std::move(stages));
  }

  std::vector<std::string> all_modules() const {
    std::vector<std::string> out;
    for (const auto& m : model.modules()) out.push_back(m.name);
    return out;
  }

  modkit::PipelineReport run(PipelineKind kind, std::vector<std::string> sequential_targets = {}) {
    PipelineRun r;
    r.model = &model;
    r.session = &session;
    r.data = &data;
    r.modules = all_modules();
    r.sequential_targets = std::move(sequential_targets);
    return modkit::run_pipeline(kind, r);
  }

  // The input `module` receives in a full forward of the current model on `sample`.
  at::Tensor input_in_full_forward(const std::string& module, size_t sample) {
    at::Tensor seen;
    const auto id = model.add_hook(module, HookKind::ForwardPre, [&](const HookCall& c) { seen = c.inputs[0].toTensor().clone(); });
    const auto others = model.disable_hooks({id});
    model.forward(data.samples[sample].args);
    Model::remove_hook(id);
    return seen;
  }
};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

TEST_CASE("the basic pipeline runs every sample through the whole model, then one epoch end") {
  Fixture f;
  const auto report = f.run(PipelineKind::Basic);
  CHECK(report.kind == PipelineKind::Basic);
  CHECK(report.samples == 4);
  REQUIRE(f.recorder->epochs.size() == 1);
  CHECK(f.recorder->epochs[0] == f.all_modules());
  CHECK(f.recorder->calls.size() == 19);  // 3 layers x 6 Linear, and lm_head
  for (const auto& [module, n] : f.recorder->calls) CHECK_MESSAGE(n == 4, module);
  CHECK(f.recorder->log.front() == "start");
  CHECK(f.recorder->log.back() == "end");
}

TEST_CASE("the sequential pipeline calibrates block by block on the compressed outputs of the blocks before") {
  Fixture f;
  const auto report = f.run(PipelineKind::Sequential);
  CHECK(report.kind == PipelineKind::Sequential);
  CHECK(report.blocks == std::vector<std::string>{"layers.0", "layers.1", "layers.2"});
  CHECK(report.note.empty());
  Recorder& r = *f.recorder;

  // one epoch end per block with that block's modules, then the modules outside the blocks
  REQUIRE(r.epochs.size() == 4);
  for (int b = 0; b < 3; ++b) {
    const std::string prefix = "layers." + std::to_string(b);
    CHECK(r.epochs[b].front() == prefix);
    for (const std::string& m : r.epochs[b]) CHECK_MESSAGE((m == prefix || starts_with(m, prefix + ".")), m);
  }
  CHECK(r.epochs[3] == std::vector<std::string>{"norm", "lm_head"});  // the blocks' ancestors are not outside them

  // each module saw every sample exactly once, all before it was compressed
  for (const auto& [module, n] : r.calls) {
    CHECK_MESSAGE(n == 4, module);
    CHECK_MESSAGE(r.calls_at_compression[module] == 4, module);
  }
  // compression follows block order
  std::vector<std::string> compressed;
  for (const std::string& line : r.log) {
    if (starts_with(line, "compress ")) compressed.push_back(line.substr(9));
  }
  REQUIRE(compressed.size() == 19);
  CHECK(compressed.front() == "layers.0.self_attn.q_proj");
  CHECK(compressed.back() == "lm_head");

  // layers.1 was calibrated on the output of the compressed layers.0: the inputs
  // its modules saw are what a full forward of the final model gives them
  // (layers.1's own compression changes nothing upstream of its q_proj).
  CHECK(at::allclose(r.last_input["layers.1.self_attn.q_proj"], f.input_in_full_forward("layers.1.self_attn.q_proj", 3),
                     1e-5, 1e-6));
  CHECK(at::allclose(r.last_input["lm_head"], f.input_in_full_forward("lm_head", 3), 1e-5, 1e-6));
  // ...and not what the uncompressed model would give
  Model fresh(models::make_tiny_transformer(3, 16, 11));
  at::Tensor uncompressed;
  const auto id = fresh.add_hook("layers.1.self_attn.q_proj", HookKind::ForwardPre,
                                 [&](const HookCall& c) { uncompressed = c.inputs[0].toTensor().clone(); });
  fresh.forward(f.data.samples[3].args);
  Model::remove_hook(id);
  CHECK_FALSE(at::allclose(r.last_input["layers.1.self_attn.q_proj"], uncompressed, 1e-3, 1e-4));
}

TEST_CASE("sequential_targets choose the blocks") {
  Fixture f;
  const auto report = f.run(PipelineKind::Sequential, {"DecoderLayer"});
  CHECK(report.blocks == std::vector<std::string>{"layers.0", "layers.1", "layers.2"});
  CHECK(f.recorder->epochs.size() == 4);
  Fixture g;
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] { g.run(PipelineKind::Sequential, {"re:layers\\.[02]$"}); }) ==
        std::string("sequential pipeline: the input of block 'layers.2' is not the output of 'layers.0', expected a "
                    "model built as a sequence of blocks: set sequential_targets to blocks that feed each other, or "
                    "use the basic pipeline"));
}

TEST_CASE("blocks that do not follow each other are refused before any epoch end") {
  Fixture f;
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] {
          f.run(PipelineKind::Sequential, {"re:layers\\.[02]\\.mlp$", "layers.1"});
        }) == std::string("sequential pipeline: the input of block 'layers.1' is not the output of 'layers.0.mlp', "
                          "expected a model built as a sequence of blocks: set sequential_targets to blocks that "
                          "feed each other, or use the basic pipeline"));
  CHECK(f.recorder->epochs.empty());
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] { f.run(PipelineKind::Sequential, {"Conv2d"}); }) ==
        std::string("sequential_targets [\"Conv2d\"] match no module of the model"));
}

TEST_CASE("a model without blocks runs the basic pipeline and says so") {
  Model model(models::make_mlp(4, 8, 2, 3));
  modkit::State state;
  state.host = Model::host();
  state.model = model.handle();
  modkit::Session session(state);
  session.initialize(std::vector<modkit::StageModifiers>{});
  const CalibrationData data = CalibrationData::synthetic(2, {3, 4}, 1);
  PipelineRun run;
  run.model = &model;
  run.session = &session;
  run.data = &data;
  const auto report = modkit::run_pipeline(PipelineKind::Sequential, run);
  CHECK(report.kind == PipelineKind::Basic);
  CHECK(report.note ==
        "no blocks found (no ModuleList or Sequential with two or more children; set sequential_targets): ran the "
        "basic pipeline");
}

TEST_CASE("samples the model rejects are named, and calibrating pipelines need samples") {
  Fixture f;
  f.data.samples[2].args[0] = at::randn({2, 5, 9});
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] { f.run(PipelineKind::Basic); }) ==
        std::string("calibration sample 2 of '<synthetic: 4 x [2, 5, 16]>' does not fit the model: Expected weight "
                    "to be of same shape as normalized_shape, but got weight of shape [16] and normalized_shape = [9]"));
  Fixture s;
  s.data.samples[2].args[0] = at::randn({2, 5, 9});
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] { s.run(PipelineKind::Sequential); }) ==
        std::string("calibration sample 2 of '<synthetic: 4 x [2, 5, 16]>' does not fit block 'layers.0' of the model: "
                    "Expected weight to be of same shape as normalized_shape, but got weight of shape [16] and "
                    "normalized_shape = [9]"));
  Fixture g;
  g.data.samples.clear();
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([&] { g.run(PipelineKind::Sequential); }) ==
        std::string("the sequential pipeline needs calibration samples, found none (give calibration data, e.g. "
                    "modkit apply --calib FILE)"));
}

TEST_CASE("the datafree pipeline runs no forward") {
  Fixture f;
  const auto report = f.run(PipelineKind::Datafree);
  CHECK(report.samples == 0);
  CHECK(f.recorder->calls.empty());
  CHECK(f.recorder->epochs.size() == 1);
  CHECK(modkit::parse_pipeline("basic") == PipelineKind::Basic);
  CHECK(modkit::testing::thrown_message<modkit::ValueError>([] { modkit::parse_pipeline("independent"); }) ==
        std::string("unknown pipeline 'independent', expected one of datafree, basic, sequential"));
}
