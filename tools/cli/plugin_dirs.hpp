// The plugin search directories and registry cache of a CLI run, exactly as the factory chooses them.
#pragma once

#include "cli.hpp"

#include <modkit/core/detail/registry_cache.hpp>
#include <modkit/core/factory.hpp>

#include <memory>

#include <string>
#include <vector>

namespace modkit::cli {

/// Factory options from the global options: --plugin-dir first, then
/// MODKIT_PLUGIN_PATH, then the install default; the cache unless --no-cache.
FactoryOptions factory_options(const GlobalOptions& global);

/// The directories searched, in order, exactly as ModifierFactory orders them.
std::vector<std::string> search_dirs(const GlobalOptions& global);

/// The registry cache a factory with these options would use (nullptr when off).
std::shared_ptr<detail::RegistryCache> registry_cache(const GlobalOptions& global);

}  // namespace modkit::cli
