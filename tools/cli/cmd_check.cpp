// `modkit check`: reads a recipe and reports every problem against the plugins' schemas, with file:line:col.
#include "cli.hpp"
#include "output.hpp"

#include <modkit/core/factory.hpp>
#include <modkit/core/recipe.hpp>

#include <iostream>

namespace modkit::cli {

nlohmann::json recipe_errors_json(const std::vector<RecipeError>& errors) {
  nlohmann::json out = nlohmann::json::array();
  for (const RecipeError& e : errors) {
    out.push_back({{"file", e.where().file},
                   {"line", e.where().line},
                   {"column", e.where().column},
                   {"message", e.message()},
                   {"text", e.what()}});
  }
  return out;
}

namespace {

nlohmann::json stages_json(const Recipe& recipe) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : recipe.stages) {
    nlohmann::json modifiers = nlohmann::json::array();
    for (const auto& m : s.modifiers) {
      modifiers.push_back({{"type", m.type}, {"group", m.group}, {"index", m.index}, {"params", m.params}});
    }
    stages.push_back({{"name", s.name}, {"group", s.group}, {"run_type", s.run_type}, {"modifiers", modifiers}});
  }
  return stages;
}

int run_check(const GlobalOptions& global, const std::string& path, bool no_experimental) {
  std::vector<RecipeError> errors;
  Recipe recipe;
  bool parsed = false;
  try {
    recipe = Recipe::load(path);
    parsed = true;
  } catch (const RecipeError& e) {
    errors.push_back(e);  // the file cannot be read or parsed: no model or plugin is needed to say so
  }
  if (parsed) {
    // loading plugins runs their code, but no model is touched
    ModifierFactory factory(factory_options(global));
    factory.refresh();
    errors = find_recipe_errors(recipe, factory, !no_experimental);
  }

  if (global.json) {
    nlohmann::json j = {{"recipe", path}, {"valid", errors.empty()}, {"errors", recipe_errors_json(errors)}};
    if (parsed) j["stages"] = stages_json(recipe);
    print_json(std::cout, j);
  } else if (errors.empty()) {
    size_t modifiers = 0;
    for (const auto& s : recipe.stages) modifiers += s.modifiers.size();
    std::cout << path << ": valid (" << count_of(recipe.stages.size(), "stage", "stages") << ", "
              << count_of(modifiers, "modifier", "modifiers") << ")\n";
    for (const auto& s : recipe.stages) {
      std::cout << "  stage '" << s.name << "'" << (s.run_type.empty() ? "" : " (" + s.run_type + ")") << ":";
      for (size_t i = 0; i < s.modifiers.size(); ++i) std::cout << (i ? ", " : " ") << s.modifiers[i].type;
      std::cout << "\n";
    }
  } else {
    // compiler style (file:line:col: message), so editors and CI annotations pick the locations up
    for (const auto& e : errors) std::cout << e.what() << "\n";
    std::cout << path << ": " << count_of(errors.size(), "error", "errors") << "\n";
  }
  return errors.empty() ? kExitOk : kExitProblem;
}

}  // namespace

Command add_check_command(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "check",
      "check a recipe (.toml, or llmcompressor .yaml) against the plugins' schemas; prints every problem as "
      "file:line:col: message; exits 0 when valid, 1 when not (loads plugins; no model is touched)");
  auto path = std::make_shared<std::string>();
  auto no_experimental = std::make_shared<bool>(false);
  app->add_option("recipe", *path, "the recipe file")->required()->type_name("RECIPE");
  app->add_flag("--no-experimental", *no_experimental, "treat experimental modifiers as errors");
  return {app, [&global, path, no_experimental] { return run_check(global, *path, *no_experimental); }};
}

}  // namespace modkit::cli
