// Plugin search directories and the registry cache: chosen by the core itself so the CLI can never disagree with it.
#include "plugin_dirs.hpp"

namespace modkit::cli {

FactoryOptions factory_options(const GlobalOptions& global) {
  FactoryOptions options;
  options.plugin_dirs = global.plugin_dirs;
  if (global.no_cache) options.cache = CacheMode::Off;
  return options;
}

std::vector<std::string> search_dirs(const GlobalOptions& global) {
  // constructing a factory only computes its directories: nothing is scanned or loaded
  return ModifierFactory(factory_options(global)).search_dirs();
}

std::shared_ptr<detail::RegistryCache> registry_cache(const GlobalOptions& global) {
  const FactoryOptions options = factory_options(global);
  auto host = detail::HostFingerprint::current();
  host.torch_version = options.host_torch_version;
  return detail::RegistryCache::open(options, host);
}

}  // namespace modkit::cli
