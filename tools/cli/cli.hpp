// Shared declarations of the modkit executable: the subcommand registry and recipe errors as JSON.
#pragma once

#include "options.hpp"

#include <CLI/CLI.hpp>
#include <modkit/core/recipe.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace modkit::cli {

/// One subcommand: its CLI11 parser and what runs when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

/// Recipe errors as `modkit check --json` prints them: [{file, line, column, message, text}].
nlohmann::json recipe_errors_json(const std::vector<RecipeError>& errors);

// One function per subcommand file; each adds its subcommand to `parent`.
Command add_list_command(CLI::App& parent, const GlobalOptions& global);
Command add_inspect_command(CLI::App& parent, const GlobalOptions& global);
Command add_errors_command(CLI::App& parent, const GlobalOptions& global);
Command add_new_plugin_command(CLI::App& parent, const GlobalOptions& global);
Command add_demo_command(CLI::App& parent, const GlobalOptions& global);
Command add_check_command(CLI::App& parent, const GlobalOptions& global);
Command add_recipe_command(CLI::App& parent, const GlobalOptions& global);
Command add_apply_command(CLI::App& parent, const GlobalOptions& global);

}  // namespace modkit::cli
