// training_loop: trains a small model with LibTorch while modkit prunes it, and prints loss and sparsity as they go.
#include "training_loop.hpp"

#include <modkit/core/recipe.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"training_loop: a LibTorch training loop that prunes its model with modkit modifiers"};
  training_loop::Options options;
  std::string recipe_path;
  int every = 10;
  app.add_option("--plugin-dir", options.plugin_dirs, "plugin directory, searched first (repeatable)");
  app.add_option("--recipe", recipe_path, "recipe (.toml, or llmcompressor .yaml); default: the built-in recipe")
      ->check(CLI::ExistingFile);
  app.add_option("--steps", options.steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--lr", options.learning_rate, "Adam's learning rate")->check(CLI::PositiveNumber);
  app.add_option("--seed", options.seed, "seed of the model, the task and the batches");
  app.add_option("--every", every, "print every N steps")->check(CLI::PositiveNumber);
  app.add_option("--output", options.output, "where to save the trained, pruned model (TorchScript)");
  bool print_recipe = false;
  app.add_flag("--print-recipe", print_recipe, "print the built-in recipe and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (print_recipe) {
    std::cout << training_loop::default_recipe_toml();
    return 0;
  }

  try {
    options.recipe = recipe_path.empty()
                         ? modkit::Recipe::parse_toml(training_loop::default_recipe_toml(), "<built-in recipe>")
                         : modkit::Recipe::load(recipe_path);
    const training_loop::Result result = training_loop::train(options);

    std::printf("%5s  %10s", "step", "loss");
    for (const auto& layer : result.layers) std::printf("  %8s", (layer.name + " %").c_str());
    std::printf("\n");
    for (const auto& s : result.steps) {
      if (s.step % every != 0 && s.step + 1 != static_cast<int64_t>(result.steps.size())) continue;
      std::printf("%5lld  %10.5f", static_cast<long long>(s.step), s.loss);
      for (size_t i = 0; i < result.layers.size(); ++i) {
        std::printf("  %8.1f", 100.0 * static_cast<double>(s.zeros[i]) / static_cast<double>(result.layers[i].numel));
      }
      std::printf("\n");
    }
    std::printf("\nevaluation loss: %.5f before training, %.5f after\n", result.initial_loss, result.final_loss);
    if (!options.output.empty()) std::cout << "wrote " << options.output << " (load it with torch.jit.load)\n";
    return 0;
  } catch (const std::exception& e) {  // a plugin, recipe or model problem (modkit::ValueError), or LibTorch's
    std::cerr << "training_loop: " << e.what() << "\n";
    return 1;
  }
}
