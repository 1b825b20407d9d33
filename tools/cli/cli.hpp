// Shared declarations of the modkit CLI: global options, the subcommand registry, exit codes, the failure type.
#pragma once

#include <CLI/CLI.hpp>
#include <modkit/core/recipe.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace modkit::cli {

/// Exit codes of every subcommand (DESIGN.md "CLI").
enum ExitCode : int {
  kExitOk = 0,       ///< success
  kExitProblem = 1,  ///< a plugin, recipe or model problem
  kExitUsage = 2,    ///< a usage error (bad arguments)
};

/// Options every subcommand sees (given before or after the subcommand).
struct GlobalOptions {
  std::vector<std::string> plugin_dirs;  ///< --plugin-dir, searched first
  bool json = false;                     ///< --json: machine-readable output
  int verbose = 0;                       ///< -v: core warnings, -vv: debug
  bool no_cache = false;                 ///< --no-cache: neither read nor write the registry cache
};

/// A failure that ends the command: printed as "modkit: <message>" on stderr; under --json also
/// as {"error": message, "exit_code": code} on stdout, with `details` (an object) merged in.
class Failure : public std::runtime_error {
 public:
  Failure(int code, const std::string& message, nlohmann::json details = nlohmann::json::object())
      : std::runtime_error(message), code_(code), details_(std::move(details)) {}
  int code() const noexcept { return code_; }
  const nlohmann::json& details() const noexcept { return details_; }

 private:
  int code_;
  nlohmann::json details_;
};

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
