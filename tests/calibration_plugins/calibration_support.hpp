// Helpers of the calibration plugin tests: the build tree's plugins, a session driven through the calibration events, recorded activations.
#pragma once

#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/session.hpp>
#include <modkit/torch/model.hpp>
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

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace calibration_test {

using modkit::EventType;
using modkit::Model;
using modkit::Params;

/// One factory over the build tree's plugin directory for the whole suite.
inline modkit::ModifierFactory& plugins() {
  static modkit::ModifierFactory factory([] {
    modkit::FactoryOptions options;
    options.plugin_dirs = {MODKIT_TEST_PLUGIN_DIR};
    options.use_environment = false;
    options.use_install_dir = false;
    return options;
  }());
  static const bool refreshed = (factory.refresh(), true);
  (void)refreshed;
  return factory;
}

inline std::unique_ptr<modkit::Modifier> make(const std::string& type, const Params& params) {
  return plugins().create(type, true, false, params);
}

/// A model and a session driven through the calibration events by hand, the
/// way the oneshot pipelines drive them: initialize, CALIBRATION_START,
/// forwards, SEQUENTIAL_EPOCH_END with the modules just calibrated,
/// CALIBRATION_END, finalize. The model never moves, so its handle stays valid.
struct Calibration {
  std::unique_ptr<Model> model;
  modkit::Session session;

  explicit Calibration(torch::jit::Module module) : model(std::make_unique<Model>(std::move(module))) {
    session.state().host = Model::host();
    session.state().model = model->handle();
  }

  void initialize(std::unique_ptr<modkit::Modifier> modifier) {
    modkit::StageModifiers stage;
    stage.group = "calibration";
    stage.index = 0;
    stage.modifiers.push_back(std::move(modifier));
    std::vector<modkit::StageModifiers> stages;
    stages.push_back(std::move(stage));
    session.initialize(std::move(stages));
  }
  void start(std::unique_ptr<modkit::Modifier> modifier) {
    initialize(std::move(modifier));
    session.event(EventType::CalibrationStart);
  }
  at::Tensor forward(const at::Tensor& x) const {
    const at::NoGradGuard no_grad;
    return model->forward({x}).toTensor();
  }
  void epoch_end(std::vector<std::string> modules) {
    session.event(EventType::SequentialEpochEnd, std::nullopt, std::nullopt, std::move(modules));
  }
  void end() {
    session.event(EventType::CalibrationEnd);
    session.finalize();
  }

  /// The live tensor (a view: it changes with the model).
  at::Tensor tensor(const std::string& module, const std::string& name = "weight") const {
    return model->get_tensor(module, name);
  }
  /// `prefix` and every module below it, in model order (what the sequential pipeline lists for a block).
  std::vector<std::string> block(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const modkit::ModuleInfo& m : model->modules()) {
      if (m.name == prefix || m.name.rfind(prefix + ".", 0) == 0) out.push_back(m.name);
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
  Recorder(Model& model, const std::string& module, modkit::HookKind kind) {
    id_ = model.add_hook(module, kind, [this](const modkit::HookCall& c) {
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
  modkit::HookId id_ = 0;
  std::vector<at::Tensor> seen_;
};

/// The message of the exception E that `f` throws; "" when it throws none.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

/// ||a - b|| / ||b|| in double.
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).norm().item<double>() / b.to(at::kDouble).norm().item<double>();
}

}  // namespace calibration_test
