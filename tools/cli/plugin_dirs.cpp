// Plugin search directories and the registry cache: chosen by the core itself so the CLI can never disagree with it.
#include "plugin_dirs.hpp"

namespace modkit::cli {

FactoryOptions factory_options(const GlobalOptions& global) {
  FactoryOptions options;
  options.plugin_dirs = global.plugin_dirs;
  if (global.no_cache) options.cache = CacheMode::Off;
  return options;
}

SearchPath search_path(const GlobalOptions& global) {
  // constructing a factory only computes its directories: nothing is scanned or loaded
  const FactoryOptions options = factory_options(global);
  const ModifierFactory factory(options);
  return {factory.search_dirs(), factory.refused_search_dirs(), !options.allow_unsafe_paths};
}

std::shared_ptr<detail::RegistryCache> registry_cache(const GlobalOptions& global) {
  const FactoryOptions options = factory_options(global);
  auto host = detail::HostFingerprint::current();
  host.torch_version = options.host_torch_version;
  return detail::RegistryCache::open(options, host);
}

}  // namespace modkit::cli
