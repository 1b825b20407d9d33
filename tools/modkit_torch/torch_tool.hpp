// The subcommands of modkit-torch, the LibTorch side of the modkit CLI (`modkit demo`, `modkit apply`).
#pragma once

#include "options.hpp"

namespace modkit::tool {

/// Each returns the exit code (0 ok, 1 a plugin / recipe / model problem) or throws.
int run_demo(const cli::GlobalOptions& global, const cli::DemoOptions& o);
int run_apply(const cli::GlobalOptions& global, const cli::ApplyOptions& o);

}  // namespace modkit::tool
