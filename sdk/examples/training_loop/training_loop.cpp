// The example's training loop: a LibTorch model trained with Adam while a modkit session prunes it step by step.
#include "training_loop.hpp"

#include <modkit/core/factory.hpp>
#include <modkit/core/session.hpp>
#include <modkit/torch/model.hpp>
#include <modkit/torch/demo_models.hpp>

#include <torch/optim/adam.h>

#include <utility>

namespace training_loop {

namespace {

constexpr int64_t kIn = 16;
constexpr int64_t kHidden = 64;
constexpr int64_t kOut = 4;

// Kept in one string so the test reads the schedule it checks from the recipe the example runs.
constexpr const char* kDefaultRecipe = R"(# Ramp the sparsity of both Linear layers, then hold it while training goes on.
[[stage]]
name = "prune"

[[stage.modifiers]]
type = "MagnitudePruningModifier"
targets = ["Linear"]
init_sparsity = 0.1
final_sparsity = 0.7
start = 20
end = 120
update = 10
update_scheduler = "cubic"
# As llmcompressor: the masks stop at `end`; the next stage holds the zeros from there.
leave_enabled = false

[[stage]]
name = "hold"

[[stage.modifiers]]
type = "ConstantPruningModifier"
targets = ["Linear"]
start = 120
)";

double mse(modkit::Model& model, const at::Tensor& x, const at::Tensor& y) {
  return torch::mse_loss(model.module().forward({x}).toTensor(), y).item<double>();
}

}  // namespace

const char* default_recipe_toml() { return kDefaultRecipe; }

Result train(const Options& options) {
  modkit::FactoryOptions factory_options;
  factory_options.plugin_dirs = options.plugin_dirs;
  factory_options.use_environment = options.default_plugin_dirs;
  factory_options.use_install_dir = options.default_plugin_dirs;
  modkit::ModifierFactory factory(factory_options);
  factory.refresh();
  // Checks every modifier against its plugin's schema before anything runs.
  std::vector<modkit::StageModifiers> stages = modkit::build_stages(options.recipe, factory, true, false);

  torch::manual_seed(options.seed);
  modkit::Model model(modkit::demo_models::make_mlp(kIn, kHidden, kOut, options.seed + 1));
  // The task: y = x A^T + b for a fixed random A and b, learnable by the MLP even at 70 % sparsity.
  const at::Tensor a = torch::randn({kOut, kIn});
  const at::Tensor b = torch::randn({kOut});
  const auto task = [&](int64_t n) {
    at::Tensor x = torch::randn({n, kIn});
    return std::make_pair(x, torch::addmm(b, x, a.t()));
  };
  const auto [eval_x, eval_y] = task(1024);

  Result result;
  for (const auto& m : model.modules()) {
    if (m.class_name == "Linear") result.layers.push_back({m.name, model.get_tensor(m.name, "weight").numel()});
  }
  {
    const torch::NoGradGuard no_grad;
    result.initial_loss = mse(model, eval_x, eval_y);
  }

  // The session prunes the model in place: the plugins reach its weights
  // through the model services (zero-copy), so the optimizer and the
  // modifiers work on the same tensors.
  modkit::State state;
  state.host = modkit::Model::host();
  state.model = model.handle();
  modkit::Session session(state);
  session.initialize(std::move(stages));

  std::vector<at::Tensor> parameters;
  for (const auto& p : model.module().parameters()) parameters.push_back(p.requires_grad_(true));
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(options.learning_rate));

  std::vector<at::Tensor> previous;  // each layer's weight after the previous step
  for (const auto& layer : result.layers) previous.push_back(model.get_tensor(layer.name, "weight").detach().clone());

  for (int64_t step = 0; step < options.steps; ++step) {
    session.event(modkit::EventType::BatchStart, step);  // may update the masks before the forward pass
    const auto [x, y] = task(options.batch_size);
    const at::Tensor loss = torch::mse_loss(model.module().forward({x}).toTensor(), y);
    session.event(modkit::EventType::LossCalculated, step, loss.item<double>());
    optimizer.zero_grad();
    loss.backward();
    session.event(modkit::EventType::OptimPreStep, step);
    optimizer.step();
    session.event(modkit::EventType::OptimPostStep, step);  // puts the pruned weights back to zero
    session.event(modkit::EventType::BatchEnd, step);

    Step record{step, loss.item<double>(), {}, {}, {}};
    for (size_t i = 0; i < result.layers.size(); ++i) {
      const at::Tensor w = model.get_tensor(result.layers[i].name, "weight").detach();
      const at::Tensor zero = w.eq(0);
      record.zeros.push_back(zero.sum().item<int64_t>());
      record.flipped.push_back(zero.ne(previous[i].eq(0)).sum().item<int64_t>());
      record.moved.push_back((w - previous[i]).norm().item<double>());
      previous[i] = w.clone();
    }
    result.steps.push_back(std::move(record));
  }
  session.finalize();

  {
    const torch::NoGradGuard no_grad;
    result.final_loss = mse(model, eval_x, eval_y);
  }
  if (!options.output.empty()) model.save(options.output);
  return result;
}

}  // namespace training_loop
