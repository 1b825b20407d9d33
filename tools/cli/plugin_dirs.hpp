// The factory options of a CLI run: the core itself then chooses directories and cache, so the CLI can never
// disagree with it.
#pragma once

#include "cli.hpp"

#include <modkit/core/factory.hpp>

namespace modkit::cli {

/// Factory options from the global options: --plugin-dir first, then
/// MODKIT_PLUGIN_PATH, then the install default; the cache unless --no-cache.
FactoryOptions factory_options(const GlobalOptions& global);

}  // namespace modkit::cli
