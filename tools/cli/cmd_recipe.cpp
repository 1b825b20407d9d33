// `modkit recipe convert`: imports a recipe (llmcompressor YAML or TOML) and writes its canonical TOML form.
#include "cli.hpp"

#include <modkit/core/atomic_file.hpp>
#include <modkit/core/recipe.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace modkit::cli {
namespace {

namespace fs = std::filesystem;

int run_convert(const std::string& input, const std::string& output) {
  Recipe recipe;
  try {
    recipe = Recipe::load(input);
  } catch (const RecipeError& e) {
    throw Failure(kExitProblem, e.what(), {{"errors", recipe_errors_json({e})}});
  }
  std::string toml;
  try {
    toml = recipe.to_toml();
  } catch (const std::exception& e) {
    throw Failure(kExitProblem, "cannot convert '" + input + "' to TOML: " + e.what());
  }
  if (output.empty() || output == "-") {
    std::cout << toml;
    return kExitOk;
  }
  if (modkit::same_file(input, output)) {
    throw Failure(kExitProblem, "cannot write '" + output + "': it is the recipe being converted; give another path");
  }
  modkit::write_atomically(output, toml, "cannot write '" + output + "': ");
  std::cerr << "wrote " << output << "\n";
  return kExitOk;
}

}  // namespace

Command add_recipe_command(CLI::App& parent, const GlobalOptions& /*global*/) {
  CLI::App* app = parent.add_subcommand("recipe", "work with recipe files (no plugin is loaded)");
  app->require_subcommand(1);
  CLI::App* convert = app->add_subcommand(
      "convert",
      "read a recipe (llmcompressor .yaml/.yml, or .toml) and write its canonical TOML form, to stdout or "
      "atomically to -o (syntax only: run 'modkit check' to check it against the plugins)");
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  convert->add_option("input", *input, "the recipe to convert")->required()->type_name("RECIPE");
  convert->add_option("-o,--output", *output, "where to write the TOML recipe (default: stdout)")->type_name("FILE");
  return {app, [input, output] { return run_convert(*input, *output); }};
}

}  // namespace modkit::cli
