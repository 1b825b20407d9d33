// The harness of the plugin tests (plugins/<name>/tests/): the build tree's plugins, a session over a model driven
// by hand through the lifecycle and calibration events, and the message of an expected exception.
#pragma once

#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/session.hpp>
#include <modkit/core/stage.hpp>
#include <modkit/torch/model.hpp>

#include <ATen/core/grad_mode.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/eq.h>
#include <ATen/ops/full.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/norm.h>
#include <ATen/ops/sub.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace modkit::test {

/// One factory over the build tree's plugin directory for the whole suite.
inline ModifierFactory& built_plugins() {
  static ModifierFactory factory([] {
    FactoryOptions options;
    options.plugin_dirs = {MODKIT_TEST_PLUGIN_DIR};
    options.use_environment = false;
    options.use_install_dir = false;
    return options;
  }());
  static const bool refreshed = (factory.refresh(), true);
  (void)refreshed;
  return factory;
}

/// A modifier of the build tree's plugins (experimental ones too).
inline std::unique_ptr<Modifier> make_modifier(const std::string& type, const Params& params = Params::object()) {
  return built_plugins().create(type, true, true, params);
}

/// A model and a session over it, driven by hand the way oneshot and a training loop drive
/// them: initialize, then training steps or the calibration events (CALIBRATION_START,
/// forwards, SEQUENTIAL_EPOCH_END with the modules just calibrated, CALIBRATION_END), then
/// finalize. The model never moves, so its handle stays valid.
struct PluginRun {
  std::unique_ptr<Model> model;
  Session session;

  explicit PluginRun(torch::jit::Module module, const modkit_host* host = Model::host())
      : model(std::make_unique<Model>(std::move(module))) {
    session.state().host = host;
    session.state().model = model->handle();
  }

  /// One stage holding `modifier`, initialized.
  void initialize(std::unique_ptr<Modifier> modifier) {
    StageModifiers stage;
    stage.group = "stage";
    stage.index = 0;
    stage.modifiers.push_back(std::move(modifier));
    std::vector<StageModifiers> stages;
    stages.push_back(std::move(stage));
    session.initialize(std::move(stages));
  }
  void initialize(const std::string& type, const Params& params) { initialize(make_modifier(type, params)); }

  /// initialize, then CALIBRATION_START.
  void start(std::unique_ptr<Modifier> modifier) {
    initialize(std::move(modifier));
    session.event(EventType::CalibrationStart);
  }
  void start(const std::string& type, const Params& params) { start(make_modifier(type, params)); }
  /// One forward of the whole model on `x` (hooks run).
  at::Tensor forward(const at::Tensor& x) const {
    const at::NoGradGuard no_grad;
    return model->forward({x}).toTensor();
  }
  void epoch_end(std::vector<std::string> modules) {
    session.event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, std::move(modules));
  }
  /// CALIBRATION_END, then finalize.
  void end() {
    session.event(EventType::CalibrationEnd);
    session.finalize();
  }

  /// One training step without an optimizer: BATCH_START, BATCH_END.
  void step(int64_t s) {
    session.event(EventType::BatchStart, s);
    session.event(EventType::BatchEnd, s);
  }
  /// One training step in which an "optimizer" moves every weight of `modules` (by 1e-3)
  /// between OPTIM_PRE_STEP and OPTIM_POST_STEP.
  void optimizer_step(int64_t s, const std::vector<std::string>& modules) {
    session.event(EventType::BatchStart, s);
    session.event(EventType::OptimPreStep, s);
    for (const auto& m : modules) {
      const at::NoGradGuard no_grad;
      at::Tensor w = weight(m);
      w.add_(at::full(w.sizes(), 1e-3, w.options()));
    }
    session.event(EventType::OptimPostStep, s);
    session.event(EventType::BatchEnd, s);
  }

  /// The live tensor (a view: it changes with the model).
  at::Tensor tensor(const std::string& module, const std::string& name = "weight") const {
    return model->get_tensor(module, name);
  }
  at::Tensor weight(const std::string& module) const { return tensor(module, "weight"); }
  /// How many elements of the module's weight are zero.
  int64_t zeros(const std::string& module) const { return weight(module).eq(0).sum().item<int64_t>(); }
  /// `prefix` and every module below it, in model order (what the sequential pipeline lists for a block).
  std::vector<std::string> block(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const ModuleInfo& m : model->modules()) {
      if (prefix.empty() || m.name == prefix || m.name.rfind(prefix + ".", 0) == 0) out.push_back(m.name);
    }
    return out;
  }
  /// Every module name.
  std::vector<std::string> all() const { return block(""); }
};

/// Clones what a module sees on every forward: its first input (ForwardPre)
/// or its output (Forward), through a host-side hook of its own.
class Recorder {
 public:
  Recorder(Model& model, const std::string& module, HookKind kind) {
    id_ = model.add_hook(module, kind, [this](const HookCall& c) {
      seen_.push_back(c.output != nullptr ? c.output->toTensor().clone() : c.inputs.at(0).toTensor().clone());
    });
  }
  ~Recorder() { Model::remove_hook(id_); }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  /// Everything seen so far as [tokens, features] in double.
  at::Tensor tokens() const {
    std::vector<at::Tensor> rows;
    for (const at::Tensor& t : seen_) rows.push_back(t.reshape({-1, t.size(-1)}).to(at::kDouble));
    return at::cat(rows, 0);
  }
  size_t calls() const { return seen_.size(); }

 private:
  HookId id_ = 0;
  std::vector<at::Tensor> seen_;
};

/// ||a - b|| / ||b|| in double.
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor d = a.to(at::kDouble).sub(b.to(at::kDouble));
  return d.norm().item<double>() / b.to(at::kDouble).norm().item<double>();
}

/// The message of the exception E that `f` throws; "" when it throws none.
template <class E = std::exception, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

}  // namespace modkit::test
