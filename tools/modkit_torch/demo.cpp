// `modkit-torch demo`: prunes a generated transformer-like TorchScript model during a short training loop and shows what changed.
#include <modkit/core/errors.hpp>
#include <modkit/core/factory.hpp>
#include <modkit/core/session.hpp>
#include <modkit/core/stage.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/demo_models.hpp>

#include "torch_tool.hpp"

#include <CLI/CLI.hpp>
#include <torch/optim/sgd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

namespace {

struct Snapshot {
  std::map<std::string, at::Tensor> weights;  // copies, keyed by module name
};

bool is_target(const modkit::ModuleInfo& m) { return m.class_name == "Linear" && m.name != "lm_head"; }

Snapshot snapshot(const modkit::Model& model) {
  Snapshot s;
  for (const auto& m : model.modules()) {
    if (is_target(m)) s.weights[m.name] = model.get_tensor(m.name, "weight").detach().clone();
  }
  return s;
}

double sparsity(const at::Tensor& t) { return (t == 0).sum().item<double>() / static_cast<double>(t.numel()); }

double overall_sparsity(const modkit::Model& model) {
  double zeros = 0, total = 0;
  for (const auto& m : model.modules()) {
    if (!is_target(m)) continue;
    const at::Tensor w = model.get_tensor(m.name, "weight");
    zeros += (w == 0).sum().item<double>();
    total += static_cast<double>(w.numel());
  }
  return total > 0 ? zeros / total : 0;
}

}  // namespace

namespace modkit::tool {

int run_demo(const cli::GlobalOptions& global, const cli::DemoOptions& o) {
  cli::set_up_logging(global);
  const int steps = o.steps;
  const std::string& output = o.output;
  modkit::ModifierFactory factory(cli::factory_options(global));
  factory.refresh();

  torch::manual_seed(0);
  modkit::Model model(modkit::demo_models::make_tiny_transformer(/*layers=*/2, /*hidden=*/64, /*seed=*/1));
  modkit::Model teacher(modkit::demo_models::make_tiny_transformer(2, 64, /*seed=*/2));
  const Snapshot before = snapshot(model);

  const modkit::Params params = {{"targets", {"Linear"}},   {"ignore", {"lm_head"}},
                                 {"init_sparsity", 0.1},     {"final_sparsity", 0.7},
                                 {"start", 1},               {"end", steps - 3},
                                 {"update", 2},              {"update_scheduler", "cubic"}};
  std::cout << "MagnitudePruningModifier " << params.dump() << "\n\n";
  modkit::StageModifiers stage;
  stage.group = "sparsity";
  stage.index = 0;
  stage.modifiers.push_back(factory.create("MagnitudePruningModifier", true, false, params));
  std::vector<modkit::StageModifiers> stages;
  stages.push_back(std::move(stage));

  modkit::State state;
  state.host = modkit::Model::host();
  state.model = model.handle();
  modkit::Session session(state);
  session.initialize(std::move(stages));

  std::vector<at::Tensor> parameters;
  for (const auto& p : model.module().parameters()) parameters.push_back(p.requires_grad_(true));
  torch::optim::SGD optimizer(parameters, torch::optim::SGDOptions(0.05));

  std::printf("%5s  %10s  %9s\n", "step", "loss", "sparsity");
  for (int step = 0; step < steps; ++step) {
    session.event(modkit::EventType::BatchStart, step);
    const at::Tensor x = torch::randn({8, 16, 64});
    const at::Tensor target = teacher.module().forward({x}).toTensor().detach();
    const at::Tensor loss = torch::mse_loss(model.module().forward({x}).toTensor(), target);
    session.event(modkit::EventType::LossCalculated, step, loss.item<double>());
    optimizer.zero_grad();
    loss.backward();
    session.event(modkit::EventType::OptimPreStep, step);
    optimizer.step();
    session.event(modkit::EventType::OptimPostStep, step);
    session.event(modkit::EventType::BatchEnd, step);
    std::printf("%5d  %10.5f  %8.1f%%\n", step, loss.item<double>(), 100.0 * overall_sparsity(model));
  }
  session.finalize();

  std::printf("\n%-28s  %-10s  %9s  %9s  %12s\n", "module", "shape", "before", "after", "rel. change");
  for (const auto& [name, w0] : before.weights) {
    const at::Tensor w1 = model.get_tensor(name, "weight");
    const double change = ((w1 - w0).norm() / w0.norm()).item<double>();
    std::printf("%-28s  %-10s  %8.1f%%  %8.1f%%  %12.3f\n", name.c_str(),
                (std::to_string(w0.size(0)) + "x" + std::to_string(w0.size(1))).c_str(), 100.0 * sparsity(w0),
                100.0 * sparsity(w1), change);
  }
  if (!output.empty()) {
    model.save(output);
    std::cout << "\nwrote " << output << " (load it with torch.jit.load)\n";
  }
  return 0;
}

}  // namespace modkit::tool
