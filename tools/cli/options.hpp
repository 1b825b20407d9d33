// The options of the CLI, declared once for both executables: modkit parses them (and checks what it can without
// LibTorch), then hands the original arguments to modkit-torch, which parses them again with the same declarations.
#pragma once

#include "cli_support.hpp"

#include <modkit/core/factory.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace modkit::cli {

/// Options every subcommand sees (given before or after the subcommand).
struct GlobalOptions {
  std::vector<std::string> plugin_dirs;  ///< --plugin-dir, searched first
  bool json = false;                     ///< --json: machine-readable output
  int verbose = 0;                       ///< -v: core warnings, -vv: debug
  bool no_cache = false;                 ///< --no-cache: neither read nor write the registry cache
  std::vector<std::string> args;         ///< the arguments as given (argv[1...]), for modkit-torch
};

/// Declares the global options on `app` and lets its subcommands accept them too.
void add_global_options(CLI::App& app, GlobalOptions& global);

/// Parses argv into `app` and keeps the original arguments in `global.args`.
void parse(CLI::App& app, GlobalOptions& global, int argc, char** argv);

/// Factory options from the global options: --plugin-dir first, then
/// MODKIT_PLUGIN_PATH, then the install default; the cache unless --no-cache.
FactoryOptions factory_options(const GlobalOptions& global);

/// The log levels the global options ask for (core: off, -v warnings, -vv debug), to stderr.
void set_up_logging(const GlobalOptions& global);

/// `apply`'s own options.
struct ApplyOptions {
  std::string recipe;
  std::string model;
  std::string output;
  std::string report;
  std::string calib;
  std::string pipeline;
  std::vector<std::string> sequential_targets;
  int64_t samples = 0;
  int threads = 0;
  bool allow_unmatched = false;
};

/// Adds `apply` to `parent` with its options.
CLI::App* add_apply_options(CLI::App& parent, ApplyOptions& o);

/// Usage errors CLI11 cannot see (Failure with kExitUsage): --model without --output.
void check_apply_options(const ApplyOptions& o);

/// `demo`'s own options.
struct DemoOptions {
  int steps = 12;
  std::string output;
};

/// Adds `demo` to `parent` with its options.
CLI::App* add_demo_options(CLI::App& parent, DemoOptions& o);

}  // namespace modkit::cli
