// prune_scripted_model: loads a model scripted by PyTorch, lists its modules, prunes its Linear layers through a session and saves it.
#include <modkit/core/factory.hpp>
#include <modkit/core/session.hpp>
#include <modkit/core/stage.hpp>
#include <modkit/torch/model.hpp>

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>

namespace {

int run(const std::string& plugin_dir, const std::string& input, const std::string& output,
        const std::string& modules_out, double sparsity) {
  modkit::FactoryOptions options;
  options.plugin_dirs = {plugin_dir};
  options.use_environment = false;
  options.use_install_dir = false;
  modkit::ModifierFactory factory(options);
  factory.refresh();

  modkit::Model model = modkit::Model::load(input);
  // name<TAB>class for every module, root first, as Python's named_modules() lists them.
  std::ofstream listing(modules_out);
  for (const auto& m : model.modules()) listing << m.name << '\t' << m.class_name << '\n';
  listing.close();
  if (!listing) throw std::runtime_error("cannot write '" + modules_out + "'");

  // Oneshot through the training events: masks at initialize (start = 0), final_sparsity at end = 1.
  modkit::StageModifiers stage;
  stage.group = "sparsity";
  stage.index = 0;
  stage.modifiers.push_back(factory.create("MagnitudePruningModifier", true, false,
                                           {{"targets", {"Linear"}},
                                            {"init_sparsity", sparsity},
                                            {"final_sparsity", sparsity},
                                            {"start", 0},
                                            {"end", 1},
                                            {"update", 1}}));
  std::vector<modkit::StageModifiers> stages;
  stages.push_back(std::move(stage));

  modkit::State state;
  state.host = modkit::Model::host();
  state.model = model.handle();
  modkit::Session session(state);
  session.initialize(std::move(stages));
  for (int64_t step = 0; step <= 1; ++step) {
    session.event(modkit::EventType::BatchStart, step);
    session.event(modkit::EventType::BatchEnd, step);
  }
  session.finalize();
  model.save(output);
  std::cout << "pruned the Linear layers of '" << input << "' to " << sparsity << " sparsity: wrote '" << output
            << "'\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"prune_scripted_model: MagnitudePruningModifier over the Linear layers of a TorchScript model"};
  std::string plugin_dir, input, output, modules_out;
  double sparsity = 0.5;
  app.add_option("--plugin-dir", plugin_dir, "plugin directory")->required();
  app.add_option("--input", input, "TorchScript model to prune")->required();
  app.add_option("--output", output, "where to save the pruned model")->required();
  app.add_option("--modules", modules_out, "where to list the model's modules (name<TAB>class)")->required();
  app.add_option("--sparsity", sparsity, "sparsity of every Linear weight")->check(CLI::Range(0.0, 1.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    return run(plugin_dir, input, output, modules_out, sparsity);
  } catch (const std::exception& e) {
    std::cerr << "prune_scripted_model: " << e.what() << "\n";
    return 1;
  }
}
