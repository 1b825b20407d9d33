// Plugin search directories: built by the factory itself so the CLI can never disagree with it.
#include "plugin_dirs.hpp"

namespace modkit::cli {

FactoryOptions factory_options(const GlobalOptions& global) {
  FactoryOptions options;
  options.plugin_dirs = global.plugin_dirs;
  return options;
}

std::vector<std::string> search_dirs(const GlobalOptions& global) {
  // constructing a factory only computes its directories: nothing is scanned or loaded
  return ModifierFactory(factory_options(global)).search_dirs();
}

}  // namespace modkit::cli
