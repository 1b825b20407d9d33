// A host application's LibTorch training loop that prunes its model through a modkit session (the example's library).
#pragma once

#include <modkit/core/recipe.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace training_loop {

/// The recipe the example runs by default, as TOML: stage "prune" ramps the
/// sparsity of both Linear layers from 10 % to 70 % on a cubic schedule
/// (MagnitudePruningModifier, steps 20 to 120, a new mask every 10 steps),
/// stage "hold" keeps that zero pattern while training goes on
/// (ConstantPruningModifier from step 120).
const char* default_recipe_toml();

/// What to train and how.
struct Options {
  /// The stages to run; every modifier gets the real training events.
  modkit::Recipe recipe;
  /// Plugin directories searched first.
  std::vector<std::string> plugin_dirs;
  /// Also search MODKIT_PLUGIN_PATH and the install default.
  bool default_plugin_dirs = true;
  /// Optimizer steps; each sends BATCH_START, LOSS_CALCULATED, OPTIM_PRE_STEP,
  /// OPTIM_POST_STEP and BATCH_END with the step as global step.
  int64_t steps = 300;
  int64_t batch_size = 64;
  /// Adam's learning rate.
  double learning_rate = 0.01;
  /// Seeds the model's weights, the task and the batches: same seed, same run.
  uint64_t seed = 0;
  /// Where to save the trained model (TorchScript, atomically); "" to skip.
  std::string output;
};

/// A pruned layer of the model.
struct Layer {
  std::string name;  ///< module name ("fc1")
  int64_t numel;     ///< elements of its weight
};

/// What one step left behind, measured after its BATCH_END.
struct Step {
  int64_t step;
  double loss;                     ///< the training loss of the step's batch
  std::vector<int64_t> zeros;      ///< zeros of each layer's weight, in Result::layers order
  std::vector<int64_t> flipped;    ///< elements of each layer whose zero / non-zero state changed during the step
  std::vector<double> moved;       ///< L2 norm of the change of each layer's weight during the step
};

/// The record of a run.
struct Result {
  std::vector<Layer> layers;
  std::vector<Step> steps;
  double initial_loss;  ///< loss on a fixed evaluation set before the first step
  double final_loss;    ///< loss on the same set after the last step
};

/// Trains `make_mlp(16, 64, 4)` to fit a fixed random linear map (a synthetic
/// regression task) with Adam, and drives the recipe's modifiers through a
/// modkit::Session over the model. Throws what the factory, the recipe or a
/// modifier throws (modkit::ValueError and its kin).
Result train(const Options& options);

}  // namespace training_loop
