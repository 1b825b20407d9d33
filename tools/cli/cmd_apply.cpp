// `modkit apply`: checks the recipe here (fast, no LibTorch), then runs `modkit-torch apply` for the model work.
#include "cli.hpp"
#include "cli_support.hpp"
#include "run_torch_tool.hpp"

#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>

#include <iostream>

namespace modkit::cli {
namespace {

int run_apply(const GlobalOptions& global, const ApplyOptions& o) {
  check_apply_options(o);
  if (!o.recipe.empty()) {
    // the recipe is checked before LibTorch starts: its problems show in a fraction of a second
    Recipe recipe;
    std::vector<RecipeError> errors;
    try {
      recipe = Recipe::load(o.recipe);
      ModifierFactory factory(factory_options(global));
      factory.refresh();
      errors = find_recipe_errors(recipe, factory);
    } catch (const RecipeError& e) {
      errors.push_back(e);
    }
    if (!errors.empty()) {
      for (const auto& e : errors) std::cerr << e.what() << "\n";
      throw Failure(kExitProblem,
                    "recipe '" + o.recipe + "' is invalid (" + std::to_string(errors.size()) +
                        (errors.size() == 1 ? " error" : " errors") + "); nothing was applied",
                    {{"errors", recipe_errors_json(errors)}});
    }
  }

  exec_torch_tool(global.args);  // modkit-torch parses the same arguments with the same declarations
}

}  // namespace

Command add_apply_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<ApplyOptions>();
  CLI::App* app = add_apply_options(parent, *o);
  return {app, [&global, o] { return run_apply(global, *o); }};
}

}  // namespace modkit::cli
