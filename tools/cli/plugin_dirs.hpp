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

/// The directories searched, in order, exactly as ModifierFactory orders them, and what it
/// refuses: MODKIT_PLUGIN_PATH entries it leaves out, plugin files in unsafe places.
struct SearchPath {
  std::vector<std::string> dirs;
  std::vector<LoadRecord> refused_dirs;
  bool check_safety = true;  ///< refuse files that others could have written (FactoryOptions::allow_unsafe_paths)
};
SearchPath search_path(const GlobalOptions& global);

/// The registry cache a factory with these options would use (nullptr when off).
std::shared_ptr<detail::RegistryCache> registry_cache(const GlobalOptions& global);

}  // namespace modkit::cli
