// Shared declarations of modkit-torch, the LibTorch side of the modkit CLI (`modkit demo`, `modkit apply`).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace modkit::tool {

/// Adds a subcommand to `parent`; when it is chosen, its parse callback sets
/// `run_selected` to what runs it (returning the exit code: 0 ok, 1 a
/// plugin / recipe / model problem, 2 usage).
void add_demo_command(CLI::App& parent, std::function<int()>& run_selected);
void add_apply_command(CLI::App& parent, std::function<int()>& run_selected);

}  // namespace modkit::tool
