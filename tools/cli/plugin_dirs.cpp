// Plugin search directories and the registry cache of a CLI run: from the global options, chosen by the core.
#include "plugin_dirs.hpp"

namespace modkit::cli {

FactoryOptions factory_options(const GlobalOptions& global) {
  FactoryOptions options;
  options.plugin_dirs = global.plugin_dirs;
  if (global.no_cache) options.cache = CacheMode::Off;
  return options;
}

}  // namespace modkit::cli
