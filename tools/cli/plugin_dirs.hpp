// The plugin search directories of a CLI run, in the factory's order.
#pragma once

#include "cli.hpp"

#include <modkit/core/factory.hpp>

#include <string>
#include <vector>

namespace modkit::cli {

/// Factory options from the global options: --plugin-dir first, then
/// MODKIT_PLUGIN_PATH, then the install default.
FactoryOptions factory_options(const GlobalOptions& global);

/// The directories searched, in order, exactly as ModifierFactory orders them.
std::vector<std::string> search_dirs(const GlobalOptions& global);

}  // namespace modkit::cli
